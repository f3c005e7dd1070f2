#!/usr/bin/env bash
# The README's main job, from a fresh clone: set up (idempotent), then score 50 GPT-2 LTS
# architectures with two proxies and print their correlations with the trained perplexity.
# Data: $ZCBENCH_DATA if set, else ../shared/data beside the clone if present, else the tables
# embedded in the package (docs/data.md) — no download, no environment variable needed.
# Results go to the user folder ($ZCBENCH_HOME/results, default ~/.local/share/zcbench/results),
# never into the repository's results/. Extra arguments are passed to `python -m zcbench run`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
. .venv/bin/activate
if [ -z "${ZCBENCH_DATA:-}" ] && [ -d ../shared/data ]; then
  export ZCBENCH_DATA="$(cd ../shared/data && pwd)"
fi
echo "data: ${ZCBENCH_DATA:-embedded tables (no data dir configured)}" >&2
python -m zcbench run space=gpt2 "proxy=[params,snip]" n_archs=50 progress=false "$@"
cat >&2 <<'MSG'

That was a seeded sample of 50 of the 200 GPT-2 architectures. The full table:
  . .venv/bin/activate && python -m zcbench run space=gpt2 "proxy=[params,snip]"
Every key: python -m zcbench run --help; Python: docs/quickstart.md; the leaderboard: results/site/index.html
MSG
