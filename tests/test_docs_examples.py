"""docs/examples/notebook.py runs top to bottom (small sizes) and prints what it claims."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def test_notebook_example_runs(data_dir, tmp_path):
    pytest.importorskip("transformers")
    env = dict(os.environ, ZCBENCH_EXAMPLE_SMALL="1", PYTHONPATH=str(REPO), HOME=str(tmp_path))
    res = subprocess.run([sys.executable, str(REPO / "docs" / "examples" / "notebook.py")], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=900)
    assert res.returncode == 0, res.stderr[-3000:]
    out = res.stdout
    assert "params_nonembedding: Kendall tau" in out and "snip: Kendall tau" in out and "(n=4)" in out
    assert "grad_weight_ratio:" in out
    assert "'attention_confidence': 'ok'" in out
    assert not any(tmp_path.glob("results*"))  # in memory: nothing written
