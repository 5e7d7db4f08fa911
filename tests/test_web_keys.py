"""The generated web keys: made once per data folder, kept private, and the same for every
process that starts at the same time (the hub, its worker and the scheduler)."""

from __future__ import annotations

import json
import multiprocessing
import stat

from base.config import with_overrides
from base.vault import NAMES, web_keys
from connectors.registry import default_config


def keys_of(data_dir: str) -> dict[str, bytes]:
    return web_keys(with_overrides(default_config(), {"data_dir": data_dir}))


def test_keys_are_generated_once_and_kept_private(tmp_path):
    first = keys_of(str(tmp_path))
    assert keys_of(str(tmp_path)) == first
    path = tmp_path / "web-keys.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert sorted(json.loads(path.read_text())) == sorted(NAMES)
    assert [p.name for p in tmp_path.iterdir()] == ["web-keys.json"]


def test_processes_starting_together_agree_on_the_keys(tmp_path):
    for attempt in range(5):
        folder = tmp_path / str(attempt)
        with multiprocessing.get_context("fork").Pool(6) as pool:
            seen = pool.map(keys_of, [str(folder)] * 12)
        assert all(keys == seen[0] for keys in seen)
        assert {name: value.decode() for name, value in seen[0].items()} == json.loads(
            (folder / "web-keys.json").read_text())


def test_an_incomplete_key_file_is_replaced(tmp_path):
    (tmp_path / "web-keys.json").write_text(json.dumps({"session_key": ""}))
    keys = keys_of(str(tmp_path))
    assert all(keys[name] for name in NAMES)
    assert keys_of(str(tmp_path)) == keys
