"""The two ways a notice leaves the hub: an e-mail through the configured SMTP server
(aiosmtplib), and a Discord direct message from the hub's bot (Discord's REST API: open the DM
channel with `POST /users/@me/channels`, then `POST /channels/{id}/messages`).

Both raise `SendError`, which says whether trying again could help. Neither logs an address, a
password or the bot token.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from email.message import EmailMessage
from email.utils import formatdate
from typing import Any

import aiosmtplib
import requests

from base.config import Settings
from connectors.discord import API as DISCORD_API
from connectors.discord import PLATFORM as DISCORD

# Discord answers 403 with code 50007 to a user who shares no server with the bot or refuses
# DMs; that will not change by trying again.
DISCORD_CANNOT_DM = 50007


class SendError(Exception):
    """Sending failed; `permanent` when trying again can not help."""

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


def send_email(config: Settings, to: str, subject: str, text: str,
               message_id: str) -> None:
    """Send a plain-text e-mail. `message_id` is the same for every attempt of one notice, so
    a copy sent twice (a worker died after sending, before recording it) can be recognised."""
    settings = config.notifications
    message = EmailMessage()
    message["From"] = settings.from_address
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = formatdate(usegmt=True)
    message["Message-ID"] = message_id
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(text)
    try:
        asyncio.run(aiosmtplib.send(
            message, hostname=settings.smtp_host, port=settings.smtp_port,
            username=settings.smtp_user or None, password=settings.smtp_password or None,
            start_tls=settings.smtp_starttls,
            timeout=settings.timeout_seconds))
    except aiosmtplib.SMTPRecipientsRefused:
        raise SendError("SMTP server refused the recipient", permanent=True) from None
    except aiosmtplib.SMTPResponseException as exc:
        raise SendError(f"SMTP {exc.code}", permanent=500 <= exc.code < 600) from None
    except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
        raise SendError(exc.__class__.__name__) from None


def send_discord_dm(config: Settings, discord_user_id: str, text: str,
                    nonce: str) -> None:
    """Send `text` as a direct message from the bot. `nonce` (at most 25 characters, the same
    for every attempt of one notice) with `enforce_nonce` makes Discord drop a repeat sent
    within a few minutes."""
    section = DISCORD.section(config)
    base = (section.api_base or DISCORD_API).rstrip("/")
    headers = {"Authorization": f"Bot {section.bot_token}",
               "User-Agent": "DiscordBot (flattr-hub, 0.1)"}
    timeout = config.notifications.timeout_seconds
    channel = _discord_call(f"{base}/users/@me/channels", {"recipient_id": discord_user_id},
                            headers, timeout).get("id")
    if not channel:
        raise SendError("Discord answered without a DM channel id")
    _discord_call(f"{base}/channels/{channel}/messages",
                  {"content": text, "nonce": nonce, "enforce_nonce": True}, headers, timeout)


def _discord_call(url: str, body: Mapping[str, Any], headers: Mapping[str, str],
                  timeout: float) -> dict[str, Any]:
    try:
        response = requests.post(url, json=body, headers=headers, timeout=timeout,
                                 allow_redirects=False)
    except requests.RequestException as exc:
        raise SendError(exc.__class__.__name__) from None
    try:
        answer = response.json()
    except ValueError:
        answer = {}
    if not isinstance(answer, dict):
        answer = {}
    if 200 <= response.status_code < 300:
        return answer
    permanent = response.status_code in (400, 403, 404) or (
        answer.get("code") == DISCORD_CANNOT_DM)
    raise SendError(f"Discord HTTP {response.status_code} code {answer.get('code')}",
                    permanent=permanent)
