"""A hot endpoint's query string read by one model, instead of parameter by parameter.

The framework validates a query parameter by parameter, asking of each one's annotation what
kind of value it is at every request: about 75 microseconds for the feed's six parameters,
as much as drawing its slate. A ``QueryModel`` validates the whole query string in one call
into pydantic's core (a few microseconds), with the same rules and the same errors: a value
refused raises the framework's own ``RequestValidationError`` with the field under ``query``,
so the answer is the usual 422 ``validation_error``. ``documented`` gives the OpenAPI
parameters the framework would have listed for the same fields, for the route's
``openapi_extra``.
"""

from __future__ import annotations

from typing import Any, TypeVar, cast

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, ValidationError

Q = TypeVar("Q", bound="QueryModel")


class QueryModel(BaseModel):
    """The query parameters of one endpoint, each a field (unknown ones are ignored, and of a
    parameter given twice the last counts, as the framework does)."""

    model_config = ConfigDict(extra="ignore", frozen=True)


# Query strings read, by model and text: a model is frozen, so equal query strings share one.
# Most requests of a hot endpoint ask the same few (``?slots=20``); a long one (a cursor) is
# seldom asked twice and is not kept.
_READ: dict[tuple[type[QueryModel], bytes], QueryModel] = {}
READ_KEPT = 1_000
KEPT_LENGTH = 200


def query_of(model: type[Q], request: Request) -> Q:
    """``request``'s query string as ``model``, or the framework's 422."""
    text: bytes = request.scope.get("query_string", b"")
    key = (model, text)
    read = _READ.get(key)
    if read is not None:
        return cast(Q, read)
    try:
        read = model.model_validate(dict(request.query_params))
    except ValidationError as exc:
        raise RequestValidationError(
            [
                {**error, "loc": ("query", *error["loc"])}
                for error in exc.errors(include_url=False, include_context=False)
            ]
        ) from None
    if len(text) <= KEPT_LENGTH:
        if len(_READ) >= READ_KEPT:
            _READ.clear()
        _READ[key] = read
    return read


def documented(model: type[QueryModel]) -> dict[str, Any]:
    """``openapi_extra`` listing ``model``'s fields as optional query parameters."""
    schema = model.model_json_schema()
    schema = _inlined(schema, schema.pop("$defs", {}))
    parameters: list[dict[str, Any]] = []
    for name, field in schema["properties"].items():
        described = {k: v for k, v in field.items() if k != "description"}
        parameter: dict[str, Any] = {
            "name": name,
            "in": "query",
            "required": name in schema.get("required", ()),
            "schema": described,
        }
        if "description" in field:
            parameter["description"] = field["description"]
        parameters.append(parameter)
    return {"parameters": parameters}


def _inlined(node: Any, defs: dict[str, Any]) -> Any:
    """``node`` with each reference to one of ``defs`` (an enumeration's) replaced by it."""
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            return _inlined(defs[ref.removeprefix("#/$defs/")], defs)
        return {key: _inlined(value, defs) for key, value in node.items()}
    if isinstance(node, list):
        return [_inlined(value, defs) for value in node]
    return node
