"""Configuration: config.yaml documents exactly the built-in defaults; a file and FLATTR_*
environment variables override them; anything unknown or of the wrong type is refused; the
settings are typed and frozen, changed only through the same checks (`with_overrides`)."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from pathlib import Path

import pytest
import yaml
from structlog.testing import capture_logs

from base.config import ConfigError, HubSettings, as_dict, database_url, with_overrides
from connectors.discord import DiscordSettings
from connectors.registry import BY_NAME, default_config, load_config
from connectors.x import XSettings
from flattr_hub.cli import main
from ledger.rules import MoneyRules

REPO_CONFIG = Path(__file__).resolve().parents[1] / "config.yaml"


def key_tree(node):
    """The shape of a configuration: nested dicts of keys, leaves replaced by their type."""
    if isinstance(node, dict):
        return {key: key_tree(value) for key, value in node.items()}
    return type(node).__name__


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    """No config.yaml in the working folder, no FLATTR_* variables from outside."""
    monkeypatch.chdir(tmp_path)
    for name in list(os.environ):
        if name.startswith("FLATTR_"):
            monkeypatch.delenv(name)


def write(tmp_path, text: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_repository_config_yaml_has_exactly_the_default_keys():
    if not REPO_CONFIG.is_file():
        pytest.skip(f"{REPO_CONFIG} is not written yet")
    data = yaml.safe_load(REPO_CONFIG.read_text(encoding="utf-8"))
    assert key_tree(data) == key_tree(as_dict(default_config()))


def test_repository_config_yaml_shows_the_defaults():
    if not REPO_CONFIG.is_file():
        pytest.skip(f"{REPO_CONFIG} is not written yet")
    assert load_config(REPO_CONFIG, environ={}) == default_config()


def test_without_file_or_environment_the_defaults_apply():
    config = load_config(environ={})
    assert config == default_config()
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.settlement.batch_givers = 1  # type: ignore[misc]
    changed = with_overrides(config, {"settlement.batch_givers": 1})
    assert (changed.settlement.batch_givers, config.settlement.batch_givers) == (1, 5000)


def test_a_file_overrides_some_keys_and_keeps_the_rest(tmp_path):
    path = write(tmp_path, "fee_bps: 500\nsettlement:\n  batch_givers: 10\n"
                           "connectors:\n  github:\n    webhook_secret: abc\n"
                           "  discord:\n    emoji: [tada]\n")
    config = load_config(path, environ={})
    assert config == with_overrides(default_config(), {
        "fee_bps": 500, "settlement.batch_givers": 10,
        "connectors.github.webhook_secret": "abc", "connectors.discord.emoji": ["tada"]})
    assert config.connectors["discord"].emoji == ("tada",)


def test_config_yaml_in_the_working_folder_or_named_by_flattr_config(tmp_path):
    write(tmp_path, "fee_bps: 300\n")
    assert load_config(environ={}).fee_bps == 300
    other = tmp_path / "other.yaml"
    other.write_text("fee_bps: 400\n")
    assert load_config(environ={"FLATTR_CONFIG": str(other)}).fee_bps == 400


@pytest.mark.parametrize(("name", "raw", "path", "value"), [
    ("FLATTR_FEE_BPS", "250", ("fee_bps",), 250),
    ("FLATTR_SETTLEMENT__BATCH_GIVERS", "7", ("settlement", "batch_givers"), 7),
    ("FLATTR_GIVE_TO_GET", "false", ("give_to_get",), False),
    ("FLATTR_GIVE_TO_GET", "on", ("give_to_get",), True),
    ("FLATTR_CURRENCY", "SEK", ("currency",), "SEK"),
    ("FLATTR_CONNECTORS__GITHUB__WEBHOOK_SECRET", "s3cret",
     ("connectors", "github", "webhook_secret"), "s3cret"),
    ("FLATTR_CONNECTORS__DISCORD__EMOJI", "tada, flattr", ("connectors", "discord", "emoji"),
     ("tada", "flattr")),
    ("FLATTR_WEB__LOGIN_DELAY_SECONDS", "0.5", ("web", "login_delay_seconds"), 0.5),
    ("FLATTR_DATABASE__URL", "postgresql://db/x", ("database", "url"), "postgresql://db/x"),
    ("FLATTR_DATABASE_URL", "postgresql://db/y", ("database", "url"), "postgresql://db/y"),
    ("FLATTR_REDIS_URL", "redis://r:6379/0", ("redis", "url"), "redis://r:6379/0"),
])
def test_environment_overrides_a_key(tmp_path, name, raw, path, value):
    file = write(tmp_path, "fee_bps: 500\ncurrency: NOK\ngive_to_get: true\n")
    config = load_config(file, environ={name: raw})
    node = config
    for key in path:
        node = node[key] if isinstance(node, Mapping) else getattr(node, key)
    assert node == value
    assert type(node) is type(value)
    untouched = {"fee_bps": 500, "currency": "NOK"}
    for key, kept in untouched.items():
        if (key,) != path:
            assert getattr(config, key) == kept


def test_unrelated_flattr_variables_are_ignored():
    config = load_config(environ={"FLATTR_TEST_DATABASE_URL": "postgresql://x/y",
                                  "FLATTR_NO_SUCH__KEY": "1", "FLATTR_HUB": "x"})
    assert config == default_config()


@pytest.mark.parametrize(("name", "raw"), [
    ("FLATTR_FEE_BPS", "ten"),
    ("FLATTR_FEE_BPS", "1.5"),
    ("FLATTR_GIVE_TO_GET", "maybe"),
    ("FLATTR_HUB__PORT", ""),
])
def test_environment_value_of_the_wrong_type_is_refused(name, raw):
    with pytest.raises(ConfigError):
        load_config(environ={name: raw})


@pytest.mark.parametrize("text", [
    "no_such_key: 1\n",
    "settlement:\n  batch: 5\n",
    "connectors:\n  myspace:\n    secret: x\n",
    "connectors:\n  mastodon:\n    poll_secnds: 60\n",
    "payments:\n  stripe:\n    secret: x\n",
    "hub:\n  tls: true\n",
])
def test_unknown_key_in_the_file_is_refused(tmp_path, text):
    with pytest.raises(ConfigError, match="unknown config key"):
        load_config(write(tmp_path, text), environ={})


def test_a_retired_key_in_an_older_file_loads_with_a_warning_saying_why(tmp_path):
    text = "worker:\n  inbox_keep_hours: 48\n  batch_size: 250\n"
    with capture_logs() as logs:
        config = load_config(write(tmp_path, text), environ={})
    assert config.worker.batch_size == 250
    assert [(e["event"], e["key"]) for e in logs] == [
        ("config_key_retired", "worker.inbox_keep_hours")]
    assert "migration 0022" in logs[0]["why"]
    with pytest.raises(ConfigError, match=r"unknown config key worker\.inbox_keep_hourz"):
        load_config(write(tmp_path, "worker:\n  inbox_keep_hourz: 48\n"), environ={})


@pytest.mark.parametrize("text", [
    "fee_bps: ten\n",
    "fee_bps: 1.5\n",
    "fee_bps: true\n",
    "give_to_get: 1\n",
    "give_to_get: 'yes'\n",
    "settlement: 5\n",
    "database: postgresql://x/y\n",
    "pledge_months: [6]\n",
    "currency: [EUR]\n",
    "data_dir: {path: var}\n",
    "currency: true\n",
    "connectors:\n  discord:\n    emoji: flattr\n",
    "connectors:\n  discord:\n    emoji: [flattr, {a: 1}]\n",
    "connectors:\n  mastodon: 5\n",
])
def test_value_of_the_wrong_type_in_the_file_is_refused(tmp_path, text):
    with pytest.raises(ConfigError):
        load_config(write(tmp_path, text), environ={})


@pytest.mark.parametrize("text", ["fee_bps: [1\n", "- just\n- a list\n", "just a string\n"])
def test_a_file_that_is_not_a_mapping_is_refused(tmp_path, text):
    with pytest.raises(ConfigError):
        load_config(write(tmp_path, text), environ={})


def test_a_missing_file_is_refused(tmp_path):
    with pytest.raises(ConfigError):
        load_config(tmp_path / "absent.yaml", environ={})


def test_database_defaults_to_sqlite_in_the_data_folder(tmp_path):
    config = load_config(environ={"FLATTR_DATA_DIR": str(tmp_path / "state")})
    assert database_url(config) == f"sqlite:///{tmp_path / 'state' / 'flattr-hub.sqlite3'}"
    assert (tmp_path / "state").is_dir()
    config = load_config(environ={"FLATTR_DATABASE_URL": "postgresql://db/z"})
    assert database_url(config) == "postgresql://db/z"


def test_command_line_reports_a_bad_config_file_in_one_line(tmp_path, capsys):
    path = write(tmp_path, "fee_bps: ten\n")
    assert main(["--config", str(path), "balance", "ana"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and "fee_bps" in err
    assert not (tmp_path / "var").exists()  # nothing was created


def test_sections_are_typed_dataclasses_and_platforms_keep_their_own():
    config = load_config(environ={"FLATTR_HUB__PORT": "9000",
                                  "FLATTR_CONNECTORS__X__CLIENT_ID": "cid"})
    assert isinstance(config.hub, HubSettings) and config.hub.port == 9000
    assert isinstance(config.connectors["x"], XSettings)
    assert BY_NAME["x"].section(config).client_id == "cid"
    assert isinstance(BY_NAME["discord"].section(config), DiscordSettings)


def test_the_ledger_gets_the_money_rules_and_no_secret():
    config = with_overrides(default_config(), {
        "fee_bps": 700, "payments.max_payout": 5000, "settlement.batch_givers": 9,
        "payments.stripe.secret_key": "sk_live_secret", "notifications.smtp_password": "pw"})
    assert config.money == MoneyRules("EUR", 700, 200, 50000, 1000, True, 6, 5000, 9)
    assert "sk_live_secret" not in repr(config) and "pw" not in repr(config.notifications)
    assert {f.name for f in dataclasses.fields(MoneyRules)} == {
        "currency", "fee_bps", "min_monthly", "max_monthly", "payout_minimum", "give_to_get",
        "pledge_months", "max_payout", "batch_givers"}


@pytest.mark.parametrize(("overrides", "message"), [
    ({"hub.prot": 1}, "unknown config key hub.prot"),
    ({"connectors.mastodon.poll_secnds": 60}, "unknown config key connectors.mastodon.poll_"),
    ({"connectors.nosuch": {"a": 1}}, "unknown config key connectors.nosuch"),
    ({"hub.port": "secret-8080"}, "config key hub.port has the wrong type"),
    ({"worker.batch_size": True}, "config key worker.batch_size has the wrong type"),
    ({"web.login_delay_seconds": "soon"}, "config key web.login_delay_seconds has the wrong"),
])
def test_overrides_are_checked_as_a_file_is(overrides, message):
    with pytest.raises(ConfigError, match=message) as caught:
        with_overrides(default_config(), overrides)
    assert "secret" not in str(caught.value) and "\n" not in str(caught.value)
