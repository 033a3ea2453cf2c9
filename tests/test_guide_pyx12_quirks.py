"""Where pyx12 was or is wrong, and what the compiled guide does there (the same thing).

pyx12's 837P map had known errata, reported as its GitHub issues 24, 27, 28 and 29; the map
bundled with pyx12 4.0.0 has them corrected, and these tests pin that down with claims that
use each construct, through both validators. Where pyx12's *code* is still wrong, the
compiled guide reproduces pyx12's verdict on purpose (its verdicts are the contract), and
the case is pinned here so that a change in either shows up.
"""

from __future__ import annotations

from pathlib import Path

import guidediff
from claimscrub.guide.validator import CompiledValidator
from claimscrub.synth import write_837
from claimscrub.validate import Pyx12Validator

RENDERING = "NM1*82*1*DOE*JOHN****XX*1234567893~PRV*PE*{code}*207L00000X~"
FACILITY = "NM1*77*2*SURGERY CENTER*****XX*1234567893~N3*1 MAIN ST~N4*SPRINGFIELD*IL*62701~PER*IC*FRONT DESK*TE*5555550100~"
DRUG = "LIN**N4*00002140701~CTP***{ctp03}*2*{unit}~"


def _claim(dependent: bool) -> str:
    return write_837([{"id": "C1", "lines": [{"code": "64483", "charge": 500}], "rendering_npi": "",
                       "patient": {"dependent": True} if dependent else None}])


def _insert(text: str, before: str, extra: str) -> str:
    head, sep, tail = text.partition(before)
    assert sep
    return head + extra.replace("~", "~\n") + sep + tail


def _errors(tmp_path: Path, text: str, name: str = "t.837") -> list:
    """The compiled guide's errors, after checking they are pyx12's own."""
    path = tmp_path / name
    path.write_text(text)
    oracle = guidediff.results(Pyx12Validator(jobs=1, slice_segments=0), path)
    compiled = guidediff.results(CompiledValidator(), path)
    assert compiled == oracle
    return [(e.seg_id, e.element, e.code) for errors, _codes in compiled.values() for e in errors]


def test_issue_24_27_service_facility_contact_under_the_subscriber(tmp_path):
    # 2310C PER (service facility contact) exists under 2000B as under 2000C
    for dependent in (False, True):
        assert _errors(tmp_path, _insert(_claim(dependent), "LX*1~", FACILITY)) == []


def test_issue_28_rendering_taxonomy_qualifier_is_pxc_on_both_paths(tmp_path):
    for dependent in (False, True):
        assert _errors(tmp_path, _insert(_claim(dependent), "LX*1~", RENDERING.format(code="PXC"))) == []
        # the 4010 qualifier ZZ is rejected on both paths (it was accepted under 2000C)
        assert _errors(tmp_path, _insert(_claim(dependent), "LX*1~", RENDERING.format(code="ZZ"))) == [
            ("PRV", "2", "7")]


def test_issue_29_drug_unit_me_and_ctp03_on_both_paths(tmp_path):
    for dependent in (False, True):
        text = _claim(dependent)
        line_date = text[text.index("DTP*472"):].split("~")[0] + "~"
        good = text.replace(line_date, line_date + "\n" + DRUG.format(ctp03="", unit="ME").replace("~", "~\n"), 1)
        assert _errors(tmp_path, good) == []
        # CTP03 (unit price) is not used in 2410 under either patient path
        bad = good.replace("CTP****2*ME", "CTP***10*2*ME")
        assert _errors(tmp_path, bad) == [("CTP", "3", "10")]


def test_a_composite_with_too_many_components_is_not_validated_as_pyx12_cannot(tmp_path):
    # pyx12 4.0.0 indexes past the composite's components (segment_if.is_valid_errors) and
    # raises IndexError instead of reporting IK403 13; the set is "not validated" (IK502 1)
    # and rejected, in both validators alike
    text = _claim(False).replace("*11:B:1*", "*11:B:1:X*", 1)
    path = tmp_path / "extra-component.837"
    path.write_text(text)
    compiled = guidediff.results(CompiledValidator(), path)
    assert compiled == guidediff.results(Pyx12Validator(jobs=1, slice_segments=0), path)
    (errors, codes), = compiled.values()
    assert codes == ["1"]
    assert errors[-1].code == "1" and "IndexError" in errors[-1].message


def test_a_large_set_is_validated_whole(tmp_path):
    """The compiled guide walks a large set whole, as pyx12 does on the whole set.
    Pyx12Validator cuts sets over 4,000 segments into slices, which is the same except
    where pyx12 raises in one slice: the other slices' errors are then still reported, where
    pyx12 on the whole set reports only that it could not validate it."""
    claims = [{"id": f"C{i}", "lines": [{"code": "64483", "charge": 500}]} for i in range(400)]
    text = write_837(claims)
    text = text.replace("NM1*PR*2*", "NM1*PR*Z*", 1)            # an error early on
    head, sep, tail = text.rpartition("*11:B:1*")                 # pyx12 raises at the end
    text = head + "*11:B:1:X*" + tail
    path = tmp_path / "large.837"
    path.write_text(text)
    whole = guidediff.results(Pyx12Validator(jobs=1, slice_segments=0), path)
    compiled = guidediff.results(CompiledValidator(), path)
    sliced = guidediff.results(Pyx12Validator(jobs=1), path)
    assert compiled == whole
    (errors, codes), = compiled.values()
    assert codes == ["1"] and [e.code for e in errors] == ["1"]
    (sliced_errors, sliced_codes), = sliced.values()
    assert sliced_codes == ["1"] and len(sliced_errors) > 1


def test_pyx12s_reader_quirks_are_reproduced(tmp_path):
    """Leading white space, trailing separators, empty and nameless segments: pyx12's
    reader reports them on the segment it places next; the compiled guide agrees, and
    leaves to pyx12 itself the segment only its reader would take for an envelope one."""
    base = _claim(False)
    variants = {
        "leading-space": base.replace("\nN3*1 MAIN ST", "\n N3*1 MAIN ST", 1),
        "tab": base.replace("\nN3*1 MAIN ST", "\n\tN3*1 MAIN ST", 1),
        "trailing": base.replace("DMG*D8*19600101*F~", "DMG*D8*19600101*F*~", 1),
        "empty": base.replace("N3*1 MAIN ST~", "N3*1 MAIN ST~\nN3*~", 1),
        "only-components": base.replace("N3*1 MAIN ST~", "N3*1 MAIN ST~\nREF*:::~", 1),
        "no-id": base.replace("N3*1 MAIN ST~", "*1 MAIN ST~", 1),
        "bad-id": base.replace("N3*1 MAIN ST~", "n3*1 MAIN ST~", 1),
        "hidden-se": base.replace("N3*1 MAIN ST~", "N3*1 MAIN ST~\n SE*5*0001~", 1),
        "hidden-st": base.replace("N3*1 MAIN ST~", "N3*1 MAIN ST~\n ST*837*0002*005010X222A1~", 1),
    }
    reported = set()
    for name, text in variants.items():
        errors = _errors(tmp_path, text, f"{name}.837")
        reported.update(code for _seg, _ele, code in errors)
    assert {"1", "8"} <= reported


def test_a_fault_in_the_compiled_walk_falls_back_to_pyx12(tmp_path, monkeypatch):
    """Should the compiled walk ever fail on some input, pyx12 itself validates that set:
    the scrub goes on with pyx12's verdict instead of stopping."""
    import claimscrub.guide.walker as walker

    def broken(self, segments, delimiters):
        raise KeyError("a fault")

    monkeypatch.delenv("CLAIMSCRUB_DEBUG", raising=False)
    monkeypatch.setattr(walker.Walker, "validate", broken)
    text = _claim(False).replace("*11:B:1*", "*AA:B:1*", 1)
    assert _errors(tmp_path, text) == [("CLM", "5:1", "7")]
