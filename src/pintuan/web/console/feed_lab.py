"""The operator console's feed lab: the latest simulation (its chart and figures) and a form
that judges a policy on the logged slates of a range of days, estimates beside the logged
value.

The evaluation replays thousands of slates and resamples them; it runs in a worker thread with
its own database session, never on the event loop, and on at most ``LAB_SLATES`` of the
latest slates in the range so that a page answers in seconds.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import anyio
from babel.numbers import format_decimal, format_percent
from fastapi import Request, Response
from fastapi.responses import FileResponse, HTMLResponse
from sqlalchemy.orm import Session

from pintuan.domain.feed import VERTICALS
from pintuan.domain.feed_policies import POLICY_KINDS
from pintuan.errors import AppError, NotFound
from pintuan.feed.evaluation import EvaluationReport, evaluate_policy, reward_weights
from pintuan.feed.simulation import CHART, read_summary
from pintuan.kit.routing import Router
from pintuan.web.console import shared
from pintuan.web.kit.errors import error_message
from pintuan.web.kit.i18n import N_, gettext, request_locale
from pintuan.web.kit.rendering import render
from pintuan.web.kit.services import services_of
from pintuan.web.kit.session import Operator

router = Router(prefix="/console/operator/feed", include_in_schema=False)

LAB_SLATES = 5000
LAB_ROUNDS = 1000


def _day(value: str | None) -> date | None:
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        return None


def _simulation(folder: Path, locale: str) -> dict[str, Any] | None:
    summary = read_summary(folder)
    if summary is None:
        return None
    policies = summary.get("policies", {})
    return {
        "visits": summary.get("visits"),
        "slots": summary.get("slots"),
        "seed": summary.get("seed"),
        "rows": [
            {
                "policy": name,
                "reward": format_decimal(round(figures["cumulative_reward"]), locale=locale),
                "regret": format_decimal(round(figures["cumulative_regret"], 1), locale=locale),
                "shares": [
                    format_percent(figures["shares"].get(v, 0.0), "#,##0.0%", locale=locale)
                    for v in VERTICALS
                ],
            }
            for name, figures in policies.items()
        ],
        "chart": (folder / CHART).is_file(),
    }


@router.get("/lab", response_class=HTMLResponse)
async def feed_lab(
    request: Request,
    principal: Operator,
    policy: str | None = None,
    first: str | None = None,
    last: str | None = None,
) -> Response:
    """The latest simulation, and a policy judged on the logged slates when asked."""
    services = services_of(request)
    locale = request_locale(request, principal)
    context: dict[str, Any] = {
        "tab": "feedlab",
        "labels": shared,
        "verticals": VERTICALS,
        "kinds": POLICY_KINDS,
        "simulation": _simulation(services.settings.feed_simulation_dir, locale),
        "policy": (policy or "")[:40],
        "first": (first or "")[:10],
        "last": (last or "")[:10],
        "number": lambda v: format_decimal(round(v, 4), locale=locale),
        "lab_slates": LAB_SLATES,
    }
    if policy or first or last:
        first_day, last_day = _day(first), _day(last)
        if not policy or first_day is None or last_day is None:
            context["error"] = gettext(locale, N_("Name a policy and choose both days."))
        else:
            weights = reward_weights(services.settings)

            def work(session: Session) -> EvaluationReport:
                return evaluate_policy(
                    session,
                    policy[:40],
                    {},
                    first_day,
                    last_day,
                    weights,
                    rounds=LAB_ROUNDS,
                    limit=LAB_SLATES,
                )

            try:
                report = await anyio.to_thread.run_sync(
                    lambda: services.db.run_sync(work, write=False)
                )
                context["report"] = report
                context["estimates"] = [
                    (name.upper(), estimate)
                    for name, estimate in report.evaluation.estimates().items()
                ]
            except AppError as refused:
                if refused.status >= 500:
                    raise
                context["error"] = error_message(refused, locale)
    return await render(request, "operator/feed_lab.html", context)


@router.get("/lab/chart.png")
async def feed_lab_chart(request: Request, principal: Operator) -> Response:
    """The latest simulation's chart."""
    path = services_of(request).settings.feed_simulation_dir / CHART
    if not path.is_file():
        raise NotFound("No simulation has been run yet: run pintuan feed simulate.")
    return FileResponse(path, media_type="image/png", headers={"Cache-Control": "no-store"})
