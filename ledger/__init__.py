"""The money core of Flattr Hub: accounts, transfers, flattrs, pledges and settlement.

It knows nothing of HTTP or Redis: callers hand it a SQLAlchemy connection and plain values.
"""
