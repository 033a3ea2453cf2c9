"""A claim history holding many billed lines, built quickly for the benchmark.

The lines belong to the benchmark batch's own patients (every subscriber MBR... of
``run.generate`` has earlier visits, so tonight's lookups find rows) and to four times as
many other patients, over the 18 months before the batch's dates, with the batch's codes
and rendering provider. Written through SQLAlchemy Core in bulk (executemany of 20,000
rows), after the schema is created by the package's own migrations.
"""

from __future__ import annotations

import random
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

from claimscrub.history import schema as s
from claimscrub.history.store import BILLED, History, patient_hash

BENCH_KEY = b"claimscrub-benchmark-key-not-a-secret"
CODES = [("62323", ""), ("62321", ""), ("64483", "RT"), ("64484", "RT"), ("99213", ""), ("99214", "25"),
         ("77003", ""), ("62322", "")]
RENDERING_NPI = "1234567893"
BILLING_NPI = "1245319599"
PAYER_ID = "00435"


def build_history(path: Path, lines: int, batch_claims: int, seed: int = 11) -> None:
    if path.exists():
        path.unlink()
    history = History("sqlite:///" + str(path), BENCH_KEY)
    rng = random.Random(seed)
    batch_members = batch_claims // 3 + 1
    members = [f"MBR{i:07d}" for i in range(batch_members)] + [f"MBX{i:07d}" for i in range(4 * batch_members)]
    hashes = [patient_hash(BENCH_KEY, (PAYER_ID, m)) for m in members]
    start = date(2024, 6, 1)
    now = datetime.now(timezone.utc)
    with history.engine.begin() as conn:
        run_id = conn.execute(s.run.insert().values(
            kind="import", started_at=now, completed_at=now, claimscrub_version="bench", table_versions="[]",
        )).inserted_primary_key[0]
        file_id = conn.execute(s.file.insert().values(
            run_id=run_id, name="history-bench.837", content_hash="0" * 64, control_numbers="", identity="1" * 64,
            claims=0,
        )).inserted_primary_key[0]
        written = 0
        claim_pk = 0
        claims_rows, line_rows = [], []
        while written < lines:
            claim_pk += 1
            patient = hashes[rng.randrange(len(hashes))]
            day = start + timedelta(days=rng.randrange(540))
            count = min(lines - written, rng.choice((1, 1, 2)))
            claims_rows.append({
                "id": claim_pk, "run_id": run_id, "file_id": file_id, "claim_id": f"H{claim_pk:09d}",
                "patient": patient, "frequency_code": "1", "disposition": BILLED, "status": "active",
                "replaced_by": None, "payer_claim_control_number": "", "filing_indicator": "MB",
                "payer_id": PAYER_ID, "place_of_service": "11", "charge": Decimal("650"), "first_service_date": day,
            })
            for number in range(1, count + 1):
                code, modifier = CODES[rng.randrange(len(CODES))]
                line_rows.append({
                    "claim_pk": claim_pk, "patient": patient, "service_date": day, "provider_npi": RENDERING_NPI,
                    "active": True, "line_number": str(number), "code": code, "modifiers": modifier,
                    "units": Decimal(1), "charge": Decimal("650"), "rendering_taxonomy": "208VP0014X",
                    "billing_npi": BILLING_NPI, "billing_tax_id": "123456789", "payer_id": PAYER_ID,
                })
            written += count
            if len(line_rows) >= 20_000:
                conn.execute(s.claim.insert(), claims_rows)
                conn.execute(s.line.insert(), line_rows)
                claims_rows, line_rows = [], []
        if line_rows:
            conn.execute(s.claim.insert(), claims_rows)
            conn.execute(s.line.insert(), line_rows)
    history.close()
