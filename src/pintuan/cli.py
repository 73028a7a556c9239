"""The ``pintuan`` command."""

from __future__ import annotations

import ipaddress
import json
import secrets
import sys
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path
from typing import Annotated, TypeVar

import typer
from sqlalchemy.orm import Session

# Every table mapped before any command touches the ORM: a deal's foreign key to an app's row,
# say, must find the apps table even in a command that never imports the open platform.
import pintuan.models  # noqa: F401
from pintuan.config import Environment, Settings, get_settings
from pintuan.domain.roles import Role
from pintuan.errors import AppError, NotFound
from pintuan.feed.commands import build_feed_app
from pintuan.feed.evaluation import reward_weights
from pintuan.kit.db import Database

T = TypeVar("T")

app = typer.Typer(
    help="Pintuan: social group buying.", no_args_is_help=True, pretty_exceptions_enable=False
)
users_app = typer.Typer(help="Manage user accounts.", no_args_is_help=True)
tokens_app = typer.Typer(help="Manage API tokens.", no_args_is_help=True)
app.add_typer(users_app, name="users")
app.add_typer(tokens_app, name="tokens")
growth_app = typer.Typer(help="Growth analytics.", no_args_is_help=True)
app.add_typer(growth_app, name="growth")
ledger_app = typer.Typer(help="The double-entry ledger.", no_args_is_help=True)
app.add_typer(ledger_app, name="ledger")
lottery_app = typer.Typer(help="Lottery teams' draws.", no_args_is_help=True)
app.add_typer(lottery_app, name="lottery")


def _fail(message: str) -> typer.Exit:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    return typer.Exit(1)


def _settings() -> Settings:
    try:
        return get_settings()
    except ValueError as exc:
        raise _fail(str(exc)) from exc


def _database() -> Database:
    """The database the settings name, for a command that runs several transactions on it."""
    from pintuan.bootstrap import build_services

    return build_services(_settings()).db


def _run(work: Callable[[Session], T], *, write: bool = True, db: Database | None = None) -> T:
    """Run ``work`` in one transaction (on ``db``, else on the settings' database); an
    application refusal becomes a clear error exit. A read (``write=False``) does not take
    SQLite's write lock, which a server's joins need."""
    try:
        return (db or _database()).run_sync(work, write=write)
    except AppError as exc:
        raise _fail(exc.detail) from exc


def _read(work: Callable[[Session], T], *, db: Database | None = None) -> T:
    """``_run`` for a read: it leaves SQLite's write lock to a server's joins."""
    return _run(work, write=False, db=db)


def _hash_password(password: str) -> str:
    from pintuan.kit.passwords import Passwords

    settings = _settings()
    return Passwords(
        time_cost=settings.password_time_cost, memory_kib=settings.password_memory_kib
    ).hash(password)


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on")] = 8000,
    worker: Annotated[
        bool, typer.Option(help="Also run the background worker in this process")
    ] = True,
) -> None:
    """Serve the API (and, unless --no-worker, the background worker)."""
    import uvicorn

    from pintuan.app import create_app
    from pintuan.kit.heap import settle_heap
    from pintuan.kit.logs import configure_logging

    settings = _settings()
    if not settings.env_is_named and not _is_loopback(host):
        # Unnamed means dev: the sandbox, the test helpers and the published dev secret would
        # be reachable by anyone on that network.
        raise _fail(
            f"refusing to listen on {host} with PINTUAN_ENV unset (dev defaults: sandbox "
            "payments, test helpers, a published secret key). Set PINTUAN_ENV=prod for a "
            "deployment, or PINTUAN_ENV=dev to share a development server on purpose."
        )
    configure_logging(settings.log_level)
    typer.echo(
        f"Pintuan ({settings.env.value}, {settings.database_url.split(':', 1)[0]}) "
        f"on http://{host}:{port}",
        err=True,
    )
    application = create_app(settings, run_worker=worker)
    settle_heap()  # everything loaded: the collector's passes leave it alone from here
    uvicorn.run(
        application,
        host=host,
        port=port,
        loop=settings.event_loop,
        http="httptools",
        log_config=None,
        # The request log is Pintuan's own (kit/logs.py); uvicorn's would build its line's
        # fields for every response even with its logger turned off.
        access_log=False,
        timeout_graceful_shutdown=10,
        server_header=False,
    )


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@app.command()
def migrate() -> None:
    """Bring the database schema up to date."""
    from pintuan.kit.migrations import upgrade

    settings = _settings()
    path = settings.sqlite_path()
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
    upgrade(settings.database_url)
    typer.echo("Database schema is up to date.", err=True)


@app.command()
def demo() -> None:
    """Load the demo catalogue (safe to run again) and print the demo logins."""
    from pintuan.demo import DEMO_PASSWORD, seed_demo

    if _settings().env is Environment.PROD:
        raise _fail("the demo has published passwords and is refused when PINTUAN_ENV=prod")
    from pintuan.media.stores import media_store_for

    password_hash = _hash_password(DEMO_PASSWORD)
    store = media_store_for(_settings())
    report = _run(lambda session: seed_demo(session, password_hash, store))
    if report.created:
        typer.echo(f"Demo loaded: created {len(report.created)} records.")
    else:
        typer.echo("Demo already loaded; nothing changed.")
    typer.echo(f"Demo logins (password {DEMO_PASSWORD!r} for all):")
    for email, _password, role in report.logins:
        typer.echo(f"  {role:<9} {email}")


@users_app.command("create")
def create_user(
    email: str,
    role: Annotated[Role, typer.Option(help="shopper, merchant or operator")] = Role.SHOPPER,
    merchant: Annotated[
        str | None, typer.Option(help="Slug of the merchant the user works for")
    ] = None,
    name: Annotated[str | None, typer.Option(help="Display name")] = None,
) -> None:
    """Create a user. The password is read from stdin when piped, else generated and printed."""
    from pintuan.accounts import service as accounts
    from pintuan.kit.passwords import MIN_PASSWORD_LENGTH
    from pintuan.merchants import service as merchants

    if role is Role.MERCHANT and not merchant:
        raise _fail("--role merchant needs --merchant SLUG")
    if merchant and role is not Role.MERCHANT:
        raise _fail("--merchant goes only with --role merchant")
    generated = sys.stdin.isatty()
    password = secrets.token_urlsafe(12) if generated else sys.stdin.readline().rstrip("\r\n")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise _fail(f"the password needs at least {MIN_PASSWORD_LENGTH} characters")
    password_hash = _hash_password(password)

    def work(session: Session) -> str:
        found = merchants.find_merchant_by_slug(session, merchant) if merchant else None
        if merchant and found is None:
            raise NotFound(f"no merchant has the slug {merchant!r}")
        user = accounts.create_user(
            session,
            email=email,
            password_hash=password_hash,
            display_name=name or email.split("@", 1)[0],
            role=role,
        )
        if found is not None:
            merchants.attach_staff(session, found.id, user)
        return user.id

    user_id = _run(work)
    typer.echo(f"Created {role.value} {email} ({user_id}).", err=True)
    if generated:
        typer.echo(f"Password: {password}")


@tokens_app.command("create")
def create_token(
    email: str,
    name: Annotated[str, typer.Option(help="What the token is for")] = "CLI token",
) -> None:
    """Create an API token for EMAIL and print only the token."""
    from pintuan.accounts import service as accounts

    def work(session: Session) -> str:
        user = accounts.find_user_by_email(session, email)
        if user is None:
            raise NotFound(f"no user has the email address {email}")
        return accounts.issue_api_token(
            session, user.id, name, days=get_settings().api_token_days
        ).secret

    typer.echo(_run(work))


@app.command()
def worker(
    once: Annotated[bool, typer.Option(help="Work until nothing is due, then exit")] = False,
) -> None:
    """Run the background worker: held seats, team windows, provider calls, notifications."""
    import asyncio
    import signal

    from pintuan.bootstrap import build_services
    from pintuan.kit.heap import settle_heap
    from pintuan.kit.logs import configure_logging
    from pintuan.worker import Worker

    settings = _settings()
    configure_logging(settings.log_level)
    sweeper = Worker(build_services(settings))
    if once:
        report = sweeper.run_until_idle()
        typer.echo(f"Worker done: {report.__dict__}", err=True)
        return
    settle_heap()  # a worker that runs until stopped: see kit/heap.py

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        typer.echo("Worker running; Ctrl-C to stop.", err=True)
        await sweeper.run(stop)

    asyncio.run(run())


@app.command()
def audit() -> None:
    """Check the database against the invariants; exit 1 on any breach."""
    from pintuan.audit.runs import AuditSource, record_audit_run
    from pintuan.audit.service import audit_database
    from pintuan.kit.time import utc_now

    started_at = utc_now()
    # A pass over every table: without the write lock, or every join would wait meanwhile.
    breaches = _read(audit_database)
    finished_at = utc_now()
    # Kept for the operator console, which shows the latest result.
    _run(
        lambda session: record_audit_run(
            session,
            breaches,
            started_at=started_at,
            finished_at=finished_at,
            source=AuditSource.CLI,
        )
    )
    if not breaches:
        typer.echo("Audit passed: no invariant is breached.")
        return
    for breach in breaches:
        typer.echo(f"BREACH {breach.invariant}: {breach.detail}")
    typer.echo(f"Audit failed: {len(breaches)} breach(es).", err=True)
    raise typer.Exit(1)


@app.command("reconcile-admission")
def reconcile_admission() -> None:
    """Rebuild Redis's hot-deal admission counters from the database (the worker does this
    every PINTUAN_REDIS_RECONCILE_SECONDS); after a Redis restart, start them afresh."""
    from pintuan.bootstrap import build_services
    from pintuan.kit.time import utc_now
    from pintuan.teams.admission import reconcile

    services = build_services(_settings())
    if services.redis is None:
        raise _fail("PINTUAN_REDIS_URL is not set: there is no admission to reconcile.")
    try:
        done = reconcile(services.redis, services.db, utc_now())
    finally:
        services.redis.close()
        services.db.dispose()
    if done.restarted:
        typer.echo("Redis had restarted: its admission counters were wiped and start afresh.")
    else:
        typer.echo(
            f"Reconciled {done.deals} deal and {done.teams} team counters; forgot {done.forgotten}."
        )


@growth_app.command("rollup")
def growth_rollup(
    day: Annotated[
        str | None, typer.Option("--date", help="UTC day to roll up (again), YYYY-MM-DD")
    ] = None,
) -> None:
    """Roll up one day of growth figures (default: yesterday, UTC); safe to run again."""
    from datetime import date, timedelta

    from pintuan.growth.service import day_figures, write_day
    from pintuan.kit.time import utc_now

    now = utc_now()
    try:
        chosen = date.fromisoformat(day) if day else now.date() - timedelta(days=1)
    except ValueError as exc:
        raise _fail(f"--date must be a day written YYYY-MM-DD, not {day!r}") from exc
    db = _database()
    # Counted without SQLite's write lock (a pass over every seat and team), then written.
    figures = _read(lambda session: day_figures(session, chosen), db=db)
    rows = _run(lambda session: write_day(session, chosen, figures, now), db=db)
    typer.echo(f"Rolled up {chosen.isoformat()}: {rows} rows.")


@ledger_app.command("check")
def ledger_check() -> None:
    """Verify the ledger (journals balance, payments match their journals, merchants and
    wallets are owed what was paid); exit 1 on any breach."""
    from pintuan.audit.ledger import check_ledger

    report = _read(check_ledger)
    typer.echo(f"{report.journals} journals checked.")
    for currency, totals in report.totals.items():
        figures = ", ".join(f"{name} {amount}" for name, amount in totals.items())
        typer.echo(f"{currency} (minor units): {figures}")
    if not report.breaches:
        typer.echo("Ledger sound: every journal balances and every payment is accounted for.")
        return
    for breach in report.breaches:
        typer.echo(f"BREACH {breach.invariant}: {breach.detail}")
    raise typer.Exit(1)


@lottery_app.command("verify")
def lottery_verify(
    deal_id: Annotated[str | None, typer.Argument(help="A lottery deal of this database")] = None,
    file: Annotated[
        Path | None,
        typer.Option(help="Instead: a saved copy of GET /v1/deals/{id}/lottery from any server"),
    ] = None,
) -> None:
    """Recompute a lottery deal's winners from its revealed seed and check the seed against
    the commitment published when the deal went live; exit 1 on any difference."""
    from pintuan.domain.lottery import verify
    from pintuan.kit.rawsql import raw_tx
    from pintuan.teams.lottery import lottery_record

    if file is not None:
        data = json.loads(file.read_text(encoding="utf-8"))
        deal = str(data["deal_id"])
        seed, published, winners = data.get("seed"), data.get("commitment"), int(data["winners"])
        draws = [(d["team_id"], list(d["seat_ids"]), list(d["winners"])) for d in data["draws"]]
    elif deal_id is not None:
        record = _read(lambda session: lottery_record(raw_tx(session), deal_id))
        deal, seed, published, winners = deal_id, record.seed, record.commitment, record.winners
        draws = [(d.team_id, d.seat_ids, d.winners) for d in record.draws]
    else:
        raise _fail("give a deal id, or --file with a saved lottery record")
    if not seed or not published:
        raise _fail(f"deal {deal}'s seed is not revealed yet (it is once the deal has ended)")
    problems = verify(seed, published, winners, draws)
    for problem in problems:
        typer.echo(f"MISMATCH {problem}")
    if problems:
        raise typer.Exit(1)
    typer.echo(
        f"Lottery of deal {deal} verified: the seed matches its commitment, and {len(draws)} "
        f"team draw(s) of {winners} winner(s) each recompute exactly."
    )


def _day(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise _fail(f"--date must be a calendar day like 2026-11-24, not {value!r}") from exc


@app.command()
def reconcile(
    provider: Annotated[str, typer.Option(help="A configured provider, e.g. stripe")],
    day: Annotated[str, typer.Option("--date", help="The provider's statement day, YYYY-MM-DD")],
) -> None:
    """Compare our ledger with the provider's statement for one day; list every missing, extra
    or different item and exit 1 when there is any."""
    from pintuan.bootstrap import build_services
    from pintuan.domain.payments import ProviderError
    from pintuan.ledger.reconcile import reconcile_day

    services = build_services(_settings())
    statement_day = _day(day)
    try:
        found = services.provider(provider)
        typer.echo(f"Fetching {provider}'s statement for {statement_day}…", err=True)
        records = found.records_for_day(statement_day)
        result = services.db.run_sync(
            lambda s: reconcile_day(s, found, statement_day, records), write=False
        )
    except AppError as exc:
        raise _fail(exc.detail) from exc
    except ProviderError as exc:
        raise _fail(f"{provider} did not give its statement: {exc}") from exc
    zone = found.capabilities.bill_time_zone
    typer.echo(
        f"{provider} {statement_day} ({zone}): {len(records)} provider records, "
        f"{result.matched} matched, {len(result.findings)} differences."
    )
    for f in result.findings:
        ours = f"{f.ours.amount} {f.ours.currency} ({f.ours.source_id})" if f.ours else "-"
        theirs = (
            f"{f.theirs.amount} {f.theirs.currency} ({f.theirs.source_id})" if f.theirs else "-"
        )
        typer.echo(
            f"{f.difference.value.upper():9} {f.kind.value:7} {f.provider_ref}: "
            f"ours {ours}, theirs {theirs}"
        )
    if not result.clean:
        raise typer.Exit(1)


@app.command()
def settle(
    day: Annotated[str, typer.Option("--date", help="The business day, YYYY-MM-DD")],
    merchant: Annotated[
        str | None, typer.Option(help="One merchant's id; default: every approved merchant")
    ] = None,
) -> None:
    """Write settlement statements for a finished business day (in each merchant's own time
    zone), each merchant in a transaction of its own, as the worker does. Days already settled
    are left as they are, so running it again after a failure settles the rest."""
    from sqlalchemy import select

    from pintuan.ledger import settlement
    from pintuan.merchants.models import Merchant

    business_day = _day(day)
    grace = timedelta(minutes=get_settings().settlement_grace_minutes)
    db = _database()
    ids = (
        [merchant]
        if merchant
        else _read(
            lambda session: list(
                session.scalars(select(Merchant.id).where(Merchant.status == "approved"))
            ),
            db=db,
        )
    )

    def settle_one(merchant_id: str) -> int:
        return _run(
            lambda session: settlement.settle_day(session, merchant_id, business_day, grace),
            db=db,
        )

    written = sum(settle_one(m) for m in ids)
    typer.echo(f"{written} statements written for {business_day} across {len(ids)} merchants.")


app.add_typer(
    build_feed_app(
        _read, lambda: reward_weights(_settings()), lambda: _settings().feed_simulation_dir
    ),
    name="feed",
)


def main() -> None:
    app()
