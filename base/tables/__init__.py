"""Every table of the hub, on the one `metadata` of `ledger.schema` (the money tables are the
ledger's own, in `ledger.schema` and `ledger.money_schema`). Alembic's environment imports this
package, so autogenerate compares the migrations with all of them."""

from base.tables import (
    apps,
    bluesky,
    catalog,
    connectors,
    inbox,
    linking,
    members,
    notifications,
    outbound,
    sites,
)
from ledger import money_schema
from ledger.schema import metadata

__all__ = ["apps", "bluesky", "catalog", "connectors", "inbox", "linking", "members", "metadata",
           "money_schema", "notifications", "outbound", "sites"]
