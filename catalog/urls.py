"""URLs of things: the normal form a web thing is keyed by (on write and on lookup), and the
site ("web", host) identity that owns a web page."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

from catalog.errors import InvalidThing

MAX_URL = 512  # things.content_id
DEFAULT_PORTS = {"http": 80, "https": 443}


def normalise(url: str) -> str:
    """`url` with its scheme and host in lower case, the default port and an empty path written
    as "/"; query and fragment are kept (Flattr tells things apart by every part of the URL).
    Raises InvalidThing for anything but an absolute http(s) URL of at most 512 characters."""
    if not isinstance(url, str) or not url.strip():
        raise InvalidThing("url is required")
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        raise InvalidThing("url is not a valid URL") from None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS or not parts.hostname:
        raise InvalidThing("url must be an absolute http or https URL")
    if any(ch.isspace() for ch in url.strip()):
        raise InvalidThing("url must not contain spaces")
    host = parts.hostname.lower()
    if ":" in host:
        host = f"[{host}]"
    if port is not None and port != DEFAULT_PORTS[scheme]:
        host = f"{host}:{port}"
    if "@" in parts.netloc:
        raise InvalidThing("url must not carry a user name or password")
    result = urlunsplit((scheme, host, parts.path or "/", parts.query, parts.fragment))
    if len(result) > MAX_URL:
        raise InvalidThing(f"url must be at most {MAX_URL} characters")
    return result


def site_of(url: str) -> str:
    """The host of normalised `url` as a site claim names it (lower case, IDNA ASCII): the
    platform user id of the ("web", host) identity that owns the page."""
    host = (urlsplit(url).hostname or "").rstrip(".")
    try:
        return host.encode("idna").decode("ascii")
    except UnicodeError:
        return host
