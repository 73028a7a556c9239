"""The soak's files: every figure as JSON, the tables as CSV, and one PNG chart (scaling with
1, 2 and 4 API processes, throughput over the soak, each process's memory, the replica's lag),
drawn with Pillow as the feed simulator's chart is."""

from __future__ import annotations

import csv
import itertools
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw, ImageFont

WIDTH, HEIGHT = 1400, 900
PALETTE = (
    "#2f6fdf",
    "#e4393c",
    "#1a9e5b",
    "#f29d0a",
    "#8a4fd8",
    "#16a2b8",
    "#8a93a0",
    "#c2185b",
    "#5d4037",
    "#33691e",
)
Font = ImageFont.FreeTypeFont | ImageFont.ImageFont


def write_report(result: dict[str, Any], out: Path) -> dict[str, Path]:
    """Write ``soak.json``, ``scaling.csv``, ``routes.csv``, ``memory.csv``, ``lag.csv`` and
    ``soak.png`` into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    paths = {
        name: out / name
        for name in ("soak.json", "scaling.csv", "routes.csv", "memory.csv", "lag.csv", "soak.png")
    }
    paths["soak.json"].write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    _csv(
        paths["scaling.csv"],
        ["api_processes", "seconds", "requests", "requests_per_second", "p50_ms", "p99_ms", "load"],
        [
            [
                s["apis"],
                s["seconds"],
                s["requests"],
                s["rps"],
                s["p50_ms"],
                s["p99_ms"],
                s["load_average"],
            ]
            for s in result["scaling"]
        ],
    )
    _csv(
        paths["routes.csv"],
        ["phase", "route", "requests", "p50_ms", "p99_ms"],
        [
            [phase["name"], route, r["requests"], r["p50_ms"], r["p99_ms"]]
            for phase in [*result["scaling"], result["soak"]]
            for route, r in phase["routes"].items()
        ],
    )
    names = sorted({n for s in result["samples"] for n in s["memory"]})
    _csv(
        paths["memory.csv"],
        ["seconds", "phase", *names],
        [[s["t"], s["phase"], *(s["memory"].get(n, "") for n in names)] for s in result["samples"]],
    )
    _csv(
        paths["lag.csv"],
        ["seconds", "phase", "replica_lag_seconds", "replica_lag_bytes", "load_average"],
        [
            [s["t"], s["phase"], s["lag"].get("seconds"), s["lag"].get("bytes"), s["load"]]
            for s in result["samples"]
        ],
    )
    _chart(result).save(paths["soak.png"], format="PNG", optimize=True)
    return paths


def _csv(path: Path, header: list[str], rows: list[list[Any]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)


def _chart(result: dict[str, Any]) -> Image.Image:
    image = Image.new("RGB", (WIDTH, HEIGHT), "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=15)
    small = ImageFont.load_default(size=12)
    soak = [s for s in result["samples"] if s["phase"] == "soak"]
    start = soak[0]["t"] if soak else 0.0
    _scaling(draw, result["scaling"], (80, 60, 640, 400), font, small)
    timeline = result["soak"]["timeline"]
    loads = [s["load"] for s in soak] or [0.0]
    _lines(
        draw,
        (780, 60, 1340, 400),
        f"Soak: requests per second through nginx (load average {min(loads):.1f}"
        f" to {max(loads):.1f} on {result.get('cpus', '?')} cores)",
        {"req/s": [(t["t"], t["rps"]) for t in timeline]},
        "s",
        font,
        small,
    )
    names = sorted({n for s in soak for n in s["memory"]})
    _lines(
        draw,
        (80, 510, 640, 850),
        "Soak: memory of each process (MiB, PSS)",
        {n: [(s["t"] - start, s["memory"][n]) for s in soak if n in s["memory"]] for n in names},
        "s",
        font,
        small,
    )
    _lines(
        draw,
        (780, 510, 1340, 850),
        "Soak: replica replay lag (ms)",
        {
            "lag": [
                (s["t"] - start, 1000 * (s["lag"].get("seconds") or 0.0))
                for s in soak
                if s["lag"].get("seconds") is not None
            ]
        },
        "s",
        font,
        small,
    )
    return image


def _scaling(
    draw: ImageDraw.ImageDraw,
    steps: Sequence[dict[str, Any]],
    box: tuple[int, int, int, int],
    font: Font,
    small: Font,
) -> None:
    left, top, right, bottom = box
    draw.text((left, top - 40), "Throughput by API processes (req/s)", fill="black", font=font)
    draw.text(
        (left, top - 20),
        "bars: measured; dashed: one process's figure times N",
        fill="#5b6472",
        font=small,
    )
    if not steps:
        return
    base = steps[0]["rps"] / max(steps[0]["apis"], 1)
    highest = max(max(s["rps"] for s in steps), base * max(s["apis"] for s in steps)) or 1.0
    _axes(draw, box, highest, small)
    group = (right - left) / len(steps)
    ideal = []
    for i, step in enumerate(steps):
        x0, x1 = left + group * i + group * 0.2, left + group * (i + 1) - group * 0.2
        height = (bottom - top) * step["rps"] / highest
        draw.rectangle((x0, bottom - height, x1, bottom), fill=PALETTE[0])
        draw.text(
            ((x0 + x1) / 2, bottom - height - 10),
            f"{step['rps']:.0f}",
            fill="black",
            font=small,
            anchor="mm",
        )
        draw.text(
            ((x0 + x1) / 2, bottom + 14),
            f"{step['apis']} API (load {step['load_average']:.1f})",
            fill="#5b6472",
            font=small,
            anchor="mm",
        )
        ideal.append(((x0 + x1) / 2, bottom - (bottom - top) * base * step["apis"] / highest))
    for a, b in itertools.pairwise(ideal):
        _dashed(draw, a, b)


def _dashed(draw: ImageDraw.ImageDraw, a: tuple[float, float], b: tuple[float, float]) -> None:
    steps = 20
    for k in range(0, steps, 2):
        p = (a[0] + (b[0] - a[0]) * k / steps, a[1] + (b[1] - a[1]) * k / steps)
        q = (a[0] + (b[0] - a[0]) * (k + 1) / steps, a[1] + (b[1] - a[1]) * (k + 1) / steps)
        draw.line((p, q), fill=PALETTE[1], width=2)


def _axes(
    draw: ImageDraw.ImageDraw, box: tuple[int, int, int, int], highest: float, small: Font
) -> None:
    left, top, right, bottom = box
    draw.line((left, bottom, right, bottom), fill="#8a93a0")
    draw.line((left, top, left, bottom), fill="#8a93a0")
    for step in range(5):
        y = bottom - (bottom - top) * step / 4
        draw.line((left, y, right, y), fill="#d9dde3")
        draw.text(
            (left - 8, y), f"{highest * step / 4:.0f}", fill="#5b6472", font=small, anchor="rm"
        )


def _lines(
    draw: ImageDraw.ImageDraw,
    box: tuple[int, int, int, int],
    title: str,
    series: dict[str, list[tuple[float, float]]],
    unit: str,
    font: Font,
    small: Font,
) -> None:
    left, top, right, bottom = box
    draw.text((left, top - 40), title, fill="black", font=font)
    points = [p for s in series.values() for p in s]
    if not points:
        draw.text((left, top), "no samples", fill="#5b6472", font=small)
        return
    # Headroom above the highest line for the legend.
    highest = max(v for _, v in points) * (1.1 if len(series) == 1 else 1.45) or 1.0
    longest = max(t for t, _ in points) or 1.0
    _axes(draw, box, highest, small)
    draw.text(
        (right, bottom + 14), f"{longest:.0f} {unit}", fill="#5b6472", font=small, anchor="rm"
    )
    for index, (name, values) in enumerate(series.items()):
        colour = PALETTE[index % len(PALETTE)]
        xy = [
            (left + (right - left) * t / longest, bottom - (bottom - top) * v / highest)
            for t, v in values
        ]
        if len(xy) > 1:
            draw.line(xy, fill=colour, width=2)
        if len(series) > 1:
            legend_y = top + 6 + 14 * (index // 3)
            legend_x = left + 10 + 170 * (index % 3)
            draw.rectangle((legend_x, legend_y, legend_x + 10, legend_y + 10), fill=colour)
            draw.text((legend_x + 14, legend_y - 1), name, fill="black", font=small)
