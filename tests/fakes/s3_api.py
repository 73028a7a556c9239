"""A fake of the few S3 calls the media store makes (PUT, GET and HEAD of an object), for the real
boto3 client to talk to over loopback.

Path-style addresses (``/bucket/key``), objects kept in memory, and every request's AWS
Signature Version 4 checked against the one access key it knows, as S3 checks it: a request
signed with another secret, or whose body does not match its signed hash, is refused 403.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, quote, urlsplit

from tests.fakes.loopback import QuietHandler, serving

ACCESS_KEY = "AKIAFAKEMEDIA"
SECRET_KEY = "fake-media-secret"
REGION = "us-east-1"


@dataclass
class FakeS3:
    url: str
    bucket: str
    objects: dict[str, tuple[bytes, str]] = field(default_factory=dict)
    calls: list[tuple[str, str]] = field(default_factory=list)


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


def _signature_ok(handler: QuietHandler, body: bytes) -> bool:
    auth = handler.headers.get("Authorization", "")
    if not auth.startswith("AWS4-HMAC-SHA256 "):
        return False
    parts = dict(part.strip().split("=", 1) for part in auth[len("AWS4-HMAC-SHA256 ") :].split(","))
    access_key, day, region, service, _ = parts["Credential"].split("/")
    if access_key != ACCESS_KEY or region != REGION or service != "s3":
        return False
    payload_hash = handler.headers.get("x-amz-content-sha256", "")
    if payload_hash != "UNSIGNED-PAYLOAD" and payload_hash != hashlib.sha256(body).hexdigest():
        return False
    split = urlsplit(handler.path)
    query = "&".join(
        f"{quote(k, safe='-_.~')}={quote(v, safe='-_.~')}"
        for k, v in sorted(parse_qsl(split.query, keep_blank_values=True))
    )
    signed = parts["SignedHeaders"].split(";")
    headers = "".join(
        f"{name}:{' '.join(handler.headers.get(name, '').split())}\n" for name in signed
    )
    canonical = "\n".join(
        [handler.command, split.path, query, headers, ";".join(signed), payload_hash]
    )
    amz_date = handler.headers.get("x-amz-date", "")
    scope = f"{day}/{region}/{service}/aws4_request"
    to_sign = "\n".join(
        ["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()]
    )
    key = _hmac(
        _hmac(_hmac(_hmac(f"AWS4{SECRET_KEY}".encode(), day), region), service), "aws4_request"
    )
    expected = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, parts["Signature"])


@contextmanager
def fake_s3(bucket: str = "pictures") -> Iterator[FakeS3]:
    """Serve a fake S3 with one bucket on a free loopback port."""
    state = FakeS3(url="", bucket=bucket)

    class Handler(QuietHandler):
        def _object(self, body: bytes) -> str | None:
            state.calls.append((self.command, self.path))
            if not _signature_ok(self, body):
                self.reply(403, b"<Error><Code>SignatureDoesNotMatch</Code></Error>", "text/xml")
                return None
            prefix = f"/{state.bucket}/"
            path = urlsplit(self.path).path
            if not path.startswith(prefix):
                self.reply(404, b"<Error><Code>NoSuchBucket</Code></Error>", "text/xml")
                return None
            return path[len(prefix) :]

        def do_PUT(self) -> None:  # noqa: N802 - the name http.server calls
            body = self.read_body()
            key = self._object(body)
            if key is not None:
                state.objects[key] = (body, self.headers.get("Content-Type", ""))
                self.reply(200, b"", "text/xml")

        def do_GET(self) -> None:  # noqa: N802 - the name http.server calls
            key = self._object(b"")
            if key is None:
                return
            if key not in state.objects:
                self.reply(404, b"<Error><Code>NoSuchKey</Code></Error>", "text/xml")
                return
            data, content_type = state.objects[key]
            self.reply(200, data, content_type)

        def do_HEAD(self) -> None:  # noqa: N802 - the name http.server calls
            key = self._object(b"")
            if key is None:
                return
            found = state.objects.get(key)
            self.send_response(200 if found else 404)
            self.send_header("Content-Length", str(len(found[0]) if found else 0))
            self.end_headers()

    with serving(Handler) as url:
        state.url = url
        yield state
