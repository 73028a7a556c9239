"""Serve an app on a free loopback port for the tests and the benchmarks, and stop it after.

The concurrency tests, the browser tests and the load benchmark each start servers of their
own: several ``pintuan serve`` processes forked from a process that has imported the app once,
one app in a thread next to the test that seeds its data, commands started in sessions of their
own. What they share lives here: a free port, waiting until the server answers (or saying why
it never did, with the end of its log), and stopping it however the caller unwinds.

It lives in the package, although the application never imports it (``pintuan serve`` is how
the product serves), because both ``tests`` and ``bench`` import the installed package without
any path tricks, and neither should import the other. It sits in ``kit`` because it imports
nothing of Pintuan's: each caller says what to serve (a command, a function to run in a forked
process, or an ASGI app). It needs only the package's own dependencies (httpx, uvicorn), never a
test framework.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import socket
import subprocess
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping, Sequence
from multiprocessing.context import ForkServerContext
from pathlib import Path
from typing import Any

import httpx
import uvicorn

LOOPBACK = "127.0.0.1"
# Generous for a busy two-core machine, where importing the app alone takes seconds.
READY_TIMEOUT_SECONDS = 60.0
# uvicorn finishes the requests in flight on SIGTERM; past this, the server is killed.
STOP_TIMEOUT_SECONDS = 15.0
LOG_TAIL_LINES = 30


class ServerDidNotStart(RuntimeError):
    """A server exited or did not answer in time; the message ends with its log's last lines."""


def free_port() -> int:
    """A loopback port nobody listens on now. Another process may still take it before the
    server binds it; a caller that must not fail on that starts once more on another port when
    :meth:`Server.wait_ready` raises."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def log_tail(path: Path | None, lines: int = LOG_TAIL_LINES) -> str:
    """The last ``lines`` lines of a server's log, or a note saying where its output went."""
    if path is None:
        return "(its output went to this process's stderr)"
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError as exc:
        return f"(its log {path} cannot be read: {exc})"


class Server(ABC):
    """One server started here, listening on ``port`` of the loopback interface."""

    def __init__(self, port: int, log: Path | None) -> None:
        self.port = port
        self.log = log

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    @property
    @abstractmethod
    def pid(self) -> int | None:
        """The server's process id (None for a server in a thread of this process)."""

    @abstractmethod
    def running(self) -> bool:
        """Whether the server's process (or thread) is still alive."""

    @abstractmethod
    def exit_status(self) -> str:
        """How it ended, for an error message."""

    @abstractmethod
    def terminate(self) -> None:
        """Ask the server to stop, without waiting: several can then wind down side by side."""

    @abstractmethod
    def _wait(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for it to end; whether it did."""

    @abstractmethod
    def _kill(self) -> None:
        """End it now and wait for that."""

    def stop(self, timeout: float = STOP_TIMEOUT_SECONDS) -> None:
        """Stop the server and wait for it; kill it if it has not stopped within ``timeout``.
        Stopping a stopped server does nothing."""
        if self.running():
            self.terminate()
            self._wait_or_kill(timeout)

    def _wait_or_kill(self, timeout: float) -> None:
        try:
            if not self._wait(timeout):
                self._kill()
        except KeyboardInterrupt:
            # A second Ctrl-C while waiting: stop at once rather than leave the server behind.
            self._kill()
            raise

    def wait_ready(self, path: str = "/readyz", timeout: float = READY_TIMEOUT_SECONDS) -> str:
        """Wait until ``GET path`` answers 200; return the server's base URL.

        Raises :class:`ServerDidNotStart` (with the end of the server's log) if the server
        exits first or does not answer 200 within ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        with httpx.Client(timeout=2.0, trust_env=False) as client:
            while time.monotonic() < deadline:
                if not self.running():
                    raise ServerDidNotStart(
                        f"the server on port {self.port} {self.exit_status()} before it was "
                        f"ready:\n{log_tail(self.log)}"
                    )
                with contextlib.suppress(httpx.HTTPError):
                    if client.get(self.url + path).status_code == 200:
                        return self.url
                time.sleep(0.05)
        raise ServerDidNotStart(
            f"the server on port {self.port} did not answer GET {path} with 200 within "
            f"{timeout:.0f} s:\n{log_tail(self.log)}"
        )


def stop_all(servers: Iterable[Server], timeout: float = STOP_TIMEOUT_SECONDS) -> None:
    """Stop every server, all winding down at once rather than one after the other."""
    running = [server for server in servers if server.running()]
    for server in running:
        server.terminate()
    for server in running:
        server._wait_or_kill(timeout)


class _CommandServer(Server):
    def __init__(self, process: subprocess.Popen[bytes], port: int, log: Path) -> None:
        super().__init__(port, log)
        self.process = process

    @property
    def pid(self) -> int:
        return self.process.pid

    def running(self) -> bool:
        return self.process.poll() is None

    def exit_status(self) -> str:
        return f"exited with {self.process.returncode}"

    def terminate(self) -> None:
        # SIGTERM, as a process manager would send: uvicorn finishes the requests in flight.
        self.process.terminate()

    def _wait(self, timeout: float) -> bool:
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return False
        return True

    def _kill(self) -> None:
        self.process.kill()
        self.process.wait()


def start_command(
    command: Callable[[int], Sequence[str]],
    *,
    env: Mapping[str, str],
    cwd: Path,
    log: Path,
) -> Server:
    """Run ``command(port)`` on a free port, in ``cwd`` with exactly ``env``, its stdout and
    stderr going to ``log``. It may not be ready yet: see :meth:`Server.wait_ready`.

    The command runs in a session of its own, so that a Ctrl-C does not reach it directly: the
    caller stops it (after whatever is talking to it) and waits for it."""
    port = free_port()
    with log.open("wb") as out:
        process = subprocess.Popen(  # noqa: S603 - the caller's own command, no shell
            list(command(port)),
            env=dict(env),
            cwd=cwd,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return _CommandServer(process, port, log)


class _ForkedServer(Server):
    def __init__(self, process: multiprocessing.process.BaseProcess, port: int, log: Path) -> None:
        super().__init__(port, log)
        self.process = process

    @property
    def pid(self) -> int | None:
        return self.process.pid

    def running(self) -> bool:
        return self.process.is_alive()

    def exit_status(self) -> str:
        return f"exited with {self.process.exitcode}"

    def terminate(self) -> None:
        self.process.terminate()

    def _wait(self, timeout: float) -> bool:
        self.process.join(timeout)
        return not self.process.is_alive()

    def _kill(self) -> None:
        self.process.kill()
        self.process.join()


def start_forked(
    context: ForkServerContext,
    serve: Callable[[int], object],
    *,
    env: Mapping[str, str],
    cwd: Path,
    log: Path,
) -> Server:
    """Run ``serve(port)`` on a free port in a process forked from ``context``'s fork server
    (one that has imported the app spares each process that import), in ``cwd`` with exactly
    ``env``, its output going to ``log``. ``serve`` must be a module-level function, as it is
    pickled."""
    port = free_port()
    process = context.Process(
        target=_serve_in_child, args=(serve, port, dict(env), cwd, log), daemon=True
    )
    process.start()
    return _ForkedServer(process, port, log)


def _serve_in_child(
    serve: Callable[[int], object], port: int, env: dict[str, str], cwd: Path, log: Path
) -> None:
    out = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(out, 1)
    os.dup2(out, 2)
    os.close(out)
    # The working directory keeps a developer's .env file from being read.
    os.chdir(cwd)
    os.environ.clear()
    os.environ.update(env)
    serve(port)


class _ThreadServer(Server):
    def __init__(self, server: uvicorn.Server, thread: threading.Thread, port: int) -> None:
        super().__init__(port, None)
        self.server = server
        self.thread = thread

    @property
    def pid(self) -> None:
        return None

    def running(self) -> bool:
        return self.thread.is_alive()

    def exit_status(self) -> str:
        return "stopped"

    def terminate(self) -> None:
        self.server.should_exit = True

    def _wait(self, timeout: float) -> bool:
        self.thread.join(timeout)
        return not self.thread.is_alive()

    def _kill(self) -> None:
        # A thread cannot be killed; a daemon thread at least does not keep the process alive.
        self.server.force_exit = True
        self.thread.join(STOP_TIMEOUT_SECONDS)


def start_in_thread(app: Any, port: int, *, log_level: str = "warning") -> Server:
    """Serve the ASGI ``app`` with uvicorn on ``port`` (see :func:`free_port`) in a daemon
    thread of this process, so that the caller can share objects with it; its log goes to this
    process's stderr. Its event loop is the standard library's, as ``pintuan serve``'s is by
    default."""
    server = uvicorn.Server(
        uvicorn.Config(
            app, host=LOOPBACK, port=port, log_level=log_level, lifespan="on", loop="asyncio"
        )
    )
    thread = threading.Thread(target=server.run, name=f"server-{port}", daemon=True)
    thread.start()
    return _ThreadServer(server, thread, port)
