"""Request and response bodies of the fulfilment API."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from pintuan.domain.addresses import COUNTRIES, FIELDS, address_lines
from pintuan.domain.fulfilment import QueueState
from pintuan.fulfilment.models import Address, Shipment
from pintuan.fulfilment.service import BulkResult, Fulfilment, QueueRow
from pintuan.kit.schemas import StrictModel

# Generous: the address rules name the real limit of each field, with the other problems.
TYPED_MAX = 500
_COUNTRY_HELP = "ISO 3166 code of one of the countries delivered to: " + ", ".join(COUNTRIES)


class AddressIn(StrictModel):
    """An address as typed. Which fields are required, and what a postcode looks like, depends
    on the country; every wrong field is named at once (``validation_error``)."""

    recipient: str | None = Field(
        default=None, max_length=TYPED_MAX, description="Who takes the parcel"
    )
    phone: str | None = Field(
        default=None, max_length=TYPED_MAX, description="A phone number for the courier"
    )
    country: str | None = Field(default=None, max_length=TYPED_MAX, description=_COUNTRY_HELP)
    postcode: str | None = Field(
        default=None, max_length=TYPED_MAX, description="Postcode in the country's format"
    )
    region: str | None = Field(
        default=None,
        max_length=TYPED_MAX,
        description="State, province or prefecture (US: two letters)",
    )
    city: str | None = Field(
        default=None, max_length=TYPED_MAX, description="City, post town or ward"
    )
    district: str | None = Field(
        default=None, max_length=TYPED_MAX, description="District (CN), kecamatan (ID)"
    )
    line1: str | None = Field(
        default=None, max_length=TYPED_MAX, description="Street and number, building"
    )
    line2: str | None = Field(
        default=None, max_length=TYPED_MAX, description="Flat, floor, anything else"
    )
    is_default: bool = Field(default=False, description="Offer this address first at checkout")

    def typed(self) -> dict[str, object]:
        return self.model_dump(exclude={"is_default"}, exclude_none=True)


class AddressOut(BaseModel):
    id: str
    recipient: str
    phone: str
    country: str
    postcode: str
    region: str
    city: str
    district: str
    line1: str
    line2: str
    is_default: bool
    lines: list[str] = Field(description="The address as the courier writes it")
    updated_at: datetime

    @classmethod
    def of(cls, address: Address) -> AddressOut:
        fields = {name: getattr(address, name) or "" for name in FIELDS}
        return cls(
            id=address.id,
            is_default=address.is_default,
            lines=address_lines(fields),
            updated_at=address.updated_at,
            **fields,
        )


class AddressList(BaseModel):
    data: list[AddressOut]


class ChooseAddressIn(StrictModel):
    address_id: str = Field(min_length=1, max_length=40, description="One of your addresses")


class ShipmentIn(StrictModel):
    carrier: str = Field(min_length=1, max_length=200, description="The carrier's name")
    tracking_number: str = Field(min_length=1, max_length=200, description="As the carrier gave it")


class TimelineStepOut(BaseModel):
    step: str = Field(description="paid, team_succeeded, address, shipped or received")
    at: datetime
    detail: dict[str, str]


class FulfilmentOut(BaseModel):
    seat_id: str
    status: str | None = Field(description="addressed, shipped, received; null: no address yet")
    needs_address: bool
    address: dict[str, str] | None = Field(description="The copy of the address on the order")
    address_lines: list[str]
    carrier: str | None
    tracking_number: str | None
    receive_due_at: datetime | None = Field(
        description="When receipt is confirmed for you unless you do it first"
    )
    timeline: list[TimelineStepOut]

    @classmethod
    def of(cls, found: Fulfilment) -> FulfilmentOut:
        return cls(
            seat_id=found.seat_id,
            status=found.status,
            needs_address=found.needs_address,
            address=found.address,
            address_lines=found.address_lines,
            carrier=found.carrier,
            tracking_number=found.tracking_number,
            receive_due_at=found.receive_due_at,
            timeline=[
                TimelineStepOut(step=s.step.value, at=s.at, detail=s.detail) for s in found.steps
            ],
        )


class ShipmentOut(BaseModel):
    seat_id: str
    status: str
    address: dict[str, str]
    carrier: str | None
    tracking_number: str | None
    shipped_at: datetime | None
    receive_due_at: datetime | None
    received_at: datetime | None
    received_by: str | None

    @classmethod
    def of(cls, shipment: Shipment) -> ShipmentOut:
        return cls(
            seat_id=shipment.seat_id,
            status=shipment.status,
            address=dict(shipment.address),
            carrier=shipment.carrier,
            tracking_number=shipment.tracking_number,
            shipped_at=shipment.shipped_at,
            receive_due_at=shipment.receive_due_at,
            received_at=shipment.received_at,
            received_by=shipment.received_by,
        )


class QueueRowOut(BaseModel):
    seat_id: str
    deal_id: str
    deal_title: str
    shopper_name: str
    state: QueueState
    team_succeeded_at: datetime | None
    address: dict[str, str] | None
    address_lines: list[str]
    carrier: str | None
    tracking_number: str | None
    shipped_at: datetime | None
    received_at: datetime | None

    @classmethod
    def of(cls, row: QueueRow) -> QueueRowOut:
        return cls(
            seat_id=row.id,
            deal_id=row.deal_id,
            deal_title=row.deal_title,
            shopper_name=row.shopper_name,
            state=row.state,
            team_succeeded_at=row.team_succeeded_at,
            address=row.address,
            address_lines=row.address_lines,
            carrier=row.carrier,
            tracking_number=row.tracking_number,
            shipped_at=row.shipped_at,
            received_at=row.received_at,
        )


class BulkShipmentRowIn(StrictModel):
    seat_id: str = Field(max_length=200)
    carrier: str = Field(max_length=200)
    tracking_number: str = Field(max_length=200)


class BulkShipmentsIn(StrictModel):
    shipments: list[BulkShipmentRowIn] = Field(min_length=1, max_length=1000)


class BulkResultOut(BaseModel):
    row: int = Field(description="1 for the first shipment (in a CSV: the line, header = 1)")
    seat_id: str
    outcome: str = Field(description="shipped, unchanged (already shipped so) or refused")
    code: str | None = Field(description="Why a refused row was refused")
    message: str | None
    fields: dict[str, str]

    @classmethod
    def of(cls, result: BulkResult) -> BulkResultOut:
        return cls(
            row=result.row,
            seat_id=result.seat_id,
            outcome=result.outcome,
            code=result.code,
            message=result.message,
            fields=result.fields,
        )


class BulkReportOut(BaseModel):
    shipped: int
    unchanged: int
    refused: int
    results: list[BulkResultOut]

    @classmethod
    def of(cls, results: list[BulkResult]) -> BulkReportOut:
        return cls(
            shipped=sum(r.outcome == "shipped" for r in results),
            unchanged=sum(r.outcome == "unchanged" for r in results),
            refused=sum(r.outcome == "refused" for r in results),
            results=[BulkResultOut.of(r) for r in results],
        )
