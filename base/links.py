"""Absolute links to the hub (in API answers, e-mails, OAuth redirect URIs, Stripe return
URLs, outbound webhooks): built from `hub.base_url` only, never from a request's Host header,
which whoever sends the request chooses.

`hub.base_url` may be empty only while the hub listens on a loopback address (a developer's
machine, tests): links then point at `http://<hub.host>:<hub.port>`. `serve` and `up` refuse
to start on any other address without it (`require_base_url`), and once listening on loopback
they make the address really listened on the base URL (`listened`).
"""

from __future__ import annotations

import dataclasses
import ipaddress
from urllib.parse import quote

from base.config import Settings


def base_url(config: Settings) -> str:
    """The hub's public URL without a trailing slash: `hub.base_url`, else
    `http://<hub.host>:<hub.port>`."""
    hub = config.hub
    return (configured(config) or _origin(hub.host, hub.port)).rstrip("/")


def configured(config: Settings) -> str:
    """`hub.base_url` as configured; empty when it is not set."""
    return config.hub.base_url


def https(config: Settings) -> bool:
    """Whether the hub is served over https (its `hub.base_url` says so)."""
    return configured(config).startswith("https://")


def claim_url(config: Settings, platform: str, platform_user_id: str) -> str:
    """Where the owner of an identity claims it (and the pledges waiting for it)."""
    return f"{base_url(config)}/claim/{quote(platform, safe='')}/{quote(platform_user_id, safe='')}"


def require_base_url(config: Settings, host: str) -> None:
    """ValueError (one line) when a hub would listen on `host`, not a loopback address,
    without `hub.base_url`."""
    if not configured(config) and not loopback(host):
        raise ValueError(f"hub.base_url must be set to listen on {host or 'every address'} "
                         "(links are built from it, never from the Host header); e.g. "
                         "FLATTR_HUB__BASE_URL=https://hub.example.org")


def listened(config: Settings, url: str) -> Settings:
    """The settings of a hub that now listens at `url`: without `hub.base_url` (on
    loopback), links point there."""
    if configured(config):
        return config
    return dataclasses.replace(config, hub=dataclasses.replace(config.hub, base_url=url))


def loopback(host: str) -> bool:
    """Whether `host` (a listen address) is this machine only."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _origin(host: str, port: int) -> str:
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"
