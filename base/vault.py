"""The web hub's two secret keys: one encrypts session cookies, one encrypts platform tokens at
rest (Fernet). They come from `web.session_key` / `web.token_key` (or FLATTR_WEB__… in the
environment); when unset, keys are generated once and kept in `<data_dir>/web-keys.json`
(mode 0600), so the zero-config hub survives restarts without logging everyone out."""

from __future__ import annotations

import json
import os
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

from base.config import Settings

NAMES = ("session_key", "token_key")


def web_keys(config: Settings) -> dict[str, bytes]:
    """{"session_key": …, "token_key": …}, each a Fernet key (url-safe base64 of 32 bytes)."""
    configured = {name: getattr(config.web, name) for name in NAMES}
    if all(configured.values()):
        return {name: _checked(name, value) for name, value in configured.items()}
    path = Path(config.data_dir) / "web-keys.json"
    found = path.is_file()
    stored: dict[str, str] = json.loads(path.read_text()) if found else {}
    if not all(stored.get(name) for name in NAMES):
        stored = _generate(path, replace=found)
    return {name: _checked(name, configured[name] or stored[name]) for name in NAMES}


def _generate(path: Path, *, replace: bool) -> dict[str, str]:
    """New keys written to `path` (mode 0600) in one atomic step. A missing file is created with
    a hard link, which fails when another process got there first (the hub, its worker and the
    scheduler start together): then that process's keys are the ones everybody uses."""
    keys = {name: Fernet.generate_key().decode() for name in NAMES}
    path.parent.mkdir(parents=True, exist_ok=True)
    draft = path.with_name(f"{path.name}.{os.getpid()}")
    with os.fdopen(os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as out:
        json.dump(keys, out)
    try:
        if replace:  # the file is there but incomplete
            os.replace(draft, path)
        else:
            os.link(draft, path)
    except FileExistsError:
        keys = json.loads(path.read_text())
    finally:
        draft.unlink(missing_ok=True)
    return keys


class Vault:
    """Encrypts platform tokens before they are stored and decrypts them when used."""

    def __init__(self, key: bytes) -> None:
        self._fernet = Fernet(key)

    def seal(self, secret: str) -> str:
        return self._fernet.encrypt(secret.encode()).decode()

    def open(self, sealed: str) -> str:
        """The secret; ValueError when it was not sealed with this key (never shows the text)."""
        try:
            return self._fernet.decrypt(sealed.encode()).decode()
        except InvalidToken:
            raise ValueError("stored token cannot be decrypted with web.token_key") from None


def vault(config: Settings) -> Vault:
    return Vault(web_keys(config)["token_key"])


def _checked(name: str, value: str) -> bytes:
    try:
        Fernet(value)
    except ValueError:
        raise ValueError(f"web.{name} must be a Fernet key (url-safe base64 of 32 bytes)") from None
    return value.encode()
