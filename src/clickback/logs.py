"""How clickback logs: JSON lines for log collectors when stderr is not a terminal, readable lines
on one; the same for Uvicorn's own loggers (configured through `log_config`, so every worker
process gets it); and failures that repeat summarised rather than logged each time."""

import logging
import sys
import time
from typing import Any

# The logging HOWTO's "Optimization": no line clickback writes names the caller's source line,
# its thread or its process name, and looking them up cost 2% of a postback's CPU.
logging._srcfile = None
logging.logThreads = False
logging.logMultiprocessing = False

READABLE = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"
JSON_FIELDS = "%(asctime)s %(levelname)s %(name)s %(process)d %(message)s"


def log_config(json_lines: bool | None = None, level: str = "INFO") -> dict[str, Any]:
    """A logging.config.dictConfig for clickback and Uvicorn. `json_lines` None: JSON unless
    stderr is a terminal."""
    if json_lines is None:
        json_lines = not sys.stderr.isatty()
    formatter: dict[str, Any] = (
        {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": JSON_FIELDS,
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger", "process": "pid"},
            "timestamp": False,
        }
        if json_lines
        else {"format": READABLE}
    )
    handler = {"class": "logging.StreamHandler", "formatter": "default", "stream": "ext://sys.stderr"}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"default": formatter},
        "handlers": {"default": handler},
        "loggers": {
            "clickback": {"handlers": ["default"], "level": level, "propagate": False},
            "uvicorn": {"handlers": ["default"], "level": level, "propagate": False},
            "uvicorn.error": {"level": level},
            # Requests are logged by clickback (web/app.py), without the clicks: one line per
            # click would cost more than the click.
            "uvicorn.access": {"handlers": [], "level": "WARNING", "propagate": False},
        },
    }


class Repeated:
    """A failure that may repeat many times a second (a database down): logged in full the first
    time, then as one summary line per `every` seconds while it lasts, and once when it ends."""

    def __init__(self, logger: logging.Logger, what: str, every: float = 60.0) -> None:
        self._log = logger
        self._what = what
        self._every = every
        self._count = 0
        self._since = 0.0
        self._last = 0.0

    def failed(self, exc: BaseException) -> None:
        now = time.monotonic()
        self._count += 1
        if self._count == 1:
            self._since = self._last = now
            self._log.error("%s: %s", self._what, exc, exc_info=exc)
        elif now - self._last >= self._every:
            self._log.error(
                "%s: %d times in %.0f s, still failing: %s", self._what, self._count, now - self._since, exc
            )
            self._last = now

    def succeeded(self) -> None:
        if self._count:
            elapsed = time.monotonic() - self._since
            self._log.warning("%s: recovered after %d failures in %.0f s", self._what, self._count, elapsed)
            self._count = 0
