"""What operators decide about the feed: the rules around the policy (exploration, a least share
per vertical, pins, boosts, a cap per merchant), what each rewarded event is worth, and which
policies serve, with their traffic shares for an A/B test.

The settings (``PINTUAN_FEED_*``) give the defaults; operators' choices are one row of
``feed_config`` that every serving process reloads. A viewer's arm follows from a hash of their
pseudonym, so a viewer stays in one arm while the split stands.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from pintuan.config import Settings
from pintuan.domain.feed import VERTICALS, Rules
from pintuan.domain.feed_policies import POLICY_KINDS
from pintuan.errors import Conflict, InvalidInput
from pintuan.feed.state import LIVE, FeedConfig
from pintuan.kit.time import utc_now

REWARD_EVENTS = ("click", "join", "pay", "team_success")
MAX_ARMS = 5
MAX_PINS = 20
MAX_BOOSTS = 100
_ARM_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,39}$")
_PIN_KEY = re.compile(r"^(deal|team):[a-z]+_[0-9A-Z]{26}$")
_BOOST_KEY = re.compile(r"^((deal|team):)?[a-z]+_[0-9A-Z]{26}$")
# Each kind's parameters an operator may set, with their bounds.
_PARAMS: dict[str, dict[str, tuple[float, float]]] = {
    "random": {},
    "popularity": {"prior_mean": (0.0, 100.0), "prior_weight": (0.0, 10000.0)},
    "linucb": {"alpha": (0.0, 10.0), "ridge": (0.001, 1000.0)},
}


@dataclass(frozen=True, slots=True)
class Arm:
    """A policy serving a share of viewers."""

    name: str
    kind: str
    params: Mapping[str, float]
    share: float


@dataclass(frozen=True, slots=True)
class LiveConfig:
    rules: Rules
    weights: Mapping[str, float]
    arms: tuple[Arm, ...]
    version: int = 0
    updated_by: str | None = None
    stored: bool = False  # False: the settings' defaults, nothing saved yet

    def arm_for(self, pseudonym: str) -> Arm:
        """The arm a viewer is in: where their hash falls among the arms' shares."""
        if len(self.arms) == 1:
            return self.arms[0]
        digest = hashlib.sha256(f"feed-split:{pseudonym}".encode()).digest()
        point = int.from_bytes(digest[:8], "big") / 2**64
        total = 0.0
        for arm in self.arms:
            total += arm.share
            if point < total:
                return arm
        return self.arms[-1]


@dataclass
class Problems:
    errors: list[dict[str, str]] = field(default_factory=list)

    def add(self, where: str, message: str) -> None:
        self.errors.append({"field": where, "message": message})


def default_config(settings: Settings) -> LiveConfig:
    """The feed before any operator chose: the settings' policy and rules."""
    return LiveConfig(
        rules=Rules(
            exploration=settings.feed_exploration,
            min_share=dict.fromkeys(VERTICALS, settings.feed_min_share)
            if settings.feed_min_share
            else {},
            merchant_cap=settings.feed_merchant_cap or None,
        ),
        weights=default_weights(settings),
        arms=(Arm(settings.feed_policy, settings.feed_policy, {}, 1.0),),
    )


def default_weights(settings: Settings) -> dict[str, float]:
    return {
        "click": settings.feed_reward_click,
        "join": settings.feed_reward_join,
        "pay": settings.feed_reward_pay,
        "team_success": settings.feed_reward_team_success,
    }


def rules_json(rules: Rules, weights: Mapping[str, float]) -> dict[str, Any]:
    """The rules as stored and logged with every slate (``feed_impressions.rules``)."""
    return {
        "exploration": rules.exploration,
        "min_share": dict(rules.min_share),
        "pins": {str(position): key for position, key in rules.pins.items()},
        "boosts": dict(rules.boosts),
        "merchant_cap": rules.merchant_cap,
        "reward_weights": dict(weights),
    }


def arms_json(arms: Sequence[Arm]) -> list[dict[str, Any]]:
    return [
        {"name": a.name, "kind": a.kind, "params": dict(a.params), "share": a.share} for a in arms
    ]


def _numbers_by_name(
    given: object,
    where: str,
    name_ok: Callable[[Any], bool],
    name_rule: str,
    bounds: tuple[float, float],
    problems: Problems,
) -> dict[str, float]:
    """A mapping of names to numbers within ``bounds``: each bad name or number is named in
    ``problems`` (the name's rule first), and only the good pairs are kept."""
    low, high = bounds
    kept: dict[str, float] = {}
    for name, raw in dict(given or {}).items():  # type: ignore[call-overload]
        value = _number(raw)
        if not name_ok(name):
            problems.add(f"{where}.{name}", name_rule)
        elif value is None or not low <= value <= high:
            problems.add(f"{where}.{name}", f"a number from {low:g} to {high:g}")
        else:
            kept[name] = value
    return kept


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def parse_config(
    rules: Mapping[str, Any], arms: Sequence[Mapping[str, Any]], settings: Settings
) -> LiveConfig:
    """Operators' rules and arms checked whole: every problem is named at once (422
    ``feed_rules_invalid``), and nothing is kept unless all of it is right."""
    problems = Problems()
    exploration = _number(rules.get("exploration", settings.feed_exploration))
    if exploration is None or not 0.0 <= exploration <= 1.0:
        problems.add("rules.exploration", "a number from 0 to 1")
    min_share = _numbers_by_name(
        rules.get("min_share"),
        "rules.min_share",
        lambda vertical: vertical in VERTICALS,
        f"not a vertical ({', '.join(VERTICALS)})",
        (0.0, 1.0),
        problems,
    )
    if sum(min_share.values()) > 1.0 + 1e-9:
        problems.add("rules.min_share", "the shares add up to more than 1")
    pins: dict[int, str] = {}
    raw_pins = dict(rules.get("pins") or {})
    if len(raw_pins) > MAX_PINS:
        problems.add("rules.pins", f"at most {MAX_PINS} pins")
    for position, key in raw_pins.items():
        where = f"rules.pins.{position}"
        if not str(position).isdigit() or not 0 <= int(str(position)) < 100:
            problems.add(where, "a position from 0 to 99")
        elif not isinstance(key, str) or not _PIN_KEY.match(key):
            problems.add(where, "deal:<deal id> or team:<team id>")
        elif key in pins.values():
            problems.add(where, "pinned twice")
        else:
            pins[int(str(position))] = key
    raw_boosts = dict(rules.get("boosts") or {})
    if len(raw_boosts) > MAX_BOOSTS:
        problems.add("rules.boosts", f"at most {MAX_BOOSTS} boosts")
    boosts = _numbers_by_name(
        raw_boosts,
        "rules.boosts",
        lambda key: isinstance(key, str) and _BOOST_KEY.match(key) is not None,
        "deal:<id>, team:<id> or a merchant id",
        (-100.0, 100.0),
        problems,
    )
    cap_value = rules.get("merchant_cap", settings.feed_merchant_cap or None)
    cap: int | None = None
    if cap_value is not None:
        if isinstance(cap_value, bool) or not isinstance(cap_value, int) or not cap_value >= 1:
            problems.add("rules.merchant_cap", "a whole number of at least 1, or null for none")
        else:
            cap = cap_value
    weights = default_weights(settings) | _numbers_by_name(
        rules.get("reward_weights"),
        "rules.reward_weights",
        lambda event: event in REWARD_EVENTS,
        f"one of {', '.join(REWARD_EVENTS)}",
        (0.0, 100.0),
        problems,
    )
    parsed_arms = _parse_arms(arms, problems)
    if problems.errors:
        raise InvalidInput(
            "The feed's rules are not valid: "
            + "; ".join(f"{e['field']}: {e['message']}" for e in problems.errors),
            code="feed_rules_invalid",
            extra={"errors": problems.errors},
        )
    return LiveConfig(
        rules=Rules(
            exploration=exploration if exploration is not None else 0.0,
            min_share=min_share,
            pins=pins,
            boosts=boosts,
            merchant_cap=cap,
        ),
        weights=weights,
        arms=tuple(parsed_arms),
    )


def _parse_arms(arms: Sequence[Mapping[str, Any]], problems: Problems) -> list[Arm]:
    if not 1 <= len(arms) <= MAX_ARMS:
        problems.add("arms", f"one to {MAX_ARMS} policies")
        return []
    parsed: list[Arm] = []
    for index, arm in enumerate(arms):
        where = f"arms.{index}"
        name, kind = arm.get("name"), arm.get("kind")
        share = _number(arm.get("share"))
        if not isinstance(name, str) or not _ARM_NAME.match(name):
            problems.add(f"{where}.name", "lower-case letters, digits, - and _, up to 40")
            continue
        if kind not in POLICY_KINDS:
            problems.add(f"{where}.kind", f"one of {', '.join(POLICY_KINDS)}")
            continue
        if share is None or not 0.0 < share <= 1.0:
            problems.add(f"{where}.share", "a number above 0, at most 1")
            continue
        if any(a.name == name for a in parsed):
            problems.add(f"{where}.name", "two policies of one name")
            continue
        params: dict[str, float] = {}
        allowed = _PARAMS[str(kind)]
        for key, value in dict(arm.get("params") or {}).items():
            number = _number(value)
            if key not in allowed:
                problems.add(
                    f"{where}.params.{key}", f"{kind} takes {', '.join(allowed) or 'none'}"
                )
            elif number is None or not allowed[key][0] <= number <= allowed[key][1]:
                low, high = allowed[key]
                problems.add(f"{where}.params.{key}", f"a number from {low:g} to {high:g}")
            else:
                params[key] = number
        parsed.append(Arm(name, str(kind), params, share))
    if parsed and len(parsed) == len(arms) and abs(sum(a.share for a in parsed) - 1.0) > 1e-6:
        problems.add("arms", "the shares must add up to 1")
    return parsed


def read_config(session: Session, settings: Settings) -> LiveConfig:
    """The feed's rules and policies in force: operators' if saved, else the settings'."""
    row = session.scalar(select(FeedConfig).where(FeedConfig.id == LIVE))
    if row is None:
        return default_config(settings)
    try:
        found = parse_config(row.rules, row.arms, settings)
    except InvalidInput:
        # Saved under other bounds (an older release): serve the defaults rather than nothing.
        return default_config(settings)
    return LiveConfig(
        found.rules, found.weights, found.arms, row.version, row.updated_by, stored=True
    )


def save_config(
    session: Session,
    settings: Settings,
    rules: Mapping[str, Any],
    arms: Sequence[Mapping[str, Any]],
    by: str,
    expected_version: int | None = None,
) -> LiveConfig:
    """Check and keep operators' rules and policies; the version goes up by one. With
    ``expected_version`` another operator's save in between is refused (409
    ``feed_rules_changed``) rather than overwritten."""
    parsed = parse_config(rules, arms, settings)
    row = session.scalar(select(FeedConfig).where(FeedConfig.id == LIVE).with_for_update())
    current = row.version if row is not None else 0
    if expected_version is not None and expected_version != current:
        raise Conflict(
            "Another operator changed the feed's rules since you read them; read them again.",
            code="feed_rules_changed",
            extra={"version": current},
        )
    stored_rules = rules_json(parsed.rules, parsed.weights)
    stored_arms = arms_json(parsed.arms)
    now = utc_now()
    if row is None:
        row = FeedConfig(
            id=LIVE,
            rules=stored_rules,
            arms=stored_arms,
            version=1,
            updated_at=now,
            updated_by=by,
        )
        session.add(row)
    else:
        row.rules, row.arms, row.version = stored_rules, stored_arms, row.version + 1
        row.updated_at, row.updated_by = now, by
    session.flush()
    return LiveConfig(parsed.rules, parsed.weights, parsed.arms, row.version, by, stored=True)
