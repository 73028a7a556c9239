"""The simulator's files: a regret curve and per-vertical impression shares as one PNG chart,
the same figures as CSV, and a JSON summary the operator console reads.

``pintuan feed simulate`` writes them into one directory (by default the setting
``PINTUAN_FEED_SIMULATION_DIR``, which the console shows); the figures themselves come from
``domain.feed_simulator``.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw, ImageFont

from pintuan.domain.feed import VERTICALS
from pintuan.domain.feed_simulator import SimulationResult

CHART = "chart.png"
REGRET_CSV = "regret.csv"
SHARES_CSV = "shares.csv"
SUMMARY = "summary.json"
COLOURS = {"random": "#8a93a0", "popularity": "#e4393c", "linucb": "#2f6fdf"}
WIDTH, HEIGHT = 1200, 520


def write_simulation(result: SimulationResult, out: Path) -> dict[str, Path]:
    """Write the chart, both CSV files and the summary into ``out`` (made if missing)."""
    out.mkdir(parents=True, exist_ok=True)
    paths = {name: out / name for name in (CHART, REGRET_CSV, SHARES_CSV, SUMMARY)}
    with paths[REGRET_CSV].open("w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file, lineterminator="\n")
        writer.writerow(
            ["visit", "policy", "clicks", "expected_clicks", "regret", "cumulative_regret"]
        )
        for name, run in result.runs.items():
            cumulative = 0.0
            for visit, (clicks, expected, regret) in enumerate(
                zip(run.clicks, run.expected, run.regret, strict=True), start=1
            ):
                cumulative += regret
                writer.writerow(
                    [
                        visit,
                        name,
                        int(clicks),
                        f"{expected:.4f}",
                        f"{regret:.4f}",
                        f"{cumulative:.4f}",
                    ]
                )
    with paths[SHARES_CSV].open("w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file, lineterminator="\n")
        writer.writerow(["policy", "vertical", "impressions", "share"])
        for name, run in result.runs.items():
            shares = run.shares()
            for vertical in VERTICALS:
                writer.writerow(
                    [name, vertical, run.impressions.get(vertical, 0), f"{shares[vertical]:.4f}"]
                )
    _chart(result).save(paths[CHART], format="PNG", optimize=True)
    paths[SUMMARY].write_text(json.dumps(result.summary(), indent=2), encoding="utf-8")
    return paths


def read_summary(out: Path) -> dict[str, Any] | None:
    """The latest simulation's summary in ``out``, or None when none was written there."""
    try:
        found = json.loads((out / SUMMARY).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return found if isinstance(found, dict) else None


def _chart(result: SimulationResult) -> Image.Image:
    image = Image.new("RGB", (WIDTH, HEIGHT), "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=14)
    small = ImageFont.load_default(size=12)
    _regret_panel(draw, result, (60, 40, 640, 460), font, small)
    _shares_panel(draw, result, (720, 40, 1180, 460), font, small)
    return image


def _regret_panel(
    draw: ImageDraw.ImageDraw,
    result: SimulationResult,
    box: tuple[int, int, int, int],
    font: ImageFont.FreeTypeFont | ImageFont.ImageFont,
    small: ImageFont.FreeTypeFont | ImageFont.ImageFont,
) -> None:
    left, top, right, bottom = box
    draw.text((left, top - 30), "Cumulative regret (expected clicks lost)", fill="black", font=font)
    curves = {}
    for name, run in result.runs.items():
        total, curve = 0.0, []
        for regret in run.regret:
            total += regret
            curve.append(total)
        curves[name] = curve
    highest = max((max(c, default=0.0) for c in curves.values()), default=0.0) or 1.0
    visits = max((len(c) for c in curves.values()), default=1) or 1
    draw.line((left, bottom, right, bottom), fill="#8a93a0")
    draw.line((left, top, left, bottom), fill="#8a93a0")
    for step in range(5):
        value = highest * step / 4
        y = bottom - (bottom - top) * step / 4
        draw.line((left, y, right, y), fill="#d9dde3")
        draw.text((left - 8, y), f"{value:.0f}", fill="#5b6472", font=small, anchor="rm")
    draw.text((right, bottom + 16), f"{visits} visits", fill="#5b6472", font=small, anchor="rm")
    for index, (name, curve) in enumerate(curves.items()):
        every = max(1, len(curve) // 400)
        points = [
            (left + (right - left) * (i + 1) / visits, bottom - (bottom - top) * v / highest)
            for i, v in enumerate(curve)
            if i % every == 0 or i == len(curve) - 1
        ]
        colour = COLOURS.get(name, "black")
        if len(points) > 1:
            draw.line(points, fill=colour, width=3)
        legend_y = top + 10 + 20 * index
        draw.rectangle((left + 14, legend_y, left + 30, legend_y + 12), fill=colour)
        total = result.runs[name].cumulative_reward
        draw.text(
            (left + 38, legend_y - 1), f"{name}: {total:.0f} clicks", fill="black", font=small
        )


def _shares_panel(
    draw: ImageDraw.ImageDraw,
    result: SimulationResult,
    box: tuple[int, int, int, int],
    font: ImageFont.FreeTypeFont | ImageFont.ImageFont,
    small: ImageFont.FreeTypeFont | ImageFont.ImageFont,
) -> None:
    left, top, right, bottom = box
    draw.text((left, top - 30), "Impressions per vertical", fill="black", font=font)
    draw.line((left, bottom, right, bottom), fill="#8a93a0")
    highest = max(
        (share for run in result.runs.values() for share in run.shares().values()), default=1.0
    )
    highest = max(highest, 0.05)
    group = (right - left) / len(VERTICALS)
    names = list(result.runs)
    bar = group * 0.8 / max(len(names), 1)
    for step in range(5):
        y = bottom - (bottom - top - 20) * step / 4
        draw.line((left, y, right, y), fill="#d9dde3")
        draw.text(
            (left - 6, y), f"{highest * step / 4:.0%}", fill="#5b6472", font=small, anchor="rm"
        )
    for g, vertical in enumerate(VERTICALS):
        x0 = left + group * g + group * 0.1
        for i, name in enumerate(names):
            share = result.runs[name].shares()[vertical]
            height = (bottom - top - 20) * share / highest
            draw.rectangle(
                (x0 + bar * i, bottom - height, x0 + bar * (i + 1) - 2, bottom),
                fill=COLOURS.get(name, "black"),
            )
        draw.text(
            (left + group * (g + 0.5), bottom + 16),
            vertical,
            fill="#5b6472",
            font=small,
            anchor="mm",
        )
