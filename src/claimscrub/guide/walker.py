"""The table-driven 837P validator: pyx12's map walk and element checks, compiled.

What pyx12 does for one transaction set (``x12n_document`` over the standalone interchange
:mod:`claimscrub.validate` hands it) is reproduced here decision for decision:

* **The map walk** (pyx12 ``map_walker.walk_tree.walk_errors``). Which map node a segment
  lands on depends only on the node the walk stands on, the segment id and the values of
  the qualifier elements the map matches on; the loop and segment counters only decide
  which "missing", "exceeded" and "not used" errors are raised along the way. So each
  (node, segment id, qualifier values) is compiled once, on first sight, into a *plan*: the
  counter checks to make in pyx12's order and the node reached. Running a plan is a few
  dictionary operations.
* **Element checks** (pyx12 ``segment_if/composite_if/element_if.is_valid_errors``): each
  segment node has its elements' usage, type, lengths, code lists, regular expressions and
  X12 syntax rules precompiled; a segment that passes the fast checks is clean for pyx12 too
  (the fast checks are strictly narrower), and any other segment is checked by an exact
  port of pyx12's element logic that yields its errors and their wording.
* **The reader's checks** (pyx12 ``X12Reader``: a leading space, a trailing element
  separator, an empty segment, a bad segment id, HL01/HL02 and LX01 numbering) and **where
  each error lands** in pyx12's error tree (errors of a segment pyx12 could not place wait
  for the next one it places; a "not used" error hangs on the previous segment; errors
  right after ST are lost), so the error list and its order are pyx12's JSON output.

The result is the list of raw errors :func:`claimscrub.validate.validate_interchange`
would have read back from pyx12, which :mod:`claimscrub.guide.validator` turns into
``IGError`` with the same code as the pyx12 path.
"""

from __future__ import annotations

import re
from typing import Generator, Optional

from claimscrub.guide.compile import (
    K_CODE, K_NUM, K_REAL, K_TEXT, CompositeSpec, ElementSpec, Guide, LoopNode, SegNode,
)
from claimscrub.x12.reader import Segment

KIND_SEG, KIND_LOOP, KIND_NOTFOUND, KIND_NONE = range(4)
_NO = object()  # a qualifier value no map node matches
ENVELOPE_IDS = frozenset({"ISA", "IEA", "GS", "GE", "ST", "SE"})
_SEG_ID = re.compile("^[A-Z][A-Z0-9]{1,2}$", re.S)
_DATE_TYPES = ("RD8", "D8", "D6", "DT", "TM")


class NeedsPyx12(Exception):
    """Input outside what the compiled walk reproduces (pyx12 itself must read it)."""


class Pyx12Crash(Exception):
    """pyx12 raises on this input; the message is what ``validate_interchange`` reports."""


# --------------------------------------------------------------------------------------
# Plans: the map walk, compiled per (node, segment id, qualifier values)
# --------------------------------------------------------------------------------------


class Plan:
    __slots__ = ("records", "kind", "node", "loop", "simple", "frame", "key", "max")

    def __init__(self, records, kind, node=None, loop=None):
        self.records = tuple(records)
        self.kind = kind
        self.node = node
        self.loop = loop
        #: lands on a used segment: when every counter test on the way passes, only its
        #: own count matters
        self.simple = kind == KIND_SEG and node.usage != "N"
        self.frame = node.parent.key if node is not None else None
        self.key = node.key if node is not None else None
        self.max = node.max_repeat if node is not None else 0


def _match(node: SegNode, seg_id: str, values: dict) -> bool:
    if node.id != seg_id:
        return False
    qual = node.qual
    if qual is None:
        return True
    return values.get((qual[0], qual[1]), _NO) in qual[2]


def build_plan(orig, seg_id: str, values: dict) -> Plan:
    """pyx12's ``walk_errors`` run symbolically: every counter test it would make, in its
    order, and where it ends."""
    records: list = []

    def is_loop_match(loop: LoopNode) -> bool:
        children = loop.children
        if not children:
            return False
        first = children[0]
        if first.is_loop:
            return any(c.is_loop and is_loop_match(c) for c in children)
        if _match(first, seg_id, values):
            return True
        if loop.usage == "R":
            records.append((loop.parent.key, loop.key, (first, 'Mandatory loop "%s" (%s) missing' % (loop.name, loop.id))))
        return False

    def goto(loop: LoopNode) -> Plan:
        first = loop.children[0] if loop.children else None
        if first is not None and not first.is_loop and _match(first, seg_id, values):
            return Plan(records, KIND_LOOP, first, loop)
        for child in loop.children:
            if child.is_loop:
                plan = goto(child)
                if plan.kind != KIND_NONE:
                    return plan
        return Plan(records, KIND_NONE)

    def scan(node: LoopNode, node_pos: int) -> Optional[Plan]:
        for child in node.children:
            if child.pos < node_pos:
                continue
            if not child.is_loop:
                if _match(child, seg_id, values):
                    if not node.is_root and is_loop_match(node):
                        return goto(node)
                    return Plan(records, KIND_SEG, child)
                if child.usage == "R" and child is not orig:
                    # (the node the walk starts on was counted when the walk landed on it,
                    # and nothing resets counts between walks: its test always passes)
                    records.append((node.key, child.key, (child, 'Mandatory segment "%s" (%s) missing' % (child.name, child.id))))
            elif is_loop_match(child):
                return goto(child)
        return None

    if orig.is_loop:
        node, node_pos = orig, orig.pos
    else:
        node, node_pos = orig.parent, orig.pos
    while True:
        plan = scan(node, node_pos)
        if plan is not None:
            return plan
        if node.is_root:
            return Plan(records, KIND_NOTFOUND)
        node_pos = node.pos
        node = node.parent


# --------------------------------------------------------------------------------------
# Element checks: exact port of pyx12's validators (the slow path)
# --------------------------------------------------------------------------------------

_validation = None


def _pyx12_validation():
    global _validation
    if _validation is None:
        import pyx12.validation as validation

        _validation = validation
    return _validation


def element_errors(guide: Guide, spec: ElementSpec, value: Optional[str], type_list) -> list:
    """pyx12 ``element_if.is_valid_errors`` for a simple value (``None`` when absent):
    ``[(code, text, bad value, spec)]``."""
    name, refdes = spec.name, spec.refdes
    if value is None or value == "":
        if spec.empty_ok:
            return []
        return [("1", 'Mandatory data element "%s" (%s) is missing' % (name, refdes), None, spec)]
    if spec.usage == "N":
        return [("10", 'Data element "%s" (%s) is marked as Not Used' % (name, refdes), None, spec)]
    validation = _pyx12_validation()
    errors = []
    data_type = spec.data_type
    if data_type is not None and (data_type == "R" or data_type[0] == "N"):
        measured = value.replace("-", "").replace(".", "")
    else:
        measured = value
    length = len(measured)
    if length < spec.min_len:
        errors.append(("4", 'Data element "%s" (%s) is too short: len("%s") = %i < %i (min_len)'
                       % (name, refdes, value, length, spec.min_len), value, spec))
    if length > spec.max_len:
        errors.append(("5", 'Data element "%s" (%s) is too long: len("%s") = %i > %i (max_len)'
                       % (name, refdes, value, length, spec.max_len), value, spec))
    bad, bad_string = validation.contains_control_character(value)
    if bad:
        errors.append(("6", 'Data element "%s" (%s), contains an invalid control character(%s)'
                       % (name, refdes, bad_string), bad_string, spec))
        return errors
    if data_type in ("AN", "ID") and value[-1] == " " and len(value.rstrip()) >= spec.min_len:
        errors.append(("6", 'Data element "%s" (%s) has unnecessary trailing spaces. (%s)'
                       % (name, refdes, value), value, spec))
    if spec.codes or spec.external is not None:
        if value not in spec.codes:
            ext = spec.ext_codes
            if ext is False:
                raise Pyx12Crash(f'EngineError: External Code "{spec.external}" is not defined')
            if not (spec.external is not None and (ext is True or value in ext)):
                errors.append(("7", "(%s) is not a valid code for %s (%s)" % (value, name, refdes), value, spec))
    if not validation.IsValidDataType(value, data_type, guide.charset, guide.icvn or "00401"):
        if data_type in ("RD8", "DT", "D8", "D6"):
            errors.append(("8", 'Data element "%s" (%s) contains an invalid date (%s)' % (name, refdes, value), value, spec))
        elif data_type == "TM":
            errors.append(("9", 'Data element "%s" (%s) contains an invalid time (%s)' % (name, refdes, value), value, spec))
        else:
            errors.append(("6", 'Data element "%s" (%s) is type %s, contains an invalid character(%s)'
                           % (name, refdes, data_type, value), value, spec))
    if type_list:
        errors.extend(_type_list_errors(guide, spec, value, type_list))
    if spec.regex is not None and not spec.regex.search(value):
        errors.append(("7", 'Data element "%s" with a value of (%s) failed to match the regular expression "%s"'
                       % (name, value, spec.res), value, spec))
    return errors


def _type_list_errors(guide: Guide, spec: ElementSpec, value: str, type_list) -> list:
    validation = _pyx12_validation()
    valid = False
    for dtype in type_list:
        if dtype is not None:
            valid |= validation.IsValidDataType(value, dtype, guide.charset)
    if valid:
        return []
    if "TM" in type_list:
        return [("9", 'Data element "%s" (%s) contains an invalid time (%s)' % (spec.name, spec.refdes, value), value, spec)]
    if any(t in type_list for t in ("RD8", "DT", "D8", "D6")):
        return [("8", 'Data element "%s" (%s) contains an invalid date (%s)' % (spec.name, spec.refdes, value), value, spec)]
    return []


def _format(raw: str, comp: str) -> str:
    """pyx12 ``Composite.format``: trailing empty components dropped."""
    return raw.rstrip(comp)


def composite_errors(guide: Guide, spec: CompositeSpec, subs: Optional[list]) -> list:
    """pyx12 ``composite_if.is_valid_errors``; ``subs`` is the list of components."""
    empty = subs is None or all(s == "" for s in subs)
    if empty and spec.usage in ("N", "S"):
        return []
    if spec.usage == "R" and empty:
        return [("1", 'Mandatory composite "%s" (%s) is missing' % (spec.name, spec.refdes), None, None)]
    if spec.usage == "N" and not empty:
        return [("5", 'Composite "%s" (%s) is marked as Not Used' % (spec.name, spec.refdes), None, None)]
    errors = []
    count = len(spec.children)
    if len(subs) > count:
        errors.append(("3", 'Too many sub-elements in composite "%s" (%s)' % (spec.name, spec.refdes), None, None))
    for i in range(min(len(subs), count)):
        errors.extend(element_errors(guide, spec.children[i], subs[i], ()))
    for i in range(min(len(subs), count), count):
        errors.extend(element_errors(guide, spec.children[i], None, ()))
    return errors


def segment_errors(guide: Guide, node: SegNode, elems: list, delimiters) -> list:
    """pyx12 ``segment_if.is_valid_errors`` for one segment (``elems[0]`` is its id)."""
    comp = delimiters[1]
    seg_id = elems[0]
    count = len(elems) - 1
    items = node.items
    child_count = len(items)
    errors = []
    if count > child_count:
        errors.append(("3", 'Too many elements in segment "%s" (%s). Has %i, should have %i'
                       % (node.name, seg_id, count, child_count),
                       _format(elems[child_count + 1], comp), None))
    dtype: list = []
    for i in range(min(count, child_count)):
        item = items[i]
        raw = elems[i + 1]
        if item.is_composite:
            subs = raw.split(comp)
            if len(subs) > len(item.children) and item.usage != "N":
                # pyx12 indexes past the composite's components here and raises
                raise Pyx12Crash("IndexError: list index out of range")
            errors.extend(composite_errors(guide, item, subs))
            continue
        if i == 1 and seg_id == "DTP":
            qualifier = _format(elems[2], comp)
            if qualifier in _DATE_TYPES:
                dtype = [qualifier]
        subs = raw.split(comp)
        if len(subs) > 1:
            errors.append(("6", 'Data element "%s" (%s) is an invalid composite' % (item.name, item.refdes),
                           _format(raw, comp), item))
            continue
        if i == 2 and seg_id == "DTP":
            errors.extend(element_errors(guide, item, raw, dtype))
        elif item.data_ele == "1251" and node.static_types[i]:
            errors.extend(element_errors(guide, item, raw, node.static_types[i]))
        else:
            errors.extend(element_errors(guide, item, raw, ()))
    for i in range(min(count, child_count), child_count):
        item = items[i]
        if item.is_composite:
            errors.extend(composite_errors(guide, item, None))
        else:
            errors.extend(element_errors(guide, item, None, ()))
    if node.syntax:
        import pyx12.segment
        import pyx12.syntax

        element, _comp, _rep, term = delimiters
        seg = pyx12.segment.Segment(element.join(elems), term, element, comp)
        for syn in node.syntax:
            ok, message = pyx12.syntax.is_syntax_valid(seg, list(syn))
            if not ok:
                errors.append(("10" if syn[0] == "E" else "2", message, None, None))
    return errors


# --------------------------------------------------------------------------------------
# Fast checks: a segment that passes them has no error in pyx12 either
# --------------------------------------------------------------------------------------


class FastChecks:
    """Per component separator: generated functions that prove a segment clean.

    For each segment node a small Python function is generated from the compiled
    element specs (lengths, code sets, character classes, syntax rules as constants); it
    returns True only when pyx12 would find nothing wrong with the segment's elements. It
    is deliberately narrower than pyx12 (anything unusual returns False and goes to the
    exact port above), so it can never hide an error.
    """

    def __init__(self, guide: Guide, comp: str):
        import pyx12.validation as validation

        self.guide = guide
        self.comp = comp
        if guide.charset == "E":
            bad = validation.rec_ID_E5 if guide.icvn == "00501" else validation.rec_ID_E
        else:
            bad = validation.rec_ID_B
        body = bad.pattern
        assert body.startswith("[^") and body.endswith("]")
        allowed = body[2:-1]
        # a component separator inside a simple element makes it a composite: not clean
        self.text_ok = re.compile("[" + allowed + "]*", validation.REGEX_MODE).fullmatch
        self.num_ok = re.compile(r"-?[0-9]+", re.ASCII).fullmatch
        self.real_ok = re.compile(r"-?[0-9]*(\.[0-9]+)?", re.ASCII).fullmatch
        #: a separator that digits, signs or points could contain disables the fast path
        self.usable = not (comp.isalnum() or comp in "-. ")
        self.memo: dict = {}
        self.checks: dict[int, object] = {}

    # -- helpers the generated functions call ------------------------------------------
    def value_memo(self, spec: ElementSpec, value: str) -> bool:
        key = (id(spec), value)
        ok = self.memo.get(key)
        if ok is None:
            if len(self.memo) > 200_000:
                self.memo.clear()
            ok = self.memo[key] = (self.comp not in value
                                   and not element_errors(self.guide, spec, value, ()))
        return ok

    def types_ok(self, spec: ElementSpec, types: tuple, value: str) -> bool:
        if not types:
            return True
        key = (types, value)
        ok = self.memo.get(key)
        if ok is None:
            if len(self.memo) > 200_000:
                self.memo.clear()
            ok = self.memo[key] = not _type_list_errors(self.guide, spec, value, types)
        return ok

    def dtp_ok(self, spec: ElementSpec, qualifier: str, value: str) -> bool:
        qualifier = qualifier.rstrip(self.comp)
        if qualifier not in _DATE_TYPES:
            return True
        return self.types_ok(spec, (qualifier,), value)

    def check_for(self, node: SegNode):
        check = self.checks.get(node.index)
        if check is None:
            check = self.checks[node.index] = self._generate(node)
        return check

    def _generate(self, node: SegNode):
        if not self.usable:
            return lambda e: False
        env: dict = {"TAIL": node.tail_ok, "TEXT": self.text_ok, "NUM": self.num_ok,
                     "REAL": self.real_ok, "MEMO": self.value_memo, "TYPES": self.types_ok,
                     "DTP": self.dtp_ok, "CS": self.comp}
        lines = ["def check(e):", " n = len(e)", f" if n > {len(node.items) + 1} or not TAIL[n - 1]:",
                 "  return False"]
        for i, item in enumerate(node.items, start=1):
            lines.append(f" if n > {i}:")
            lines.append(f"  v = e[{i}]")
            lines.append("  if v:")
            if item.is_composite:
                lines.extend(self._composite(node, item, i, env))
                empty_ok = item.none_ok
            else:
                condition = self._condition(node, item, i, env)
                empty_ok = item.empty_ok
                lines.append(f"   if not ({condition}):")
                lines.append("    return False")
            if not empty_ok:
                lines.append("  else:")
                lines.append("   return False")
        for rule in node.syntax:
            lines.append(f" if not ({self._syntax(rule)}):")
            lines.append("  return False")
        lines.append(" return True")
        exec(compile("\n".join(lines), f"<guide {node.path}>", "exec"), env)  # noqa: S102
        return env["check"]

    def _composite(self, node: SegNode, item: CompositeSpec, i: int, env: dict) -> list:
        """Source lines checking composite ``i`` (its value ``v`` is not empty)."""
        if item.usage == "N":
            return ["   return False"]
        count = len(item.children)
        out = ["   s = v.split(CS)", "   m = len(s)", f"   if m > {count}:", "    return False",
               "   if v.strip(CS):"]
        for j, spec in enumerate(item.children):
            name = f"{i}_{j + 1}"
            condition = self._condition(node, spec, name, env, var="w", simple=False)
            out.append(f"    if m > {j}:")
            out.append(f"     w = s[{j}]")
            out.append("     if w:")
            out.append(f"      if not ({condition}):")
            out.append("       return False")
            if not spec.empty_ok:
                out.append("     else:")
                out.append("      return False")
            if not spec.empty_ok:
                out.append("    else:")
                out.append("     return False")
        if item.usage == "R":
            out.append("   else:")
            out.append("    return False")
        return out

    def _condition(self, node: SegNode, spec: ElementSpec, i, env: dict, var: str = "v",
                   simple: bool = True) -> str:
        if spec.usage == "N":
            return "False"
        v = var
        env[f"S{i}"] = spec
        kind = spec.kind
        regex = ""
        if spec.regex is not None:
            env[f"X{i}"] = spec.regex.search
            regex = f" and X{i}({v}) is not None"
        if kind == K_CODE:
            env[f"C{i}"] = frozenset(c for c in spec.clean_codes if self.comp not in c)
            condition = f"{v} in C{i}"
        elif kind == K_TEXT:
            condition = (f"{spec.min_len} <= len({v}) <= {spec.max_len} and {v}[-1] != ' ' "
                         f"and TEXT({v}) is not None and CS not in {v}{regex}")
        elif kind == K_NUM:
            condition = (f"NUM({v}) is not None and {spec.min_len} <= len({v}) - ({v}[0] == '-') "
                         f"<= {spec.max_len}{regex}")
        elif kind == K_REAL:
            condition = (f"REAL({v}) is not None and {spec.min_len} <= len({v}) - {v}.count('-') "
                         f"- {v}.count('.') <= {spec.max_len}{regex}")
        else:
            condition = f"MEMO(S{i}, {v})"
        if not simple:
            return condition
        if node.id == "DTP" and i == 3:
            condition += f" and DTP(S{i}, e[2], v)"
        elif spec.data_ele == "1251" and node.static_types[i - 1]:
            env[f"T{i}"] = node.static_types[i - 1]
            condition += f" and TYPES(S{i}, T{i}, v)"
        return condition

    @staticmethod
    def _syntax(rule: tuple) -> str:
        if len(rule) < 3:
            return "False"
        present = [f"(n > {s} and e[{s}].strip(CS) != '')" for s in rule[1:]]
        code = rule[0]
        if code == "P":
            return f"({' + '.join(present)}) in (0, {len(present)})"
        if code == "R":
            return " or ".join(present)
        if code == "E":
            return f"({' + '.join(present)}) <= 1"
        if code == "C":
            return f"not {present[0]} or ({' and '.join(present[1:])})"
        if code == "L":
            return f"not {present[0]} or ({' or '.join(present[1:])})"
        return "False"


# --------------------------------------------------------------------------------------
# pyx12's error tree, as far as its JSON output shows it
# --------------------------------------------------------------------------------------


class _ErrSeg:
    __slots__ = ("line", "seg_id", "loop", "errors", "elements")

    def __init__(self, line: int, seg_id: str, loop: str):
        self.line = line
        self.seg_id = seg_id
        self.loop = loop
        self.errors: list = []
        self.elements: list = []


class _ErrEle:
    __slots__ = ("ele_pos", "subele_pos", "ref", "errors")


_ST = object()  # the transaction set's own node: errors hung on it are lost


class ErrorTree:
    """pyx12 ``err_handler`` below one ST: the cursor rules that decide where errors go."""

    __slots__ = ("nodes", "cur", "added", "ele", "ele_added")

    def __init__(self):
        self.nodes: list[_ErrSeg] = []
        self.cur = _ST
        self.added = True
        self.ele = None
        self.ele_added = True

    def add_seg(self, line: int, seg_id: str, loop: str) -> None:
        self.cur = _ErrSeg(line, seg_id, loop)
        self.added = False

    def seg_error(self, code: str, text: str, value) -> None:
        if self.cur is _ST:
            return  # pyx12: err_st.add_error takes no value -> TypeError, swallowed
        if type(self.cur) is tuple:  # a segment node made only when an error needs it
            self.cur = _ErrSeg(*self.cur)
        if not self.added:
            self.nodes.append(self.cur)
            self.added = True
        self.cur.errors.append((code, text, value))

    def add_ele(self, spec: ElementSpec, composite: Optional[CompositeSpec]) -> None:
        ele = _ErrEle()
        if spec.in_composite:
            ele.ele_pos, ele.subele_pos = composite.seq, spec.seq
        else:
            ele.ele_pos, ele.subele_pos = spec.seq, None
        ele.ref = spec.data_ele
        ele.errors = []
        self.ele = ele
        self.ele_added = False

    def ele_error(self, code: str, text: str, value) -> None:
        if self.cur is _ST:
            return  # element errors of ST/SE go to the ST node, which pyx12's JSON omits
        if type(self.cur) is tuple:
            self.cur = _ErrSeg(*self.cur)
        if not self.added:
            self.nodes.append(self.cur)
            self.added = True
        if not self.ele_added:
            self.cur.elements.append(self.ele)
            self.ele_added = True
        self.ele.errors.append((code, text, value))

    def close_st(self) -> None:
        self.cur = _ST
        self.added = True


# --------------------------------------------------------------------------------------
# One transaction set
# --------------------------------------------------------------------------------------


class Walker:
    """Validates transaction sets against the compiled guide (one per process)."""

    def __init__(self, guide: Guide):
        self.guide = guide
        self.plans: list[dict] = [dict() for _ in guide.segments]
        self.fast: dict[str, FastChecks] = {}
        self.composite_of: dict[int, CompositeSpec] = {}
        for seg in guide.segments:
            for item in seg.items:
                if item.is_composite:
                    for child in item.children:
                        self.composite_of[id(child)] = item
        #: segment ids pyx12's reader accepts as they are
        self.valid_ids: set[str] = set()
        #: segment id -> (element, component or None, codes) when the map matches it on
        #: one element or component
        self.single_qual: dict[str, tuple] = {}
        for seg_id, positions in guide.qual_positions.items():
            if len(positions) == 1:
                (element, component), codes = positions[0]
                self.single_qual[seg_id] = (element, component, codes)
        self.checks: dict[str, list] = {}
        #: loop key -> the counter frames a reset of that loop clears
        self.reset_frames: dict[str, frozenset] = {}
        frames = [guide.root.key]
        stack = [guide.root]
        while stack:
            loop = stack.pop()
            for child in loop.children:
                if child.is_loop:
                    frames.append(child.key)
                    stack.append(child)
        self.frame_keys = frames
        for key in frames:
            self.reset_frames[key] = frozenset(f for f in frames if f == key or f.startswith(key + "/"))

    # -- plans ----------------------------------------------------------------------------
    def plan(self, orig: SegNode, elems: list, comp: str) -> Plan:
        seg_id = elems[0]
        positions = self.guide.qual_positions.get(seg_id)
        table = self.plans[orig.index]
        if not positions:
            plan = table.get(seg_id)
            if plan is None:
                plan = table[seg_id] = build_plan(orig, seg_id, {})
            return plan
        values: dict = {}
        key_values = []
        for position, codes in positions:
            value = _value_at(elems, position, comp)
            if value not in codes:
                value = _NO
            values[position] = value
            key_values.append(value)
        key = (seg_id, *key_values)
        plan = table.get(key)
        if plan is None:
            plan = table[key] = build_plan(orig, seg_id, values)
        return plan

    # -- the transaction set --------------------------------------------------------------
    def validate(self, segments: list, delimiters) -> list:
        """Raw errors of one transaction set (ST..SE, claimscrub ``Segment`` objects) as
        ``validate_interchange`` reads them from pyx12: ``(line, segment id, code, text,
        element position, component position, data element, bad value, loop id)`` with
        ISA = line 1, GS = 2, ST = 3. Raises :class:`Pyx12Crash` where pyx12 raises and
        :class:`NeedsPyx12` for input only pyx12 itself should read."""
        walk = self.walk(delimiters)
        next(walk)
        try:
            for segment in segments:
                walk.send(segment)
            walk.send(None)
        except StopIteration as done:
            return done.value
        raise AssertionError("the walk did not end at SE")  # pragma: no cover

    def walk(self, delimiters) -> Generator[None, Optional[Segment], list]:
        """The walk of :meth:`validate` one segment at a time, so a transaction set of any
        size is validated as it is read: a generator that is sent the set's segments, ST
        first; SE (the only segment of the set with that id) ends it, or ``None`` after SE.
        It returns (``StopIteration.value``) the raw errors :meth:`validate` returns."""
        element_sep, comp, _rep, term = delimiters
        fast = self.fast.get(comp)
        if fast is None:
            fast = self.fast[comp] = FastChecks(self.guide, comp)
        checks = self.checks.get(comp)
        if checks is None:
            checks = self.checks[comp] = [None] * len(self.guide.segments)
        plan_for = self.plan
        plans = self.plans
        single_qual = self.single_qual
        qual_positions = self.guide.qual_positions
        guide = self.guide
        valid_ids = self.valid_ids
        # the loop and segment counters: one dict per loop ("frame") of its children's keys
        frames = {key: {} for key in self.frame_keys}
        active: set = set()
        counter = _Counter(frames, active, self.reset_frames)
        # ISA and GS are placed by force (x12n_document), then ST is walked from GS
        for key in ("/ISA_LOOP", "/ISA_LOOP/ISA", "/ISA_LOOP/GS_LOOP", "/ISA_LOOP/GS_LOOP/GS"):
            counter.bump(key.rsplit("/", 1)[0] or "/", key)
        tree = ErrorTree()
        pending: list = []  # the reader's errors not yet handed to the tree
        state = _ReaderState()
        node = guide.gs_node
        st_segment = yield
        st = st_segment.elements
        plan = plan_for(node, st, comp)
        _errors, found = counter.run(plan, node, st, comp)
        node = found if found is not None else node
        index = 0
        while True:
            segment = yield
            if segment is None:
                break  # SE was walked (a walk that found no place for it)
            index += 1
            line = 3 + index
            is_last = segment.id == "SE"
            if is_last:
                elems = ["SE", str(index + 1), st_segment.get(2)]
            else:
                elems = segment.elements
            first = elems[0]
            # -- the reader (X12Reader.__iter__ and _parse_segment) --------------------------
            if first in valid_ids and len(elems) > 1 and elems[-1] and elems[1] and elems[1][0] != comp:
                pass  # the common case: nothing for the reader to say
            else:
                elems, first = self._read(elems, element_sep, comp, term, pending, is_last)
            if first in _COUNTED:
                state.count(first, elems, comp, pending)
            # -- the walk ------------------------------------------------------------------
            table = plans[node.index]
            qual = single_qual.get(first)
            if qual is not None:
                position, component, codes = qual
                if len(elems) <= position:
                    value = None
                elif component is None:
                    value = elems[position].rstrip(comp)
                else:
                    parts = elems[position].split(comp)
                    value = parts[component - 1] if len(parts) >= component else None
                plan = table.get((first, value if value in codes else _NO))
            elif first in qual_positions:
                plan = None
            else:
                plan = table.get(first)
            if plan is None:
                plan = plan_for(node, elems, comp)
            simple = plan.simple
            if simple and plan.records:
                for frame, key, _record in plan.records:
                    if not frames[frame].get(key):
                        simple = False
                        break
            if simple:
                found = plan.node
                counts = frames[plan.frame]
                count = counts.get(plan.key)
                if count is None:
                    if not counts:
                        active.add(plan.frame)
                    counts[plan.key] = 1
                    walk_errors = _NO_ERRORS
                else:
                    count += 1
                    counts[plan.key] = count
                    if count > plan.max:
                        walk_errors, found = counter.run_exceeded(found, count, elems)
                    else:
                        walk_errors = _NO_ERRORS
            else:
                walk_errors, found = counter.run(plan, node, elems, comp)
            if walk_errors:
                loop = (found or node).parent_id
                for code, text, new_node_id in walk_errors:
                    if new_node_id is not None:
                        tree.add_seg(line, new_node_id, loop)
                    tree.seg_error(code, text, None)
            if found is None:
                continue
            node = found
            if is_last:
                for error in pending:
                    tree.seg_error(*error)
                pending.clear()
                tree.close_st()
                break
            tree.cur = (line, first, node.parent_id)
            tree.added = False
            if pending:
                for error in pending:
                    tree.seg_error(*error)
                pending.clear()
            check = checks[node.index]
            if check is None:
                check = checks[node.index] = fast.check_for(node)
            if check(elems):
                continue
            errors = segment_errors(guide, node, elems, delimiters)
            previous = None
            for code, text, value, spec in errors:
                if spec is None:
                    tree.seg_error("8", text, value)
                    continue
                if spec is not previous:
                    tree.add_ele(spec, self.composite_of.get(id(spec)))
                    previous = spec
                tree.ele_error(code, text, value)
        raw = []
        for seg in tree.nodes:
            loop = seg.loop
            for code, text, value in seg.errors:
                raw.append((seg.line, seg.seg_id, code, text, None, None, "", value or "", loop))
            for ele in seg.elements:
                for code, text, value in ele.errors:
                    raw.append((seg.line, seg.seg_id, code, text, ele.ele_pos, ele.subele_pos,
                                ele.ref or "", value or "", loop))
        return raw

    def _read(self, elems: list, element_sep: str, comp: str, term: str, pending: list,
              is_se: bool) -> tuple[list, str]:
        """pyx12's reader on a segment that is not plainly well formed."""
        first = elems[0]
        if not first or first[0].isspace() or not first[0].isprintable():
            joined = element_sep.join(elems).lstrip("\n\r")
            if joined == "":
                raise NeedsPyx12("an empty line ends pyx12's reading")
            if joined.startswith(" "):
                pending.append(("1", "Segment contains a leading space", None))
                joined = joined.lstrip()
            elems = joined.split(element_sep)
            first = elems[0]
            if (first in ENVELOPE_IDS) != is_se:
                raise NeedsPyx12("an envelope segment after stripping")
        if len(elems) > 1 and elems[-1] == "":
            pending.append(("SEG1", "Segment contains trailing element terminators", None))
        for raw in elems[1:]:
            if raw and raw.strip(comp):
                break
        else:
            pending.append(("8", 'Segment "%s%s%s" is empty' % (first, element_sep, term), None))
        if len(first) < 2 or len(first) > 3 or not _SEG_ID.search(first):
            pending.append(("1", 'Segment identifier "%s" is invalid' % first, None))
        elif first not in ENVELOPE_IDS:
            self.valid_ids.add(first)
        return elems, first


_COUNTED = frozenset({"HL", "CLM", "LX"})


class _ReaderState:
    """pyx12 ``X12Base``'s HL and LX counters (its private HL1/HL2/LX checks)."""

    __slots__ = ("hl_count", "hl_stack", "lx_count")

    def __init__(self):
        self.hl_count = 0
        self.hl_stack: list = []
        self.lx_count = 0

    def count(self, first: str, elems: list, comp: str, pending: list) -> None:
        if first == "HL":
            self.hl_count += 1
            hl01 = _value_at(elems, (1, None), comp)
            if self.hl_count != _int(hl01):
                pending.append(("HL1", f"My HL count {self.hl_count:d} does not match your HL count {hl01}", None))
            hl02 = _value_at(elems, (2, None), comp)
            if hl02 != "":
                parent = _int(hl02)
                stack = self.hl_stack
                if parent not in stack:
                    pending.append(("HL2", f"HL parent ({parent}) is not a valid parent", None))
                while stack and parent != stack[-1]:
                    del stack[-1]
            self.hl_stack.append(self.hl_count)
        elif first == "CLM":
            self.lx_count = 0
        else:
            self.lx_count += 1
            lx01 = _value_at(elems, (1, None), comp)
            if lx01 != f"{self.lx_count:d}":
                pending.append(("LX", "Your 2400/LX01 Service Line Number {} does not match my count of {:d}".format(lx01, self.lx_count), None))


_NO_ERRORS: tuple = ()


class _Counter:
    """pyx12's ``NodeCounter`` (counts by map path; entering a loop clears the counts
    below it), kept per loop so that a reset touches only the loops in use."""

    __slots__ = ("frames", "active", "reset_frames")

    def __init__(self, frames: dict, active: set, reset_frames: dict):
        self.frames = frames
        self.active = active
        self.reset_frames = reset_frames

    def bump(self, frame: str, key: str) -> int:
        counts = self.frames[frame]
        count = counts.get(key)
        if count is None:
            if not counts:
                self.active.add(frame)
            counts[key] = 1
            return 1
        counts[key] = count + 1
        return count + 1

    @staticmethod
    def run_exceeded(child: SegNode, count: int, elems: list):
        return [("5", "Segment %s exceeded max count.  Found %i, should have %i"
                 % (elems[0], count, child.max_repeat), elems[0])], child

    def run(self, plan: Plan, orig, elems: list, comp: str):
        """Execute a plan: (walk errors, node reached or None)."""
        frames = self.frames
        missing = None
        for frame, key, record in plan.records:
            if frames[frame].get(key, 0) < 1:
                if missing is None:
                    missing = [record]
                else:
                    missing.append(record)
        kind = plan.kind
        if kind == KIND_SEG:
            child = plan.node
            count = self.bump(child.parent.key, child.key)
            if child.usage == "N":
                errors = [("2", "Segment %s found but marked as not used" % child.id, None)]
            elif count > child.max_repeat:
                errors = [("5", "Segment %s exceeded max count.  Found %i, should have %i"
                           % (elems[0], count, child.max_repeat), elems[0])]
            elif missing is None:
                return _NO_ERRORS, child
            else:
                errors = []
            if missing:
                eq, pos = child.eq, child.pos
                for seg_node, text in missing:
                    if seg_node.eq != eq and seg_node.pos != pos:
                        errors.append(("3", text, seg_node.id))
            return errors, child
        if kind == KIND_LOOP:
            loop = plan.loop
            errors = []
            if loop.usage == "N":
                errors.append(("2", "Loop %s found but marked as not used" % loop.id, None))
            else:
                active = self.active
                under = self.reset_frames[loop.key]
                for frame in [f for f in active if f in under]:
                    frames[frame].clear()
                    active.discard(frame)
                count = self.bump(loop.parent.key, loop.key)
                if count > loop.max_repeat:
                    errors.append(("4", "Loop %s exceeded max count.  Found %i, should have %i"
                                   % (loop.id, count, loop.max_repeat), elems[0]))
            first = plan.node
            self.bump(first.parent.key, first.key)
            if missing:
                for seg_node, text in missing:
                    errors.append(("3", text, seg_node.id))
            return errors, first
        if kind == KIND_NOTFOUND:
            if elems[0] == "HL":
                shown = _format_segment(elems, comp)
            else:
                shown = "%s*%s" % (elems[0], _value_at(elems, (1, None), comp))
            return [("1", "Segment %s not found.  Started at %s" % (shown, orig.path), elems[0])], None
        return _NO_ERRORS, None


def _format_segment(elems: list, comp: str) -> str:
    """pyx12 ``Segment.format("", "*", ":")``: trailing empty elements and components
    dropped, components joined by ``:``."""
    composites = []
    for raw in elems[1:]:
        subs = raw.split(comp)
        end = len(subs)
        while end > 1 and subs[end - 1] == "":
            end -= 1
        composites.append(":".join(subs[:end]))
    end = len(composites)
    while end > 1 and not any(elems[end].split(comp)):
        end -= 1
    return "%s*%s" % (elems[0], "*".join(composites[:end]))


def _value_at(elems: list, position: tuple, comp: Optional[str]):
    """pyx12 ``Segment.get_value`` of ``NN`` or ``NN-M``."""
    ele_idx, sub_idx = position
    if ele_idx >= len(elems):
        return None
    raw = elems[ele_idx]
    if sub_idx is None:
        return raw.rstrip(comp) if comp else raw
    subs = raw.split(comp)
    if sub_idx - 1 >= len(subs):
        return None
    return subs[sub_idx - 1]


def _int(value) -> Optional[int]:
    try:
        return int(value)
    except (ValueError, TypeError):
        return None
