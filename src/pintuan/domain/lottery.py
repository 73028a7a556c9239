"""Lottery teams (抽奖团): after a team succeeds, ``winners`` of its seats are drawn; the others
are refunded in full. The draw is verifiable by anyone, with nothing but a hash function:

1. When the deal first goes live, the platform draws a secret seed (32 random bytes, written as
   64 hexadecimal characters) and publishes its **commitment**: ``sha256(seed)`` in hexadecimal.
2. When a team succeeds, each of its confirmed seats scores ``sha256(seed + ":" + team_id + ":" +
   seat_id)`` (hexadecimal, compared as text); the ``winners`` lowest scores win.
3. Once the deal has ended and none of its teams is still forming, the seed is **revealed**.
   Anyone then checks that ``sha256(seed)`` is the commitment published before any seat was
   taken, and recomputes every team's winners from the seed and the seat ids
   (``GET /v1/deals/{id}/lottery`` lists them; ``pintuan lottery verify`` does the whole check).

The seed stays secret until then, so no shopper can know, from their seat's id, whether it
would win before paying (and leave and come back until it does); the commitment, published
before the first seat, shows the seed was not chosen afterwards to favour anyone.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable

from pintuan.domain.deals import FieldProblem


def new_seed() -> str:
    return secrets.token_hex(32)


def commitment(seed: str) -> str:
    return hashlib.sha256(seed.encode("ascii")).hexdigest()


def score(seed: str, team_id: str, seat_id: str) -> str:
    return hashlib.sha256(f"{seed}:{team_id}:{seat_id}".encode("ascii")).hexdigest()


def draw(seed: str, team_id: str, seat_ids: Iterable[str], winners: int) -> frozenset[str]:
    """The seats of a team that win: the ``winners`` lowest scores (ties, which sha256 makes
    vanishingly unlikely, go to the lower seat id)."""
    ranked = sorted(seat_ids, key=lambda seat_id: (score(seed, team_id, seat_id), seat_id))
    return frozenset(ranked[:winners])


def winners_problems(winners: int, team_size: int) -> list[FieldProblem]:
    if not 1 <= winners < team_size:
        return [
            FieldProblem(
                "lottery.winners", f"must be 1 to {team_size - 1}: fewer than the team's size"
            )
        ]
    return []


def verify(
    seed: str, published: str, winners: int, draws: Iterable[tuple[str, list[str], list[str]]]
) -> list[str]:
    """Every way a lottery's record disagrees with its revealed seed: the seed against the
    published commitment, then each team's winners (team id, its drawn seats, the seats it
    says won) against the draw recomputed. Empty: the lottery was fair as published."""
    problems = []
    if commitment(seed) != published:
        problems.append(
            f"the seed's sha256 is {commitment(seed)}, not the published commitment {published}"
        )
    for team_id, seat_ids, won in draws:
        expected = draw(seed, team_id, seat_ids, winners)
        if expected != frozenset(won):
            problems.append(
                f"team {team_id}: recorded winners {sorted(won)}, the seed draws {sorted(expected)}"
            )
    return problems
