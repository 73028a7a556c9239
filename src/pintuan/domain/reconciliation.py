"""Reconciliation: our ledger's money movements against a provider's statement, item by item."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum

from pintuan.domain.payments import RecordKind


class Difference(StrEnum):
    MISSING = "missing"  # on the provider's statement, not in our ledger
    EXTRA = "extra"  # in our ledger, not on the provider's statement
    DIFFERENT = "different"  # on both, with another amount or currency


@dataclass(frozen=True, slots=True)
class Movement:
    """One money movement of one payment, as either side records it."""

    provider_ref: str
    kind: RecordKind
    amount: int
    currency: str
    source_id: str  # our journal id, or the provider's record id


@dataclass(frozen=True, slots=True)
class Finding:
    difference: Difference
    provider_ref: str
    kind: RecordKind
    ours: Movement | None
    theirs: Movement | None


@dataclass
class Reconciliation:
    matched: int = 0
    findings: list[Finding] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not self.findings


def reconcile(ours: Iterable[Movement], theirs: Iterable[Movement]) -> Reconciliation:
    """Pair movements by (provider ref, kind); several of one kind for one payment (partial
    refunds) pair by amount first, so only the ones that truly differ are reported."""
    result = Reconciliation()
    ours_by_key: dict[tuple[str, RecordKind], list[Movement]] = {}
    for movement in ours:
        ours_by_key.setdefault((movement.provider_ref, movement.kind), []).append(movement)
    theirs_by_key: dict[tuple[str, RecordKind], list[Movement]] = {}
    for movement in theirs:
        theirs_by_key.setdefault((movement.provider_ref, movement.kind), []).append(movement)
    for key in sorted(set(ours_by_key) | set(theirs_by_key)):
        mine = sorted(ours_by_key.get(key, []), key=lambda m: (m.amount, m.source_id))
        other = sorted(theirs_by_key.get(key, []), key=lambda m: (m.amount, m.source_id))
        for movement in list(mine):
            twin = next(
                (
                    t
                    for t in other
                    if (t.amount, t.currency) == (movement.amount, movement.currency)
                ),
                None,
            )
            if twin is not None:
                mine.remove(movement)
                other.remove(twin)
                result.matched += 1
        for a, b in zip(mine, other, strict=False):
            result.findings.append(Finding(Difference.DIFFERENT, key[0], key[1], a, b))
        for a in mine[len(other) :]:
            result.findings.append(Finding(Difference.EXTRA, key[0], key[1], a, None))
        for b in other[len(mine) :]:
            result.findings.append(Finding(Difference.MISSING, key[0], key[1], None, b))
    return result
