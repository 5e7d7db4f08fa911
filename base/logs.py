"""Logging: one JSON object per line on stderr (`log.format: json`, the default) or readable
lines (`console`). The hub's own structlog events are logged from `log.level` up; libraries that
log through the standard library (RQ, aiohttp, alembic) from WARNING up (or DEBUG, with
`log.level: debug`; client libraries that would log tokens, from INFO), in the same format.
Values bound with `structlog.contextvars` (the hub's `request_id`, a worker's `job_id`) appear
in every line logged while they are bound. Nothing else sets a logger's level."""

from __future__ import annotations

import logging
import sys
import threading
from typing import Any, TextIO

import structlog

from base.config import ConfigError, Settings

LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING,
          "error": logging.ERROR}
# Client libraries that log request headers (bearer tokens) at DEBUG: INFO at most, even with
# `log.level: debug`.
QUIETER = ("tweepy", "requests_oauthlib", "urllib3")


class StderrLogger:
    """The structlog logger: each rendered line to whatever `sys.stderr` is at the time (tests
    swap it), one line at a time."""

    _lock = threading.Lock()

    def __init__(self, name: str = "") -> None:
        self.name = name

    def msg(self, message: str) -> None:
        with self._lock:
            sys.stderr.write(message + "\n")
            sys.stderr.flush()

    debug = info = warning = warn = error = critical = fatal = exception = msg


class StderrHandler(logging.StreamHandler):
    """Writes to whatever `sys.stderr` is when a line is logged, not when logging was set up."""

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, _value: TextIO) -> None:
        pass


def configure(config: Settings) -> None:
    """Set up structlog and the standard library's logging from `log.level` and `log.format`.
    Raises ConfigError naming the key whose value is not one of the choices."""
    level_name = config.log.level.lower()
    if level_name not in LEVELS:
        raise ConfigError(f"log.level must be one of {', '.join(LEVELS)}")
    form = config.log.format.lower()
    if form not in ("json", "console"):
        raise ConfigError("log.format must be json or console")
    level = LEVELS[level_name]
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer = (structlog.processors.JSONRenderer() if form == "json"
                else structlog.dev.ConsoleRenderer(colors=False))
    structlog.configure(
        processors=[*shared, structlog.processors.format_exc_info, renderer],
        logger_factory=lambda name="", *_args: StderrLogger(name),
        wrapper_class=structlog.make_filtering_bound_logger(level),
        cache_logger_on_first_use=False)
    handler = StderrHandler()
    handler.setFormatter(structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                    structlog.processors.format_exc_info, renderer]))
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, StderrHandler)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if level == logging.DEBUG else max(level, logging.WARNING))
    for name in QUIETER:
        logging.getLogger(name).setLevel(logging.INFO)
