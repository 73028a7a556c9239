"""The one way a page reaches the application's services."""

from __future__ import annotations

from fastapi import Request

from pintuan.services import Services


def services_of(request: Request) -> Services:
    """The services ``create_app`` put on the application, for handlers and the page helpers
    that are no FastAPI dependency (CSRF checks, the session cookie, rendering)."""
    services: Services = request.app.state.services
    return services
