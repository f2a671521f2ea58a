"""Errors shared by every domain, and what a command prints for one: one line a user can act on, never a
traceback."""

from __future__ import annotations


class LayoutError(ValueError):
    """A dataset file that is missing or does not have the expected form (any domain's readers)."""


def user_message(err: BaseException) -> str:
    """The error's own message; for an error re-raised from a DataLoader worker (whose message is
    'Caught X in DataLoader worker process N' plus a traceback) the original message alone."""
    text = str(err).strip()
    if text.startswith("Caught ") and "Original Traceback" in text:
        last = text.splitlines()[-1]
        prefix = f"{type(err).__name__}: "
        text = last[len(prefix):] if last.startswith(prefix) else last
    return text or type(err).__name__
