"""The words of each notice: a subject (for e-mail) and a plain text, with the links it needs
(claim page, opt-out link, settings page)."""

from __future__ import annotations

from dataclasses import dataclass

from base.config import Settings
from base.links import base_url, claim_url
from catalog.things import WEB
from connectors.registry import display_name
from notifications.optout import optout_url


@dataclass(frozen=True)
class Message:
    subject: str
    text: str


def pledges_waiting(config: Settings, identity_id: int, platform: str,
                    platform_user_id: str, name: str) -> Message:
    """To the creator of an unclaimed identity; sent once, with a link never to be told
    again."""
    where = _where(platform)
    return Message(
        "Flattrs are waiting for you on Flattr Hub",
        f"Hello {name},\n\n"
        f"people on Flattr Hub liked your work on {where}, and each like is a flattr: a share "
        "of their monthly contribution. They are kept for you as pledges until you claim your "
        f"{where} profile on the hub:\n\n{claim_url(config, platform, platform_user_id)}\n\n"
        "This is the only time we tell you. To never hear from Flattr Hub again, open:\n"
        f"{optout_url(config, identity_id)}\n")


def pledgee_joined(config: Settings, platform: str, name: str) -> Message:
    """To a giver whose pledges' creator has claimed their identity."""
    where = _where(platform)
    return Message(
        f"{name} joined Flattr Hub",
        f"{name} on {where}, whose work you flattred before they were on Flattr Hub, has "
        "claimed their profile. Your pledges to them now count when your next month is "
        "settled.\n\n"
        "You get this e-mail because someone you pledged to joined; to stop these e-mails, "
        f"open {base_url(config)}/settings/notifications\n")


def _where(platform: str) -> str:
    return "the web" if platform == WEB else display_name(platform)
