"""The address formats of the countries Pintuan delivers in: required fields, postcodes, and
every problem reported at once."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pintuan.domain.addresses import (
    COUNTRIES,
    FIELDS,
    FORMATS,
    MAX_LENGTHS,
    Address,
    AddressInvalid,
    address_lines,
    check_address,
)

GOOD: dict[str, dict[str, str]] = {
    "CN": {
        "region": "浙江省",
        "city": "杭州市",
        "district": "西湖区",
        "line1": "文三路 90 号",
        "postcode": "310012",
    },
    "US": {
        "line1": "350 Fifth Avenue",
        "city": "New York",
        "region": "NY",
        "postcode": "10118-0110",
    },
    "GB": {"line1": "10 Downing Street", "city": "London", "postcode": "sw1a2aa"},
    "DE": {"line1": "Unter den Linden 77", "city": "Berlin", "postcode": "10117"},
    "FR": {"line1": "5 Avenue Anatole France", "city": "Paris", "postcode": "75007"},
    "ID": {
        "line1": "Jl. M.H. Thamrin No. 1",
        "city": "Jakarta Pusat",
        "region": "DKI Jakarta",
        "postcode": "10310",
    },
    "JP": {"line1": "千代田 1-1", "city": "千代田区", "region": "東京都", "postcode": "1008111"},
    "SG": {"line1": "1 Fullerton Road", "postcode": "049213"},
}
BAD_POSTCODES = {
    "CN": "31001",
    "US": "1011",
    "GB": "12345",
    "DE": "1011",
    "FR": "750071",
    "ID": "1031",
    "JP": "100-81",
    "SG": "04921",
}
PERSON = {"recipient": "Lin Mei", "phone": "+65 6123 4567"}


def typed(country: str, **overrides: str) -> dict[str, Any]:
    return {**PERSON, "country": country, **GOOD[country], **overrides}


def problems(address: dict[str, Any]) -> dict[str, str]:
    with pytest.raises(AddressInvalid) as refused:
        check_address(address)
    return {p.field: p.reason for p in refused.value.problems}


def test_every_country_the_merchants_sell_in_has_a_format() -> None:
    assert set(COUNTRIES) >= {"CN", "US", "GB", "DE", "FR", "ID", "JP", "SG"}


@pytest.mark.parametrize("country", sorted(GOOD))
def test_a_good_address_of_each_country_passes(country: str) -> None:
    address = check_address(typed(country))

    assert address.country == country
    assert address.lines()[-1] == country


@pytest.mark.parametrize("country", sorted(GOOD))
def test_each_required_field_left_empty_is_named(country: str) -> None:
    required = FORMATS[country].required - {"country"}
    emptied = typed(country, **dict.fromkeys(required, ""))

    assert problems(emptied) == dict.fromkeys(required, "required")


@pytest.mark.parametrize("country", sorted(BAD_POSTCODES))
def test_a_postcode_of_the_wrong_shape_is_refused_with_an_example(country: str) -> None:
    with pytest.raises(AddressInvalid) as refused:
        check_address(typed(country, postcode=BAD_POSTCODES[country]))

    [problem] = refused.value.problems
    assert (problem.field, problem.reason) == ("postcode", "postcode_format")
    assert FORMATS[country].postcode_example in problem.message


def test_postcodes_are_written_the_way_the_post_prints_them() -> None:
    assert check_address(typed("GB", postcode="sw1a2aa")).postcode == "SW1A 2AA"
    assert check_address(typed("JP", postcode="1008111")).postcode == "100-8111"
    assert check_address(typed("US", postcode="101180110")).postcode == "10118-0110"
    assert check_address(typed("US", region="ny")).region == "NY"


def test_every_problem_of_an_address_is_reported_at_once() -> None:
    found = problems(
        {
            "country": "US",
            "recipient": "",
            "phone": "call me",
            "line1": "1 Main St",
            "city": "Springfield",
            "region": "ZZ",
            "postcode": "ABCDE",
        }
    )

    assert found == {
        "recipient": "required",
        "phone": "phone_format",
        "region": "unknown_region",
        "postcode": "postcode_format",
    }


def test_an_unknown_country_names_the_countries_delivered_to() -> None:
    with pytest.raises(AddressInvalid) as refused:
        check_address({**typed("SG"), "country": "BR"})

    [problem] = refused.value.problems
    assert problem.reason == "unknown_country"
    assert "SG" in problem.message


def test_fields_a_country_does_not_use_are_dropped() -> None:
    address = check_address(typed("SG", city="Singapore", region="Central", district="x"))

    assert (address.city, address.region, address.district) == ("", "", "")


def test_chinese_addresses_run_from_the_province_to_the_street() -> None:
    lines = address_lines(check_address(typed("CN")).as_dict())

    assert lines == ["310012", "浙江省 杭州市 西湖区", "文三路 90 号", "CN"]


def test_control_characters_and_overlong_fields_are_refused() -> None:
    assert problems(typed("DE", line1="A\x00B")) == {"line1": "invalid_characters"}
    assert problems(typed("DE", line2="x" * 201)) == {"line2": "too_long"}


field_text = st.text(max_size=250)


@given(
    country=st.sampled_from([*COUNTRIES, "", "XX", "cn"]),
    values=st.fixed_dictionaries({name: field_text for name in FIELDS if name != "country"}),
)
def test_any_typed_address_either_fits_its_format_or_is_refused_field_by_field(
    country: str, values: dict[str, str]
) -> None:
    address = _checked_or_problems({**values, "country": country})
    if isinstance(address, AddressInvalid):
        assert address.problems
        assert {p.field for p in address.problems} <= set(FIELDS)
        assert all(p.message for p in address.problems)
        return
    form = FORMATS[address.country]
    stored = address.as_dict()
    for name in FIELDS:
        value = stored[name]
        assert len(value) <= MAX_LENGTHS[name]
        assert value == value.strip()
        if name in form.required:
            assert value
        if name not in form.fields:
            assert value == ""
    if address.postcode:
        assert form.postcode is not None
        assert form.postcode.fullmatch(address.postcode)
    # Checking a checked address changes nothing.
    assert check_address(stored) == address


@given(country=st.sampled_from(COUNTRIES), data=st.data())
def test_a_checked_address_always_has_lines_for_the_courier(
    country: str, data: st.DataObject
) -> None:
    address = check_address(typed(country))
    lines = address.lines()

    assert lines[-1] == country
    assert all(line.strip() for line in lines)
    assert address.line1 in " ".join(lines)


def _checked_or_problems(typed: dict[str, Any]) -> Address | AddressInvalid:
    try:
        return check_address(typed)
    except AddressInvalid as refused:
        return refused


@st.composite
def valid_typed(draw: st.DrawFn) -> dict[str, str]:
    """An address that fits its country's format, as a shopper might type it (any case, spaces
    around the words)."""
    country = draw(st.sampled_from(COUNTRIES))
    form = FORMATS[country]
    words = st.text(
        alphabet=st.characters(categories=("L", "N", "Zs")), min_size=1, max_size=40
    ).filter(str.strip)
    typed = {name: draw(words) for name in form.fields if name != "country"}
    typed["phone"] = draw(st.from_regex(r"\+?[1-9][0-9]{5,14}", fullmatch=True))
    if form.postcode is not None and "postcode" in typed:
        typed["postcode"] = draw(st.from_regex(form.postcode, fullmatch=True))
    if form.regions:
        typed["region"] = draw(st.sampled_from(sorted(form.regions))).lower()
    return {**typed, "country": draw(st.sampled_from([country, country.lower()]))}


@given(valid_typed())
def test_an_address_that_fits_its_format_passes_and_checking_it_again_changes_nothing(
    typed: dict[str, str],
) -> None:
    address = check_address(typed)

    assert address.country == typed["country"].upper()
    assert check_address(address.as_dict()) == address
    if address.postcode:
        form = FORMATS[address.country]
        assert form.postcode is not None
        assert form.postcode.fullmatch(address.postcode)
