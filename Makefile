# DETRDistill developer commands. Every target installs what is missing first (install/install.sh).
PY := .venv/bin/python
STAMP := .venv/.detrdistill-installed
JOBS ?= 2

.PHONY: install test test-fast demo lint format clean

$(STAMP): install/install.sh install/repack_detectron2_wheel.py setup.cfg pyproject.toml
	bash install/install.sh
	touch $(STAMP)

install: $(STAMP)

# The whole suite (CPU, about 4 min on 2 cores). CI calls exactly this target.
test: $(STAMP)
	$(PY) -m pytest -n $(JOBS) --dist loadfile -q tests

# Everything but the tests marked slow (short training runs, multi-process launches).
test-fast: $(STAMP)
	$(PY) -m pytest -n $(JOBS) --dist loadfile -q -m "not slow" tests

# The shipped teacher and three 4x smaller students (baseline, DETRDistill, D3ETR) on the
# embedded data; prints the table, writes output/demo/*.png (about 8-10 min on 2 cores).
# PAIR picks the teacher-student pair (python -m detrdistill.demo --help), DEMO_ARGS adds options,
# e.g. make demo DEMO_ARGS="--iters 30 --evals 2". PYTHONWARNINGS is detrdistill.demo.QUIET_WARNINGS.
PAIR ?= deformable
DEMO_ARGS ?=
DEMO_WARNINGS := ignore:`torch.jit.script` is deprecated:FutureWarning
demo: $(STAMP)
	PYTHONWARNINGS='$(DEMO_WARNINGS)' $(PY) -m detrdistill.demo --pair $(PAIR) $(DEMO_ARGS)

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

format: $(STAMP)
	$(PY) -m ruff check --fix .
	$(PY) -m ruff format .

clean:
	rm -rf output .pytest_cache .ruff_cache
