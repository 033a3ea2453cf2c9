"""The first history schema: runs, files, claims, service lines, settings.

Revision ID: 0001
Revises:
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "setting",
        sa.Column("name", sa.String(40), primary_key=True),
        sa.Column("text_value", sa.String(200), nullable=True),
        sa.Column("int_value", sa.Integer, nullable=True),
    )
    op.create_table(
        "run",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String(10), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("claimscrub_version", sa.String(40), nullable=False),
        sa.Column("table_versions", sa.Text, nullable=False),
    )
    op.create_table(
        "file",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.Integer, sa.ForeignKey("run.id", ondelete="CASCADE"), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("control_numbers", sa.Text, nullable=False),
        sa.Column("identity", sa.String(64), nullable=False),
        sa.Column("claims", sa.Integer, nullable=False),
        sa.UniqueConstraint("identity", name="uq_file_identity"),
    )
    op.create_index("ix_file_run_id", "file", ["run_id"])
    op.create_index("ix_file_content_hash", "file", ["content_hash"])
    op.create_table(
        "claim",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.Integer, sa.ForeignKey("run.id", ondelete="CASCADE"), nullable=False),
        sa.Column("file_id", sa.Integer, sa.ForeignKey("file.id", ondelete="CASCADE"), nullable=False),
        sa.Column("claim_id", sa.String(38), nullable=False),
        sa.Column("patient", sa.String(64), nullable=False),
        sa.Column("frequency_code", sa.String(2), nullable=False),
        sa.Column("disposition", sa.String(10), nullable=False),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("replaced_by", sa.Integer, nullable=True),
        sa.Column("payer_claim_control_number", sa.String(50), nullable=False),
        sa.Column("filing_indicator", sa.String(2), nullable=False),
        sa.Column("payer_id", sa.String(80), nullable=False),
        sa.Column("place_of_service", sa.String(2), nullable=False),
        sa.Column("charge", sa.Numeric(12, 2), nullable=True),
        sa.Column("first_service_date", sa.Date, nullable=True),
    )
    op.create_index("ix_claim_run_id", "claim", ["run_id"])
    op.create_index("ix_claim_file_id", "claim", ["file_id"])
    op.create_index("claim_by_patient_id", "claim", ["patient", "claim_id"])
    op.create_table(
        "line",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("claim_pk", sa.Integer, sa.ForeignKey("claim.id", ondelete="CASCADE"), nullable=False),
        sa.Column("patient", sa.String(64), nullable=False),
        sa.Column("service_date", sa.Date, nullable=False),
        sa.Column("provider_npi", sa.String(15), nullable=False),
        sa.Column("active", sa.Boolean, nullable=False),
        sa.Column("line_number", sa.String(6), nullable=False),
        sa.Column("code", sa.String(48), nullable=False),
        sa.Column("modifiers", sa.String(20), nullable=False),
        sa.Column("units", sa.Numeric(12, 3), nullable=True),
        sa.Column("charge", sa.Numeric(12, 2), nullable=True),
        sa.Column("rendering_taxonomy", sa.String(10), nullable=False),
        sa.Column("billing_npi", sa.String(15), nullable=False),
        sa.Column("billing_tax_id", sa.String(15), nullable=False),
        sa.Column("payer_id", sa.String(80), nullable=False),
    )
    op.create_index("ix_line_claim_pk", "line", ["claim_pk"])
    op.create_index("line_by_patient_day", "line", ["patient", "service_date", "provider_npi"])


def downgrade() -> None:
    op.drop_table("line")
    op.drop_table("claim")
    op.drop_table("file")
    op.drop_table("run")
    op.drop_table("setting")
