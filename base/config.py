"""Configuration: typed settings built once from defaults, an optional YAML file and FLATTR_*
environment overrides.

The settings are frozen dataclasses, one per section (`HubSettings`, `WorkerSettings`, …) under
a root `Settings`; their field defaults are the defaults (the platforms' sections are their
descriptors' dataclasses, see `connectors.platform`), and `config.yaml` at the top of the
repository documents the same keys. `load_config` checks every value once — an unknown key at
any level, a value of the wrong type: a one-line `ConfigError` naming the key, never its value
— so code reads `settings.hub.port`, already an int. An environment variable `FLATTR_` + the
key path in capitals with `__` between levels overrides a key
(`FLATTR_CONNECTORS__GITHUB__WEBHOOK_SECRET`); `FLATTR_DATABASE_URL` and `FLATTR_REDIS_URL` are
short aliases. `with_overrides` derives changed settings through the same checks.
"""

from __future__ import annotations

import copy
import dataclasses
import os
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import structlog
import yaml

from ledger.rules import Debtor, MoneyRules


def _secret() -> Any:
    """A secret key's field: kept out of the settings' repr."""
    return field(default="", repr=False)


@dataclass(frozen=True)
class DatabaseSettings:
    url: str = field(default="", repr=False)  # "" = SQLite in data_dir; may hold a password


@dataclass(frozen=True)
class RedisSettings:
    url: str = field(default="", repr=False)  # "" = embedded Redis in data_dir


@dataclass(frozen=True)
class SettlementSettings:
    batch_givers: int = 5000  # givers settled per transaction
    day: int = 1  # day of the month (UTC) the month that ended is settled
    time: str = "00:10"  # HH:MM, UTC
    jobs: int = 1  # jobs settling a month's chunks at once


@dataclass(frozen=True)
class HubSettings:
    host: str = "127.0.0.1"
    port: int = 8080
    base_url: str = ""
    max_body_bytes: int = 65536
    inbox_batch: int = 500
    inbox_wait_ms: int = 2


@dataclass(frozen=True)
class WorkerSettings:
    batch_size: int = 1000
    sweep_seconds: int = 30
    drain_connections: int = 3


@dataclass(frozen=True)
class PollerSettings:
    tick_seconds: int = 60  # the poll scheduler's period
    batch: int = 20  # accounts polled by one job


@dataclass(frozen=True)
class StreamSettings:
    """The long-lived stream connectors `up` runs (connectors.streams): first wait before a
    restart (doubling, at most a minute), quick restarts in a row before giving up, how long a
    run must last not to count as quick, how often a stream writes its liveness."""

    restart_ms: int = 1000
    max_restarts: int = 5
    stable_seconds: int = 60
    heartbeat_seconds: int = 15


@dataclass(frozen=True)
class NetworkSettings:
    """The one door out (`base.public_net`) for every request made on someone's behalf: DNS
    servers asked (() = the system's) and their port, networks let through although not
    public."""

    nameservers: tuple[str, ...] = ()
    dns_port: int = 53
    allow_addresses: tuple[str, ...] = ()


@dataclass(frozen=True)
class OutboundSettings:
    """Outbound webhooks: HTTP timeout, disable an endpoint failing this long, re-queue due;
    `allow_private` lets endpoints be on private/loopback/link-local addresses (tests, closed
    deployments)."""

    timeout_seconds: int = 10
    disable_after_days: int = 5
    sweep_seconds: int = 60
    allow_private: bool = False


@dataclass(frozen=True)
class NotificationsSettings:
    """E-mail through this SMTP server, creator notices on these platforms only (at most
    `max_per_hour`, 0 = no cap), timeouts, re-queue due notices every `sweep_seconds`."""

    platforms: tuple[str, ...] = ()
    max_per_hour: int = 30
    smtp_host: str = ""
    smtp_port: int = 587
    smtp_user: str = ""
    smtp_password: str = _secret()
    smtp_starttls: bool = True
    from_address: str = "flattr-hub@localhost"
    timeout_seconds: int = 10
    sweep_seconds: int = 60


@dataclass(frozen=True)
class LogSettings:
    level: str = "info"
    format: str = "json"


@dataclass(frozen=True)
class MetricsSettings:
    token: str = _secret()  # GET /metrics answers only `Bearer <token>`; "" = /metrics is off


@dataclass(frozen=True)
class StripeSettings:
    secret_key: str = _secret()
    webhook_secret: str = _secret()
    api_base: str = ""


@dataclass(frozen=True)
class SepaSettings:
    """The account payouts are paid from, the debtor of exported batches."""

    name: str = ""
    iban: str = ""
    bic: str = ""


@dataclass(frozen=True)
class PaymentsSettings:
    """Money in ("add funds" takes min_monthly..max_funding) and out; `max_credit`: most an
    operator credits at once, `max_payout`: most one payout."""

    stripe: StripeSettings = field(default_factory=StripeSettings)
    max_funding: int = 100000
    max_credit: int = 1000000
    max_payout: int = 1000000
    sepa: SepaSettings = field(default_factory=SepaSettings)


@dataclass(frozen=True)
class WebSettings:
    """Web pages: Fernet keys ("" = generated once into <data_dir>/web-keys.json), Secure
    cookies (auto = when hub.base_url is https), login throttling, session lifetimes, and how
    web-site claims fetch their proof."""

    session_key: str = _secret()
    token_key: str = _secret()
    secure_cookies: str = "auto"
    login_attempts: int = 5
    login_window_seconds: int = 900
    login_address_attempts: int = 30
    login_delay_seconds: float = 1.0
    login_max_delay_seconds: float = 15.0
    session_idle_seconds: int = 1209600
    session_max_seconds: int = 2592000
    site_claim_scheme: str = "https"
    site_claim_port: int = 0
    site_claim_nameservers: tuple[str, ...] = ()
    site_claim_dns_port: int = 53
    site_claim_allow_private: bool = False
    site_claim_timeout_seconds: int = 10
    site_claim_max_bytes: int = 262144


@dataclass(frozen=True)
class CatalogSettings:
    """Discovery of a page's payment link, URL lookups in one hub process, and how long the
    button counter may be cached."""

    discovery_timeout_seconds: int = 5
    discovery_max_bytes: int = 524288
    discovery_max_redirects: int = 3
    discovery_allow_private: bool = False
    lookup_concurrency: int = 16
    lookup_per_client: int = 4
    lookup_cache_seconds: int = 60
    counter_max_age: int = 60


@dataclass(frozen=True)
class ApiSettings:
    rate_limit: int = 5000  # REST API v2 requests per caller per window
    rate_window_seconds: int = 3600


@dataclass(frozen=True)
class Settings:
    """The whole configuration. The money rules sit at the top level of the file (and here);
    the ledger gets them alone, as `money`."""

    currency: str = "EUR"
    fee_bps: int = 1000
    min_monthly: int = 200
    max_monthly: int = 50000
    payout_minimum: int = 1000
    give_to_get: bool = True
    pledge_months: int = 6
    data_dir: str = "var"
    database: DatabaseSettings = field(default_factory=DatabaseSettings)
    redis: RedisSettings = field(default_factory=RedisSettings)
    settlement: SettlementSettings = field(default_factory=SettlementSettings)
    hub: HubSettings = field(default_factory=HubSettings)
    worker: WorkerSettings = field(default_factory=WorkerSettings)
    pollers: PollerSettings = field(default_factory=PollerSettings)
    streams: StreamSettings = field(default_factory=StreamSettings)
    network: NetworkSettings = field(default_factory=NetworkSettings)
    outbound: OutboundSettings = field(default_factory=OutboundSettings)
    notifications: NotificationsSettings = field(default_factory=NotificationsSettings)
    log: LogSettings = field(default_factory=LogSettings)
    metrics: MetricsSettings = field(default_factory=MetricsSettings)
    # one section per platform, its descriptor's dataclass (`connectors.registry`)
    connectors: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    payments: PaymentsSettings = field(default_factory=PaymentsSettings)
    web: WebSettings = field(default_factory=WebSettings)
    catalog: CatalogSettings = field(default_factory=CatalogSettings)
    api: ApiSettings = field(default_factory=ApiSettings)

    @property
    def money(self) -> MoneyRules:
        """The money rules, all the ledger is given."""
        return MoneyRules(self.currency, self.fee_bps, self.min_monthly, self.max_monthly,
                          self.payout_minimum, self.give_to_get, self.pledge_months,
                          self.payments.max_payout, self.settlement.batch_givers)

    @property
    def debtor(self) -> Debtor:
        """`payments.sepa`: the account payouts are paid from."""
        sepa = self.payments.sepa
        return Debtor(sepa.name, sepa.iban, sepa.bic)


ALIASES = {"FLATTR_DATABASE_URL": ("database", "url"), "FLATTR_REDIS_URL": ("redis", "url")}


class ConfigError(ValueError):
    """The configuration file or an override is not valid."""


# Keys an earlier version had: a file that still sets one loads, with a warning saying why the
# key no longer does anything, so that an upgrade does not stop a hub on its old config.yaml.
RETIRED = {
    "worker.inbox_keep_hours": "the inbox keeps only pending rows since migration 0022; "
                               "remove the key",
}

log = structlog.get_logger(__name__)


def defaults(connectors: Mapping[str, type]) -> Settings:
    """Every key at its default; `connectors` maps each platform to its settings dataclass
    (`connectors.registry.sections()`)."""
    return _build(_plain_defaults(connectors), connectors)


def load_config(path: str | os.PathLike[str] | None = None,
                environ: Mapping[str, str] | None = None, *,
                connectors: Mapping[str, type]) -> Settings:
    """The effective settings: defaults, then the file (if any), then the environment.
    `connectors` maps each platform to its settings dataclass.

    Without `path`, `FLATTR_CONFIG` names the file, else `./config.yaml` is read when present.
    """
    environ = os.environ if environ is None else environ
    config = _plain_defaults(connectors)
    file = path or environ.get("FLATTR_CONFIG") or ("config.yaml" if Path("config.yaml").is_file()
                                                    else None)
    if file:
        data = _read_yaml(file)
        if not isinstance(data, dict):
            raise ConfigError(f"config file {file} must hold a mapping")
        _merge(config, data, ())
    for name, value in environ.items():
        if name in ALIASES:
            _set(config, ALIASES[name], value)
        elif name.startswith("FLATTR_"):
            keys = tuple(name[len("FLATTR_"):].lower().split("__"))
            if _has(config, keys):
                _set(config, keys, value)
    return _build(config, connectors)


def with_overrides(settings: Settings, overrides: Mapping[str, Any]) -> Settings:
    """`settings` with some keys changed, checked as a file's values are: `overrides` maps a
    dotted key path (`"hub.port"`, `"connectors.github.webhook_secret"`) or a section's name
    to a mapping of its keys) to the new value."""
    connectors = {name: type(section) for name, section in settings.connectors.items()}
    config = _plain(settings)
    data: dict[str, Any] = {}
    for dotted, value in overrides.items():
        _nest(data, dotted.split("."), value)
    _merge(config, data, ())
    return _build(config, connectors)


def _nest(data: dict[str, Any], path: list[str], value: Any) -> None:
    """Put `value` at `path` in `data`, a section's mapping key by key (so that a section
    and one of its keys can both be overridden)."""
    if isinstance(value, Mapping):
        for key, item in value.items():
            _nest(data, [*path, str(key)], item)
        return
    node = data
    for key in path[:-1]:
        node = node.setdefault(key, {})
        if not isinstance(node, dict):
            raise ConfigError(f"config key {'.'.join(path)} is not in a section")
    node[path[-1]] = value


def _plain_defaults(connectors: Mapping[str, type]) -> dict[str, Any]:
    """The defaults as nested dicts and lists, the shape the file and overrides are merged
    into (each default's type is the type its key accepts)."""
    config = _plain(Settings())
    config["connectors"] = {name: _plain(cls()) for name, cls in connectors.items()}
    return config


def as_dict(settings: Settings) -> dict[str, Any]:
    """The settings as nested dicts and lists, as a file would hold them."""
    plain: dict[str, Any] = _plain(settings)
    return plain


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, tuple | list):
        return [_plain(item) for item in value]
    return copy.copy(value)


def _build(config: Mapping[str, Any], connectors: Mapping[str, type]) -> Settings:
    data = dict(config)
    data["connectors"] = MappingProxyType({
        name: _section(cls, data["connectors"][name]) for name, cls in connectors.items()})
    return _section(Settings, data)


def _section(cls: type, data: Mapping[str, Any]) -> Any:
    """The dataclass `cls` from merged values (nested sections built in turn, lists as
    tuples)."""
    hints = typing.get_type_hints(cls)
    values: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        value, hint = data[f.name], hints[f.name]
        if isinstance(hint, type) and dataclasses.is_dataclass(hint):
            value = _section(hint, value)
        elif isinstance(value, list):
            value = tuple(value)
        values[f.name] = value
    return cls(**values)


def _read_yaml(file: str | os.PathLike[str]) -> Any:
    """The YAML document in `file`; ConfigError (one line, with where) if it cannot be read,
    is not UTF-8 or is not valid YAML."""
    try:
        text = Path(file).read_bytes().decode("utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read config file {file}: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        before = exc.object[:exc.start]
        line, column = before.count(b"\n") + 1, exc.start - (before.rfind(b"\n") + 1) + 1
        raise ConfigError(f"config file {file} is not UTF-8 text: byte "
                          f"0x{exc.object[exc.start]:02x} at line {line}, column {column}"
                          ) from None
    try:
        return yaml.safe_load(text) or {}
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(f"config file {file} is not valid YAML{where}: "
                          f"{exc.problem or exc.context}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {file} is not valid YAML: {exc}") from None


def _has(config: dict[str, Any], keys: tuple[str, ...]) -> bool:
    node: Any = config
    for key in keys:
        if not isinstance(node, dict) or key not in node:
            return False
        node = node[key]
    return not isinstance(node, dict)


def _set(config: dict[str, Any], keys: tuple[str, ...], raw: str) -> None:
    node = config
    for key in keys[:-1]:
        node = node[key]
    node[keys[-1]] = _coerce(node[keys[-1]], raw, ".".join(keys))


def _coerce(default: Any, raw: str, where: str) -> Any:
    if isinstance(default, bool):
        if raw.lower() in ("1", "true", "yes", "on"):
            return True
        if raw.lower() in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"{where} must be true or false")
    if isinstance(default, int):
        try:
            return int(raw)
        except ValueError:
            raise ConfigError(f"{where} must be a whole number") from None
    if isinstance(default, float):
        try:
            return float(raw)
        except ValueError:
            raise ConfigError(f"{where} must be a number") from None
    if isinstance(default, list):
        return [item.strip() for item in raw.split(",") if item.strip()]
    return raw


def _merge(config: dict[str, Any], data: Mapping[str, Any], where: tuple[str, ...]) -> None:
    for key, value in data.items():
        path = (*where, str(key))
        dotted = ".".join(path)
        if key not in config:
            if dotted in RETIRED:
                log.warning("config_key_retired", key=dotted, why=RETIRED[dotted])
                continue
            raise ConfigError(f"unknown config key {dotted}")
        default = config[key]
        if isinstance(default, dict):
            if not isinstance(value, Mapping):
                raise ConfigError(f"config key {dotted} must be a mapping")
            _merge(default, value, path)
        elif value is None:
            continue
        elif isinstance(default, float):
            if not isinstance(value, int | float) or isinstance(value, bool):
                raise ConfigError(f"config key {dotted} has the wrong type")
            config[key] = float(value)
        elif isinstance(default, bool) != isinstance(value, bool) or (
            isinstance(default, int) and not isinstance(value, int)
        ) or (isinstance(default, str) and isinstance(value, dict | list | tuple)):
            raise ConfigError(f"config key {dotted} has the wrong type")
        elif isinstance(default, list):
            if not isinstance(value, list | tuple) or not all(
                isinstance(item, str | int) and not isinstance(item, bool) for item in value
            ):
                raise ConfigError(f"config key {dotted} must be a list of strings")
            config[key] = [str(item) for item in value]
        else:
            config[key] = str(value) if isinstance(default, str) else value


def data_dir(config: Settings) -> Path:
    """The folder for embedded state (SQLite file, embedded Redis), created on demand."""
    path = Path(config.data_dir)
    path.mkdir(parents=True, exist_ok=True)
    return path


def database_url(config: Settings) -> str:
    """The SQLAlchemy URL: the configured one, else an SQLite file in the data folder."""
    return config.database.url or f"sqlite:///{data_dir(config) / 'flattr-hub.sqlite3'}"
