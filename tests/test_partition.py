"""A run partitioned by patient (--jobs N, --engine dask) writes what a run in one process
writes, byte for byte: every report, acknowledgment and accepted-claims 837 of the corpus,
the fixtures and synthetic batches (claims of one patient spread over files, transaction
sets and read units; replacements, duplicates, a set larger than a read unit)."""

from __future__ import annotations

import filecmp
import importlib
import os
import random
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest

from claimscrub.synth import write_837
from conftest import AS_OF, FIXTURES, corpus_files, invoke_claimscrub, run_claimscrub

KEY = "test-partition-history-key-0123456789"
#: The corpus's two files of several hundred claims take most of a corpus run's time; the
#: suite compares the rest, ``CLAIMSCRUB_PARTITION_FULL=1`` (make partitiontest) all of it.
FULL = bool(os.environ.get("CLAIMSCRUB_PARTITION_FULL"))


def _corpus() -> list[Path]:
    return [p for p in corpus_files() if FULL or p.stat().st_size < 100_000]


def _batch(count: int, seed: int, members: int, control: int = 1, per_set=None) -> str:
    """Claims of a few members over a few days, so patient-days span claims, sets and
    files: add-on codes, fluoroscopy, E/M with and without 25, repeats and replacements."""
    rng = random.Random(seed)
    kinds = [
        [{"code": "62323", "charge": 650}],
        [{"code": "99214", "modifiers": ["25"], "charge": 180, "pointers": [1]}, {"code": "62323", "charge": 650}],
        [{"code": "64483", "modifiers": ["RT"], "charge": 700}, {"code": "64484", "modifiers": ["RT"], "charge": 300}],
        [{"code": "62322", "charge": 500}, {"code": "77003", "charge": 120}],
        [{"code": "99213", "charge": 120}],
        [{"code": "64484", "charge": 300}],
        [{"code": "62323", "units": 3, "charge": 1900}],
    ]
    claims = []
    for i in range(count):
        claim = {
            "id": f"S{seed}X{i:05d}",
            "member": f"M{rng.randrange(members):05d}",
            "date": f"2025-03-{rng.randrange(1, 4):02d}",
            "dx": [rng.choice(["M5416", "M5417", "M545", "M4807"])],
            "lines": rng.choice(kinds),
        }
        if rng.random() < 0.05:
            claim["frequency"] = rng.choice(["7", "8"])
            claim["payer_claim_control_number"] = f"S{seed}X{rng.randrange(count):05d}"
        if rng.random() < 0.2:
            claim["patient"] = {"dependent": True, "first": f"DEP{rng.randrange(2)}"}
        claims.append(claim)
    return write_837(claims, control=control, claims_per_transaction=per_set)


def _tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _assert_same(one: Path, two: Path) -> None:
    first, second = _tree(one), _tree(two)
    assert first, f"nothing written in {one}"
    assert sorted(first) == sorted(second)
    different = [name for name in first if first[name] != second[name]]
    assert not different, f"outputs differ: {different[:5]}"


def _inputs(tmp_path: Path) -> list[Path]:
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "synthetic-a.837").write_text(_batch(160, 1, 25, control=1, per_set=7))
    (folder / "synthetic-b.837").write_text(_batch(90, 2, 25, control=2))  # one set
    return [folder, FIXTURES, *_corpus()]


# -- the local engine, through the command -------------------------------------------------


def test_jobs_2_writes_what_jobs_1_writes(tmp_path, monkeypatch):
    # a failure in a worker or writer process raises instead of being done again by the run
    monkeypatch.setenv("CLAIMSCRUB_DEBUG", "1")
    inputs = _inputs(tmp_path)
    runs = {}
    for jobs in ("1", "2"):
        out, accepted = tmp_path / f"out{jobs}", tmp_path / f"acc{jobs}"
        runs[jobs] = run_claimscrub("scrub", *map(str, inputs), "--out", str(out), "--accepted-out",
                                    str(accepted), "--as-of", AS_OF, "--jobs", jobs)
    assert runs["1"].returncode == runs["2"].returncode, runs["2"].stderr
    assert runs["1"].stderr == runs["2"].stderr
    _assert_same(tmp_path / "out1", tmp_path / "out2")
    _assert_same(tmp_path / "acc1", tmp_path / "acc2")


def _children(pid: int) -> list[int]:
    found = []
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{task}/children") as handle:
                found += [int(c) for c in handle.read().split()]
        except OSError:
            continue
    return found


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_a_killed_writer_process_loses_no_output(tmp_path):
    """The outputs are written by forked processes with --jobs 2; one killed while writing
    (out of memory, an operator's kill) costs time, not an output: what it was writing is
    written again by the run itself, and every file is what --jobs 1 writes."""
    import signal
    import time

    folder = tmp_path / "in"
    folder.mkdir()
    for n in range(3):
        (folder / f"night{n}.837").write_text(_batch(500, 10 + n, 150, control=n + 1, per_set=200))
    reference = invoke_claimscrub("scrub", str(folder), "--out", str(tmp_path / "one"), "--as-of", AS_OF,
                               "--jobs", "1", "--no-validate")
    out = tmp_path / "two"
    process = subprocess.Popen(
        [sys.executable, "-m", "claimscrub", "scrub", str(folder), "--out", str(out), "--as-of", AS_OF,
         "--jobs", "2", "--no-validate"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    killed = 0
    deadline = time.time() + 120
    while time.time() < deadline and process.poll() is None and not killed:
        if out.exists() and any(p.name.startswith(".claimscrub-") for p in out.iterdir()):
            # the outputs' temporaries are reserved: the children now are writer processes
            for child in _children(process.pid):
                try:
                    os.kill(child, signal.SIGKILL)
                    killed += 1
                except ProcessLookupError:
                    pass
        time.sleep(0.005)
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == reference.returncode, stderr.decode()
    assert killed, "the run ended before a writer process could be killed"
    assert b"Traceback" not in stderr, stderr.decode()
    _assert_same(tmp_path / "one", out)


def test_a_writer_that_lost_its_reservation_leaves_no_temporary(tmp_path):
    """The race behind the test above, made certain: a writer process that opens its output
    after the run gave up on it (the pool broke when another writer was killed, and the run
    removed the reserved temporary to write the output itself) fails, instead of creating a
    temporary in the output folder that nobody would remove."""
    from claimscrub.atomic import atomic_writer, discard, filling_reserved, reserve

    path = str(tmp_path / "night0.837.json")
    tmp = reserve(path)
    discard(tmp)
    with filling_reserved({path: tmp}), pytest.raises(OSError):
        with atomic_writer(path) as handle:
            handle.write("{}")
    assert list(tmp_path.iterdir()) == []


# -- read units split finely, through the API ----------------------------------------------


def _scrub_api(inputs: list[Path], out: Path, engine=None, validator="compiled") -> None:
    """A run through the Python API, writing what the CLI writes; ``engine`` an engine
    object (LocalEngine, DaskEngine) or None for one process."""
    import claimscrub

    with claimscrub.scrub([str(p) for p in inputs], as_of=AS_OF, config=False, validate=validator is not None,
                          validator=validator or "compiled", jobs=1, engine=engine or "local",
                          out=str(out), accepted_out=str(out / "accepted"),
                          ack_control_number=1):
        pass


@pytest.fixture
def fine_split(monkeypatch):
    """Read units and partitions as small as they go: every file of more than a few
    hundred bytes split between the workers, claims dealt to them in pairs, and a partition
    per 2 KiB of input."""
    import claimscrub.partition.stages as stages
    scrub = importlib.import_module("claimscrub.scrub")  # the package's scrub is the API function

    monkeypatch.setattr(scrub, "SPLIT_BYTES", 256)
    monkeypatch.setattr(scrub, "PARTITION_BYTES", 2048)
    monkeypatch.setattr(stages, "CLAIM_CHUNK", 2)


@pytest.mark.parametrize("validator", ["compiled", "pyx12"])
def test_finely_split_run_writes_what_one_process_writes(tmp_path, fine_split, validator):
    from claimscrub.partition.local import LocalEngine

    # the synthetic batches, the demo and a few corpus files (the whole corpus is compared
    # through the command above; pyx12 is slow)
    inputs = _inputs(tmp_path)[:1] + [FIXTURES / "demo"] + _corpus()[:6 if validator == "compiled" else 2]
    _scrub_api(inputs, tmp_path / "one", validator=validator)
    _scrub_api(inputs, tmp_path / "three", engine=LocalEngine(3), validator=validator)
    _assert_same(tmp_path / "one", tmp_path / "three")


# -- the claim history ---------------------------------------------------------------------


def _night(url: str, out: Path, path: Path, jobs: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "CLAIMSCRUB_HISTORY_KEY": KEY}
    return subprocess.run([sys.executable, "-m", "claimscrub", "scrub", str(path), "--out", str(out),
                           "--as-of", AS_OF, "--history", url, "--jobs", jobs],
                          capture_output=True, text=True, env=env, timeout=300)


def test_history_nights_with_jobs_2_as_with_jobs_1(tmp_path):
    """Three nights against a claim history: cross-night duplicates, frequency and the
    replacements and voids of earlier nights' claims judge the same with two workers."""
    nights = []
    for n in range(3):
        path = tmp_path / f"night{n}.837"
        path.write_text(_batch(40, 10 + n, 8, control=n + 1, per_set=9).replace(f"S{10 + n}X", "S10X"))
        nights.append(path)
    for jobs in ("1", "2"):
        url = f"sqlite:///{tmp_path / f'history{jobs}.sqlite'}"
        for n, path in enumerate(nights):
            result = _night(url, tmp_path / f"out{jobs}" / str(n), path, jobs)
            assert result.returncode in (0, 1), result.stderr
    for n in range(3):
        _assert_same(tmp_path / "out1" / str(n), tmp_path / "out2" / str(n))
    cross = (tmp_path / "out2" / "2" / "night2.837.json").read_text()
    assert "billed in the run of" in cross  # the history was used, not only compared


# -- the Dask engine -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def dask_cluster():
    distributed = pytest.importorskip("distributed", reason="the claimscrub[dask] extra is not installed")
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                       dashboard_address=None, silence_logs=40)
    client = distributed.Client(cluster)
    yield cluster, client
    client.close()
    cluster.close()


def test_dask_engine_writes_what_the_local_engine_writes(tmp_path, dask_cluster, fine_split):
    from claimscrub.partition.dask_engine import DaskEngine
    from claimscrub.partition.local import LocalEngine

    _cluster, client = dask_cluster
    inputs = _inputs(tmp_path)[:1] + [FIXTURES / "demo"] + _corpus()[:6]
    _scrub_api(inputs, tmp_path / "local", engine=LocalEngine(2))
    _scrub_api(inputs, tmp_path / "dask", engine=DaskEngine(client=client))
    _assert_same(tmp_path / "local", tmp_path / "dask")


def test_dask_engine_through_the_command(tmp_path, dask_cluster):
    cluster, _client = dask_cluster
    batch = tmp_path / "batch.837"
    batch.write_text(_batch(120, 5, 20, per_set=30))
    local = run_claimscrub("scrub", str(batch), "--out", str(tmp_path / "local"), "--as-of", AS_OF,
                           "--jobs", "2")
    dask = run_claimscrub("scrub", str(batch), "--out", str(tmp_path / "dask"), "--as-of", AS_OF,
                          "--engine", "dask", "--scheduler", cluster.scheduler_address,
                          "--work-dir", str(tmp_path))
    assert dask.returncode == local.returncode == 1, dask.stderr
    _assert_same(tmp_path / "local", tmp_path / "dask")
    assert not list(tmp_path.glob("claimscrub-run-*"))  # the run's folder and spills are gone


def test_dask_engine_without_the_extra_is_one_line_exit_3(tmp_path):
    blocker = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in ('dask', 'distributed'):\n"
        "            raise ImportError(name)\n"
        "sys.meta_path.insert(0, Block())\n"
        "from claimscrub.cli import main\n"
        "sys.argv[0] = 'claimscrub'\n"
        "main()\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", blocker, "scrub", str(FIXTURES / "demo"), "--out", str(tmp_path / "out"),
         "--as-of", AS_OF, "--engine", "dask", "--scheduler", "tcp://127.0.0.1:1"],
        capture_output=True, text=True, timeout=120)
    assert result.returncode == 3
    assert result.stderr.strip().splitlines() == [
        "claimscrub: --engine dask needs the Dask extra: pip install 'claimscrub[dask]' (dask[distributed]) "
        "on this machine and on every worker"]
    assert not (tmp_path / "out").exists()


def test_scheduler_is_for_dask_and_dask_needs_one(tmp_path):
    without = run_claimscrub("scrub", str(FIXTURES / "demo"), "--out", str(tmp_path / "o"), "--as-of", AS_OF,
                             "--engine", "dask")
    assert without.returncode == 3 and "--engine dask needs --scheduler" in without.stderr
    stray = run_claimscrub("scrub", str(FIXTURES / "demo"), "--out", str(tmp_path / "o"), "--as-of", AS_OF,
                           "--scheduler", "tcp://127.0.0.1:1")
    assert stray.returncode == 3 and "--scheduler is for --engine dask" in stray.stderr


# -- a worker that dies ----------------------------------------------------------------------

_PARENT = os.getpid()


def _read_unit_then_die(ctx, unit):
    """Stage 1 that kills its worker (as the kernel's out-of-memory killer would) halfway
    through the second read unit; in the run's own process it reads normally."""
    import signal

    from claimscrub.partition import stages

    if unit.part == 1 and os.getpid() != _PARENT:
        os.kill(os.getpid(), signal.SIGKILL)
    return stages._real_read_unit(ctx, unit)


def test_a_worker_killed_during_the_run_loses_nothing(tmp_path, fine_split, monkeypatch):
    from claimscrub.partition import stages
    from claimscrub.partition.local import LocalEngine

    inputs = _inputs(tmp_path)[:2]
    _scrub_api(inputs, tmp_path / "one")
    monkeypatch.setattr(stages, "_real_read_unit", stages.read_unit, raising=False)
    monkeypatch.setattr(stages, "read_unit", _read_unit_then_die)
    _scrub_api(inputs, tmp_path / "killed", engine=LocalEngine(2))
    _assert_same(tmp_path / "one", tmp_path / "killed")
