"""Benchmark harness: throughput and latency of a few endpoints, each set against ``/healthz``.

Run it with ``make bench`` (options: ``.venv/bin/python bench/run.py --help``). It builds a
throwaway SQLite database holding the demo catalogue, starts ``pintuan serve`` on a free loopback
port and drives each scenario with 64 keep-alive connections for 10 s, after a 2 s warm-up whose
numbers are thrown away. The load comes from ``wrk`` (2 threads) when it is on PATH, otherwise
from a small asyncio + httpx generator in this file; the output says which. The table goes to
stdout, the same figures as JSON to ``var/bench-results.json``.

How to read the numbers
-----------------------
* ``req/s`` counts completed responses per second. ``p50``/``p99`` are per-request latencies in
  milliseconds as the load generator saw them, queueing included. The load is a closed loop (each
  connection sends its next request once the previous one is answered), so latency is roughly
  connections / throughput: the columns tell one story, not two.
* Absolute figures are not comparable between runs or machines. On a shared 2-core machine they
  swing by ±40 % from one run to the next, and the load generator competes with the server for
  the same cores.
* ``vs healthz`` is the scenario's throughput divided by that of ``GET /healthz`` in the same run,
  i.e. the share of the framework-only ceiling the endpoint keeps once its own work is added.
  This ratio is the number to track and to compare with DESIGN.md: within one run it is stable.
  ``/healthz`` is measured first and again last, and the ratios divide by the mean of the two. If
  the two differ by more than 15 % the machine's load changed during the run, the output says so,
  and the ratios deserve a second run.
* ``non-2xx`` (responses with any other status) and ``errors`` (failed connects, reads or writes
  and timeouts, i.e. no response at all) must both be 0: a benchmark of failing requests measures
  the failure path. Any of them makes the exit status 1.
* With the httpx fallback the client, not the server, is usually the bottleneck: every ratio is
  pulled toward 1 and the absolute figures say more about httpx than about the API. Install
  ``wrk`` (Debian package ``wrk``) for numbers worth comparing.

Adding a scenario: append a :class:`Scenario` to ``SCENARIOS``. Its ``prepare`` function runs
once the server is up and before any clock starts; it gets a :class:`Fixture` (an HTTP client,
``pintuan`` subcommands such as ``tokens create EMAIL``) and returns a :class:`Load`: one fixed
:class:`Request`, or a factory ``n -> Request`` for per-request bodies and bearer tokens, and
optionally a hand-written wrk Lua script.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import math
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any, Protocol

import httpx

REPO = Path(__file__).resolve().parent.parent
DEFAULT_RESULTS = REPO / "var" / "bench-results.json"
HOST = "127.0.0.1"

CONNECTIONS = 64
WRK_THREADS = 2
DEFAULT_SECONDS = 10
DEFAULT_WARMUP_SECONDS = 2
# A request slower than this counts as an error rather than as a very large latency.
REQUEST_TIMEOUT_SECONDS = 5
# Bounds the fallback generator's memory (one latency kept per request) and run time should the
# server be far faster than httpx can drive it.
HTTPX_MAX_REQUESTS = 200_000
# Above this relative change between the first and last /healthz, the machine's load changed
# during the run by more than the ratios can absorb.
DRIFT_TOLERANCE = 0.15
READY_TIMEOUT_SECONDS = 60.0
STOP_TIMEOUT_SECONDS = 15.0


class HarnessError(Exception):
    """The benchmark could not be run (as opposed to: it ran and found errors)."""


# --- What a scenario is -------------------------------------------------------------------------


@dataclass(frozen=True)
class Request:
    """One HTTP request. ``path`` includes the query string."""

    method: str
    path: str
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes | None = None


RequestFactory = Callable[[int], Request]


@dataclass(frozen=True)
class Load:
    """What a scenario sends.

    ``request`` is one fixed request or a factory called with n = 0, 1, 2, ... over the
    scenario's warm-up and measured run together, so no index is handed out twice. The httpx
    generator calls the factory for each request. wrk cannot call into Python, so for each of its
    runs the harness renders the next ``wrk_pool`` requests into a file up front and wrk cycles
    over them, the threads taking alternate entries: size the pool above the number of requests a
    run will send when each request must be unique (a join by a different shopper, say).

    ``wrk_script`` replaces that rendering with Lua of your own. It may set ``wrk.method``,
    ``wrk.headers`` and ``wrk.body`` and define ``init``, ``request``, ``delay``, ``setup`` and
    ``response``; the harness appends its own ``setup`` and ``response``, which call yours, and
    ``done``, which replaces any of yours. Each thread's global ``bench_id`` (1, 2, ...) is set
    before ``init`` runs. ``request`` must still be given: the httpx fallback uses it.
    """

    request: Request | RequestFactory
    wrk_script: str | None = None
    wrk_pool: int = 1_000


@dataclass
class Fixture:
    """The running server, for scenarios to look up or create what they need before any clock."""

    base_url: str
    client: httpx.Client
    pintuan: Path
    env: Mapping[str, str]
    workdir: Path
    _live_deal_id: str | None = None

    def cli(self, *args: str) -> str:
        """Run a ``pintuan`` subcommand against the benchmark database; return its stdout."""
        return run_pintuan(self.pintuan, args, self.env, self.workdir)

    def live_deal_id(self) -> str:
        """The id of the newest live deal of the demo catalogue."""
        if self._live_deal_id is None:
            response = self.client.get("/v1/deals", params={"limit": 1})
            response.raise_for_status()
            deals = response.json()["data"]
            if not deals:
                raise HarnessError("the demo catalogue has no live deal to read")
            self._live_deal_id = str(deals[0]["id"])
        return self._live_deal_id


@dataclass(frozen=True)
class Scenario:
    name: str
    prepare: Callable[[Fixture], Load]


def _get(path: str) -> Callable[[Fixture], Load]:
    return lambda _fixture: Load(Request("GET", path))


BASELINE = Scenario("GET /healthz", _get("/healthz"))

SCENARIOS: list[Scenario] = [
    Scenario("GET /v1/deals?limit=20", _get("/v1/deals?limit=20")),
    Scenario(
        "GET /v1/deals/{id}",
        lambda fixture: Load(Request("GET", f"/v1/deals/{fixture.live_deal_id()}")),
    ),
]


# --- Measuring ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Measurement:
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    non_2xx: int
    errors: int

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds > 0 else 0.0

    @property
    def failed(self) -> bool:
        return self.non_2xx > 0 or self.errors > 0


class Generator(Protocol):
    label: str

    def measure(
        self, load: Load, base_url: str, seconds: int, first: int
    ) -> tuple[Measurement, int]:
        """Drive ``load`` for ``seconds``; return the figures and how many indices were used."""
        ...


def _factory(load: Load) -> RequestFactory:
    request = load.request
    if isinstance(request, Request):
        return lambda _n: request
    return request


def _lua_string(value: str | bytes) -> str:
    raw = value.encode() if isinstance(value, str) else value
    # Decimal escapes for everything but plain printable ASCII keep any byte safe in Lua 5.1.
    return (
        '"'
        + "".join(chr(b) if 32 <= b < 127 and b not in (34, 92) else f"\\{b:03d}" for b in raw)
        + '"'
    )


def _raw_http(request: Request, host: str) -> bytes:
    lines = [f"{request.method} {request.path} HTTP/1.1", f"Host: {host}"]
    lines += [f"{name}: {value}" for name, value in request.headers.items()]
    if request.body is not None:
        lines.append(f"Content-Length: {len(request.body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + (request.body or b"")


# Reads the pre-rendered requests ("<length>\n<bytes>" each) in every thread; thread k starts at
# entry k and steps by the thread count so that the threads do not send the same requests. (wrk
# calls request() once in the first thread to check it, so entry 1 is never actually sent.)
_WRK_POOL_LUA = """\
local bench_pool = {}
local bench_next, bench_step = 1, %(threads)d
function init(args)
  local file = assert(io.open(%(path)s, "rb"))
  local data = file:read("*a")
  file:close()
  local pos = 1
  while pos <= #data do
    local newline = data:find("\\n", pos, true)
    local length = tonumber(data:sub(pos, newline - 1))
    bench_pool[#bench_pool + 1] = data:sub(newline + 1, newline + length)
    pos = newline + length + 1
  end
  bench_next = bench_id
end
function request()
  local raw = bench_pool[(bench_next - 1) %% #bench_pool + 1]
  bench_next = bench_next + bench_step
  return raw
end
"""

# Appended to every wrk script. Counting non-2xx needs a response() hook, since wrk's own
# "status errors" only count 4xx and 5xx; it costs wrk some parsing, which measured within the
# run-to-run noise on this machine.
_WRK_REPORT_LUA = """\
bench_non_2xx = 0
local bench_threads = {}
local scenario_setup, scenario_response = setup, response
function setup(thread)
  bench_threads[#bench_threads + 1] = thread
  thread:set("bench_id", #bench_threads)
  if scenario_setup then scenario_setup(thread) end
end
function response(status, headers, body)
  if status < 200 or status > 299 then bench_non_2xx = bench_non_2xx + 1 end
  if scenario_response then scenario_response(status, headers, body) end
end
function done(summary, latency, requests)
  local non_2xx = 0
  for _, thread in ipairs(bench_threads) do non_2xx = non_2xx + thread:get("bench_non_2xx") end
  local e = summary.errors
  io.write(string.format(
    '@@bench {"requests": %d, "duration_us": %d, "p50_us": %.1f, "p99_us": %.1f, '
    .. '"non_2xx": %d, "errors": %d}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    non_2xx, e.connect + e.read + e.write + e.timeout))
end
"""


class Wrk:
    def __init__(self, executable: str, scratch: Path) -> None:
        self.executable = executable
        self.scratch = scratch
        version = subprocess.run(
            [executable, "--version"], capture_output=True, text=True, check=False
        ).stdout.split()
        self.label = " ".join(version[:2]) if version else "wrk"
        self._scripts = itertools.count()

    def measure(
        self, load: Load, base_url: str, seconds: int, first: int
    ) -> tuple[Measurement, int]:
        script, used = self._script(load, base_url, first)
        path = self.scratch / f"wrk-{next(self._scripts)}.lua"
        path.write_text(script + "\n" + _WRK_REPORT_LUA)
        url = base_url + (load.request.path if isinstance(load.request, Request) else "/")
        command = [
            self.executable,
            f"--threads={WRK_THREADS}",
            f"--connections={CONNECTIONS}",
            f"--duration={seconds}s",
            f"--timeout={REQUEST_TIMEOUT_SECONDS}s",
            f"--script={path}",
            url,
        ]
        try:
            done = subprocess.run(
                command, capture_output=True, text=True, check=False, timeout=seconds + 60
            )
        except subprocess.TimeoutExpired as exc:
            raise HarnessError(
                f"wrk did not finish a {seconds} s run within a minute more"
            ) from exc
        for line in done.stdout.splitlines():
            if line.startswith("@@bench "):
                report = json.loads(line.removeprefix("@@bench "))
                return Measurement(
                    requests=int(report["requests"]),
                    seconds=int(report["duration_us"]) / 1e6,
                    p50_ms=float(report["p50_us"]) / 1e3,
                    p99_ms=float(report["p99_us"]) / 1e3,
                    non_2xx=int(report["non_2xx"]),
                    errors=int(report["errors"]),
                ), used
        raise HarnessError(
            f"wrk exited with {done.returncode} without a report:\n{done.stdout}{done.stderr}"
        )

    def _script(self, load: Load, base_url: str, first: int) -> tuple[str, int]:
        if load.wrk_script is not None:
            return load.wrk_script, 0
        request = load.request
        if isinstance(request, Request):
            # No request() function: wrk then builds the request once and resends those bytes,
            # its fastest path, so the baseline is not held back by the generator.
            lines = [f"wrk.method = {_lua_string(request.method)}"]
            lines += [
                f"wrk.headers[{_lua_string(k)}] = {_lua_string(v)}"
                for k, v in request.headers.items()
            ]
            if request.body is not None:
                lines.append(f"wrk.body = {_lua_string(request.body)}")
            return "\n".join(lines), 0
        host = base_url.removeprefix("http://")
        pool = self.scratch / f"pool-{next(self._scripts)}.bin"
        with pool.open("wb") as out:
            for n in range(first, first + load.wrk_pool):
                raw = _raw_http(request(n), host)
                out.write(b"%d\n" % len(raw) + raw)
        script = _WRK_POOL_LUA % {"threads": WRK_THREADS, "path": _lua_string(str(pool))}
        return script, load.wrk_pool


def _percentile(ordered: Sequence[float], percent: float) -> float:
    if not ordered:
        return math.nan
    rank = max(1, math.ceil(percent / 100 * len(ordered)))
    return ordered[rank - 1]


class Httpx:
    def __init__(self, why: str) -> None:
        self.label = f"httpx {httpx.__version__} ({why})"
        # Never used for plain http, but each client would otherwise load the CA bundle itself:
        # 64 of them cost seconds per run.
        self._tls = ssl.create_default_context()

    def measure(
        self, load: Load, base_url: str, seconds: int, first: int
    ) -> tuple[Measurement, int]:
        try:
            return asyncio.run(self._measure(_factory(load), base_url, seconds, first))
        except TimeoutError as exc:
            raise HarnessError(f"requests still hung well after the {seconds} s run") from exc

    async def _measure(
        self, factory: RequestFactory, base_url: str, seconds: int, first: int
    ) -> tuple[Measurement, int]:
        latencies: list[float] = []
        failures = {"non_2xx": 0, "errors": 0}
        indices = itertools.count(first)
        limit = first + HTTPX_MAX_REQUESTS

        async def connection(client: httpx.AsyncClient, deadline: float) -> None:
            while time.perf_counter() < deadline:
                n = next(indices)
                if n >= limit:
                    return
                request = factory(n)
                started = time.perf_counter()
                try:
                    response = await client.request(
                        request.method,
                        request.path,
                        headers=dict(request.headers),
                        content=request.body,
                    )
                except httpx.HTTPError:
                    failures["errors"] += 1
                    continue
                latencies.append(time.perf_counter() - started)
                if not 200 <= response.status_code < 300:
                    failures["non_2xx"] += 1

        # One client per connection: 64 tasks sharing one client with a pool of 64 managed about
        # a seventh of the throughput here (75 against 540 req/s on /healthz), lost to contention
        # on the pool. The clients are built before the clock starts.
        limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
        async with contextlib.AsyncExitStack() as stack:
            clients = [
                await stack.enter_async_context(
                    httpx.AsyncClient(
                        base_url=base_url,
                        limits=limits,
                        timeout=REQUEST_TIMEOUT_SECONDS,
                        trust_env=False,
                        verify=self._tls,
                    )
                )
                for _ in range(CONNECTIONS)
            ]
            started = time.perf_counter()
            deadline = started + seconds
            async with (
                asyncio.timeout(seconds + REQUEST_TIMEOUT_SECONDS + 5),
                asyncio.TaskGroup() as tasks,
            ):
                for client in clients:
                    tasks.create_task(connection(client, deadline))
            elapsed = time.perf_counter() - started
        latencies.sort()
        measurement = Measurement(
            requests=len(latencies),
            seconds=elapsed,
            p50_ms=_percentile(latencies, 50) * 1e3,
            p99_ms=_percentile(latencies, 99) * 1e3,
            non_2xx=failures["non_2xx"],
            errors=failures["errors"],
        )
        return measurement, min(next(indices), limit) - first


# --- The server ---------------------------------------------------------------------------------


def run_pintuan(pintuan: Path, args: Sequence[str], env: Mapping[str, str], cwd: Path) -> str:
    done = subprocess.run(
        [str(pintuan), *args], env=env, cwd=cwd, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        output = (done.stdout + done.stderr).splitlines()
        raise HarnessError(f"pintuan {' '.join(args)} failed:\n" + "\n".join(output[-20:]))
    return done.stdout


def _find_pintuan() -> Path:
    beside = Path(sys.executable).with_name("pintuan")
    if beside.exists():
        return beside
    found = shutil.which("pintuan")
    if found is None:
        raise HarnessError("no `pintuan` command; run `make install` first")
    return Path(found)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def _server_env(workdir: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PINTUAN_DATABASE_URL"] = f"sqlite:///{workdir / 'bench.db'}"
    # The demo catalogue is refused in prod, and the benchmark needs it.
    env["PINTUAN_ENV"] = "dev"
    # A log line per request would measure the logger.
    env["PINTUAN_LOG_LEVEL"] = "WARNING"
    return env


def _tail(path: Path, lines: int = 30) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


@contextlib.contextmanager
def running_server(pintuan: Path, env: Mapping[str, str], workdir: Path) -> Iterator[str]:
    """``pintuan serve`` on a free loopback port until the block exits, however it exits."""
    port = _free_port()
    base_url = f"http://{HOST}:{port}"
    log_path = workdir / "server.log"
    with log_path.open("wb") as log:
        # A session of its own keeps a Ctrl-C from reaching the server directly, so that it is
        # always stopped here, after the load generator, and waited for.
        server = subprocess.Popen(
            [str(pintuan), "serve", "--host", HOST, "--port", str(port)],
            env=env,
            cwd=workdir,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            _wait_ready(server, base_url, log_path)
            yield base_url
        finally:
            _stop(server)


def _wait_ready(server: subprocess.Popen[bytes], base_url: str, log_path: Path) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    with httpx.Client(base_url=base_url, timeout=1.0, trust_env=False) as client:
        while time.monotonic() < deadline:
            if server.poll() is not None:
                raise HarnessError(
                    f"the server exited with {server.returncode}:\n{_tail(log_path)}"
                )
            with contextlib.suppress(httpx.HTTPError):
                if client.get("/readyz").status_code == 200:
                    return
            time.sleep(0.1)
    raise HarnessError(
        f"the server was not ready within {READY_TIMEOUT_SECONDS:.0f} s:\n{_tail(log_path)}"
    )


def _stop(server: subprocess.Popen[bytes]) -> None:
    if server.poll() is not None:
        return
    # SIGTERM, as a process manager would send: uvicorn finishes the requests in flight.
    server.terminate()
    try:
        server.wait(timeout=STOP_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()
    except KeyboardInterrupt:
        # A second Ctrl-C while waiting: stop at once rather than leave the server behind.
        server.kill()
        server.wait()
        raise


# --- Running and reporting ----------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    name: str
    measurement: Measurement
    ratio: float


def _pick_generator(choice: str, scratch: Path) -> Generator:
    executable = shutil.which("wrk")
    if choice == "httpx":
        return Httpx("chosen with --generator httpx")
    if choice == "auto" and executable is None:
        return Httpx("fallback: wrk is not on PATH")
    if executable is None:
        raise HarnessError("--generator wrk, but wrk is not on PATH (apt-get install wrk)")
    return Wrk(executable, scratch)


def _git_state() -> dict[str, Any]:
    def git(*args: str) -> str:
        return subprocess.run(
            ["git", "-C", str(REPO), *args], capture_output=True, text=True, check=False
        ).stdout.strip()

    return {"commit": git("rev-parse", "HEAD") or None, "dirty": bool(git("status", "--short"))}


def _render(rows: Sequence[Row]) -> str:
    header = ("scenario", "req/s", "p50 ms", "p99 ms", "non-2xx", "errors", "vs healthz")
    cells = [header] + [
        (
            row.name,
            f"{row.measurement.rps:,.0f}",
            f"{row.measurement.p50_ms:.1f}",
            f"{row.measurement.p99_ms:.1f}",
            str(row.measurement.non_2xx),
            str(row.measurement.errors),
            f"{row.ratio:.2f}",
        )
        for row in rows
    ]
    widths = [max(len(line[i]) for line in cells) for i in range(len(header))]
    return "\n".join(
        "  ".join(
            cell.ljust(width) if i == 0 else cell.rjust(width)
            for i, (cell, width) in enumerate(zip(line, widths, strict=True))
        )
        for line in cells
    )


def _write_json(path: Path, document: Mapping[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    partial.write_text(json.dumps(document, indent=2) + "\n")
    partial.replace(path)


def _note(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument(
        "--duration", type=int, default=DEFAULT_SECONDS, help="seconds measured per scenario"
    )
    parser.add_argument(
        "--warmup",
        type=int,
        default=DEFAULT_WARMUP_SECONDS,
        help="seconds of unmeasured load before each scenario (0: none)",
    )
    parser.add_argument("--generator", choices=("auto", "wrk", "httpx"), default="auto")
    parser.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="TEXT",
        help="run only scenarios whose name contains TEXT (repeatable; /healthz always runs)",
    )
    parser.add_argument("--json", type=Path, default=DEFAULT_RESULTS, help="where to write results")
    args = parser.parse_args(argv)
    if args.duration < 1 or args.warmup < 0:
        parser.error("--duration must be at least 1 and --warmup at least 0")
    return args


def _interrupt(signum: int, frame: FrameType | None) -> None:
    signal.raise_signal(signal.SIGINT)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse_args(argv)
    # A plain SIGTERM (a CI timeout, `kill`) would end Python without running `finally`, and so
    # leave the server running. Passed on as SIGINT it unwinds like a Ctrl-C, also inside
    # asyncio.run, which cancels its task cleanly only for SIGINT. SIGINT itself is ignored when
    # started in the background of a non-interactive shell, hence restored.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _interrupt)
    wall_start = time.monotonic()
    chosen = [s for s in SCENARIOS if not args.only or any(t in s.name for t in args.only)]
    plan = [BASELINE, *chosen, Scenario(f"{BASELINE.name} (again)", BASELINE.prepare)]
    measured: list[tuple[str, Measurement]] = []
    try:
        with tempfile.TemporaryDirectory(prefix="pintuan-bench-") as tmp:
            workdir = Path(tmp)
            generator = _pick_generator(args.generator, workdir)
            _note(
                f"load generator: {generator.label}; {CONNECTIONS} connections, "
                f"{args.duration} s per scenario after {args.warmup} s of warm-up"
            )
            pintuan = _find_pintuan()
            env = _server_env(workdir)
            _note("preparing a fresh SQLite database with the demo catalogue")
            # The working directory is the scratch one so that a developer's .env is not read.
            run_pintuan(pintuan, ["migrate"], env, workdir)
            run_pintuan(pintuan, ["demo"], env, workdir)
            with (
                running_server(pintuan, env, workdir) as base_url,
                httpx.Client(base_url=base_url, timeout=30.0, trust_env=False) as client,
            ):
                fixture = Fixture(base_url, client, pintuan, env, workdir)
                # Everything is prepared before the first clock starts, so a broken scenario
                # fails in seconds rather than after the others have run.
                loads = [(scenario.name, scenario.prepare(fixture)) for scenario in plan]
                for name, load in loads:
                    next_index = 0
                    if args.warmup:
                        _note(f"  {name}: warming up")
                        _, used = generator.measure(load, base_url, args.warmup, next_index)
                        next_index += used
                    _note(f"  {name}: measuring")
                    measurement, _ = generator.measure(load, base_url, args.duration, next_index)
                    measured.append((name, measurement))
    except HarnessError as exc:
        _note(f"bench: {exc}")
        return 2
    except KeyboardInterrupt:
        _note("bench: interrupted; the server, if started, has been stopped")
        return 130

    first, last = measured[0][1].rps, measured[-1][1].rps
    baseline = (first + last) / 2
    drift = (last - first) / first if first else math.nan
    rows = [Row(name, m, m.rps / baseline if baseline else math.nan) for name, m in measured]
    wall = time.monotonic() - wall_start

    print(f"\nload generator: {generator.label}")
    if isinstance(generator, Httpx):
        print(
            "note: httpx is usually the bottleneck, not the server: the ratios are pulled toward 1."
            " Install wrk for numbers worth comparing."
        )
    print(
        f"{CONNECTIONS} connections, {args.duration} s per scenario after {args.warmup} s "
        f"warm-up; 'vs healthz' divides by the mean of the two /healthz runs\n"
    )
    print(_render(rows))
    print(f"\n/healthz drift from first to last run: {drift:+.1%}", end="")
    steady = abs(drift) <= DRIFT_TOLERANCE
    print("" if steady else f" (over {DRIFT_TOLERANCE:.0%}: the ratios are unreliable, run again)")
    failed = [row.name for row in rows if row.measurement.failed]
    if failed:
        print(f"FAILED: non-2xx responses or errors in {', '.join(failed)}")
    print(f"full run: {wall:.0f} s; results in {args.json}")

    _write_json(
        args.json,
        {
            "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "git": _git_state(),
            "generator": generator.label,
            "connections": CONNECTIONS,
            "wrk_threads": WRK_THREADS if isinstance(generator, Wrk) else None,
            "duration_s": args.duration,
            "warmup_s": args.warmup,
            "cpus": os.cpu_count(),
            "baseline": {
                "first_rps": round(first, 1),
                "last_rps": round(last, 1),
                "drift": round(drift, 4),
                "steady": steady,
            },
            "scenarios": [
                {
                    "name": row.name,
                    "requests": row.measurement.requests,
                    "seconds": round(row.measurement.seconds, 3),
                    "rps": round(row.measurement.rps, 1),
                    "p50_ms": round(row.measurement.p50_ms, 2),
                    "p99_ms": round(row.measurement.p99_ms, 2),
                    "non_2xx": row.measurement.non_2xx,
                    "errors": row.measurement.errors,
                    "vs_healthz": round(row.ratio, 3),
                }
                for row in rows
            ],
            "ok": not failed,
            "wall_s": round(wall, 1),
        },
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
