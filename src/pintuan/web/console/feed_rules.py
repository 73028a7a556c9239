"""The operator console's page for the feed's rules and live policies: exploration, the least
share per vertical, pins, boosts, the cap per merchant, what each reward is worth, and which
policy serves (or an A/B split of up to three). The same checks as ``PUT /v1/operator/feed``."""

from __future__ import annotations

from typing import Any

from fastapi import Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlalchemy.orm import Session

from pintuan.domain.feed import VERTICALS
from pintuan.domain.feed_policies import POLICY_KINDS
from pintuan.errors import AppError
from pintuan.feed import service as feed
from pintuan.feed.rules import REWARD_EVENTS, LiveConfig
from pintuan.feed.serving import feed_runtime
from pintuan.kit.routing import Router
from pintuan.web.kit.csrf import CsrfProtected
from pintuan.web.kit.errors import error_message
from pintuan.web.kit.forms import form_fields, run_form_write
from pintuan.web.kit.i18n import request_locale
from pintuan.web.kit.rendering import render
from pintuan.web.kit.services import services_of
from pintuan.web.kit.session import Operator
from pintuan.web.shopper.shopping import VERTICALS as VERTICAL_NAMES

router = Router(prefix="/console/operator", include_in_schema=False)

ARM_ROWS = 3
PAGE = "/console/operator/feed/rules"


def _number(text: str | None) -> Any:
    """A number typed in a form, or the text itself so that the rules' check names the field."""
    value = (text or "").strip()
    try:
        return int(value) if value.lstrip("-").isdigit() else float(value)
    except ValueError:
        return value


def parse_rules_form(fields: dict[str, str]) -> tuple[dict[str, Any], list[dict[str, Any]], int]:
    """The page's form as the API's body: rules, arms and the version read."""
    pins: dict[str, str] = {}
    for line in fields.get("pins", "").splitlines():
        position, _, key = line.strip().partition(" ")
        if position:
            pins[position] = key.strip()
    boosts: dict[str, Any] = {}
    for line in fields.get("boosts", "").splitlines():
        key, _, value = line.strip().partition(" ")
        if key:
            boosts[key] = _number(value)
    cap = fields.get("merchant_cap", "").strip()
    rules = {
        "exploration": _number(fields.get("exploration")),
        "min_share": {
            v: _number(fields.get(f"share_{v}"))
            for v in VERTICALS
            if fields.get(f"share_{v}", "").strip()
        },
        "pins": pins,
        "boosts": boosts,
        "merchant_cap": _number(cap) if cap else None,
        "reward_weights": {
            e: _number(fields.get(f"weight_{e}"))
            for e in REWARD_EVENTS
            if fields.get(f"weight_{e}", "").strip()
        },
    }
    arms: list[dict[str, Any]] = []
    for row in range(ARM_ROWS):
        name = fields.get(f"arm_name_{row}", "").strip()
        if not name:
            continue
        kind = fields.get(f"arm_kind_{row}", "")
        alpha = fields.get(f"arm_alpha_{row}", "").strip()
        arms.append(
            {
                "name": name,
                "kind": kind,
                "share": _number(fields.get(f"arm_share_{row}")),
                "params": {"alpha": _number(alpha)} if alpha and kind == "linucb" else {},
            }
        )
    version = fields.get("version", "").strip()
    return rules, arms, int(version) if version.isdigit() else 0


def _form_of(config: LiveConfig) -> dict[str, str]:
    rules = config.rules
    form = {
        "exploration": f"{rules.exploration:g}",
        "merchant_cap": str(rules.merchant_cap or ""),
        "pins": "\n".join(f"{p} {k}" for p, k in sorted(rules.pins.items())),
        "boosts": "\n".join(f"{k} {v:g}" for k, v in rules.boosts.items()),
        "version": str(config.version),
    }
    form.update({f"share_{v}": f"{rules.min_share[v]:g}" for v in rules.min_share})
    form.update({f"weight_{e}": f"{w:g}" for e, w in config.weights.items()})
    for row, arm in enumerate(config.arms):
        form[f"arm_name_{row}"] = arm.name
        form[f"arm_kind_{row}"] = arm.kind
        form[f"arm_share_{row}"] = f"{arm.share:g}"
        if "alpha" in arm.params:
            form[f"arm_alpha_{row}"] = f"{arm.params['alpha']:g}"
    return form


async def _page(
    request: Request,
    principal: Any,
    form: dict[str, str] | None = None,
    errors: list[dict[str, str]] | None = None,
    problem: str | None = None,
    status_code: int = 200,
) -> Response:
    services = services_of(request)
    config = await services.db.read(feed.read_feed_config, principal, services.settings)
    context = {
        "tab": "feed",
        "config": config,
        "form": form or _form_of(config),
        "errors": errors or [],
        "problem": problem,
        "verticals": VERTICALS,
        "vertical_names": VERTICAL_NAMES,
        "events": REWARD_EVENTS,
        "kinds": POLICY_KINDS,
        "arm_rows": range(ARM_ROWS),
        "saved": request.query_params.get("saved") == "1",
    }
    return await render(request, "operator/feed_rules.html", context, status_code=status_code)


@router.get("/feed/rules", response_class=HTMLResponse)
async def feed_rules_page(request: Request, principal: Operator) -> Response:
    """The feed's rules and live policies, to read and change."""
    return await _page(request, principal)


@router.post("/feed/rules", response_class=HTMLResponse, dependencies=[CsrfProtected])
async def change_feed_rules(request: Request, principal: Operator) -> Response:
    """Save the form's rules and policies; every serving process takes them up."""
    fields = await form_fields(request)
    rules, arms, version = parse_rules_form(fields)
    services = services_of(request)

    def work(session: Session) -> dict[str, Any]:
        saved = feed.change_feed_config(session, principal, services.settings, rules, arms, version)
        return {"version": saved.version}

    try:
        await run_form_write(request, services, principal, work)
    except AppError as refused:
        if refused.code not in ("feed_rules_invalid", "feed_rules_changed"):
            raise
        return await _page(
            request,
            principal,
            form=fields,
            errors=list(refused.extra.get("errors", [])),
            problem=error_message(refused, request_locale(request, principal)),
            status_code=refused.status,
        )
    runtime = feed_runtime(request)
    runtime.use_config(await services.db.read(feed.read_feed_config, principal, services.settings))
    return RedirectResponse(f"{PAGE}?saved=1", status_code=303)
