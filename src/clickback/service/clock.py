"""The time now, in one place (tests and the CLI import it without the whole runtime)."""

from datetime import UTC, datetime


def utcnow() -> datetime:
    return datetime.now(UTC)
