"""The Alembic migrations build exactly the schema the code declares, on every backend."""

import importlib

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from ledger.schema import metadata

# Modules that add tables to `ledger.schema.metadata` besides the ledger's own.
TABLE_MODULES = ("pipeline.inbox", "base.tables.connectors", "base.tables.outbound",
                 "base.tables.members", "base.tables.notifications", "base.tables.sites",
                 "base.tables.catalog", "ledger.money_schema", "base.tables.apps",
                 "base.tables.linking", "pipeline.quarantine")


def test_migrations_match_the_declared_tables(engine):
    for module in TABLE_MODULES:
        importlib.import_module(module)
    with engine.connect() as conn:
        differences = compare_metadata(MigrationContext.configure(conn), metadata)
    assert differences == []
    assert {"users", "accounts", "transfers", "flattrs", "shares", "pledges", "unlikes",
            "inbox"} <= set(metadata.tables)
