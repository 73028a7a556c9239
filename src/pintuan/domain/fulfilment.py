"""Fulfilment of goods: where a seat's parcel goes, when it left and when it arrived.

Only seats of deals in the ``goods`` vertical are shipped. A seat's shipment is one row, made
when the shopper first chooses a delivery address (at checkout, or after the team succeeded)::

    (none) ──choose address──▶ addressed ──merchant ships──▶ shipped ──shopper / N days──▶ received
                                  │  ▲
                                  └──┘ choose another address (only until shipped)

- ``addressed``: the chosen address is copied onto the shipment as a snapshot; later edits or
  deletions in the address book never reach it. The shopper may choose again until it ships.
- ``shipped``: the merchant's staff recorded a carrier and tracking number. Only a seat whose
  team succeeded (``confirmed``) ships. Marking it shipped again with the same carrier and number
  is the same fact and changes nothing; with another one it is refused (``already_shipped``).
- ``received``: the shopper confirmed receipt, or the worker did it ``auto_receive_days`` after
  shipping. Whichever comes first wins; the other finds it received and changes nothing.

Every transition is one conditional write (``… WHERE status = <from>``): two staff shipping the
same order, or a receipt racing the auto-confirmation, end in exactly one state with one event.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class ShipmentStatus(StrEnum):
    ADDRESSED = "addressed"
    SHIPPED = "shipped"
    RECEIVED = "received"


class QueueState(StrEnum):
    """Where a succeeded seat of goods stands for the merchant's shipping queue."""

    AWAITING_ADDRESS = "awaiting_address"
    TO_SHIP = "to_ship"
    SHIPPED = "shipped"
    RECEIVED = "received"


class ReceivedBy(StrEnum):
    SHOPPER = "shopper"
    AUTO = "auto"


def queue_state(shipment_status: str | None) -> QueueState:
    """The queue's word for a succeeded seat whose shipment is ``shipment_status`` (None: the
    shopper has not chosen an address yet)."""
    if shipment_status is None:
        return QueueState.AWAITING_ADDRESS
    return {
        ShipmentStatus.ADDRESSED.value: QueueState.TO_SHIP,
        ShipmentStatus.SHIPPED.value: QueueState.SHIPPED,
        ShipmentStatus.RECEIVED.value: QueueState.RECEIVED,
    }[shipment_status]


CARRIER_MAX = 60
# Tracking numbers of the world's carriers: letters, digits and dashes (UPS 1Z…, SF Express SF…,
# Royal Mail AB123456789GB, DHL 10 digits); spaces as people type them are dropped.
_TRACKING = re.compile(r"[A-Z0-9][A-Z0-9\-]{3,39}")


@dataclass(frozen=True, slots=True)
class Dispatch:
    """A checked carrier and tracking number."""

    carrier: str
    tracking_number: str


class DispatchInvalid(ValueError):
    """Carrier or tracking number is unusable; ``problems`` maps each field to why."""

    def __init__(self, problems: dict[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in problems.items()))
        self.problems = problems


def check_dispatch(carrier: object, tracking_number: object) -> Dispatch:
    """Trim the carrier's name and normalise the tracking number (upper case, no spaces);
    every problem at once (:class:`DispatchInvalid`)."""
    name = " ".join(str(carrier or "").split())
    number = re.sub(r"\s", "", str(tracking_number or "")).upper()
    problems: dict[str, str] = {}
    if not name:
        problems["carrier"] = "Enter the carrier's name."
    elif not name.isprintable():
        problems["carrier"] = "Remove the control characters from the carrier's name."
    elif len(name) > CARRIER_MAX:
        problems["carrier"] = f"Keep the carrier's name to {CARRIER_MAX} characters."
    if not number:
        problems["tracking_number"] = "Enter the tracking number."
    elif not _TRACKING.fullmatch(number):
        problems["tracking_number"] = (
            "A tracking number is 4 to 40 letters, digits or dashes, e.g. 1Z999AA10123456784."
        )
    if problems:
        raise DispatchInvalid(problems)
    return Dispatch(name, number)


class Step(StrEnum):
    PAID = "paid"
    TEAM_SUCCEEDED = "team_succeeded"
    ADDRESS = "address"
    SHIPPED = "shipped"
    RECEIVED = "received"


@dataclass(frozen=True, slots=True)
class TimelineStep:
    step: Step
    at: datetime
    detail: dict[str, str]


@dataclass(frozen=True, slots=True)
class OrderFacts:
    """What is known of one seat of goods, from its seat, team and shipment rows."""

    paid_at: datetime | None
    team_succeeded_at: datetime | None
    address_at: datetime | None
    shipped_at: datetime | None
    carrier: str | None
    tracking_number: str | None
    received_at: datetime | None
    received_by: str | None


def timeline(facts: OrderFacts) -> list[TimelineStep]:
    """The steps the order has taken, oldest first (ties keep the lifecycle's order)."""
    steps: list[TimelineStep] = []
    if facts.paid_at is not None:
        steps.append(TimelineStep(Step.PAID, facts.paid_at, {}))
    if facts.team_succeeded_at is not None:
        steps.append(TimelineStep(Step.TEAM_SUCCEEDED, facts.team_succeeded_at, {}))
    if facts.address_at is not None:
        steps.append(TimelineStep(Step.ADDRESS, facts.address_at, {}))
    if facts.shipped_at is not None:
        steps.append(
            TimelineStep(
                Step.SHIPPED,
                facts.shipped_at,
                {"carrier": facts.carrier or "", "tracking_number": facts.tracking_number or ""},
            )
        )
    if facts.received_at is not None:
        steps.append(
            TimelineStep(Step.RECEIVED, facts.received_at, {"by": facts.received_by or ""})
        )
    order = list(Step)
    return sorted(steps, key=lambda s: (s.at, order.index(s.step)))


# ---------------------------------------------------------------------------- shipping by CSV

# The columns of a shipping file; others (the address, the shopper: what the queue's export
# adds for the packer) are ignored. Headers are matched without regard to case or spaces.
CSV_COLUMNS = ("seat_id", "carrier", "tracking_number")
MAX_CSV_ROWS = 1000


@dataclass(frozen=True, slots=True)
class CsvRow:
    """One data row: ``line`` is its line in the file, the header being line 1."""

    line: int
    seat_id: str
    carrier: str
    tracking_number: str


class CsvInvalid(ValueError):
    """The file as a whole cannot be read as a shipping file (no row of it is applied)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def read_shipments_csv(data: bytes) -> list[CsvRow]:
    """The rows of a shipping CSV (UTF-8, a byte-order mark from spreadsheets allowed, comma or
    semicolon separated); blank lines are skipped. Refuses a file it cannot read, one without the
    three columns, and one of more than :data:`MAX_CSV_ROWS` rows (:class:`CsvInvalid`)."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise CsvInvalid("not_utf8", "Save the file as CSV in UTF-8.") from error
    if "\x00" in text:
        raise CsvInvalid("not_csv", "This is not a CSV file.")
    first = text.split("\n", 1)[0]
    delimiter = ";" if first.count(";") > first.count(",") else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        header = next(reader, None)
        if header is None:
            raise CsvInvalid("empty", "The file is empty.")
        names = ["_".join(h.strip().lower().split()) for h in header]
        missing = [c for c in CSV_COLUMNS if c not in names]
        if missing:
            raise CsvInvalid(
                "missing_columns",
                "The first line must name the columns "
                + ", ".join(CSV_COLUMNS)
                + "; missing: "
                + ", ".join(missing)
                + ".",
            )
        at = {c: names.index(c) for c in CSV_COLUMNS}
        rows: list[CsvRow] = []
        for cells in reader:
            if not any(cell.strip() for cell in cells):
                continue
            if len(rows) == MAX_CSV_ROWS:
                raise CsvInvalid(
                    "too_many_rows", f"Send at most {MAX_CSV_ROWS} rows at once; split the file."
                )
            values = {c: cells[i].strip() if i < len(cells) else "" for c, i in at.items()}
            rows.append(CsvRow(reader.line_num, **values))
    except csv.Error as error:
        raise CsvInvalid("not_csv", f"This file cannot be read as CSV: {error}.") from error
    return rows
