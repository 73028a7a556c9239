"""The load generators: wrk when it is on PATH, else a small asyncio + httpx one, and what they
measure."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import math
import shutil
import ssl
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import httpx

from bench.load.harness import (
    CONNECTIONS,
    HOST,
    REQUEST_TIMEOUT_SECONDS,
    WRK_THREADS,
    HarnessError,
)
from bench.load.scenarios import Load, Request, RequestFactory

# Bounds the fallback generator's memory (one latency kept per request) and run time should the
# server be far faster than httpx can drive it.
HTTPX_MAX_REQUESTS = 200_000


@dataclass(frozen=True)
class Measurement:
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    non_2xx: int
    errors: int
    # Responses by status, for the non-2xx ones.
    statuses: Mapping[int, int] = field(default_factory=dict)
    # wrk sent more requests than its pool held, so some were sent twice.
    wrapped: bool = False
    # More of the latency distribution (wrk only): p90, p99.9 and max, in milliseconds.
    tail_ms: Mapping[str, float] = field(default_factory=dict)

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds > 0 else 0.0

    @property
    def failed(self) -> bool:
        return self.non_2xx > 0 or self.errors > 0


class Generator(Protocol):
    label: str

    def measure(
        self, load: Load, base_urls: Sequence[str], seconds: int, first: int
    ) -> tuple[Measurement, int]:
        """Drive ``load`` for ``seconds``, spreading the connections evenly over the servers at
        ``base_urls``; return the figures and how many indices were used."""
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
    if request.body is not None or request.method in ("POST", "PUT", "PATCH"):
        lines.append(f"Content-Length: {len(request.body or b'')}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + (request.body or b"")


# Reads the pre-rendered requests ("<length>\n<bytes>" each) in every thread; thread k starts at
# entry k and steps by the thread count so that the threads do not send the same requests. (wrk
# calls request() once in the first thread to check it, so entry 1 is never actually sent.)
_WRK_POOL_LUA = """\
local bench_pool = {}
local bench_next, bench_step = 1, %(threads)d
bench_wrapped = 0
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
  if bench_next > #bench_pool then bench_wrapped = 1 end
  local raw = bench_pool[(bench_next - 1) %% #bench_pool + 1]
  bench_next = bench_next + bench_step
  return raw
end
"""

# Appended to every wrk script. Counting non-2xx needs a response() hook, since wrk's own
# "status errors" only count 4xx and 5xx; it costs wrk some parsing, which measured within the
# run-to-run noise on this machine. With several servers, thread k is sent to server
# k mod (number of servers), as the threads are a multiple of the servers.
_WRK_REPORT_LUA = """\
bench_non_2xx = 0
bench_statuses = {}
local bench_threads = {}
local bench_ports = {%(ports)s}
local bench_addrs = nil
local scenario_setup, scenario_response = setup, response
function setup(thread)
  bench_threads[#bench_threads + 1] = thread
  thread:set("bench_id", #bench_threads)
  if #bench_ports > 1 then
    if bench_addrs == nil then
      bench_addrs = {}
      for i, port in ipairs(bench_ports) do
        bench_addrs[i] = wrk.lookup(%(host)s, tostring(port))[1]
      end
    end
    thread.addr = bench_addrs[(#bench_threads - 1) %% #bench_addrs + 1]
  end
  if scenario_setup then scenario_setup(thread) end
end
function response(status, headers, body)
  if status < 200 or status > 299 then
    bench_non_2xx = bench_non_2xx + 1
    bench_statuses[status] = (bench_statuses[status] or 0) + 1
  end
  if scenario_response then scenario_response(status, headers, body) end
end
function done(summary, latency, requests)
  local non_2xx, wrapped, statuses, parts = 0, 0, {}, {}
  for _, thread in ipairs(bench_threads) do
    non_2xx = non_2xx + thread:get("bench_non_2xx")
    wrapped = wrapped + (thread:get("bench_wrapped") or 0)
    for status, count in pairs(thread:get("bench_statuses")) do
      statuses[status] = (statuses[status] or 0) + count
    end
  end
  for status, count in pairs(statuses) do
    parts[#parts + 1] = string.format('"%%d": %%d', status, count)
  end
  local e = summary.errors
  io.write(string.format(
    '@@bench {"requests": %%d, "duration_us": %%d, "p50_us": %%.1f, "p90_us": %%.1f, '
    .. '"p99_us": %%.1f, "p999_us": %%.1f, "max_us": %%.1f, '
    .. '"non_2xx": %%d, "errors": %%d, "wrapped": %%d, "statuses": {%%s}}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency:percentile(99.9), latency.max,
    non_2xx, e.connect + e.read + e.write + e.timeout, wrapped, table.concat(parts, ", ")))
end
"""


def _port(base_url: str) -> int:
    return int(base_url.rsplit(":", 1)[1])


class Wrk:
    def __init__(self, executable: str, scratch: Path, *, connections: int = CONNECTIONS) -> None:
        self.executable = executable
        self.scratch = scratch
        self.connections = connections
        version = subprocess.run(
            [executable, "--version"], capture_output=True, text=True, check=False
        ).stdout.split()
        self.label = " ".join(version[:2]) if version else "wrk"
        self._scripts = itertools.count()

    def measure(
        self, load: Load, base_urls: Sequence[str], seconds: int, first: int
    ) -> tuple[Measurement, int]:
        # A whole number of threads per server, so that each gets the same share.
        threads = len(base_urls) * math.ceil(WRK_THREADS / len(base_urls))
        script, pool = self._script(load, base_urls[0], seconds, first, threads)
        path = self.scratch / f"wrk-{next(self._scripts)}.lua"
        ports = ", ".join(str(_port(url)) for url in base_urls)
        report = _WRK_REPORT_LUA % {"ports": ports, "host": _lua_string(HOST)}
        path.write_text(script + "\n" + report)
        url = base_urls[0] + (load.request.path if isinstance(load.request, Request) else "/")
        command = [
            self.executable,
            f"--threads={threads}",
            f"--connections={self.connections}",
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
                requests = int(report["requests"])
                return Measurement(
                    requests=requests,
                    seconds=int(report["duration_us"]) / 1e6,
                    p50_ms=float(report["p50_us"]) / 1e3,
                    p99_ms=float(report["p99_us"]) / 1e3,
                    tail_ms={
                        "p90": float(report["p90_us"]) / 1e3,
                        "p99.9": float(report["p999_us"]) / 1e3,
                        "max": float(report["max_us"]) / 1e3,
                    },
                    non_2xx=int(report["non_2xx"]),
                    errors=int(report["errors"]),
                    statuses={int(k): int(v) for k, v in report["statuses"].items()},
                    wrapped=int(report["wrapped"]) > 0,
                ), pool
        raise HarnessError(
            f"wrk exited with {done.returncode} without a report:\n{done.stdout}{done.stderr}"
        )

    def _script(
        self, load: Load, base_url: str, seconds: int, first: int, threads: int
    ) -> tuple[str, int]:
        """The scenario's Lua and how many indices its pool used (0: no pool)."""
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
        size = load.pool_size(seconds)
        pool = self.scratch / f"pool-{next(self._scripts)}.bin"
        with pool.open("wb") as out:
            for n in range(first, first + size):
                raw = _raw_http(request(n), host)
                out.write(b"%d\n" % len(raw) + raw)
        script = _WRK_POOL_LUA % {"threads": threads, "path": _lua_string(str(pool))}
        return script, size


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
        self, load: Load, base_urls: Sequence[str], seconds: int, first: int
    ) -> tuple[Measurement, int]:
        try:
            return asyncio.run(self._measure(_factory(load), base_urls, seconds, first))
        except TimeoutError as exc:
            raise HarnessError(f"requests still hung well after the {seconds} s run") from exc

    async def _measure(
        self, factory: RequestFactory, base_urls: Sequence[str], seconds: int, first: int
    ) -> tuple[Measurement, int]:
        latencies: list[float] = []
        failures = {"non_2xx": 0, "errors": 0}
        statuses: dict[int, int] = {}
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
                    statuses[response.status_code] = statuses.get(response.status_code, 0) + 1

        # One client per connection: 64 tasks sharing one client with a pool of 64 managed about
        # a seventh of the throughput here (75 against 540 req/s on /healthz), lost to contention
        # on the pool. The clients are built before the clock starts.
        limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
        async with contextlib.AsyncExitStack() as stack:
            clients = [
                await stack.enter_async_context(
                    httpx.AsyncClient(
                        base_url=base_urls[i % len(base_urls)],
                        limits=limits,
                        timeout=REQUEST_TIMEOUT_SECONDS,
                        trust_env=False,
                        verify=self._tls,
                    )
                )
                for i in range(CONNECTIONS)
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
            statuses=statuses,
        )
        return measurement, min(next(indices), limit) - first


def pick_generator(choice: str, scratch: Path) -> Generator:
    executable = shutil.which("wrk")
    if choice == "httpx":
        return Httpx("chosen with --generator httpx")
    if choice == "auto" and executable is None:
        return Httpx("fallback: wrk is not on PATH")
    if executable is None:
        raise HarnessError("--generator wrk, but wrk is not on PATH (apt-get install wrk)")
    return Wrk(executable, scratch)
