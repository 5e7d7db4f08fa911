"""Alembic environment: runs the migrations of every table (`base.tables`) on the configured
database."""

from alembic import context

from base.tables import metadata
from ledger.db import make_engine

url = context.config.get_main_option("sqlalchemy.url")
if url is None:
    raise ValueError("alembic: sqlalchemy.url is not set")
engine = make_engine(url)
with engine.connect() as connection:
    context.configure(connection=connection, target_metadata=metadata,
                      render_as_batch=connection.dialect.name == "sqlite")
    with context.begin_transaction():
        context.run_migrations()
engine.dispose()
