"""The platforms the hub knows: one line each. A platform joins by being listed here (its module
defines `PLATFORM`, a `connectors.platform.Platform`) and by its section in `config.yaml`; every
list of platforms elsewhere is derived from `PLATFORMS`."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from base import config, metrics
from base.config import Settings
from connectors import (
    bluesky,
    dailymotion,
    discord,
    flickr,
    github,
    mastodon,
    relay,
    soundcloud,
    vimeo,
    x,
    youtube,
)
from connectors.base import WebhookConnector
from connectors.platform import Platform

PLATFORMS: tuple[Platform[Any], ...] = (
    github.PLATFORM,
    relay.PLATFORM,
    x.PLATFORM,
    discord.PLATFORM,
    soundcloud.PLATFORM,
    mastodon.PLATFORM,
    vimeo.PLATFORM,
    dailymotion.PLATFORM,
    youtube.PLATFORM,
    bluesky.PLATFORM,
    flickr.PLATFORM,
)
BY_NAME: Mapping[str, Platform[Any]] = {platform.name: platform for platform in PLATFORMS}
metrics.label_platforms(BY_NAME)


def sections() -> dict[str, type]:
    """`{name: settings dataclass}`: the `connectors` section of the configuration."""
    return {p.name: p.settings for p in PLATFORMS}


def display_name(name: str) -> str:
    """How pages and notices name the platform `name` (the name itself when unknown)."""
    found = BY_NAME.get(name)
    return found.display_name if found else name


def all_connectors() -> dict[str, WebhookConnector]:
    """The webhook connectors by URL name, configured or not."""
    return {p.name: p.webhook for p in PLATFORMS if p.webhook is not None}


def enabled_connectors(config: Settings) -> dict[str, WebhookConnector]:
    """The connectors whose keys are configured. Raises ValueError naming a key whose value is
    unusable (never the value itself)."""
    enabled = {name: c for name, c in all_connectors().items() if c.enabled(config)}
    for connector in enabled.values():
        connector.check(config)
    return enabled


def polled() -> tuple[Platform[Any], ...]:
    """The platforms with a poller."""
    return tuple(p for p in PLATFORMS if p.poller is not None)


def linkable() -> tuple[Platform[Any], ...]:
    """The platforms whose accounts people link with OAuth."""
    return tuple(p for p in PLATFORMS if p.linking is not None)


def streams(config: Settings) -> tuple[Platform[Any], ...]:
    """The platforms whose long-lived listener is configured on."""
    return tuple(p for p in PLATFORMS
                 if p.stream is not None and p.stream.enabled(p.section(config)))


def default_config() -> Settings:
    """The whole configuration with every key at its default."""
    return config.defaults(sections())


def load_config(path: str | os.PathLike[str] | None = None,
                environ: Mapping[str, str] | None = None) -> Settings:
    """The effective settings (`base.config.load_config`) with every platform's section."""
    return config.load_config(path, environ, connectors=sections())
