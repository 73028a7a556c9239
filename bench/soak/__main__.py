"""``python -m bench.soak``: start the cluster, send mixed traffic through nginx, report.

    python -m bench.soak [--minutes 30] [--step-seconds 60] [--scale 1,2,4] [--apis 2]
                         [--users 32] [--out var/soak] [--keep]

It replaces any cluster of ``scripts/cluster-up.sh`` with a fresh one (``cluster-down.sh
--wipe``), seeds deals and shoppers, then measures throughput with 1, 2 and 4 API processes
(``--step-seconds`` each) and soaks the cluster with ``--apis`` processes for ``--minutes``.
Afterwards it waits for the worker to settle every closed window, runs ``pintuan audit`` and
``pintuan ledger check`` against the primary, writes the report (``bench.soak.report``) and stops
the cluster (``--keep`` leaves it running). Exit status 1 on any invariant breach, server error
or unexpected refusal.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import shlex
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import psycopg

from bench.soak import report, traffic, watch

ROOT = Path(__file__).resolve().parents[2]
STATE = Path(os.environ.get("CLUSTER_STATE") or ROOT / "var" / "cluster").resolve()
SAMPLE_SECONDS = 5.0
TIMELINE_SECONDS = 10.0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=30.0, help="length of the soak")
    parser.add_argument("--step-seconds", type=float, default=60.0, help="each scaling step")
    parser.add_argument("--scale", default="1,2,4", help="API processes of each scaling step")
    parser.add_argument("--apis", type=int, default=2, help="API processes during the soak")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--users", type=int, default=32, help="concurrent shopper loops")
    parser.add_argument("--shoppers", type=int, default=2000, help="seeded shoppers")
    parser.add_argument("--deals", type=int, default=24)
    parser.add_argument(
        "--window-minutes", type=int, default=5, help="team window of the deals (5 at least)"
    )
    parser.add_argument("--settle-seconds", type=float, default=240.0)
    parser.add_argument("--out", type=Path, default=ROOT / "var" / "soak")
    parser.add_argument("--keep", action="store_true", help="leave the cluster running")
    args = parser.parse_args(argv)
    scale = [int(n) for n in args.scale.split(",") if n.strip()]
    if os.geteuid() != 0:
        print("soak: the cluster needs root (see scripts/cluster-up.sh)", file=sys.stderr)
        return 1
    try:
        result = asyncio.run(_soak(args, scale))
    finally:
        if not args.keep:
            _script("cluster-down.sh")
    paths = report.write_report(result, args.out)
    _print_summary(result, paths)
    return 0 if result["ok"] else 1


def _script(name: str, *args: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PINTUAN_")}
    env.update(
        # A seat unpaid for a minute is released, so holds lapse all through a run.
        PINTUAN_SEAT_HOLD_MINUTES="1",
        # One log line per request is a disk's worth over half an hour; errors still log.
        PINTUAN_LOG_LEVEL="WARNING",
    )
    command = [str(ROOT / "scripts" / name), *args]
    print(f"soak: {shlex.join(['scripts/' + name, *args])}", file=sys.stderr)
    subprocess.run(command, check=True, env=env, stdout=sys.stderr)


def _cluster_env() -> dict[str, str]:
    found = {}
    for line in (STATE / "cluster.env").read_text().splitlines():
        if line.startswith("export "):
            name, _, value = line.removeprefix("export ").partition("=")
            found[name] = value.strip("'")
    return found


async def _soak(args: argparse.Namespace, scale: list[int]) -> dict[str, Any]:
    _script("cluster-down.sh", "--wipe")
    _script(
        "cluster-up.sh",
        "--apis",
        str(scale[0] if scale else args.apis),
        "--workers",
        str(args.workers),
    )
    env = _cluster_env()
    primary = env["PINTUAN_DATABASE_URL"]
    dsn = primary.replace("postgresql+psycopg://", "postgresql://")
    base_url = env["CLUSTER_URL"]
    host, port = base_url.removeprefix("http://").split(":")
    seeded = traffic.seed(
        primary, shoppers=args.shoppers, deal_count=args.deals, window_minutes=args.window_minutes
    )
    shoppers = traffic.Shoppers(seeded, host, int(port), random.Random(20))
    began = time.monotonic()
    samples: list[dict[str, Any]] = []
    phase = {"name": "start"}
    stop = asyncio.Event()
    sampler = asyncio.create_task(_sample(samples, phase, began, dsn, base_url, stop))

    scaling = []
    for apis in scale:
        await asyncio.to_thread(
            _script, "cluster-up.sh", "--apis", str(apis), "--workers", str(args.workers)
        )
        phase["name"] = f"{apis} api"
        scaling.append(
            {
                "apis": apis,
                **await _phase(shoppers, f"{apis} api", args.step_seconds, args.users, samples),
            }
        )
    await asyncio.to_thread(
        _script, "cluster-up.sh", "--apis", str(args.apis), "--workers", str(args.workers)
    )
    phase["name"] = "soak"
    soak = {
        "apis": args.apis,
        **await _phase(shoppers, "soak", args.minutes * 60, args.users, samples),
    }
    phase["name"] = "settle"
    settled = await _settle(dsn, base_url, args.settle_seconds)
    stop.set()
    await sampler
    checks = {
        "audit": _check(env, "audit"),
        "ledger": _check(env, "ledger", "check"),
    }
    breaches = [b for step in [*scaling, soak] for b in step["breaches"]]
    errors = [e for step in [*scaling, soak] for e in step["errors"]]
    ok = not breaches and not errors and all(c["exit_status"] == 0 for c in checks.values())
    return {
        "ok": ok,
        "settings": {k: v for k, v in vars(args).items() if k != "out"} | {"scale": scale},
        "seconds": round(time.monotonic() - began, 1),
        "cpus": os.cpu_count(),
        "scaling": scaling,
        "soak": soak,
        "memory": _memory_trend([s for s in samples if s["phase"] == "soak"]),
        "replica_lag": _lag_summary([s for s in samples if s["phase"] == "soak"]),
        "settled_seconds": settled,
        "checks": checks,
        "breaches": breaches,
        "errors": errors[:50],
        "error_count": len(errors),
        "samples": samples,
    }


async def _phase(
    shoppers: traffic.Shoppers, name: str, seconds: float, users: int, samples: list[dict[str, Any]]
) -> dict[str, Any]:
    stats = traffic.Stats()
    loads_before = len(samples)
    ticker = asyncio.create_task(_timeline(stats))
    await shoppers.run(stats, time.monotonic() + seconds, users)
    ticker.cancel()
    elapsed = time.monotonic() - stats.started
    every = [v for values in stats.latencies.values() for v in values]
    loads = [s["load"] for s in samples[loads_before:]] or [watch.load_average()]
    return {
        "name": name,
        "seconds": round(elapsed, 1),
        "requests": stats.requests,
        "rps": round(stats.requests / elapsed, 1),
        "p50_ms": _ms(every, 50),
        "p99_ms": _ms(every, 99),
        "load_average": round(float(np.mean(loads)), 2),
        "routes": {
            route: {"requests": len(v), "p50_ms": _ms(v, 50), "p99_ms": _ms(v, 99)}
            for route, v in sorted(stats.latencies.items())
        },
        "answers": dict(sorted(stats.answers.items())),
        "actions": dict(stats.actions),
        "joins": stats.joins,
        "payments": stats.payments,
        "idempotent_repeats": stats.repeats,
        "timeline": stats.timeline,
        "breaches": stats.breaches,
        "errors": stats.errors,
    }


async def _timeline(stats: traffic.Stats) -> None:
    """Requests per second over each ten seconds of the phase."""
    last = 0
    while True:
        await asyncio.sleep(TIMELINE_SECONDS)
        now = stats.requests
        stats.timeline.append(
            {
                "t": round(time.monotonic() - stats.started, 1),
                "rps": (now - last) / TIMELINE_SECONDS,
            }
        )
        last = now


def _ms(values: list[float], q: int) -> float | None:
    return round(float(np.percentile(values, q)) * 1000, 1) if values else None


async def _sample(
    samples: list[dict[str, Any]],
    phase: dict[str, str],
    began: float,
    dsn: str,
    base_url: str,
    stop: asyncio.Event,
) -> None:
    while not stop.is_set():
        processes = watch.cluster_processes(STATE)
        memory = await asyncio.to_thread(watch.memory_mib, processes)
        lag: dict[str, Any]
        try:
            lag = dict(await asyncio.to_thread(watch.replica_lag, dsn))
        except psycopg.Error as exc:
            lag = {"seconds": None, "bytes": None, "error": str(exc)}
        samples.append(
            {
                "t": round(time.monotonic() - began, 1),
                "phase": phase["name"],
                "load": watch.load_average(),
                "memory": memory,
                "lag": lag,
                "readyz": await asyncio.to_thread(watch.readyz, base_url),
            }
        )
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), SAMPLE_SECONDS)


async def _settle(dsn: str, base_url: str, limit: float) -> float | None:
    """Wait until no team is left forming past its window and the worker has nothing due;
    the seconds that took, or None when ``limit`` passed first."""
    began = time.monotonic()
    while time.monotonic() - began < limit:
        with psycopg.connect(dsn) as conn:
            (late,) = conn.execute(
                "SELECT count(*) FROM teams WHERE status = 'forming' AND expires_at < now()"
            ).fetchone() or (0,)
        ready = await asyncio.to_thread(watch.readyz, base_url)
        lags = ready.get("lag_seconds", {})
        if late == 0 and isinstance(lags, dict) and not any(lags.values()):
            return round(time.monotonic() - began, 1)
        await asyncio.sleep(2)
    return None


def _check(env: dict[str, str], *command: str) -> dict[str, Any]:
    run_env = {k: v for k, v in os.environ.items() if not k.startswith("PINTUAN_")}
    run_env.update(PINTUAN_DATABASE_URL=env["PINTUAN_DATABASE_URL"], PINTUAN_LOG_LEVEL="WARNING")
    done = subprocess.run(
        [str(ROOT / ".venv" / "bin" / "pintuan"), *command],
        env=run_env,
        capture_output=True,
        text=True,
        check=False,
    )
    return {"exit_status": done.returncode, "output": (done.stdout + done.stderr).strip()[-4000:]}


def _memory_trend(samples: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per process: MiB at the start and end of the soak, the slope of a least-squares line over
    its second half (MiB per hour), and whether it is flat (the last quarter's mean within 5% or
    10 MiB of the second quarter's, whichever is larger)."""
    trends = {}
    names = sorted({n for s in samples for n in s["memory"]})
    for name in names:
        points = [(s["t"], s["memory"][name]) for s in samples if name in s["memory"]]
        if len(points) < 8:
            continue
        t = np.array([p[0] for p in points])
        mib = np.array([p[1] for p in points])
        quarter = len(points) // 4
        second, last = float(mib[quarter : 2 * quarter].mean()), float(mib[-quarter:].mean())
        half = len(points) // 2
        slope = float(np.polyfit(t[half:], mib[half:], 1)[0]) * 3600 if half > 1 else 0.0
        trends[name] = {
            "first_mib": float(mib[0]),
            "last_mib": float(mib[-1]),
            "peak_mib": float(mib.max()),
            "second_quarter_mean_mib": round(second, 1),
            "last_quarter_mean_mib": round(last, 1),
            "second_half_slope_mib_per_hour": round(slope, 1),
            "flat": abs(last - second) <= max(0.05 * second, 10.0),
        }
    return trends


def _lag_summary(samples: list[dict[str, Any]]) -> dict[str, Any]:
    seconds = [s["lag"]["seconds"] for s in samples if s["lag"].get("seconds") is not None]
    volume = [s["lag"]["bytes"] for s in samples if s["lag"].get("bytes") is not None]
    return {
        "samples": len(seconds),
        "p50_ms": round(float(np.percentile(seconds, 50)) * 1000, 1) if seconds else None,
        "p99_ms": round(float(np.percentile(seconds, 99)) * 1000, 1) if seconds else None,
        "max_ms": round(max(seconds) * 1000, 1) if seconds else None,
        "max_bytes": max(volume) if volume else None,
    }


def _print_summary(result: dict[str, Any], paths: dict[str, Path]) -> None:
    print("API processes  req/s   p50 ms  p99 ms  load")
    for step in result["scaling"]:
        print(
            f"{step['apis']:>13}  {step['rps']:>6}  {step['p50_ms']!s:>6}  {step['p99_ms']!s:>6}"
            f"  {step['load_average']}"
        )
    soak = result["soak"]
    print(
        f"soak: {soak['apis']} APIs, {soak['seconds']} s, {soak['requests']} requests, "
        f"{soak['rps']} req/s, p50 {soak['p50_ms']} ms, p99 {soak['p99_ms']} ms, "
        f"load {soak['load_average']}; {soak['joins']} seats taken, {soak['payments']} paid"
    )
    for route, figures in soak["routes"].items():
        print(
            f"  {route:<45} {figures['requests']:>7}  "
            f"p50 {figures['p50_ms']}  p99 {figures['p99_ms']}"
        )
    for name, trend in result["memory"].items():
        print(
            f"  memory {name:<18} {trend['first_mib']:>7} → {trend['last_mib']:>7} MiB, "
            f"{trend['second_half_slope_mib_per_hour']:+} MiB/h, "
            f"{'flat' if trend['flat'] else 'GROWING'}"
        )
    print(f"  replica lag: {result['replica_lag']}")
    for name, check in result["checks"].items():
        last_line = check["output"].splitlines()[-1] if check["output"] else ""
        print(f"  {name}: exit {check['exit_status']}: {last_line}")
    print(f"  driver breaches: {len(result['breaches'])}, errors: {result['error_count']}")
    # The first few of each, so that a failed run says what failed without its report (a test's
    # temporary folder does not outlive a few more runs).
    for label, lines in (("breach", result["breaches"]), ("error", result["errors"])):
        for line in lines[:5]:
            print(f"    {label}: {line}")
    print(f"report: {', '.join(str(p) for p in paths.values())}")
    print("OK" if result["ok"] else "FAILED")


if __name__ == "__main__":
    raise SystemExit(main())
