"""A partner's webhook receiver on loopback: it records what arrives and answers as told
(a status, after a delay), and can be taken down and brought up again on the same port."""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import ThreadingHTTPServer

from tests.fakes.loopback import QuietHandler


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """Answers ``status`` after ``delay`` seconds; ``delays`` (consumed first) sets the delay of
    the next requests one by one."""

    status: int = 204
    delay: float = 0.0
    delays: list[float] = field(default_factory=list)
    received: list[Received] = field(default_factory=list)
    port: int = 0
    _server: ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        if not self.port:
            self.port = free_port()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks"

    def up(self) -> Receiver:
        receiver = self

        class Handler(QuietHandler):
            def do_POST(self) -> None:  # noqa: N802 - the standard library's name
                body = self.read_body()
                with receiver._lock:
                    pause = receiver.delays.pop(0) if receiver.delays else receiver.delay
                    receiver.received.append(
                        Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                    )
                if pause:
                    time.sleep(pause)
                self.reply(receiver.status, b"" if receiver.status == 204 else b'{"ok":false}')

        server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        server.daemon_threads = True
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def down(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            assert self._thread is not None
            self._thread.join(timeout=5)
            self._server = None


def free_port() -> int:
    """A loopback port nobody listens on (yet)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port
