"""The one finding model every edit yields and every writer reads."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from enum import Enum
from typing import Optional

from pydantic import BaseModel, ConfigDict


class Category(str, Enum):
    """The closed set of finding categories (used in JSON and the 277CA mapping)."""

    SYNTAX = "syntax"
    BALANCING = "balancing"
    CODE_VALIDITY = "code-validity"
    UNITS = "units"
    IMAGING = "imaging"
    PTP = "ptp"
    MODIFIER = "modifier"
    EM_25 = "em-25"
    MEDICAL_NECESSITY = "medical-necessity"
    FREQUENCY = "frequency"
    CLAIM_SPLIT = "claim-split"
    #: the same service billed twice (same patient, date, code, modifiers, provider)
    DUPLICATE = "duplicate"
    #: a service billed by the wrong entity for its setting (a facility-supplied drug)
    PLACE_OF_SERVICE = "place-of-service"


class Severity(str, Enum):
    ERROR = "error"
    WARNING = "warning"
    INFO = "info"


class RelatedClaim(BaseModel):
    """Another claim a finding names: the earlier copy of a duplicate, the procedure an E/M
    is paired with, the claims of one session. ``file`` is the input's display name (or the
    file of an earlier run, with ``billed_on`` the date of that run when the claim history
    supplied it); ``line`` is the LX01 of the line named, when the finding names one."""

    model_config = ConfigDict(frozen=True)

    claim_id: str
    file: str
    line: Optional[str] = None
    billed_on: Optional[date] = None


class Finding(BaseModel):
    """One fact about one claim, or one line of it.

    ``segment`` is the 1-based ordinal of the segment in its input file (ISA = 1), the
    position a report points at; ``line`` is the service line number (LX01) when the
    finding is about a line.
    """

    model_config = ConfigDict(frozen=True)

    rule: str
    category: Category
    severity: Severity
    message: str
    fix: str = ""
    source: str
    file: str
    #: the input's ordinal in the run; what findings are keyed by (``file`` is for people)
    file_index: int = -1
    claim_id: Optional[str] = None
    claim_index: Optional[int] = None
    line: Optional[str] = None
    segment: Optional[int] = None
    amount_at_risk: Optional[Decimal] = None
    status_code: Optional[str] = None
    #: other claims the finding names (empty when it is about its own claim only)
    related: tuple[RelatedClaim, ...] = ()

    def as_report(self) -> dict:
        """The shape a finding takes in the JSON report."""
        out = {
            "rule": self.rule,
            "category": self.category.value,
            "severity": self.severity.value,
            "line": self.line,
            "segment": self.segment,
            "message": self.message,
            "fix": self.fix,
            "source": self.source,
        }
        if self.amount_at_risk is not None:
            out["amount_at_risk"] = str(self.amount_at_risk)
        return out
