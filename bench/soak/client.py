"""A keep-alive HTTP/1.1 client of a few lines on asyncio streams, one connection per shopper
loop.

httpx spends milliseconds of CPU per request under a burst, which on a small machine would make
the soak measure its own driver; this reads only what Pintuan and nginx send (Content-Length or
chunked bodies) and reconnects when the server closes a kept-alive connection.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

TIMEOUT_SECONDS = 30.0


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes

    def json(self) -> Any:
        try:
            return json.loads(self.body)
        except ValueError:
            return None

    @property
    def code(self) -> str | None:
        """The problem's ``code`` of a refusal, else None."""
        found = self.json() if self.status >= 400 else None
        return found.get("code") if isinstance(found, dict) else None


class TransportError(Exception):
    """The connection failed or timed out: counted as an error, never as an answer."""


class Connection:
    """One kept-alive connection to ``host:port``, opened on first use and again after the
    server closes it."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self._streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def request(
        self,
        method: str,
        path: str,
        *,
        token: str | None = None,
        payload: Any = None,
        headers: dict[str, str] | None = None,
    ) -> Answer:
        """Send one request and read its answer; one retry on a connection the server had
        already closed (only before anything of the answer arrived)."""
        body = json.dumps(payload).encode() if payload is not None else b""
        head = [f"{method} {path} HTTP/1.1", f"Host: {self.host}:{self.port}"]
        if token:
            head.append(f"Authorization: Bearer {token}")
        if payload is not None:
            head.append("Content-Type: application/json")
        head += [f"{name}: {value}" for name, value in (headers or {}).items()]
        head.append(f"Content-Length: {len(body)}")
        raw = ("\r\n".join(head) + "\r\n\r\n").encode() + body
        for attempt in (1, 2):
            fresh = self._streams is None
            try:
                async with asyncio.timeout(TIMEOUT_SECONDS):
                    reader, writer = await self._open()
                    writer.write(raw)
                    return await self._read(reader)
            except (OSError, asyncio.IncompleteReadError, EOFError, TimeoutError) as exc:
                self.close()
                if attempt == 2 or fresh or isinstance(exc, TimeoutError):
                    raise TransportError(f"{method} {path}: {exc!r}") from exc
        raise AssertionError("unreachable")

    async def _open(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self._streams is None:
            self._streams = await asyncio.open_connection(self.host, self.port)
        return self._streams

    async def _read(self, reader: asyncio.StreamReader) -> Answer:
        lines = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {
            k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in lines[1:])
        }
        if "content-length" in headers:
            body = await reader.readexactly(int(headers["content-length"]))
        elif headers.get("transfer-encoding", "").lower() == "chunked":
            parts = []
            while size := int((await reader.readuntil(b"\r\n")).split(b";")[0], 16):
                parts.append(await reader.readexactly(size))
                await reader.readexactly(2)
            await reader.readuntil(b"\r\n")
            body = b"".join(parts)
        else:
            body = b""
        if headers.get("connection", "").lower() == "close":
            self.close()
        return Answer(status, body)

    def close(self) -> None:
        if self._streams is not None:
            self._streams[1].close()
            self._streams = None
