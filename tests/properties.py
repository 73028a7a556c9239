"""How many walks each stateful property test (the money machines and their kin) takes.

CI takes the figure each test names, drawn the same way every run (``tests/conftest.py``). A
soak (``make soak-properties``) draws anew and takes ``PINTUAN_PROPERTY_SCALE`` times as many:
the walks chance picks are how these machines found the money bugs fixed so far, and CI's few
cannot find new ones.
"""

from __future__ import annotations

import os

SCALE = max(1, int(os.environ.get("PINTUAN_PROPERTY_SCALE", "1") or "1"))


def walks(figure: int) -> int:
    """``figure`` walks, times the soak's scale."""
    return figure * SCALE
