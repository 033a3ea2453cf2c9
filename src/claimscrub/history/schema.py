"""The history's tables, as SQLAlchemy Core metadata.

The migrations in ``alembic/versions`` create and change these tables; this module is what
the code reads and writes through. The patient is only ever a keyed hash (HMAC-SHA256 of
payer + member id, plus last name, first name and birth date for a dependent): no name,
member id or birth date is stored.
"""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Numeric,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData()

#: the newest revision in ``alembic/versions`` (a test checks it against Alembic's head):
#: a history at this revision is opened without running Alembic
SCHEMA_HEAD = "0002"

#: Alembic's own bookkeeping table, read to skip the migration step when nothing is to do
#: (not part of ``metadata``: Alembic creates and owns it)
alembic_version = Table("alembic_version", MetaData(), Column("version_num", String(32), nullable=False))

#: one row per name: the key fingerprint, the acknowledgment control number sequence
setting = Table(
    "setting",
    metadata,
    Column("name", String(40), primary_key=True),
    Column("text_value", String(200), nullable=True),
    Column("int_value", Integer, nullable=True),
)

run = Table(
    "run",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    #: "scrub" or "import"
    Column("kind", String(10), nullable=False),
    Column("started_at", DateTime(timezone=True), nullable=False),
    #: set in the run's own transaction, last: a run without it is never read
    Column("completed_at", DateTime(timezone=True), nullable=True),
    Column("claimscrub_version", String(40), nullable=False),
    #: JSON list of the rule tables the run judged by (source, release, rows)
    Column("table_versions", Text, nullable=False),
)

file = Table(
    "file",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", Integer, ForeignKey("run.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("name", String(255), nullable=False),
    Column("content_hash", String(64), nullable=False, index=True),
    #: ISA13/GS06/ST02 of every transaction set, in file order, comma-separated
    Column("control_numbers", Text, nullable=False),
    #: SHA-256 of content hash + control numbers: a file is recorded once
    Column("identity", String(64), nullable=False),
    Column("claims", Integer, nullable=False),
    UniqueConstraint("identity", name="uq_file_identity"),
)

claim = Table(
    "claim",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", Integer, ForeignKey("run.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("file_id", Integer, ForeignKey("file.id", ondelete="CASCADE"), nullable=False, index=True),
    #: CLM01, the submitter's claim id
    Column("claim_id", String(38), nullable=False),
    Column("patient", String(64), nullable=False),
    Column("frequency_code", String(2), nullable=False),
    #: "billed" (accepted and forwarded, or imported) or "rejected"
    Column("disposition", String(10), nullable=False),
    #: "active", "replaced" or "voided" (by a later frequency 7 or 8 claim)
    Column("status", String(10), nullable=False),
    Column("replaced_by", Integer, nullable=True),
    #: 2300 REF*F8, the payer's control number of the claim a 7/8 stands for
    Column("payer_claim_control_number", String(50), nullable=False),
    #: SBR09 (MB = Medicare Part B), the payer id (2010BB NM109), CLM05-1 place of service
    Column("filing_indicator", String(2), nullable=False),
    Column("payer_id", String(80), nullable=False),
    Column("place_of_service", String(2), nullable=False),
    Column("charge", Numeric(12, 2), nullable=True),
    Column("first_service_date", Date, nullable=True),
    #: the claim's ICD-10-CM codes (HI, no dot) in position order, comma-separated; empty for
    #: claims recorded before revision 0002 (unknown, not "none")
    Column("diagnoses", String(200), nullable=False, server_default=""),
    Index("claim_by_patient_id", "patient", "claim_id"),
)

line = Table(
    "line",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("claim_pk", Integer, ForeignKey("claim.id", ondelete="CASCADE"), nullable=False, index=True),
    #: the patient-day key: patient hash, date of service, rendering provider NPI
    Column("patient", String(64), nullable=False),
    Column("service_date", Date, nullable=False),
    Column("provider_npi", String(15), nullable=False),
    #: billed, and not replaced or voided since: what the rules read as already billed
    Column("active", Boolean, nullable=False),
    Column("line_number", String(6), nullable=False),
    Column("code", String(48), nullable=False),
    #: SV101-3..6, comma-separated
    Column("modifiers", String(20), nullable=False),
    Column("units", Numeric(12, 3), nullable=True),
    Column("charge", Numeric(12, 2), nullable=True),
    Column("rendering_taxonomy", String(10), nullable=False),
    Column("billing_npi", String(15), nullable=False),
    Column("billing_tax_id", String(15), nullable=False),
    Column("payer_id", String(80), nullable=False),
    #: the codes the line's diagnosis pointers (SV107) name, in pointer order, comma-separated
    Column("diagnoses", String(40), nullable=False, server_default=""),
    Index("line_by_patient_day", "patient", "service_date", "provider_npi"),
)
