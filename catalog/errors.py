"""Errors the catalog raises for requests it refuses; each message is one line fit for a user
and `code` is the Flattr API error code that fits it. Nothing was changed."""

from __future__ import annotations


class CatalogError(ValueError):
    code = "invalid_request"


class InvalidThing(CatalogError):
    """A field of a thing or a search is not valid (names the field)."""

    code = "invalid_parameters"


class NotFound(CatalogError):
    code = "not_found"


class Forbidden(CatalogError):
    """The thing belongs to another user."""

    code = "forbidden"


class Conflict(CatalogError):
    """The URL already has a thing."""

    code = "conflict"


class FetchFailed(CatalogError):
    """Discovery could not fetch the page (network error, timeout, HTTP error, too large)."""

    code = "fetch_failed"
