"""The catalog's tables: the details of things flattred with the button (one row per thing,
keyed by things.id, with the member who submitted it: a submitter only, never its owner) and
their tags."""

from __future__ import annotations

from sqlalchemy import Boolean, CheckConstraint, Column, DateTime, Index, String, Table, Text, false

from ledger.schema import Id, _fk, metadata

CATEGORY_CHECK = "category IN ('text', 'images', 'video', 'audio', 'software', 'people', 'rest')"

thing_details = Table(
    "thing_details",
    metadata,
    Column("thing_id", Id, _fk("things"), primary_key=True),
    Column("description", Text, nullable=True),
    Column("category", String(16), nullable=True),
    Column("language", String(8), nullable=True),
    Column("hidden", Boolean, nullable=False, server_default=false()),
    Column("updated_at", DateTime, nullable=False),
    Column("deleted_at", DateTime, nullable=True),
    Column("submitted_by", Id, _fk("users"), nullable=True),
    CheckConstraint(CATEGORY_CHECK, name="category"),
    Index("ix_thing_details_category", "category"),
)

thing_tags = Table(
    "thing_tags",
    metadata,
    Column("thing_id", Id, _fk("things"), primary_key=True),
    Column("tag", String(64), primary_key=True),
    Index("ix_thing_tags_tag", "tag"),
)
