"""The two Discord users of the gateway fixtures (`tests/fixtures/discord-reaction-*.json`):
pjotr reacts to maren's message."""

from __future__ import annotations

from ledger import accounts, identities

PJOTR, MAREN = "301122334455667788", "401122334455667788"
MESSAGE = "1301122334455667788"


def people(engine, config, *, maren: bool = True, pjotr: bool = True) -> dict[str, int]:
    made = {}
    with engine.begin() as conn:
        for name, discord_id, wanted in (("pjotr", PJOTR, pjotr), ("maren", MAREN, maren)):
            if not wanted:
                continue
            uid = made[name] = accounts.create_user(conn, name)
            accounts.set_budget(conn, uid, 500, config.money)
            accounts.credit_funds(conn, uid, 2000, "test", f"test:{name}")
            identities.link(conn, uid, "discord", discord_id, claim=True)
    return made
