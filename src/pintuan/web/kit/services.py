"""The one way a page reaches the application's services: ``services_of(request)``, the
services ``create_app`` put on the application, for handlers and the page helpers that are no
FastAPI dependency (CSRF checks, the session cookie, rendering)."""

from __future__ import annotations

from pintuan.services import services_of

__all__ = ["services_of"]
