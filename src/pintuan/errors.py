"""One error base for the whole application, rendered as RFC 9457 problem details.

Services raise :class:`AppError` (or one of the small subclasses below) with a stable machine
``code``; the HTTP layer turns it into ``application/problem+json``. A code, once published, never
changes meaning: clients branch on it.
"""

from __future__ import annotations

from typing import Any

PROBLEM_JSON = "application/problem+json"


class AppError(Exception):
    """A refusal the caller can understand and act on."""

    status: int = 400
    code: str = "bad_request"
    title: str = "Bad request"

    def __init__(
        self,
        detail: str,
        *,
        code: str | None = None,
        status: int | None = None,
        title: str | None = None,
        extra: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status
        if title is not None:
            self.title = title
        self.extra = extra or {}
        self.headers = headers or {}

    def problem(self, instance: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": f"/problems/{self.code}",
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
            "code": self.code,
        }
        if instance is not None:
            body["instance"] = instance
        # Extras add to the standard members; they never replace one.
        body.update({k: v for k, v in self.extra.items() if k not in body})
        return body


class InvalidInput(AppError):
    status = 422
    code = "validation_error"
    title = "The request is not valid"


class Unauthenticated(AppError):
    status = 401
    code = "unauthenticated"
    title = "Authentication required"


class Forbidden(AppError):
    status = 403
    code = "forbidden"
    title = "Not allowed"


class NotFound(AppError):
    status = 404
    code = "not_found"
    title = "Not found"


class Conflict(AppError):
    status = 409
    code = "conflict"
    title = "Conflict with the current state"


class RateLimited(AppError):
    status = 429
    code = "rate_limited"
    title = "Too many attempts"

    def __init__(self, detail: str, *, retry_after_seconds: int) -> None:
        super().__init__(
            detail,
            extra={"retry_after_seconds": retry_after_seconds},
            headers={"Retry-After": str(retry_after_seconds)},
        )


def field_error(field: str, message: str, *, code: str = "validation_error") -> InvalidInput:
    """A validation refusal that names the offending field, shaped like request-parsing errors."""
    return InvalidInput(
        f"{field}: {message}",
        code=code,
        extra={"errors": [{"field": field, "message": message}]},
    )


class Gone(AppError):
    """What the caller names existed but has run out: an expired pay link or share token."""

    status = 410
    code = "gone"
    title = "No longer available"


class ProviderUnavailable(AppError):
    status = 502
    code = "provider_unavailable"
    title = "The payment provider did not answer"


class DatabaseBusy(AppError):
    """The database could not take this write now (a lock held elsewhere); it is safe to retry."""

    status = 503
    code = "database_busy"
    title = "The database is busy"

    def __init__(self, retry_after_seconds: int = 1) -> None:
        super().__init__(
            "The database is busy with other work; nothing was changed. Try again shortly.",
            extra={"retry_after_seconds": retry_after_seconds},
            headers={"Retry-After": str(retry_after_seconds)},
        )
