"""Alembic environment of the claim history: run programmatically by
:func:`claimscrub.history.store.migrate` on the connection it passes in."""

from __future__ import annotations

from alembic import context

from claimscrub.history.schema import metadata

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - only programmatic use is supported
    raise RuntimeError("claimscrub's history migrations run through claimscrub.history, not the alembic command")

context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
