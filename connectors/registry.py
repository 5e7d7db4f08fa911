"""The webhook connectors the hub knows, by URL name. A connector module joins by being listed
here and defining `CONNECTOR`."""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

from connectors.base import WebhookConnector

MODULES = ("connectors.github", "connectors.relay", "connectors.x")


def all_connectors() -> dict[str, WebhookConnector]:
    connectors = (importlib.import_module(name).CONNECTOR for name in MODULES)
    return {connector.name: connector for connector in connectors}


def enabled_connectors(config: Mapping[str, Any]) -> dict[str, WebhookConnector]:
    """The connectors whose keys are configured. Raises ValueError naming a key whose value is
    unusable (never the value itself)."""
    enabled = {name: c for name, c in all_connectors().items() if c.enabled(config)}
    for connector in enabled.values():
        connector.check(config)
    return enabled
