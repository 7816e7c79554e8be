"""Alembic runs inside clickback (store/migrate.py hands over the connection); no alembic.ini."""

from alembic import context

from clickback.store.tables import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
