#!/usr/bin/env bash
# The README's test command, from a fresh clone: set up (idempotent), then the fast test suite.
# Data: $ZCBENCH_DATA if set, else ../shared/data beside the clone if present (tests/conftest.py);
# without either, tests needing the verbatim upstream files are skipped with the command that gets
# them (CI sets ZCBENCH_REQUIRE_DATA=1 so that they fail instead). The browser test needs Debian's
# chromium (scripts/install_browser.sh, run here when root or passwordless sudo can) and is skipped
# without it. Extra arguments are passed to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = "0" ] || sudo -n true 2>/dev/null; then
    bash scripts/install_browser.sh || echo "test.sh: chromium not installed; the browser test will be skipped" >&2
  else
    echo "test.sh: no chromium and no root: the browser test will be skipped (scripts/install_browser.sh)" >&2
  fi
fi
. .venv/bin/activate
python -m pytest -m "not slow" -q -p no:cacheprovider "$@"
