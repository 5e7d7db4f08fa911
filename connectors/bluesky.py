"""Bluesky: likes (`app.bsky.feed.like` records) of linked accounts, read from Jetstream
(`connectors.jetstream`), become likes and unlikes through the inbox.

A Jetstream commit message (its documented JSON, v1 `/subscribe`):

    {"did": <liker>, "time_us": <µs>, "kind": "commit",
     "commit": {"rev", "operation": "create" | "delete", "collection": "app.bsky.feed.like",
                "rkey", "cid"?, "record"?: {"$type", "subject": {"uri", "cid"}, "createdAt"}}}

- A `create` whose subject is a post (`at://<author DID>/app.bsky.feed.post/<rkey>`) is a like
  of the thing `https://bsky.app/profile/<author DID>/post/<rkey>`, owned by the author's DID;
  content id: the post's at:// URI. Likes of anything else (feeds, lists) are skipped.
- A `delete` carries only the like's record key, so every like is remembered by (`did`,
  `rkey`) in `bluesky_likes`; the delete of a remembered like is its unlike, of anything else
  nothing.
- Event ids are deterministic, so that a replayed message (a restart resumes a few seconds
  before the saved cursor) is a duplicate the ledger skips: a like's is the hash of its at://
  URI and record CID, an unlike's of the URI and the delete commit's `rev`.
- The like is dated by Jetstream's `time_us` (when the network saw it), not by the record's
  `createdAt`, which the liker writes.
- `store` applies a batch in order in one transaction with the inbox rows and the cursor
  (`stream_cursors`): what is stored and where the stream resumes never disagree.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, delete, select, tuple_, update

from base.tables.bluesky import bluesky_likes, stream_cursors
from connectors.platform import Platform, Stream, key_set
from ledger.events import NormalisedEvent, check_event
from ledger.schema import identities
from ledger.sql import dialect_insert, utcnow
from pipeline import inbox

PLATFORM_NAME = "bluesky"
STREAM = "bluesky"
LIKE = "app.bsky.feed.like"
POST = "app.bsky.feed.post"
DID = re.compile(r"^did:(?:plc:[a-z2-7]{24}|web:[a-zA-Z0-9.%-]+(?::[a-zA-Z0-9.%-]+)*)$")
RKEY = re.compile(r"^(?!\.{1,2}$)[A-Za-z0-9._:~-]{1,256}$")
CID = re.compile(r"^[A-Za-z0-9]{8,128}$")
REV = re.compile(r"^[a-z2-7]{13}$")
MAX_DID = 255


@dataclass(frozen=True, slots=True)
class LikeOp:
    """One like record created or deleted, as Jetstream reported it."""

    did: str
    rkey: str
    operation: str  # "create" | "delete"
    time_us: int
    rev: str
    cid: str = ""
    subject_uri: str = ""  # create: the liked post


def parse_commit(message: Any) -> LikeOp | None:
    """The like operation in a decoded Jetstream message; None for anything else (other kinds,
    collections, likes of what is not a post, updates). ValueError for a malformed like."""
    if not isinstance(message, Mapping) or message.get("kind") != "commit":
        return None
    commit = message.get("commit")
    if not isinstance(commit, Mapping) or commit.get("collection") != LIKE:
        return None
    operation = commit.get("operation")
    if operation not in ("create", "delete"):
        return None
    did, rkey, rev, time_us = (message.get("did"), commit.get("rkey"), commit.get("rev"),
                               message.get("time_us"))
    if not isinstance(did, str) or len(did) > MAX_DID or not DID.match(did):
        raise ValueError("the message's did is not a DID")
    if not isinstance(rkey, str) or not RKEY.match(rkey):
        raise ValueError("the like's rkey is not a record key")
    if not isinstance(rev, str) or not REV.match(rev):
        raise ValueError("the commit's rev is not a TID")
    if isinstance(time_us, bool) or not isinstance(time_us, int) or not 0 < time_us < 2**62:
        raise ValueError("the message's time_us is not a time")
    if operation == "delete":
        return LikeOp(did, rkey, operation, time_us, rev)
    record = commit.get("record")
    subject = record.get("subject") if isinstance(record, Mapping) else None
    uri = subject.get("uri") if isinstance(subject, Mapping) else None
    cid = commit.get("cid")
    if not isinstance(cid, str) or not CID.match(cid):
        raise ValueError("the like's cid is not a CID")
    if not isinstance(uri, str) or post_of(uri) is None:
        return None
    return LikeOp(did, rkey, operation, time_us, rev, cid, uri)


def post_of(uri: str) -> tuple[str, str] | None:
    """(author DID, post rkey) of the at:// URI of a post; None for anything else."""
    if not uri.startswith("at://") or len(uri) > 512:
        return None
    parts = uri[5:].split("/")
    if len(parts) != 3 or parts[1] != POST:
        return None
    author, rkey = parts[0], parts[2]
    if len(author) > MAX_DID or not DID.match(author) or not RKEY.match(rkey):
        return None
    return author, rkey


def post_url(subject_uri: str) -> str:
    author, rkey = post_of(subject_uri) or ("", "")
    return f"https://bsky.app/profile/{author}/post/{rkey}"


def like_uri(did: str, rkey: str) -> str:
    return f"at://{did}/{LIKE}/{rkey}"


def _event_id(*parts: str) -> str:
    return "bsky-" + hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:48]


def moment(time_us: int) -> datetime:
    """Jetstream's `time_us` as naive UTC."""
    return datetime(1970, 1, 1) + timedelta(microseconds=time_us)


def event_of(op: LikeOp, subject_uri: str) -> NormalisedEvent:
    """The like or unlike `op` makes of the post `subject_uri`."""
    like = op.operation == "create"
    made = NormalisedEvent(
        event_id=_event_id(like_uri(op.did, op.rkey), op.cid if like else f"delete@{op.rev}"),
        platform=PLATFORM_NAME, kind="like" if like else "unlike", actor_id=op.did,
        content_id=subject_uri, owner_id=(post_of(subject_uri) or ("",))[0],
        occurred_at=moment(op.time_us), url=post_url(subject_uri))
    check_event(made)
    return made


def store(conn: Connection, ops: Sequence[LikeOp], cursor: int | None) -> list[NormalisedEvent]:
    """Apply `ops` in order (remember created likes, forget deleted ones), append the likes and
    unlikes they make to the inbox and save `cursor`, in the caller's transaction; return the
    events. An op whose event breaks the event rules is skipped."""
    deleted = {(op.did, op.rkey) for op in ops if op.operation == "delete"}
    known: dict[tuple[str, str], str | None] = {}
    for chunk in _chunks(sorted(deleted), 500):
        known.update({(row.did, row.rkey): row.subject_uri for row in conn.execute(select(
            bluesky_likes.c.did, bluesky_likes.c.rkey, bluesky_likes.c.subject_uri).where(
            tuple_(bluesky_likes.c.did, bluesky_likes.c.rkey).in_(chunk)))})
    stored = dict(known)
    events: list[NormalisedEvent] = []
    for op in ops:
        key = (op.did, op.rkey)
        try:
            if op.operation == "create":
                made = event_of(op, op.subject_uri)
                known[key] = op.subject_uri
            elif known.get(key):
                made = event_of(op, known[key] or "")
                known[key] = None
            else:
                continue
        except ValueError:
            continue
        events.append(made)
    now = utcnow()
    created = [{"did": did, "rkey": rkey, "subject_uri": uri, "created_at": now}
               for (did, rkey), uri in known.items() if uri and (did, rkey) not in stored]
    if created:
        conn.execute(dialect_insert(conn, bluesky_likes).on_conflict_do_nothing(), created)
    gone = [key for key, uri in known.items() if uri is None and key in stored]
    for chunk in _chunks(gone, 500):
        conn.execute(delete(bluesky_likes).where(
            tuple_(bluesky_likes.c.did, bluesky_likes.c.rkey).in_(chunk)))
    inbox.append(conn, [inbox.Entry(made, None) for made in events])
    if cursor is not None:
        save_cursor(conn, cursor)
    return events


def _chunks(items: Sequence[Any], size: int) -> list[Sequence[Any]]:
    return [items[i:i + size] for i in range(0, len(items), size)]


def load_cursor(conn: Connection, stream: str = STREAM) -> int | None:
    """The `time_us` of the last message the stream handled, or None before its first."""
    return conn.execute(select(stream_cursors.c.time_us).where(
        stream_cursors.c.stream == stream)).scalar()


def save_cursor(conn: Connection, time_us: int, stream: str = STREAM) -> None:
    """Move the stream's cursor forward to `time_us` (never back)."""
    now = utcnow()
    moved = conn.execute(update(stream_cursors).where(
        stream_cursors.c.stream == stream, stream_cursors.c.time_us <= time_us).values(
        time_us=time_us, updated_at=now)).rowcount
    if not moved:
        conn.execute(dialect_insert(conn, stream_cursors).values(
            stream=stream, time_us=time_us, updated_at=now).on_conflict_do_nothing())


def linked_dids(conn: Connection) -> set[str]:
    """The DIDs of the Bluesky accounts linked to members: the likes the consumer keeps."""
    return set(conn.execute(select(identities.c.platform_user_id).where(
        identities.c.platform == PLATFORM_NAME,
        identities.c.linked_user_id.is_not(None))).scalars())


def remembered(conn: Connection, did: str) -> list[Any]:
    """The likes of `did` that are remembered (for tests and operators)."""
    return list(conn.execute(select(bluesky_likes).where(bluesky_likes.c.did == did)
                             .order_by(bluesky_likes.c.rkey)))


@dataclass(frozen=True)
class BlueskySettings:
    """`connectors.bluesky`: linking and the Jetstream consumer are on with `enabled`."""

    enabled: bool = False
    jetstream_url: str = "wss://jetstream2.us-east.bsky.network/subscribe"
    max_wanted_dids: int = 10000  # Jetstream's own cap; more linked: every like, filtered here
    compress: bool = False  # zstd frames with Jetstream's dictionary
    replay_seconds: int = 5  # a restart resumes this long before the saved cursor
    batch_size: int = 500  # likes stored per transaction at most
    flush_ms: int = 200  # a like waits at most this long before it is stored
    cursor_seconds: float = 1.0  # the cursor alone is saved this often while messages come
    reload_seconds: float = 10.0  # linked accounts are read again this often
    reconnect_seconds: float = 1.0  # first pause before reconnecting (doubles) ...
    max_reconnect_seconds: int = 60  # ... up to this
    appview_url: str = "https://public.api.bsky.app"  # app.bsky.actor.getProfile (linking)
    timeout_seconds: int = 10  # the AppView must answer within this


PLATFORM = Platform(
    name=PLATFORM_NAME, display_name="Bluesky", settings=BlueskySettings,
    stream=Stream(command=("bluesky-stream",), enabled=key_set("enabled")),
)
