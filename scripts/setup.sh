#!/usr/bin/env bash
# One-command set-up: a virtual environment in .venv with zcbench and its test tools
# (the [test] extra, which includes transformers for zcbench.score's tests).
# torch is pinned to the CPU build that lies on this project's machines; elsewhere pass
# TORCH_SPEC (e.g. TORCH_SPEC="torch" for the default build of your platform).
# Idempotent and quick when nothing changed: the installed state is stamped with a hash of
# pyproject.toml, this script and TORCH_SPEC (.venv/.zcbench-setup); pip runs only when it differs.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
SPEC="${TORCH_SPEC:-torch==2.13.0}"
[ -d .venv ] || "$PY" -m venv .venv
. .venv/bin/activate
STAMP=".venv/.zcbench-setup"
WANT="$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -d' ' -f1)-$SPEC"
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$WANT" ] && python -c "import zcbench, torch" 2>/dev/null; then
  echo "zcbench already set up in $(pwd)/.venv" >&2
  exit 0
fi
python -m pip install -q --upgrade pip >/dev/null 2>&1 || true
python -m pip install -q "$SPEC"
python -m pip install -q -e ".[test]"
echo "$WANT" > "$STAMP"
echo "zcbench installed in $(pwd)/.venv — activate with: . .venv/bin/activate" >&2
