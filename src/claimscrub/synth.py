"""Write 837P files from compact claim descriptions.

Tests, documentation examples, fixtures and the benchmark all describe claims the same
way, as plain dicts (from YAML or Python)::

    {"id": "PCN1", "date": "2025-03-03", "dx": ["M5416"], "pos": "11",
     "lines": [{"code": "62323", "charge": 500},
               {"code": "99214", "modifiers": ["25"], "charge": 150}]}

Every claim key is optional except ``lines``; see :data:`CLAIM_DEFAULTS` and
:data:`LINE_DEFAULTS`. A ``patient`` dict with ``dependent: true`` puts the claim under a
2000C patient loop. ``member``/``payer`` choose the patient key, so several claims can be
made to belong to one patient. Output is real 837P text, read by the same code as any
input, so a case exercises the whole pipeline.

Optional provider loops: ``referring_npi`` (2310A/2420F), ``facility_npi`` (2310C/2420C),
``supervising_npi`` (2310D/2420D) on a claim or a line, ``ordering_npi`` (2420E) on a line;
``payer_claim_control_number`` writes the claim's REF*F8.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any, Iterable, Optional

CLAIM_DEFAULTS: dict[str, Any] = {
    "date": "2025-03-03",
    "dx": ["M5416"],
    "dx_qualifier": "ABK",
    "pos": "11",
    "frequency": "1",
    "payer": "MEDICARE",
    "payer_id": "00435",
    "filing": "MB",
    "member": "MBR0001",
    "rendering_npi": "1234567893",
    "charge": None,
    "patient": None,
    "payer_claim_control_number": "",
    "referring_npi": "",
    "facility_npi": "",
    "supervising_npi": "",
}
LINE_DEFAULTS: dict[str, Any] = {
    "charge": 100,
    "units": 1,
    "unit_basis": "UN",
    "modifiers": [],
    "pointers": [1],
    "date": None,
    "pos": "",
    "rendering_npi": "",
    "qualifier": "HC",
    "referring_npi": "",
    "facility_npi": "",
    "supervising_npi": "",
    "ordering_npi": "",
}

BILLING_NPI = "1245319599"


def _d8(value: Any) -> str:
    if isinstance(value, date):
        return value.strftime("%Y%m%d")
    return str(value).replace("-", "")


def _money(value: Any) -> str:
    amount = Decimal(str(value))
    return format(amount.normalize(), "f") if amount == amount.to_integral() else str(amount)


def claim_segments(claim: dict, index: int = 0, hl_start: int = 2, parent_hl: int = 1) -> tuple[list[str], int]:
    """Segments of the subscriber (and patient) HL loops and the claim, and the next HL id."""
    spec = {**CLAIM_DEFAULTS, **claim}
    lines = [{**LINE_DEFAULTS, **line} for line in spec["lines"]]
    patient = spec["patient"] or {}
    dependent = bool(patient.get("dependent"))
    member = spec["member"]
    segs: list[str] = []
    sub_hl = hl_start
    segs.append(f"HL*{sub_hl}*{parent_hl}*22*{1 if dependent else 0}")
    segs.append(f"SBR*P*{'' if dependent else '18'}*******{spec['filing']}")
    segs.append(f"NM1*IL*1*SUBSCRIBER{member[-4:]}*PAT****MI*{member}")
    segs.append("N3*1 MAIN ST")
    segs.append("N4*SPRINGFIELD*IL*62701")
    segs.append(f"DMG*D8*{_d8(spec.get('birth_date', '19600101'))}*F")
    segs.append(f"NM1*PR*2*{spec['payer']}*****PI*{spec['payer_id']}")
    next_hl = sub_hl + 1
    if dependent:
        segs.append(f"HL*{next_hl}*{sub_hl}*23*0")
        segs.append(f"PAT*{patient.get('relationship', '19')}")
        segs.append(f"NM1*QC*1*{patient.get('last', 'DEPENDENT')}*{patient.get('first', 'CHILD')}")
        segs.append("N3*1 MAIN ST")
        segs.append("N4*SPRINGFIELD*IL*62701")
        segs.append(f"DMG*D8*{_d8(patient.get('birth_date', '20100101'))}*M")
        next_hl += 1
    total = spec["charge"]
    if total is None:
        total = sum(Decimal(str(line["charge"])) for line in lines)
    claim_id = spec.get("id") or f"PCN{index + 1:06d}"
    segs.append(f"CLM*{claim_id}*{_money(total)}***{spec['pos']}:B:{spec['frequency']}*Y*A*Y*Y")
    if spec["payer_claim_control_number"]:
        segs.append(f"REF*F8*{spec['payer_claim_control_number']}")
    dx = spec["dx"]
    if dx:
        qualifier = spec["dx_qualifier"]
        other = "BF" if qualifier == "BK" else "ABF"
        parts = [f"{qualifier if i == 0 else other}:{code.replace('.', '')}" for i, code in enumerate(dx)]
        segs.append("HI*" + "*".join(parts))
    if spec["referring_npi"]:
        segs.append(f"NM1*DN*1*REFERRING*DOC****XX*{spec['referring_npi']}")
    if spec["rendering_npi"]:
        segs.append(f"NM1*82*1*RENDERING*DOC****XX*{spec['rendering_npi']}")
        if spec.get("taxonomy"):
            segs.append(f"PRV*PE*PXC*{spec['taxonomy']}")
    segs.extend(_facility_and_supervising(spec, "CLAIM"))
    for number, line in enumerate(lines, start=1):
        segs.append(f"LX*{number}")
        code = ":".join([line["qualifier"], str(line["code"]), *line["modifiers"]])
        pointers = line["pointers"]
        pointer_text = pointers if isinstance(pointers, str) else ":".join(str(p) for p in pointers)
        units = line["units"]
        units_text = "" if units is None else (units if isinstance(units, str) else _money(units))
        segs.append(
            f"SV1*{code}*{_money(line['charge'])}*{line['unit_basis']}*{units_text}*{line['pos']}**{pointer_text}"
        )
        line_date = line["date"] if line["date"] is not None else spec["date"]
        if line_date != "":
            if isinstance(line_date, str) and "-" in line_date and len(line_date) > 10:
                segs.append(f"DTP*472*RD8*{line_date}")
            else:
                segs.append(f"DTP*472*D8*{_d8(line_date)}")
        if line["rendering_npi"]:
            segs.append(f"NM1*82*1*LINE*DOC****XX*{line['rendering_npi']}")
            if line.get("taxonomy"):
                segs.append(f"PRV*PE*PXC*{line['taxonomy']}")
        segs.extend(_facility_and_supervising(line, "LINE"))
        if line["ordering_npi"]:
            segs.append(f"NM1*DK*1*ORDERING*DOC****XX*{line['ordering_npi']}")
        if line["referring_npi"]:
            segs.append(f"NM1*DN*1*LINEREF*DOC****XX*{line['referring_npi']}")
    return segs, next_hl


def _facility_and_supervising(spec: dict, name: str) -> list[str]:
    """Service facility (2310C/2420C, with its address) and supervising provider (2310D/2420D)."""
    segs = []
    if spec["facility_npi"]:
        segs.append(f"NM1*77*2*{name} SURGERY CENTER*****XX*{spec['facility_npi']}")
        segs.append("N3*200 HOSPITAL DR")
        segs.append("N4*SPRINGFIELD*IL*62701")
    if spec["supervising_npi"]:
        segs.append(f"NM1*DQ*1*SUPERVISING*DOC****XX*{spec['supervising_npi']}")
    return segs


def write_837(
    claims: Iterable[dict],
    *,
    control: int = 1,
    version: str = "005010X222A1",
    element: str = "*",
    component: str = ":",
    repetition: str = "^",
    terminator: str = "~",
    newline: str = "\n",
    claims_per_transaction: Optional[int] = None,
    submitter: str = "SUBMITTER01",
    receiver: str = "RECEIVER01",
    created: str = "20250310",
) -> str:
    """An 837P interchange with one functional group holding the claims.

    ``claims_per_transaction`` splits the claims over several ST/SE sets.
    """
    claims = list(claims)
    chunk = claims_per_transaction or max(len(claims), 1)
    groups = [claims[i : i + chunk] for i in range(0, len(claims), chunk)] or [[]]
    yymmdd, hhmm = created[2:], "1200"
    isa = (
        f"ISA*00*          *00*          *ZZ*{submitter:<15}*ZZ*{receiver:<15}*{yymmdd}*{hhmm}"
        f"*{repetition}*00501*{control:09d}*0*T*{component}"
    )
    segments = [isa, f"GS*HC*{submitter}*{receiver}*{created}*{hhmm}*{control}*X*{version}"]
    index = 0
    for st_number, group in enumerate(groups, start=1):
        st = [
            f"ST*837*{st_number:04d}*{version}",
            f"BHT*0019*00*BATCH{control:04d}{st_number:03d}*{created}*{hhmm}*CH",
            f"NM1*41*2*SUBMITTER CLINIC*****46*{submitter}",
            "PER*IC*BILLING OFFICE*TE*5555550100",
            f"NM1*40*2*RECEIVER*****46*{receiver}",
        ]
        hl = 1
        billing_hl, billing_npi = 0, None
        for claim in group:
            npi = claim.get("billing_npi", BILLING_NPI)
            if npi != billing_npi:
                # a claim of another billing provider starts its own 2000A loop
                billing_hl, billing_npi = hl, npi
                st.extend(_billing_provider(billing_hl, npi, claim.get("billing_taxonomy", "")))
                hl += 1
            segs, hl = claim_segments(claim, index, hl, billing_hl)
            st.extend(segs)
            index += 1
        if billing_npi is None:
            st.extend(_billing_provider(1, BILLING_NPI, ""))
        st.append(f"SE*{len(st) + 1}*{st_number:04d}")
        segments.extend(st)
    segments.append(f"GE*{len(groups)}*{control}")
    segments.append(f"IEA*1*{control:09d}")
    if element != "*" or component != ":":
        segments = [_redelimit(s, element, component) for s in segments]
    return "".join(s + terminator + newline for s in segments)


def _billing_provider(hl: int, npi: str, taxonomy: str) -> list[str]:
    segs = [f"HL*{hl}**20*1"]
    if taxonomy:
        segs.append(f"PRV*BI*PXC*{taxonomy}")
    segs += [
        f"NM1*85*2*PAIN MANAGEMENT ASSOCIATES*****XX*{npi}",
        "N3*100 CLINIC WAY",
        "N4*SPRINGFIELD*IL*62701",
        "REF*EI*123456789",
    ]
    return segs


def _redelimit(segment: str, element: str, component: str) -> str:
    if segment.startswith("ISA*"):
        fields = segment.split("*")
        fields[16] = component
        return element.join(fields)
    return segment.replace(":", "\x00").replace("*", element).replace("\x00", component)
