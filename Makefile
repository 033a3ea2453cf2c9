# claimscrub: everything a user or CI needs is set up from here; nothing is installed by hand.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
AS_OF  ?= 2026-11-22

.PHONY: install demo test fuzz difftest bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

# Scrub the bundled demo batch. The demo holds claims with errors on purpose, so exit
# status 1 (some claim rejected) is the expected outcome here.
demo: $(STAMP)
	@rc=0; $(BIN)/claimscrub scrub fixtures/837/demo --out out/demo --as-of $(AS_OF) || rc=$$?; \
	  test $$rc -le 1 || exit $$rc; \
	  echo "reports: out/demo/ (open out/demo/*.html in a browser)"

test: $(STAMP)
	@command -v chromium >/dev/null 2>&1 || (echo "installing chromium (Debian) for the HTML report's browser test"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) || \
	  { echo "make test: could not install chromium; the browser test will be skipped"; test -z "$$CI"; }
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

bench: $(STAMP)
	$(BIN)/python benchmarks/run.py

clean:
	rm -rf out benchmarks/data benchmarks/results
