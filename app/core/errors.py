"""The core's two exceptions that cross module boundaries (no imports: safe everywhere)."""
from __future__ import annotations


class Cancelled(Exception):
    """The user cancelled (a ``threading.Event`` was set); the work stops at the next check."""


class ScoringError(ValueError):
    """Scoring is impossible as asked (e.g. fewer than two classes); message for people."""
