"""Compile pyx12's 837P implementation-guide map into plain tables.

pyx12 ships the 005010X222A1 guide as data: ``map/837.5010.X222.A1.xml`` (loops, segments,
elements, usage, repeats, syntax rules, code lists), ``map/dataele.xml`` (data element
types and lengths) and ``map/codes.xml`` (external code lists). This module reads those
files *with pyx12's own loader* (so every attribute is interpreted exactly as pyx12 does)
and turns the object tree into small slotted records the table-driven walker
(:mod:`claimscrub.guide.walker`) runs on: no pyx12 object is used after compilation.

The compiled guide is cached on disk (a pickle in the user cache folder, keyed by the
pyx12 version, the map files' contents and this module's format number), so the XML is
parsed once per machine, not once per run.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import tempfile
from importlib import resources
from pathlib import Path
from typing import Optional

#: Map of the 837P guide, and the data files it depends on.
MAP_FILE = "837.5010.X222.A1.xml"
DATA_FILES = (MAP_FILE, "dataele.xml", "codes.xml")
#: Bump when the compiled layout changes (old caches are then ignored).
FORMAT = 3

MAXINT = 2147483647

# element kinds for the fast path
K_TEXT, K_CODE, K_NUM, K_REAL, K_DATE, K_OTHER = range(6)


class LoopNode:
    __slots__ = ("id", "name", "usage", "pos", "max_repeat", "key", "path", "parent",
                 "children", "is_root", "eq", "is_loop")

    def __repr__(self) -> str:  # pragma: no cover - debugging aid
        return f"Loop({self.path})"


class SegNode:
    __slots__ = ("index", "id", "name", "usage", "pos", "max_repeat", "key", "path", "parent",
                 "eq", "qual", "items", "syntax", "is_loop", "static_types", "none_ok",
                 "tail_ok", "parent_id")

    def __repr__(self) -> str:  # pragma: no cover - debugging aid
        return f"Seg({self.path})"


class ElementSpec:
    __slots__ = ("name", "refdes", "data_ele", "usage", "seq", "in_composite", "comp_usage",
                 "data_type", "min_len", "max_len", "codes", "codes_list", "external",
                 "ext_codes", "regex", "res", "kind", "clean_codes", "empty_ok", "is_composite")


class CompositeSpec:
    __slots__ = ("name", "refdes", "usage", "seq", "children", "is_composite", "none_ok")


class Guide:
    """The compiled guide: the map tree, its segment nodes and the lookup tables."""

    __slots__ = ("root", "segments", "by_id", "qual_positions", "icvn", "charset",
                 "pyx12_version", "gs_node", "map_id")


def _pyx12_version() -> str:
    import pyx12.version

    return pyx12.version.__version__


def _data_digest() -> str:
    digest = hashlib.sha256()
    digest.update(f"{FORMAT}:{_pyx12_version()}".encode())
    folder = resources.files("pyx12").joinpath("map")
    for name in DATA_FILES:
        digest.update(folder.joinpath(name).read_bytes())
    for module in ("compile.py", "walker.py"):  # the layout and the precomputed fast sets
        digest.update((Path(__file__).parent / module).read_bytes())
    return digest.hexdigest()[:20]


def _cache_dir() -> Path:
    if os.environ.get("CLAIMSCRUB_CACHE"):
        return Path(os.environ["CLAIMSCRUB_CACHE"])
    if os.environ.get("XDG_CACHE_HOME"):
        return Path(os.environ["XDG_CACHE_HOME"]) / "claimscrub"
    return Path.home() / ".cache" / "claimscrub"


def compile_guide() -> Guide:
    """Read pyx12's map with pyx12's loader and compile it (no cache)."""
    import pyx12.map_if
    import pyx12.params
    from pyx12.map_if._composite import composite_if
    from pyx12.map_if._element import element_if
    from pyx12.map_if._loop import loop_if
    from pyx12.map_if._segment import segment_if

    param = pyx12.params.params()
    root = pyx12.map_if.load_map_file(MAP_FILE, param)
    guide = Guide()
    guide.pyx12_version = _pyx12_version()
    guide.icvn = root.icvn
    guide.charset = param.get("charset")
    guide.map_id = root.id
    exclude = root.ext_codes.exclude_list
    segments: list[SegNode] = []

    def element(node, in_composite: bool, comp_usage) -> ElementSpec:
        spec = ElementSpec()
        spec.is_composite = False
        spec.name = node.name
        spec.refdes = node.refdes
        spec.data_ele = node.data_ele
        spec.usage = node.usage
        spec.seq = node.seq
        spec.in_composite = in_composite
        spec.comp_usage = comp_usage
        data = node._resolve_data_ele()
        spec.data_type = data["data_type"]
        spec.min_len = data["min_len"]
        spec.max_len = data["max_len"]
        spec.codes_list = list(node.valid_codes)
        spec.codes = frozenset(node.valid_codes)
        spec.external = node.external_codes
        if node.external_codes is None:
            spec.ext_codes = None
        elif node.external_codes in exclude:
            spec.ext_codes = True  # every value passes
        else:
            if node.external_codes not in root.ext_codes.codes:
                # pyx12 raises EngineError on such a value; keep it for the slow path
                spec.ext_codes = False
            else:
                spec.ext_codes = root.ext_codes.codes[node.external_codes]["codes"]
        spec.res = node.res
        spec.regex = node.rec
        spec.empty_ok = not (spec.usage == "R" and (spec.seq != 1 or not in_composite or comp_usage == "R"))
        dt = spec.data_type or ""
        if spec.codes or spec.external is not None:
            spec.kind = K_CODE
        elif dt in ("AN", "ID"):
            spec.kind = K_TEXT
        elif dt[:1] == "N":
            spec.kind = K_NUM
        elif dt == "R":
            spec.kind = K_REAL
        elif dt in ("DT", "D8", "D6", "TM", "RD8"):
            spec.kind = K_DATE
        else:
            spec.kind = K_OTHER
        spec.clean_codes = frozenset()
        return spec

    def composite(node) -> CompositeSpec:
        spec = CompositeSpec()
        spec.is_composite = True
        spec.name = node.name
        spec.refdes = node.refdes
        spec.usage = node.usage
        spec.seq = node.seq
        spec.children = [element(child, True, node.usage) for child in node.children]
        spec.none_ok = spec.usage != "R"
        return spec

    def segment(node, parent: LoopNode) -> SegNode:
        seg = SegNode()
        seg.is_loop = False
        seg.index = len(segments)
        segments.append(seg)
        seg.id = node.id
        seg.name = node.name
        seg.usage = node.usage
        seg.pos = node.pos
        seg.max_repeat = node.get_max_repeat()
        seg.key = node.x12path.format()
        seg.path = node.get_path()
        seg.parent = parent
        seg.parent_id = parent.id
        seg.eq = (node.id, node.parent.id)
        key = node._resolve_unique_key_field(node.id, with_qual=False)
        if key is None:
            seg.qual = None
        else:
            child, ele_idx, subele_idx = key
            seg.qual = (ele_idx, subele_idx, child._valid_codes_set)
        items = []
        for i, child in enumerate(node.children):
            if child.seq != i + 1:
                raise ValueError(f"{seg.path}: element positions are not contiguous")
            if isinstance(child, composite_if):
                items.append(composite(child))
            elif isinstance(child, element_if):
                items.append(element(child, False, None))
        seg.items = items
        seg.syntax = [tuple(s) for s in node.syntax]
        # the data types a 1251 element is checked against (codes of earlier 1250 elements)
        static, running = [], []
        for item in items:
            if not item.is_composite and item.data_ele == "1250":
                running.extend(item.codes_list)
            static.append(tuple(running))
        seg.static_types = static
        seg.none_ok = [item.none_ok if item.is_composite else item.empty_ok for item in items]
        tail = [True] * (len(items) + 1)
        for i in range(len(items) - 1, -1, -1):
            tail[i] = tail[i + 1] and seg.none_ok[i]
        seg.tail_ok = tail
        return seg

    def loop(node, parent: Optional[LoopNode]) -> LoopNode:
        out = LoopNode()
        out.is_loop = True
        out.is_root = parent is None
        out.id = node.id
        out.name = node.name
        out.usage = node.usage
        out.pos = 0 if parent is None else node.pos
        out.max_repeat = MAXINT if parent is None else node.get_max_repeat()
        out.key = "/" if parent is None else node.x12path.format()
        out.path = node.get_path()
        out.parent = parent
        out.eq = (node.id, None if parent is None else node.parent.id)
        children = []
        for ordinal in sorted(node.pos_map):
            for child in node.pos_map[ordinal]:
                if isinstance(child, loop_if):
                    children.append(loop(child, out))
                elif isinstance(child, segment_if):
                    children.append(segment(child, out))
        out.children = children
        return out

    guide.root = loop(root, None)
    guide.segments = segments
    by_id: dict[str, list[SegNode]] = {}
    for seg in segments:
        by_id.setdefault(seg.id, []).append(seg)
    guide.by_id = by_id
    # which qualifier positions matter for a segment id, and their codes
    quals: dict[str, list[tuple]] = {}
    for seg_id, nodes in by_id.items():
        seen: dict[tuple, set] = {}
        for seg in nodes:
            if seg.qual is not None:
                seen.setdefault(seg.qual[:2], set()).update(seg.qual[2])
        quals[seg_id] = [(pos, frozenset(codes)) for pos, codes in seen.items()]
    guide.qual_positions = quals
    guide.gs_node = root.getnodebypath("/ISA_LOOP/GS_LOOP/GS")
    gs_path = guide.gs_node.get_path()
    guide.gs_node = next(s for s in segments if s.path == gs_path)
    _precompute_clean_codes(guide)
    return guide


def _precompute_clean_codes(guide: Guide) -> None:
    """For code-list elements: the codes that pass every one of pyx12's value checks."""
    from claimscrub.guide.walker import element_errors

    for seg in guide.segments:
        for item in seg.items:
            specs = item.children if item.is_composite else [item]
            for spec in specs:
                if spec.kind != K_CODE:
                    continue
                candidates = set(c for c in spec.codes if c)
                if spec.ext_codes not in (None, True, False):
                    candidates.update(c for c in spec.ext_codes if c)
                if spec.ext_codes is True or spec.ext_codes is False:
                    # every value passes (excluded list) or pyx12 raises: no fast path
                    spec.clean_codes = frozenset()
                    continue
                spec.clean_codes = frozenset(
                    c for c in candidates if not element_errors(guide, spec, c, ())
                )


_loaded: Optional[Guide] = None


def load_guide() -> Guide:
    """The compiled guide, from memory, the disk cache, or compiled now (and cached)."""
    global _loaded
    if _loaded is not None:
        return _loaded
    digest = _data_digest()
    folder = _cache_dir()
    path = folder / f"guide-837P-X222A1-{digest}.pickle"
    guide = None
    try:
        with open(path, "rb") as fh:
            guide = pickle.load(fh)
    except Exception:  # missing, unreadable or stale cache: compile
        guide = None
    if guide is None:
        guide = compile_guide()
        try:
            folder.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=folder, suffix=".tmp")
            with os.fdopen(fd, "wb") as fh:
                pickle.dump(guide, fh, protocol=pickle.HIGHEST_PROTOCOL)
            os.replace(tmp, path)
        except OSError:
            pass  # a read-only home: compile on each run instead
    _loaded = guide
    return guide

