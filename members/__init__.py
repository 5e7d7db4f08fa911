"""People on the hub: logins (passwords, operators), encrypted platform tokens and the web's
sessions' domain logic. Money stays in `ledger/`; this package only knows who someone is."""
