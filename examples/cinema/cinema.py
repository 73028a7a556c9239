"""Lumière Cinema: a small partner app of Pintuan, using nothing but its public HTTP API.

It registers itself as an app, is installed on the cinema's shop by one of its staff (OAuth 2
authorization code with PKCE S256), subscribes to Pintuan's events, publishes each screening as
a group offer, and verifies every event it receives (Standard Webhooks signatures, checked with
the ``standardwebhooks`` library). Its own small HTTP server takes the OAuth redirect and the
events.

Run it against a Pintuan server (see README.md):

    python cinema.py --pintuan http://127.0.0.1:8000 --developer-token <API token>
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import html.parser
import json
import queue
import secrets
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

SCOPES = ("offers:write", "offers:read", "webhooks:manage")
EVENTS = (
    "offer.published",
    "offer.updated",
    "offer.withdrawn",
    "seat.paid",
    "team.succeeded",
    "team.failed",
)


# ---------------------------------------------------------------------------- PKCE (RFC 7636)


def new_verifier() -> str:
    """A code verifier: 43 to 128 unreserved characters; 32 random bytes give 43."""
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=").decode()


def s256_challenge(verifier: str) -> str:
    """The S256 code challenge of a verifier: BASE64URL(SHA256(verifier)), unpadded."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


# ---------------------------------------------------------------------------- screenings


@dataclass(frozen=True)
class Screening:
    """One showing of a film: what the cinema sells as a group offer."""

    id: str
    film: str
    hall: str
    starts_at: datetime
    minutes: int
    seats: int
    list_price: int  # minor units
    group_price: int
    currency: str = "USD"
    team_size: int = 4

    def as_offer(self, cinema: str, address: str) -> dict[str, Any]:
        """The screening in Pintuan's offer schema: sold until the lights go down, valid for
        the showing itself."""
        return {
            "title": f"{self.film}, {self.starts_at:%H:%M}, {self.hall}",
            "description": f"{self.minutes} minutes. Come together, pay less.",
            "vertical": "movies",
            "category": "cinema",
            "list_price": {"amount": self.list_price, "currency": self.currency},
            "group_price": {"amount": self.group_price, "currency": self.currency},
            "team_size": self.team_size,
            "team_window_minutes": 120,
            "stock": self.seats,
            "per_user_limit": 4,
            "ends_at": _instant(self.starts_at),
            "valid_from": _instant(self.starts_at - timedelta(minutes=30)),
            "valid_until": _instant(self.starts_at + timedelta(minutes=self.minutes)),
            "location": {"name": cinema, "address": address},
        }


def _instant(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


# ---------------------------------------------------------------------------- the receiver


@dataclass
class Inbox:
    """What the receiver took in: OAuth redirects, and the events whose signature held.

    `rejected` counts events whose signature failed; `deferred`, those that came before we knew
    our endpoint's secret (answered 503, so Pintuan delivers them again)."""

    redirects: queue.Queue[dict[str, str]] = field(default_factory=queue.Queue)
    events: list[dict[str, Any]] = field(default_factory=list)
    rejected: int = 0
    deferred: int = 0
    secret: str | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def verify(self, body: bytes, headers: dict[str, str]) -> dict[str, Any] | None:
        """The event, when the body carries a valid, fresh signature by our endpoint's secret."""
        if self.secret is None:
            return None
        try:
            event: dict[str, Any] = Webhook(self.secret).verify(body, headers)
        except WebhookVerificationError:
            return None
        return event


def _handler(inbox: Inbox) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # the OAuth redirect back from Pintuan
            url = urlsplit(self.path)
            if url.path != "/oauth/callback":
                self._answer(404, "not found")
                return
            inbox.redirects.put({k: v[0] for k, v in parse_qs(url.query).items()})
            self._answer(200, "Lumière Cinema is connected to Pintuan. You may close this page.")

        def do_POST(self) -> None:  # an event from Pintuan
            if urlsplit(self.path).path != "/webhooks":
                self._answer(404, "not found")
                return
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            if inbox.secret is None:
                # Installed but not yet subscribed: we cannot check the signature, so we ask
                # Pintuan to come back rather than call a possibly genuine event forged.
                with inbox.lock:
                    inbox.deferred += 1
                self._answer(503, "not ready", retry_after=1)
                return
            event = inbox.verify(body, {k.lower(): v for k, v in self.headers.items()})
            with inbox.lock:
                if event is None:
                    inbox.rejected += 1
                else:
                    inbox.events.append(event)
            # 2xx only for what we verified: anything else Pintuan will retry, or give up on.
            self._answer(204 if event is not None else 400, "")

        def _answer(self, status: int, text: str, retry_after: int | None = None) -> None:
            data = text.encode()
            self.send_response(status)
            if retry_after is not None:
                self.send_header("retry-after", str(retry_after))
            self.send_header("content-type", "text/plain; charset=utf-8")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:  # quiet
            return

    return Handler


# ---------------------------------------------------------------------------- the partner


class PintuanError(RuntimeError):
    """Pintuan refused a request; the message carries its problem details."""

    def __init__(
        self, message: str, status: int | None = None, problem: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.status, self.problem = status, problem or {}


class CinemaPartner:
    """The cinema's side of the connection to Pintuan."""

    def __init__(
        self,
        pintuan_url: str,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        cinema: str = "Lumière Cinema",
        address: str = "1 Market Street",
    ) -> None:
        self.pintuan = pintuan_url.rstrip("/")
        self.cinema, self.address = cinema, address
        self.inbox = Inbox()
        self.server = ThreadingHTTPServer((host, port), _handler(self.inbox))
        self.url = f"http://{host}:{self.server.server_address[1]}"
        self.http = httpx.Client(base_url=self.pintuan, timeout=10.0)
        self.app_id: str | None = None
        self.client_id: str | None = None
        self.client_secret: str | None = None
        self.access_token: str | None = None
        self.refresh_token: str | None = None
        self._verifier: str | None = None
        self._state: str | None = None
        self._serving: threading.Thread | None = None

    @property
    def redirect_uri(self) -> str:
        return f"{self.url}/oauth/callback"

    def start(self) -> None:
        self._serving = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._serving.start()

    def stop(self) -> None:
        if self._serving is not None:  # shutdown() waits for a loop that must have started
            self.server.shutdown()
        self.server.server_close()
        self.http.close()

    def _call(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        answer = self.http.request(method, path, **kwargs)
        if answer.status_code >= 400:
            try:
                problem: dict[str, Any] = answer.json()
            except ValueError:
                problem = {}
            raise PintuanError(
                f"{method} {path}: {answer.status_code} {answer.text}", answer.status_code, problem
            )
        body: dict[str, Any] = answer.json() if answer.content else {}
        return body

    def _bearer(self) -> dict[str, str]:
        assert self.access_token, "install the app on a shop first"
        return {"Authorization": f"Bearer {self.access_token}"}

    # -- registering and installing

    def register(self, developer_token: str) -> str:
        """Register the app (its developer's API token); returns its id. An operator must
        approve it before any shop can install it."""
        manifest = {
            "name": self.cinema,
            "homepage": self.url,
            "redirect_uris": [self.redirect_uri],
            "scopes": list(SCOPES),
            "webhook_url": f"{self.url}/webhooks",
            "webhook_events": list(EVENTS),
        }
        app = self._call(
            "POST",
            "/v1/apps",
            json=manifest,
            headers={"Authorization": f"Bearer {developer_token}"},
        )
        self.app_id, self.client_id = app["id"], app["client_id"]
        self.client_secret = app["client_secret"]  # shown once: keep it safe
        return str(app["id"])

    def metadata(self) -> dict[str, Any]:
        """The authorization server's metadata (RFC 8414): where to authorize and get tokens."""
        return self._call("GET", "/.well-known/oauth-authorization-server")

    def authorization_url(self) -> str:
        """Where the cinema's staff go to install the app on their shop (PKCE S256)."""
        self._verifier, self._state = new_verifier(), secrets.token_urlsafe(16)
        query = urlencode(
            {
                "response_type": "code",
                "client_id": self.client_id,
                "redirect_uri": self.redirect_uri,
                "scope": " ".join(SCOPES),
                "state": self._state,
                "code_challenge": s256_challenge(self._verifier),
                "code_challenge_method": "S256",
            }
        )
        return f"{self.metadata()['authorization_endpoint']}?{query}"

    def finish_install(self, timeout: float = 30.0) -> None:
        """Take the code the redirect brought back and trade it (with the verifier) for tokens."""
        redirect = self.inbox.redirects.get(timeout=timeout)
        if redirect.get("state") != self._state:
            raise PintuanError("the redirect's state is not the one we sent")
        if "code" not in redirect:
            raise PintuanError(f"the install was not granted: {redirect}")
        self._tokens(
            {
                "grant_type": "authorization_code",
                "code": redirect["code"],
                "redirect_uri": self.redirect_uri,
                "code_verifier": self._verifier,
            }
        )

    def refresh(self) -> None:
        """New tokens for the refresh token (which rotates: the old one stops working)."""
        self._tokens({"grant_type": "refresh_token", "refresh_token": self.refresh_token})

    def _tokens(self, form: dict[str, Any]) -> None:
        if not (self.client_id and self.client_secret):
            raise PintuanError("register the app first: it has no client credentials")
        tokens = self._call(
            "POST",
            self.metadata()["token_endpoint"],
            data=form,
            auth=(self.client_id, self.client_secret),
        )
        self.access_token = tokens["access_token"]
        self.refresh_token = tokens.get("refresh_token", self.refresh_token)

    # -- events

    def subscribe(self, events: tuple[str, ...] = EVENTS) -> str:
        """Listen to the shop's events at our receiver and keep the endpoint's signing secret.

        The manifest's webhook URL becomes an endpoint once the app is approved; Pintuan keeps one
        endpoint per address, so whichever of us comes first registers it and the other reads it
        (only the app itself can read its secret)."""
        try:
            endpoint = self._call(
                "POST",
                "/v1/webhook_endpoints",
                json={"url": f"{self.url}/webhooks", "events": list(events)},
                headers=self._bearer(),
            )
        except PintuanError as refused:
            if refused.problem.get("code") != "webhook_endpoint_exists":
                raise
            endpoint = self._call(
                "GET",
                f"/v1/webhook_endpoints/{refused.problem['endpoint_id']}",
                headers=self._bearer(),
            )
        self.inbox.secret = endpoint["secret"]
        return str(endpoint["id"])

    def received(self, type_: str) -> list[dict[str, Any]]:
        """The verified events of this type received so far."""
        with self.inbox.lock:
            return [e for e in self.inbox.events if e.get("type") == type_]

    # -- offers

    def publish(self, screening: Screening) -> dict[str, Any]:
        """Publish (or update) a screening as an offer; the same screening twice is a no-op."""
        return self._call(
            "PUT",
            f"/v1/partner/offers/{screening.id}",
            json=screening.as_offer(self.cinema, self.address),
            headers=self._bearer(),
        )

    def withdraw(self, screening_id: str) -> dict[str, Any]:
        """Take a screening off sale (cancelled): its teams run their course, refunds included."""
        return self._call("DELETE", f"/v1/partner/offers/{screening_id}", headers=self._bearer())


# ---------------------------------------------------------------------------- consent in a terminal


class _Forms(html.parser.HTMLParser):
    """The forms of a page, each with its action and fields (for a staff member at a terminal,
    and for the end-to-end test, which plays one)."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[dict[str, Any]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.forms.append({"action": a.get("action", ""), "fields": {}, "buttons": []})
        elif self.forms and tag in ("input", "button") and a.get("name"):
            if tag == "button" or a.get("type") == "submit":
                self.forms[-1]["buttons"].append((a["name"], a.get("value", "")))
            elif a.get("type") not in ("checkbox", "radio") or "checked" in a:
                self.forms[-1]["fields"][a["name"]] = a.get("value", "")


def consent_forms(page: str) -> list[dict[str, Any]]:
    parser = _Forms()
    parser.feed(page)
    return parser.forms


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pintuan", default="http://127.0.0.1:8000")
    parser.add_argument("--developer-token", required=True)
    parser.add_argument("--port", type=int, default=8765)
    args = parser.parse_args()
    partner = CinemaPartner(args.pintuan, port=args.port)
    partner.start()
    print(
        "Registered app", partner.register(args.developer_token), "- ask an operator to approve it."
    )
    input("Press Enter once it is approved... ")
    print("Open this as the cinema's staff and allow the install:\n ", partner.authorization_url())
    partner.finish_install(timeout=600)
    partner.subscribe()
    tonight = datetime.now(UTC).replace(hour=19, minute=30, second=0, microsecond=0) + timedelta(
        days=1
    )
    offer = partner.publish(
        Screening("dune3-2d-hall2", "Dune: Part Three", "Hall 2", tonight, 166, 40, 1600, 1100)
    )
    print("Published", offer["deal_id"], "- events will be printed as they arrive (Ctrl-C stops).")
    seen = 0
    try:
        while True:
            threading.Event().wait(2)
            with partner.inbox.lock:
                fresh, seen = partner.inbox.events[seen:], len(partner.inbox.events)
            for event in fresh:
                print(json.dumps(event))
    except KeyboardInterrupt:
        partner.stop()


if __name__ == "__main__":
    main()
