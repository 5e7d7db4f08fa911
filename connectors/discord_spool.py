"""The Discord gateway bot's safety net: no reaction is lost while the database is down.

Discord does not send a reaction again, so the bot keeps each one until it is stored. A
reaction that cannot be stored because the database is unreachable (`TRANSIENT` errors) is
tried again with backoff (`connectors.discord.retry_seconds`, doubling), then appended to a
spool file in the data folder (`discord-reactions.spool`, one JSON line per reaction,
fsync'd before the bot moves on). While the spool holds anything, newer reactions join it
behind the older ones, and the whole spool is replayed in order as soon as the database
answers: at the next reaction, on a timer with backoff (up to `MAX_RETRY_SECONDS`), and when
the bot starts. Replaying is idempotent (the stored reactions decide whether an add or a
removal still means a like or an unlike), so a crash between storing and trimming the spool
records nothing twice. Each reaction keeps the time it was seen, so its like is dated then."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import structlog
from sqlalchemy import exc as sa

from ledger.events import NormalisedEvent

log = structlog.get_logger(__name__)

SPOOL_FILE = "discord-reactions.spool"
TRANSIENT = (sa.OperationalError, sa.InterfaceError, sa.DisconnectionError, sa.TimeoutError)
ATTEMPTS = 3
MAX_RETRY_SECONDS = 60.0


@dataclass(frozen=True)
class Reaction:
    """What the bot keeps of a `discord.RawReactionActionEvent`, with the time it was seen;
    it has the attributes `reaction_events` reads."""

    event_type: str
    emoji_id: int | None
    emoji_name: str | None
    emoji_animated: bool
    guild_id: int | None
    channel_id: int
    message_id: int
    user_id: int
    message_author_id: int | None
    seen_at: str

    @classmethod
    def of(cls, raw: Any, seen_at: datetime) -> Reaction:
        return cls(event_type=raw.event_type, emoji_id=raw.emoji.id, emoji_name=raw.emoji.name,
                   emoji_animated=bool(getattr(raw.emoji, "animated", False)),
                   guild_id=raw.guild_id, channel_id=raw.channel_id, message_id=raw.message_id,
                   user_id=raw.user_id, message_author_id=raw.message_author_id,
                   seen_at=seen_at.isoformat())

    @property
    def emoji(self) -> Any:
        import discord

        # a missing name becomes "", as in discord.py's own PartialEmoji.from_dict
        return discord.PartialEmoji(name=self.emoji_name or "", id=self.emoji_id,
                                    animated=self.emoji_animated)

    @property
    def seen(self) -> datetime:
        return datetime.fromisoformat(self.seen_at)


class Spool:
    """The spool file: appended and rewritten durably (fsync, then an atomic rename)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def read(self) -> list[Reaction]:
        """The spooled reactions, oldest first. A last line cut short by a crash (never
        acknowledged, since the append did not finish) is left out."""
        try:
            lines = self.path.read_text(encoding="utf-8").split("\n")
        except FileNotFoundError:
            return []
        kept = []
        for line in lines[:-1]:  # the part after the last newline is empty or torn
            try:
                kept.append(Reaction(**json.loads(line)))
            except (ValueError, TypeError):
                log.error("discord_spool_line_unreadable")
        return kept

    def append(self, reaction: Reaction) -> None:
        created = not self.path.exists()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", encoding="utf-8") as out:
            out.write(json.dumps(asdict(reaction)) + "\n")
            out.flush()
            os.fsync(out.fileno())
        if created:
            _sync_folder(self.path.parent)

    def replace(self, reactions: list[Reaction]) -> None:
        """Keep only `reactions` (the ones not stored yet)."""
        if not reactions:
            self.path.unlink(missing_ok=True)
        else:
            fresh = self.path.with_name(self.path.name + ".new")
            with open(fresh, "w", encoding="utf-8") as out:
                out.writelines(json.dumps(asdict(r)) + "\n" for r in reactions)
                out.flush()
                os.fsync(out.fileno())
            os.replace(fresh, self.path)
        _sync_folder(self.path.parent)


def _sync_folder(folder: Path) -> None:
    handle = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(handle)
    finally:
        os.close(handle)


Store = Callable[[Reaction], list[NormalisedEvent]]


class Recorder:
    """Stores reactions in the order they came, through the spool when the database is down.
    Its methods run on one thread (the bot's ordered executor)."""

    def __init__(self, store: Store, spool: Spool, retry_seconds: float,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.store = store
        self.spool = spool
        self.retry_seconds = max(0.0, retry_seconds)
        self.sleep = sleep
        self.spooled = len(spool.read())

    def record(self, reaction: Reaction) -> list[NormalisedEvent]:
        """Store `reaction` (after the spooled ones), or spool it; return the events stored."""
        if self.spooled:
            self._spool(reaction)
            return self.replay()
        delay = self.retry_seconds
        for attempt in range(1, ATTEMPTS + 1):
            try:
                return self._store(reaction)
            except TRANSIENT as exc:
                if attempt == ATTEMPTS:
                    log.warning("reaction_spooled", error=exc.__class__.__name__,
                                message_id=str(reaction.message_id))
                    self._spool(reaction)
                    return []
                self.sleep(delay)
                delay *= 2
        return []

    def replay(self) -> list[NormalisedEvent]:
        """Store the spooled reactions in order until one cannot be stored; return the events
        stored. The spool keeps the rest."""
        waiting = self.spool.read()
        stored: list[NormalisedEvent] = []
        done = 0
        for reaction in waiting:
            try:
                stored.extend(self._store(reaction))
            except TRANSIENT:
                break
            done += 1
        if done:
            self.spool.replace(waiting[done:])
            log.info("reactions_replayed", count=done, waiting=len(waiting) - done)
        self.spooled = len(waiting) - done
        return stored

    def _store(self, reaction: Reaction) -> list[NormalisedEvent]:
        try:
            return self.store(reaction)
        except TRANSIENT:
            raise
        except Exception as exc:  # a reaction that can never be stored: say so, don't block
            log.error("reaction_not_recorded", error=exc.__class__.__name__,
                      message_id=str(reaction.message_id))
            return []

    def _spool(self, reaction: Reaction) -> None:
        self.spool.append(reaction)
        self.spooled += 1
