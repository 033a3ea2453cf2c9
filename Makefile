# claimscrub: everything a user or CI needs is set up from here; nothing is installed by hand.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
AS_OF  ?= 2026-11-22

.PHONY: install demo test fuzz difftest partitiontest bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,dask]'
	touch $(STAMP)

install: $(STAMP)

# A DEMO key for the demo's claim history only: it is printed here, so it protects nothing.
# A real history takes its key from CLAIMSCRUB_HISTORY_KEY or a key file (see README).
DEMO_HISTORY_KEY := claimscrub-DEMO-ONLY-key-not-a-secret
DEMO_HISTORY     := out/demo/history.sqlite

# Scrub the bundled demo batch as two nights against a fresh claim history in out/demo/:
# the afternoon file's run sees the morning file's claims. The demo holds claims with
# errors on purpose, so exit status 1 (some claim rejected) is the expected outcome here.
demo: $(STAMP)
	@mkdir -p out/demo && rm -f $(DEMO_HISTORY) $(DEMO_HISTORY)-wal $(DEMO_HISTORY)-shm
	@for night in am pm; do \
	  echo "-- night of the $$night file (claim history: $(DEMO_HISTORY), demo key)"; \
	  rc=0; CLAIMSCRUB_HISTORY_KEY=$(DEMO_HISTORY_KEY) $(BIN)/claimscrub scrub \
	    fixtures/837/demo/pain-clinic-2025-03-03-$$night.837 --out out/demo --as-of $(AS_OF) \
	    --history sqlite:///$(DEMO_HISTORY) || rc=$$?; \
	  test $$rc -le 1 || exit $$rc; \
	done
	@$(BIN)/python -c 'import json; r = json.load(open("out/demo/pain-clinic-2025-03-03-pm.837.json")); \
	  print("\n".join("cross-night finding: %s %s: %s" % (c["claim_id"], f["rule"], f["message"]) \
	  for c in r["claims"] for f in c["findings"] if "billed in the run of" in f["message"]))'
	@CLAIMSCRUB_HISTORY_KEY=$(DEMO_HISTORY_KEY) $(BIN)/claimscrub history stats --history sqlite:///$(DEMO_HISTORY)
	@echo "reports: out/demo/ (open out/demo/*.html in a browser)"

test: $(STAMP)
	@command -v chromium >/dev/null 2>&1 || (echo "installing chromium (Debian) for the HTML report's browser test"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) || \
	  { echo "make test: could not install chromium; the browser test will be skipped"; test -z "$$CI"; }
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1 || \
	  (echo "installing postgresql (Debian) for the claim history tests"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null) || \
	  { echo "make test: could not install postgresql; the PostgreSQL history tests will be skipped"; test -z "$$CI"; }
	@# byte-compile the package once: the suite starts hundreds of `claimscrub` processes, and
	@# where PYTHONDONTWRITEBYTECODE is set each would compile its modules again
	@$(BIN)/python -m compileall -q src/claimscrub >/dev/null
	$(BIN)/python -m pytest

# The fuzz test of the suite with thousands of mutated corpus files and fixtures instead of
# the few hundred `make test` runs (FUZZ_CASES=N to choose; each case is reproducible).
FUZZ_CASES ?= 4000
fuzz: $(STAMP)
	CLAIMSCRUB_FUZZ_CASES=$(FUZZ_CASES) $(BIN)/python -m pytest tests/test_fuzz.py -rP -p no:cacheprovider

# The compiled implementation guide against pyx12 on thousands of seeded mutants of the
# corpus and fixtures (the normal suite runs a few hundred). GUIDE_DIFF_N=10000 for more.
GUIDE_DIFF_N ?= 3000
difftest: $(STAMP)
	GUIDE_DIFF_N=$(GUIDE_DIFF_N) $(BIN)/python -m pytest -n 2 tests/test_guide_differential.py tests/test_guide_pyx12_quirks.py

# Partitioned runs (--jobs, --engine dask on a local cluster) against one process on the
# whole corpus, its large files included (the normal suite leaves those two out).
partitiontest: $(STAMP)
	CLAIMSCRUB_PARTITION_FULL=1 $(BIN)/python -m pytest -n 2 tests/test_partition.py

# The benchmark of issue 9 (benchmarks/run.py; about 16 minutes on 2 idle cores): tables in
# benchmarks/results/latest.md and .json. BENCH_ARGS='--only throughput' or '--sizes 500,2000
# --claims 2000' to run a part or try it small (python benchmarks/run.py --help).
bench: $(STAMP)
	$(BIN)/python benchmarks/run.py $(BENCH_ARGS)

clean:
	rm -rf out benchmarks/data benchmarks/results
