"""The Alembic migrations build exactly the schema the code declares, on every backend, and
the declared schema has one owner: `base.tables` (which includes the ledger's own tables)."""

import ast
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from base.tables import metadata

REPO = Path(__file__).resolve().parent.parent
OWNERS = ("base/tables/", "ledger/")
NOT_CODE = ("tests/", "bench/", ".venv/", "base/migrations/")


def test_migrations_match_the_declared_tables(engine):
    with engine.connect() as conn:
        differences = compare_metadata(MigrationContext.configure(conn), metadata)
    assert differences == []
    assert {"users", "accounts", "transfers", "flattrs", "shares", "pledges", "unlikes",
            "inbox", "inbox_quarantine", "poll_accounts", "logins", "outbound_endpoints",
            "notification_outbox", "thing_details"} <= set(metadata.tables)


def test_tables_are_declared_in_base_tables_or_the_ledger_only():
    """A table declared anywhere else would be missing from what Alembic's environment
    imports, and autogenerate would take it for dropped."""
    declaring = []
    for path in sorted(REPO.rglob("*.py")):
        name = path.relative_to(REPO).as_posix()
        if name.startswith(NOT_CODE + OWNERS) or "/" not in name:
            continue
        calls = [node for node in ast.walk(ast.parse(path.read_text()))
                 if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "Table"]
        if calls:
            declaring.append(name)
    assert declaring == []
