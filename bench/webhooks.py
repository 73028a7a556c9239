"""Webhooks cost a join nothing: joins per second with no endpoint, and with ten endpoints of
ten approved apps installed on the deal's merchant, subscribed to every event, in one run.

Run with ``.venv/bin/python -m bench.webhooks [--joins N] [--rounds R]``. Rounds alternate
(none, ten, none, ten, …) so that a machine busy with other work slows both alike; the ratio
compares the best round of each. Then the worker fans the events out and sends them to a
receiver on loopback, and the figures say what that costs it, away from the joins.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from bench.engine import bench_joins, fresh_database, seed, settings_for
from pintuan.accounts.models import User
from pintuan.apps.models import App, AppInstallation
from pintuan.bootstrap import build_services
from pintuan.deals.models import Deal
from pintuan.domain.webhooks import EVENT_TYPES
from pintuan.kit.ids import new_id
from pintuan.kit.time import utc_now
from pintuan.services import Services
from pintuan.webhooks import service as webhooks
from pintuan.webhooks import tasks as webhook_tasks
from pintuan.webhooks.models import WebhookDelivery, WebhookEndpoint

ENDPOINTS = 10


class _Receiver(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(204)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        return


def subscribe(services: Services, deal_id: str, url: str) -> None:
    """Ten approved apps installed on the deal's merchant, each with an endpoint for every
    event type (disabled until a round turns them on)."""

    def work(session: Session) -> None:
        deal = session.get(Deal, deal_id)
        assert deal is not None
        owner = session.scalars(select(User.id).limit(1)).one()
        now = utc_now()
        for n in range(ENDPOINTS):
            app = App(
                id=new_id("app"),
                owner_user_id=owner,
                name=f"Bench app {n}",
                homepage="https://bench.example",
                redirect_uris=[],
                scopes=["webhooks:manage"],
                webhook_url=None,
                webhook_events=[],
                status="approved",
                client_id=new_id("cid"),
                created_at=now,
                updated_at=now,
            )
            session.add(app)
            session.flush()
            session.add(
                AppInstallation(
                    id=new_id("ins"),
                    app_id=app.id,
                    merchant_id=deal.merchant_id,
                    installed_by=owner,
                    scopes=["webhooks:manage"],
                    created_at=now,
                    updated_at=now,
                )
            )
            endpoint = webhooks.create_endpoint(session, app.id, url, sorted(EVENT_TYPES))
            endpoint.enabled = False
        session.flush()

    services.db.run_sync(work)


def set_endpoints(services: Services, enabled: bool) -> None:
    services.db.run_sync(lambda s: s.execute(update(WebhookEndpoint).values(enabled=enabled)))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--joins", type=int, default=2_000)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/hooks"
    with tempfile.TemporaryDirectory() as folder:
        services = build_services(settings_for(fresh_database(False, Path(folder))))
        db = services.db
        deal_id, users = db.run_raw_sync(seed, args.joins + 1)
        subscribe(services, deal_id, url)
        rates: dict[bool, list[float]] = {False: [], True: []}
        for _ in range(args.rounds):
            for subscribed in (False, True):
                set_endpoints(services, subscribed)
                rates[subscribed].append(bench_joins(services, deal_id, users))
        # Now the worker's part, after the fact: every event of the run, to all ten.
        set_endpoints(services, True)
        started = time.perf_counter()
        events = 0
        while n := db.run_sync(webhook_tasks.fan_out_events, utc_now(), 1000):
            events += n
        fan_out_s = time.perf_counter() - started
        queued = db.run_sync(lambda s: s.query(WebhookDelivery).count())
        sample = min(queued, 2_000)
        sender = webhook_tasks.WebhookSender(services.settings)
        started, sent = time.perf_counter(), 0
        while sent < sample:
            done = sender.send_due(db, utc_now())
            if not done:
                break
            sent += done
        send_s = time.perf_counter() - started
        sender.close()
        db.dispose()
    server.shutdown()

    none, ten = max(rates[False]), max(rates[True])
    print(f"webhooks bench on sqlite, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")
    print(
        f"  joins, no endpoint:                 {none:,.0f} joins/s "
        f"(rounds: {', '.join(f'{r:,.0f}' for r in rates[False])})"
    )
    print(
        f"  joins, {ENDPOINTS} subscribed endpoints:      {ten:,.0f} joins/s "
        f"(rounds: {', '.join(f'{r:,.0f}' for r in rates[True])})"
    )
    print(f"  ratio (ten / none):                 {ten / none:.2f}")
    print(
        f"  worker fan-out: {events:,} events into {queued:,} deliveries in "
        f"{fan_out_s * 1000:,.0f} ms = {fan_out_s / max(queued, 1) * 1e6:.0f} µs per delivery"
    )
    print(
        f"  worker sending: {sent:,} signed POSTs to a loopback receiver in {send_s:.1f} s "
        f"= {sent / max(send_s, 1e-9):,.0f}/s (one per endpoint at a time: in order)"
    )
    # Every event of the subscribed rounds, and of the others too once fanned out, reaches all
    # ten endpoints: the endpoints really were listening.
    return 0 if queued >= events and sent else 1


if __name__ == "__main__":
    sys.exit(main())
