"""The `Platform` descriptor: everything the hub knows about one platform, in one value.

Each platform module ends with `PLATFORM = Platform(...)` and `connectors.registry` lists the
modules; every list of platforms elsewhere (webhook routes, pollers, linking providers,
metric labels, display names, configuration sections, supervised stream listeners) is
derived from the registry. A descriptor holds:

- `name` (in URLs, config keys and identity rows) and `display_name` (on pages and notices);
- `settings`: the frozen dataclass of its `connectors.<name>` configuration section, whose
  field defaults are the defaults (`config.yaml` documents the same keys); the loaded
  settings hold an instance of it (`platform.section(settings)`);
- what it offers, each optional and each switched on by its own keys of that section: a
  signed `webhook` (`connectors.base.WebhookConnector`), a `poller(config)` factory
  (`connectors.poll_types.Poller`, None while off), an OAuth `linking` provider, a long-lived
  `stream` listener that `flattr-hub up` supervises.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from base.config import Settings
from connectors.base import WebhookConnector

ProfilePath = tuple[str | int, ...]  # keys of objects, indexes of lists
Section = Any  # a platform's settings dataclass
S = TypeVar("S")


def key_set(*keys: str) -> Callable[[Section], bool]:
    """An `enabled` test: on when every one of `keys` is configured (not empty)."""
    return lambda section: all(getattr(section, key) for key in keys)


CLIENT_ID_SET = key_set("client_id")


@dataclass(frozen=True)
class OAuthProvider:
    """One platform's OAuth linking facts. Endpoints are the platform's own; the settings
    keys named in `config_keys` override them when set (a local fake in tests). OAuth 1.0a
    (`protocol="oauth1"`, Flickr: `members.oauth1`) uses the three URLs as authorize, access
    token and request token, and finds the user in the access token's answer."""

    authorize_url: str
    token_url: str
    profile_url: str
    scopes: tuple[str, ...]
    pkce: bool
    client_auth: str  # "basic": HTTP Basic; "post": client_id and client_secret in the body
    user_id: ProfilePath  # where the profile JSON holds the platform user id ...
    username: ProfilePath  # ... the user name ...
    remote_id: ProfilePath | None = None  # ... and the id the poller calls the API with
    profile_scheme: str = "Bearer"
    config_keys: tuple[str, str, str] = ("oauth_authorize_url", "oauth_token_url", "profile_url")
    identity: Callable[[str, str], str] = field(default=lambda user_id, _instance: user_id)
    per_instance: bool = False  # Mastodon: endpoints and app credentials per instance
    enabled: Callable[[Section], bool] = CLIENT_ID_SET
    authorize_params: tuple[tuple[str, str], ...] = ()  # added to the authorize URL
    protocol: str = "oauth2"  # or "oauth1"


@dataclass(frozen=True)
class Stream:
    """A long-lived listener (a gateway bot, a firehose consumer): the `flattr-hub`
    subcommand that runs it on its own, and that `flattr-hub up` runs as a supervised child."""

    command: tuple[str, ...]
    enabled: Callable[[Section], bool]


@dataclass(frozen=True)
class Platform(Generic[S]):
    """One platform, described as data (see the module docstring)."""

    name: str
    display_name: str
    settings: type[S]
    webhook: WebhookConnector | None = None
    poller: Callable[[Settings], Any] | None = None
    linking: OAuthProvider | None = None
    stream: Stream | None = None

    def section(self, config: Settings) -> S:
        """This platform's configured `connectors.<name>` section, an instance of
        `settings`."""
        section: S = config.connectors[self.name]
        return section
