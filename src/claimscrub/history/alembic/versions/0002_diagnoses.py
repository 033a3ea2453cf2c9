"""Diagnoses per claim and per service line (ICD-10-CM codes only, no other patient data).

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01

A claim records its HI codes in position order; a line, the codes its SV107 pointers name.
Claims recorded before this revision have none (an empty text): a rule reading them must
treat "no diagnoses recorded" as unknown, not as "no diagnosis".
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("claim") as batch:
        batch.add_column(sa.Column("diagnoses", sa.String(200), nullable=False, server_default=""))
    with op.batch_alter_table("line") as batch:
        batch.add_column(sa.Column("diagnoses", sa.String(40), nullable=False, server_default=""))


def downgrade() -> None:
    with op.batch_alter_table("line") as batch:
        batch.drop_column("diagnoses")
    with op.batch_alter_table("claim") as batch:
        batch.drop_column("diagnoses")
