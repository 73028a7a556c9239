"""A refresh from the outbox patches the snapshot with the deals it names, read again: the result
must be the snapshot that assembling every deal and team anew would give, for any catalogue and
any change (prices, verticals, teams opening, filling and closing, deals ending), and what was
kept of unchanged items carries over while a changed item's is dropped."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from pintuan.feed.snapshot import DealEntry, Snapshot, TeamEntry, _assemble, _patched

NOW = datetime(2026, 12, 5, 6, 0, tzinfo=UTC)
VERTICALS = ("goods", "food", "movies", "travel")
DEALS = 12


def deal(n: int, vertical: str, list_price: int, group_price: int, country: str) -> DealEntry:
    return DealEntry(
        id=f"deal_{n:03d}",
        merchant_id=f"mer_{n % 3}",
        vertical=vertical,
        country=country,
        currency="EUR",
        is_partner=False,
        title=f"Deal {n}",
        image_urls=(),
        list_price=list_price,
        group_price=group_price,
        team_size=3,
        stock=100,
        committed=1,
        starts_at=NOW - timedelta(days=1),
        ends_at=NOW + timedelta(days=1),
        lat=None,
        lon=None,
    )


@st.composite
def deals(draw: st.DrawFn, n: int) -> DealEntry:
    list_price = draw(st.integers(100, 1000))
    return deal(
        n,
        draw(st.sampled_from(VERTICALS)),
        list_price,
        draw(st.integers(1, list_price)),
        draw(st.sampled_from(("DE", "FR", "CN"))),
    )


@st.composite
def teams_of(draw: st.DrawFn, deal_id: str, generation: int) -> list[TeamEntry]:
    count = draw(st.integers(0, 3))
    return [
        TeamEntry(
            f"team_{deal_id[5:]}_{generation}_{i}",
            deal_id,
            3,
            draw(st.integers(1, 2)),
            NOW - timedelta(minutes=draw(st.integers(1, 60))),
            NOW + timedelta(minutes=draw(st.integers(1, 60))),
        )
        for i in range(count)
    ]


@st.composite
def catalogues(draw: st.DrawFn, generation: int) -> tuple[dict[str, DealEntry], list[TeamEntry]]:
    """Some of the deals 0..DEALS-1 (live ones), and teams of any of them (a team of a deal
    not live is read but never shown)."""
    live = draw(st.sets(st.integers(0, DEALS - 1)))
    found = {d.id: d for d in (draw(deals(n)) for n in sorted(live))}
    teams = [t for n in range(DEALS) for t in draw(teams_of(f"deal_{n:03d}", generation))]
    return found, teams


def shape(snapshot: Snapshot) -> object:
    return (
        snapshot.deals,
        snapshot.teams,
        {v: [i.key for i in items] for v, items in snapshot.by_vertical.items() if items},
        snapshot.by_key,
        snapshot.countries,
        snapshot.last_event_id,
        snapshot.version,
    )


@settings(max_examples=300, deadline=None)
@given(
    before=catalogues(0),
    after=catalogues(1),
    changed=st.sets(st.integers(0, DEALS - 1)),
)
def test_a_patched_snapshot_is_the_one_assembled_anew(
    before: tuple[dict[str, DealEntry], list[TeamEntry]],
    after: tuple[dict[str, DealEntry], list[TeamEntry]],
    changed: set[int],
) -> None:
    old = _assemble(before[0], {t.id: t for t in before[1]}, 7, 1)
    deal_ids = {f"deal_{n:03d}" for n in changed}
    # What a refresh reads again: the changed deals as they are now, if still live, and their
    # teams.
    fresh_deals = {k: v for k, v in after[0].items() if k in deal_ids}
    fresh_teams = {t.id: t for t in after[1] if t.deal_id in deal_ids}
    # Assembled anew: the unchanged deals and teams as the old snapshot held them, the changed
    # ones as read again.
    deals = {k: v for k, v in old.deals.items() if k not in deal_ids} | fresh_deals
    teams = {k: v for k, v in old.teams.items() if v.deal_id not in deal_ids} | fresh_teams
    whole = _assemble(deals, teams, 9, 2)

    patched = _patched(old, deal_ids, _assemble(fresh_deals, fresh_teams, 9, 2))

    assert shape(patched) == shape(whole)


def test_what_was_kept_of_unchanged_items_carries_over_and_a_changed_items_does_not() -> None:
    a, b = deal(1, "goods", 1000, 500, "DE"), deal(2, "food", 1000, 600, "DE")
    old = _assemble({a.id: a, b.id: b}, {}, 1, 1)
    clock = NOW.timestamp()
    for item in old.by_key.values():
        old.candidate(item, False, clock)
    cheaper = deal(2, "food", 1000, 100, "DE")
    patched = _patched(old, {b.id}, _assemble({b.id: cheaper}, {}, 2, 2))

    kept_a = patched.candidate(patched.by_key[f"deal:{a.id}"], False, clock)
    assert kept_a is old.candidate(old.by_key[f"deal:{a.id}"], False, clock)
    new_b = patched.candidate(patched.by_key[f"deal:{b.id}"], False, clock)
    assert new_b is not old.candidate(old.by_key[f"deal:{b.id}"], False, clock)
    assert new_b[0].features != old.candidate(old.by_key[f"deal:{b.id}"], False, clock)[0].features
