"""Configuration: built-in defaults, an optional YAML file, and FLATTR_* environment overrides.

Every key has a default here (the platforms' sections in their descriptors, see
`connectors.platform`); `config.yaml` at the top of the repository documents the same keys.
An environment variable `FLATTR_` + the key path in capitals with `__` between levels overrides a
key (`FLATTR_CONNECTORS__GITHUB__WEBHOOK_SECRET`); `FLATTR_DATABASE_URL` and `FLATTR_REDIS_URL`
are short aliases.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

DEFAULTS: dict[str, Any] = {
    "currency": "EUR",
    "fee_bps": 1000,
    "min_monthly": 200,
    "max_monthly": 50000,
    "payout_minimum": 1000,
    "give_to_get": True,
    "pledge_months": 6,
    "data_dir": "var",
    "database": {"url": ""},
    "redis": {"url": ""},
    "settlement": {"batch_givers": 5000, "day": 1, "time": "00:10", "jobs": 1},
    "hub": {
        "host": "127.0.0.1",
        "port": 8080,
        "base_url": "",
        "max_body_bytes": 65536,
        "inbox_batch": 500,
        "inbox_wait_ms": 2,
    },
    "worker": {"batch_size": 1000, "sweep_seconds": 30, "inbox_keep_hours": 24,
               "drain_connections": 2},
    "pollers": {"tick_seconds": 60, "batch": 20},  # poll scheduler: period, accounts/job
    # the long-lived stream connectors `up` runs (connectors.streams): first wait before a
    # restart (doubling, at most a minute), quick restarts in a row before giving up, how long
    # a run must last not to count as quick, how often a stream writes its liveness
    "streams": {"restart_ms": 1000, "max_restarts": 5, "stable_seconds": 60,
                "heartbeat_seconds": 15},
    # outbound webhooks: HTTP timeout, disable an endpoint failing this long, re-queue due;
    # allow_private lets endpoints be on private/loopback/link-local addresses (tests, closed
    # deployments); false refuses them at registration and at each delivery (SSRF)
    # the one door out (base.public_net) for every request made on someone's behalf:
    # DNS servers asked ([] = the system's) and their port, networks let through although
    # not public (default none)
    "network": {"nameservers": [], "dns_port": 53, "allow_addresses": []},
    "outbound": {"timeout_seconds": 10, "disable_after_days": 5, "sweep_seconds": 60,
                 "allow_private": False},
    # notifications: e-mail through this SMTP server, creator notices on these platforms only
    # (at most max_per_hour of them, 0 = no cap), timeouts, re-queue due notices every
    # sweep_seconds
    "notifications": {"platforms": [], "max_per_hour": 30, "smtp_host": "", "smtp_port": 587,
                      "smtp_user": "", "smtp_password": "", "smtp_starttls": True,
                      "from_address": "flattr-hub@localhost", "timeout_seconds": 10,
                      "sweep_seconds": 60},
    "log": {"level": "info", "format": "json"},
    # GET /metrics answers only `Authorization: Bearer <token>`; "" = /metrics is off (404)
    "metrics": {"token": ""},
    # "connectors": one section per platform, from its descriptor (`connectors.registry`)
    # money in (Stripe Checkout; "add funds" takes min_monthly..max_funding) and out (the
    # SEPA account payouts are paid from, the debtor of exported batches)
    "payments": {"stripe": {"secret_key": "", "webhook_secret": "", "api_base": ""},
                 "max_funding": 100000,
                 # most an operator credits at once (`funds credit`), most one payout
                 "max_credit": 1000000, "max_payout": 1000000,
                 "sepa": {"name": "", "iban": "", "bic": ""}},
    # web pages: Fernet keys for session cookies and stored tokens ("" = generated once into
    # <data_dir>/web-keys.json), Secure cookies (auto = when hub.base_url is https), login
    # throttling (attempts per name and address, per address, within the window; per name a
    # growing delay after login_attempts, from login_delay_seconds to login_max_delay_seconds)
    "web": {"session_key": "", "token_key": "", "secure_cookies": "auto",
            "login_attempts": 5, "login_window_seconds": 900, "login_address_attempts": 30,
            "login_delay_seconds": 1, "login_max_delay_seconds": 15,
            # server-side sessions end after this long unused, and this long after logging in
            "session_idle_seconds": 1209600, "session_max_seconds": 2592000,
            # web-site claims: how the proof is fetched (scheme, port 0 = the scheme's own),
            # DNS servers for the TXT and address look-ups ([] = the system's) and their port,
            # whether private/loopback addresses may be fetched, timeout, most bytes read
            "site_claim_scheme": "https", "site_claim_port": 0, "site_claim_nameservers": [],
            "site_claim_dns_port": 53, "site_claim_allow_private": False,
            "site_claim_timeout_seconds": 10, "site_claim_max_bytes": 262144},
    # things of the Flattr button: discovery of a page's payment link (timeout for the whole
    # fetch, most bytes read, most redirects, whether private/loopback addresses may be
    # fetched) and how long browsers and proxies may cache the button counter
    "catalog": {"discovery_timeout_seconds": 5, "discovery_max_bytes": 524288,
                "discovery_max_redirects": 3, "discovery_allow_private": False,
                # URL lookups' fetches in one hub process: at most this many at once, per
                # client address, and how long an outcome (found or not) is kept
                "lookup_concurrency": 16, "lookup_per_client": 4, "lookup_cache_seconds": 60,
                "counter_max_age": 60},
    # REST API v2: requests per caller (access token, or address without one) per window
    "api": {"rate_limit": 5000, "rate_window_seconds": 3600},
}

ALIASES = {"FLATTR_DATABASE_URL": ("database", "url"), "FLATTR_REDIS_URL": ("redis", "url")}


class ConfigError(ValueError):
    """The configuration file or an override is not valid."""


def defaults(connectors: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """Every key with its default; `connectors` holds the platforms' sections
    (`connectors.registry.settings_defaults()`)."""
    return {**copy.deepcopy(DEFAULTS), "connectors": copy.deepcopy(dict(connectors))}


def load_config(path: str | os.PathLike[str] | None = None,
                environ: Mapping[str, str] | None = None, *,
                connectors: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """Return the effective configuration: defaults, then the file (if any), then the environment.
    `connectors` holds the platforms' sections with their defaults
    (`connectors.registry.settings_defaults()`).

    Without `path`, `FLATTR_CONFIG` names the file, else `./config.yaml` is read when present.
    """
    environ = os.environ if environ is None else environ
    config = defaults(connectors)
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
    return config


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
    if isinstance(default, list):
        return [item.strip() for item in raw.split(",") if item.strip()]
    return raw


def _merge(config: dict[str, Any], data: dict[str, Any], where: tuple[str, ...]) -> None:
    for key, value in data.items():
        path = (*where, str(key))
        dotted = ".".join(path)
        if key not in config:
            raise ConfigError(f"unknown config key {dotted}")
        default = config[key]
        if isinstance(default, dict):
            if not isinstance(value, dict):
                raise ConfigError(f"config key {dotted} must be a mapping")
            _merge(default, value, path)
        elif value is None:
            continue
        elif isinstance(default, bool) != isinstance(value, bool) or (
            isinstance(default, int) and not isinstance(value, int)
        ) or (isinstance(default, str) and isinstance(value, dict | list)):
            raise ConfigError(f"config key {dotted} has the wrong type")
        elif isinstance(default, list):
            if not isinstance(value, list) or not all(
                isinstance(item, str | int) and not isinstance(item, bool) for item in value
            ):
                raise ConfigError(f"config key {dotted} must be a list of strings")
            config[key] = [str(item) for item in value]
        else:
            config[key] = str(value) if isinstance(default, str) else value


def data_dir(config: Mapping[str, Any]) -> Path:
    """The folder for embedded state (SQLite file, embedded Redis), created on demand."""
    path = Path(config["data_dir"])
    path.mkdir(parents=True, exist_ok=True)
    return path


def database_url(config: Mapping[str, Any]) -> str:
    """The SQLAlchemy URL: the configured one, else an SQLite file in the data folder."""
    return config["database"]["url"] or f"sqlite:///{data_dir(config) / 'flattr-hub.sqlite3'}"
