#!/usr/bin/env bash
# Install everything DETRDistill needs into .venv/ (see README "Install").
# Steps: venv -> torch/torchvision -> detectron2 (verified repack of PyPI's sal-detectron2, unless an
# importable detectron2 is already there) -> `pip install -e .[dev]` -> `pip check`.
# Each failing step stops with what failed and what to do. Safe to re-run: finished steps are skipped.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}
TORCH_SPEC=${TORCH_SPEC:-"torch==2.14.1 torchvision==0.29.1"}
D2_SPEC="sal-detectron2==0.7.2"

fail() { echo "install: FAILED at step '$1'. $2" >&2; exit 1; }
step() { echo "install: [$(date +%H:%M:%S)] $*"; }

if [ ! -x "$VENV/bin/python" ]; then
  step "creating virtual environment $VENV with $($PYTHON --version 2>&1)"
  "$PYTHON" -m venv "$VENV" || fail venv "Is the venv module installed (Debian: python3-venv)?"
fi
PY="$VENV/bin/python"
PIP="$PY -m pip --disable-pip-version-check"
$PIP install -q --upgrade "pip>=23" "setuptools>=77.0.3,<82" wheel \
  || fail pip "Could not upgrade pip/setuptools from PyPI; check the network or proxy."

if ! $PY -c "import torch, torchvision" 2>/dev/null; then
  step "installing $TORCH_SPEC (takes ~90 s)"
  $PIP install -q $TORCH_SPEC \
    || fail torch "pip could not install '$TORCH_SPEC'. Set TORCH_SPEC to a pair that exists for this machine."
fi

if $PY -c "import detectron2" 2>/dev/null; then
  step "detectron2 already importable ($($PY -c 'import detectron2, os; print(os.path.dirname(detectron2.__file__))')); leaving it alone"
else
  step "installing detectron2 from the verified repack of $D2_SPEC"
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  $PIP download -q --no-deps --only-binary=:all: --python-version 3.10 --platform any -d "$tmp" "$D2_SPEC" \
    || fail detectron2-download "Could not download $D2_SPEC from PyPI. Alternatively install detectron2 from source into $VENV and re-run."
  wheel=$($PY install/repack_detectron2_wheel.py "$tmp"/sal_detectron2-0.7.2-cp310-none-any.whl "$tmp/out") \
    || fail detectron2-verify "The downloaded wheel did not pass its sha256 check (see above); do not install it."
  $PIP install -q "$wheel" || fail detectron2-install "pip could not install the repacked wheel $wheel."
fi

step "installing the detrdistill package (editable) and its dependencies"
$PIP install -q -e ".[dev]" || fail project "pip install -e . failed; see pip's message above."
$PIP check || fail pip-check "Dependency conflicts listed above."
$PY -c "import detectron2, detrdistill, torch; print('install: OK torch', torch.__version__, 'detectron2', detectron2.__version__)" \
  || fail import "detrdistill does not import; see the traceback above."
