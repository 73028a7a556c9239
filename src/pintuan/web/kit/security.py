"""The pages' security headers: what every HTML response says, and what every response says.

Pages load script and style only from this site (no inline script or style attribute), may not
be framed, and post forms only to this site. ``kit.security_headers`` applies these, with the
cache and HTTPS headers and Secure cookies in production, in one layer for every answer.
"""

from __future__ import annotations

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; object-src 'none'; frame-ancestors 'none'; "
    "form-action 'self'; base-uri 'none'"
)
PERMISSIONS_POLICY = "camera=(), microphone=(), geolocation=()"
HTML_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"strict-origin-when-cross-origin"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"permissions-policy", PERMISSIONS_POLICY.encode()),
)
EVERY_RESPONSE: tuple[tuple[bytes, bytes], ...] = ((b"x-content-type-options", b"nosniff"),)
# The interactive API docs are the framework's own page, built from inline script and a CDN:
# they get every header but the policy.
POLICY_EXEMPT_PATHS = frozenset({"/docs", "/docs/oauth2-redirect", "/redoc"})
