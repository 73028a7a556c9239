"""Every refusal renders as an RFC 9457 problem with a stable machine code."""

from __future__ import annotations

import pytest

from pintuan.errors import (
    PROBLEM_JSON,
    AppError,
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
    RateLimited,
    Unauthenticated,
    field_error,
)


def test_a_problem_has_the_rfc_9457_members_and_the_code() -> None:
    # given a plain refusal
    error = AppError("The deal is not live.")

    # when it is rendered
    problem = error.problem()

    # then it has exactly the standard members plus the machine code
    assert problem == {
        "type": "/problems/bad_request",
        "title": "Bad request",
        "status": 400,
        "detail": "The deal is not live.",
        "code": "bad_request",
    }


def test_a_problem_names_the_instance_when_one_is_given() -> None:
    problem = AppError("nope").problem(instance="/api/v1/deals/deal_1")
    assert problem["instance"] == "/api/v1/deals/deal_1"


def test_a_problem_leaves_out_the_instance_when_none_is_given() -> None:
    assert "instance" not in AppError("nope").problem()


def test_a_problem_carries_extras_as_top_level_members() -> None:
    # given a refusal with extension members
    error = AppError("Sold out.", code="sold_out", extra={"deal_id": "deal_1", "left": 0})

    # when it is rendered
    problem = error.problem()

    # then the extras sit beside the standard members, as RFC 9457 extensions do
    assert problem["deal_id"] == "deal_1"
    assert problem["left"] == 0
    assert problem["code"] == "sold_out"


def test_a_custom_code_names_the_problem_type() -> None:
    problem = AppError("x", code="team_full").problem()
    assert problem["type"] == "/problems/team_full"
    assert problem["code"] == "team_full"


def test_status_and_title_can_be_set_for_one_refusal() -> None:
    # given a refusal with its own status and title
    error = AppError("Gone for good.", status=410, title="Gone")

    # when it is rendered / then those replace the defaults
    problem = error.problem()
    assert problem["status"] == 410
    assert problem["title"] == "Gone"


def test_overriding_one_refusal_leaves_the_class_defaults_alone() -> None:
    # given one refusal with overrides
    AppError("x", code="special", status=418, title="Teapot")

    # when another is made / then it still has the defaults
    assert AppError("y").problem()["code"] == "bad_request"
    assert AppError.code == "bad_request"
    assert AppError.status == 400


@pytest.mark.parametrize(
    ("error_class", "status", "code"),
    [
        (InvalidInput, 422, "validation_error"),
        (Unauthenticated, 401, "unauthenticated"),
        (Forbidden, 403, "forbidden"),
        (NotFound, 404, "not_found"),
        (Conflict, 409, "conflict"),
    ],
)
def test_each_kind_of_refusal_has_its_http_status_and_code(
    error_class: type[AppError], status: int, code: str
) -> None:
    # given a refusal of one kind / when it is rendered
    problem = error_class("detail").problem()

    # then it carries that kind's status, code and a title
    assert problem["status"] == status
    assert problem["code"] == code
    assert problem["type"] == f"/problems/{code}"
    assert problem["title"]


def test_a_refusal_is_an_exception_whose_message_is_its_detail() -> None:
    error = NotFound("No deal deal_1.")
    assert isinstance(error, Exception)
    assert str(error) == "No deal deal_1."
    assert error.detail == "No deal deal_1."


def test_a_refusal_has_no_extras_or_headers_by_default() -> None:
    error = Conflict("x")
    assert error.extra == {}
    assert error.headers == {}


def test_refusals_do_not_share_their_extras() -> None:
    # given two refusals made without extras
    first, second = AppError("a"), AppError("b")

    # when one gains an extra / then the other does not
    first.extra["seen"] = True
    assert "seen" not in second.problem()


def test_a_rate_limit_says_when_to_retry_in_the_body_and_the_header() -> None:
    # given too many attempts
    error = RateLimited("Too many logins.", retry_after_seconds=60)

    # when it is rendered
    problem = error.problem()

    # then the client learns when to try again, both ways
    assert problem["status"] == 429
    assert problem["code"] == "rate_limited"
    assert problem["retry_after_seconds"] == 60
    assert error.headers == {"Retry-After": "60"}


def test_a_field_error_names_the_field_like_request_parsing_errors_do() -> None:
    # given a refusal of one field
    error = field_error("timezone", "not an IANA time zone")

    # when it is rendered
    problem = error.problem()

    # then it is a 422 whose errors list names the field
    assert isinstance(error, InvalidInput)
    assert problem["status"] == 422
    assert problem["code"] == "validation_error"
    assert problem["detail"] == "timezone: not an IANA time zone"
    assert problem["errors"] == [{"field": "timezone", "message": "not an IANA time zone"}]


def test_a_field_error_can_carry_its_own_code() -> None:
    error = field_error("email", "already registered", code="email_taken")
    assert error.problem()["code"] == "email_taken"


def test_problems_are_served_as_problem_json() -> None:
    assert PROBLEM_JSON == "application/problem+json"
