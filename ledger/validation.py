"""The rules every value from outside must pass before the hub stores it: well-formed text,
bounded lengths, web links, sane times and 64-bit integers. A normalised event is checked by
`NormalisedEvent.from_dict` (the webhook door) and by `check_event` (pollers, the Flattr
button); things, the REST API and the web forms use the same rules.

Each check raises ValueError with a message that names the field and never repeats its value
(which may be long, or hostile).
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from ledger.sql import utcnow

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
WEB_SCHEMES = ("http", "https")
EARLIEST = datetime(2000, 1, 1)  # before any platform the hub reads from counted likes
FUTURE_SLACK = timedelta(days=1)  # clocks of senders run a little ahead
URL_CHARS = 2048
CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")  # all but tab, CR and LF
SPACE_OR_CONTROL = re.compile(r"[\x00-\x20\x7f]")
# An http(s) URL whose authority is a plain host name (letters, digits, dots, hyphens; no user,
# port or brackets) and which ends there or goes on with a path, query or fragment: one that
# `urlsplit` always reads with that scheme and a host, so `is_web_url` need not split it.
PLAIN_WEB_URL = re.compile(r"(?i:https?)://[A-Za-z0-9.-]*[A-Za-z0-9][A-Za-z0-9.-]*(?:[/?#]|\Z)")


def check_text(value: str, name: str, limit: int) -> str:
    """`value` when it is UTF-8-encodable text (no lone surrogates), free of NUL and other
    control characters except tab and newlines, and at most `limit` characters long."""
    if len(value) > limit:
        raise ValueError(f"{name} is too long (at most {limit} characters)")
    if not value.isascii():  # ASCII always encodes; isascii() costs nothing
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError(f"{name} is not well-formed text (lone surrogate)") from None
    if CONTROL.search(value):
        raise ValueError(f"{name} holds control characters")
    return value


def is_web_url(value: Any) -> bool:
    """Whether `value` is an absolute http(s) URL with a host, without spaces or control
    characters, of at most URL_CHARS characters (anything else is shown as text, never as a
    link)."""
    if not isinstance(value, str) or not value or len(value) > URL_CHARS:
        return False
    if SPACE_OR_CONTROL.search(value):
        return False
    if value.isascii() and PLAIN_WEB_URL.match(value):
        return True
    return splits_as_web_url(value)


def splits_as_web_url(value: str) -> bool:
    """`is_web_url` for a text of the right length without spaces or control characters, by
    splitting it as a URL (what PLAIN_WEB_URL spares the common links)."""
    try:
        value.encode("utf-8")
        parts = urlsplit(value)
        host = parts.hostname
        parts.port  # noqa: B018  (raises ValueError for a port that is not a number)
    except (UnicodeEncodeError, ValueError):
        return False
    return parts.scheme.lower() in WEB_SCHEMES and bool(host)


def check_url(value: str, name: str = "url") -> str:
    if not is_web_url(value):
        raise ValueError(f"{name} must be an http or https URL of at most {URL_CHARS} "
                         "characters")
    return value


def check_int(value: int, name: str) -> int:
    """`value` when it fits a signed 64-bit integer (what every backend stores)."""
    if not INT64_MIN <= value <= INT64_MAX:
        raise ValueError(f"{name} does not fit in 64 bits")
    return value


def check_time(moment: datetime, name: str, now: datetime | None = None) -> datetime:
    """`moment` (naive UTC) when it lies between EARLIEST and a day after `now`."""
    latest = (now or utcnow()) + FUTURE_SLACK
    if not EARLIEST <= moment <= latest:
        raise ValueError(f"{name} must lie between {EARLIEST:%Y-%m-%d} and tomorrow")
    return moment
