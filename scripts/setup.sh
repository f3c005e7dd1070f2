#!/usr/bin/env bash
# One-command set-up: a virtual environment in .venv with zcbench and its test tools.
# torch is pinned to the CPU build that lies on this project's machines; elsewhere pass
# TORCH_SPEC (e.g. TORCH_SPEC="torch" for the default build of your platform).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -d .venv ] || "$PY" -m venv .venv
. .venv/bin/activate
python -m pip install -q --upgrade pip >/dev/null 2>&1 || true
python -m pip install -q "${TORCH_SPEC:-torch==2.13.0}"
python -m pip install -q -e ".[test]"
echo "zcbench installed in $(pwd)/.venv — activate with: . .venv/bin/activate"
