"""Bargains against the database, for generated terms and generated crowds of helpers: however
the price, floor and number of helpers are chosen, and whatever repeats (same account, device or
network) are mixed in among the helpers, the stored cuts are positions 1..n with the seed's
amounts, the price is the start less their sum, the last helper needed lands exactly on the
floor, no helper, device or network counts twice, and the audit finds nothing."""

from __future__ import annotations

from datetime import timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from pintuan.audit.bargains import bargain_breaches
from pintuan.bargains import service
from pintuan.bargains.models import Bargain, BargainCut
from pintuan.domain.bargains import BargainTerms, cut_schedule
from pintuan.domain.roles import Principal, Role
from pintuan.errors import AppError
from pintuan.kit.time import utc_now
from pintuan.services import Services
from tests.concurrency.cluster import create_shoppers
from tests.factories import create_deal, create_merchant
from tests.features.test_bargains import seasoned
from tests.features.vouchering import sound
from tests.properties import walks

LIMITS = service.CutLimits(timedelta(0), 1, 1000)
OPERATOR = Principal("usr_system", Role.OPERATOR, "Operator", "en", "UTC", frozenset())


@st.composite
def bargains(draw: st.DrawFn) -> tuple[int, int, int, list[tuple[int, int, int]]]:
    """(list price, floor, helpers needed, attempts): each attempt names a helper, a device and
    a network out of small pools, so repeats of each happen."""
    helpers = draw(st.integers(min_value=2, max_value=8))
    list_price = draw(st.integers(min_value=helpers + 1, max_value=10**9))
    floor = draw(st.integers(min_value=1, max_value=list_price - helpers))
    pool = st.integers(min_value=0, max_value=helpers + 2)
    attempts = draw(st.lists(st.tuples(pool, pool, pool), min_size=1, max_size=3 * helpers))
    return list_price, floor, helpers, attempts


@settings(
    max_examples=walks(12),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(case=bargains())
def test_any_crowd_of_helpers_cuts_by_the_schedule_and_never_twice_from_one_source(
    services: Services, case: tuple[int, int, int, list[tuple[int, int, int]]]
) -> None:
    list_price, floor, helpers, attempts = case
    merchant = create_merchant(services.db)
    deal = create_deal(services.db, merchant, list_price=list_price, group_price=list_price - 1)
    crowd = create_shoppers(services, helpers + 4)
    seasoned(services, *crowd)
    owner = crowd.pop()
    now = utc_now()

    services.db.run_sync(
        lambda s: service.set_terms(
            s, OPERATOR, deal.id, BargainTerms(floor, helpers, 24), "USD", now
        )
    )
    bargain_id = services.db.run_raw_sync(
        lambda tx: service.open_bargain(tx, owner.user_id, deal.id, now).id
    )
    accepted: list[tuple[int, int, int]] = []
    refusals: list[str] = []
    for who, device, network in attempts:
        helper = service.helper_of("key", crowd[who].user_id, f"10.0.0.{network}", f"d{device}")
        try:
            services.db.run_raw_sync(
                lambda tx, h=helper: service.cut(tx, h, bargain_id, now, LIMITS)
            )
        except AppError as refused:
            refusals.append(refused.code)
        else:
            accepted.append((who, device, network))

    bargain = services.db.run_sync(lambda s: s.get(Bargain, bargain_id), write=False)
    cuts = services.db.run_sync(
        lambda s: list(
            s.scalars(
                select(BargainCut)
                .where(BargainCut.bargain_id == bargain_id)
                .order_by(BargainCut.position)
            )
        ),
        write=False,
    )
    assert bargain is not None
    schedule = cut_schedule(bargain.seed, list_price - floor, helpers)
    assert [c.position for c in cuts] == list(range(1, len(accepted) + 1))
    assert [c.amount for c in cuts] == schedule[: len(accepted)]
    assert bargain.price_amount == list_price - sum(schedule[: len(accepted)])
    assert len(accepted) <= helpers
    assert set(refusals) <= {
        "bargain_already_cut",
        "bargain_device_used",
        "bargain_address_used",
        "bargain_complete",
    }
    assert (bargain.price_amount == floor) == (len(accepted) == helpers)
    for source in range(3):
        used = [a[source] for a in accepted]
        assert len(used) == len(set(used))
    assert services.db.run_sync(bargain_breaches, write=False) == []
    sound(services)
