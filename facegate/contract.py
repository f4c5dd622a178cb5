"""What the services agree on, declared once: the score scale and the search and extract
limits. Any service may import this module; it imports none of them."""

from __future__ import annotations

from typing import Final

MAX_SCORE: Final = 9999
"""Scores run from 0 to this (ADR 0001)."""
DEFAULT_THRESHOLD: Final = 7000
"""The threshold of search and verify when none is given: FMR 1e-4 on the calibration
set, and NEC ID's default."""
MAX_CANDIDATES: Final = 50
"""The most candidates a search may ask for (NEC ID's limit), and the most a matcher
shard returns for one query."""
DEFAULT_CANDIDATES: Final = 10
"""Candidates a search returns when it does not say."""
MAX_FACES: Final = 20
"""The most faces one extraction reports (NEC ID's limit)."""
DEFAULT_FACES: Final = 10
"""Faces an extraction reports when it does not say."""
