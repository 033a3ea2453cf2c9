"""Every edit is documented in the fixed sections, and its documentation examples are
tests: the failing example must fire, the corrected example must not (pylint-style)."""

from __future__ import annotations

import pytest

from claimscrub.engine import DOC_SECTIONS, load_rules
from claimscrub.examples import example_of, findings_of

RULES = load_rules()


@pytest.mark.parametrize("rule_id", sorted(RULES))
def test_documentation_has_every_section(rule_id):
    docs = RULES[rule_id].documentation()
    missing = [s for s in DOC_SECTIONS if not docs.get(s)]
    assert not missing, f"{rule_id} documentation lacks {missing}"
    assert RULES[rule_id].source.strip()


@pytest.mark.parametrize("rule_id", sorted(RULES))
def test_failing_example_fires(rule_id):
    scenario = example_of(RULES[rule_id], "Failing example")
    assert findings_of(rule_id, scenario), f"{rule_id}: failing example did not fire"


@pytest.mark.parametrize("rule_id", sorted(RULES))
def test_corrected_example_does_not_fire(rule_id):
    scenario = example_of(RULES[rule_id], "Corrected example")
    found = findings_of(rule_id, scenario)
    assert not found, f"{rule_id}: corrected example fired: {[f.message for f in found]}"
