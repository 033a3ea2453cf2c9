"""The compiled guide is pyx12's 837P map read as data, compiled once and cached."""

from __future__ import annotations

import pickle

import pytest

import claimscrub.guide.compile as compile_module
from claimscrub.guide.compile import compile_guide, load_guide


@pytest.fixture
def fresh(monkeypatch, tmp_path):
    monkeypatch.setenv("CLAIMSCRUB_CACHE", str(tmp_path))
    monkeypatch.setattr(compile_module, "_loaded", None)
    return tmp_path


def test_every_map_node_is_compiled_as_pyx12_reads_it():
    import pyx12.map_if
    import pyx12.params
    from pyx12.map_if._segment import segment_if

    root = pyx12.map_if.load_map_file(compile_module.MAP_FILE, pyx12.params.params())
    nodes = {seg.path: seg for seg in load_guide().segments}
    count = 0
    for node in root.loop_segment_iterator():
        if not isinstance(node, segment_if):
            continue
        count += 1
        compiled = nodes[node.get_path()]
        assert (compiled.id, compiled.usage, compiled.pos, compiled.max_repeat) == (
            node.id, node.usage, node.pos, node.get_max_repeat())
        assert compiled.key == node.x12path.format()
        assert [tuple(s) for s in node.syntax] == compiled.syntax
        assert len(compiled.items) == len(node.children)
        for item, child in zip(compiled.items, node.children):
            specs = item.children if item.is_composite else [item]
            leaves = child.children if item.is_composite else [child]
            for spec, leaf in zip(specs, leaves):
                assert (spec.refdes, spec.usage, spec.data_type, spec.min_len, spec.max_len) == (
                    leaf.refdes, leaf.usage, leaf.data_type, leaf.min_len, leaf.max_len)
                assert spec.codes == frozenset(leaf.valid_codes)
                assert spec.external == leaf.external_codes
    assert count == len(nodes) > 300


def test_compiled_once_then_read_from_the_cache(fresh, monkeypatch):
    first = load_guide()
    cached = list(fresh.glob("guide-837P-*.pickle"))
    assert len(cached) == 1
    monkeypatch.setattr(compile_module, "_loaded", None)
    monkeypatch.setattr(compile_module, "compile_guide", lambda: pytest.fail("compiled again"))
    second = load_guide()
    assert [s.path for s in second.segments] == [s.path for s in first.segments]


def test_a_damaged_cache_is_compiled_anew(fresh, monkeypatch):
    load_guide()
    (cached,) = fresh.glob("guide-837P-*.pickle")
    cached.write_bytes(b"not a pickle")
    monkeypatch.setattr(compile_module, "_loaded", None)
    guide = load_guide()
    assert len(guide.segments) > 300
    assert pickle.loads(cached.read_bytes()).segments[0].path == guide.segments[0].path


def test_an_unwritable_cache_folder_only_costs_time(monkeypatch, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv("CLAIMSCRUB_CACHE", str(blocker / "cache"))
    monkeypatch.setattr(compile_module, "_loaded", None)
    assert len(load_guide().segments) > 300


def test_the_cache_is_keyed_by_pyx12s_version(fresh, monkeypatch):
    load_guide()
    monkeypatch.setattr(compile_module, "_loaded", None)
    monkeypatch.setattr(compile_module, "_pyx12_version", lambda: "0.0-other")
    load_guide()
    assert len(list(fresh.glob("guide-837P-*.pickle"))) == 2


def test_compile_guide_reads_pyx12s_files():
    guide = compile_guide()
    clm = next(s for s in guide.segments if s.path.endswith("/2300/CLM"))
    place = clm.items[4].children[0]  # CLM05-1, facility code: pyx12's external 'pos' list
    assert place.external == "pos" and "11" in place.ext_codes and "AA" not in place.ext_codes
