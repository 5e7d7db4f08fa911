"""The Alembic migrations build exactly the schema the code declares, on every backend."""

import importlib

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from ledger.schema import metadata

# Modules that add tables to `ledger.schema.metadata` besides the ledger's own.
TABLE_MODULES = ("workers.inbox", "connectors.storage", "workers.outbound_schema",
                 "members.schema", "notifications.schema", "members.site_schema",
                 "catalog.schema", "ledger.money_schema", "members.apps_schema",
                 "members.linking_schema", "workers.quarantine",
                 "connectors.bluesky_schema")


def test_migrations_match_the_declared_tables(engine):
    for module in TABLE_MODULES:
        importlib.import_module(module)
    with engine.connect() as conn:
        differences = compare_metadata(MigrationContext.configure(conn), metadata)
    assert differences == []
    assert {"users", "accounts", "transfers", "flattrs", "shares", "pledges", "unlikes",
            "inbox"} <= set(metadata.tables)
