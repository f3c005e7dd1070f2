"""The run job end to end on the GPT-2 LTS space: correlations, results files, resume, multirun."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from zcbench.store import ScoreFile

REPO = Path(__file__).resolve().parents[1]


def zc_cmd(*args):
    return [sys.executable, "-m", "zcbench", *args]


def run_zc(*args, timeout=900):
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.run(zc_cmd(*args), capture_output=True, text=True, cwd=REPO, env=env, timeout=timeout)


def test_run_params_reproduces_lts_published_correlations(tmp_path):
    """LTS/LPZero report #Params rho 0.737 (tau 0.582) and decoder params rho 0.967 (tau 0.847)."""
    out = run_zc("run", "proxy=[params,params_nonembedding]", "space=gpt2", f"results_dir={tmp_path}")
    assert out.returncode == 0, out.stderr[-3000:]
    lines = {ln.split(" | ")[1]: ln for ln in out.stdout.splitlines() if ln.startswith("gpt2 | ")}
    assert "Kendall tau = 0.582" in lines["params"] and "Spearman rho = 0.737" in lines["params"]
    assert "Kendall tau = 0.847" in lines["params_nonembedding"]
    assert "Spearman rho = 0.967" in lines["params_nonembedding"]
    summaries = list((tmp_path / "summaries" / "gpt2" / "params").glob("*.json"))
    assert len(summaries) == 1
    s = json.loads(summaries[0].read_text())
    assert s["n_scored"] == 200 and s["correlation"]["n"] == 200 and s["higher_is_better"] is False
    assert s["correlation"]["rho_ci"][0] < s["correlation"]["spearman_rho"] < s["correlation"]["rho_ci"][1]
    # per-arch scores are stored with the upstream key and the stable ID
    (scores,) = (tmp_path / "scores" / "gpt2" / "params").glob("*.jsonl")
    recs = [json.loads(x) for x in scores.read_text().splitlines()]
    assert len(recs) == 200 and len({r["arch_id"] for r in recs}) == 200
    assert {r["key"] for r in recs} >= {"config_0_j0", "config_19_j9"}


def test_sigkill_then_rerun_resumes_without_losing_scores(tmp_path):
    args = ["run", "proxy=params", "space=gpt2", "n_archs=60", "seed=3", f"results_dir={tmp_path}", "bootstrap=0"]
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.Popen(zc_cmd(*args), cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    score_dir = tmp_path / "scores" / "gpt2" / "params"
    deadline = time.time() + 300
    before = []
    while time.time() < deadline:
        files = list(score_dir.glob("*.jsonl"))
        if files:
            before = files[0].read_text().splitlines()
            if len(before) >= 5:
                break
        assert proc.poll() is None, "scorer finished before it could be killed"
        time.sleep(0.01)
    assert proc.poll() is None, "scorer finished before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    killed = files[0].read_text().splitlines()
    assert 5 <= len(killed) < 60
    out = run_zc(*args)
    assert out.returncode == 0, out.stderr[-3000:]
    assert f"resuming: {len(killed)} of 60 architectures already scored" in out.stderr
    after = files[0].read_text().splitlines()
    assert after[: len(killed)] == killed  # nothing finished was lost or rewritten
    ids = [json.loads(x)["arch_id"] for x in after]
    assert len(ids) == 60 and len(set(ids)) == 60  # nothing scored twice
    assert "n=60" in out.stdout


def test_sampled_subset_is_seeded_and_multirun_works(tmp_path):
    out = run_zc("run", "-m", "proxy=params", "space=gpt2", "n_archs=20", "seed=0,1", f"results_dir={tmp_path}",
                 "bootstrap=0")
    assert out.returncode == 0, out.stderr[-3000:]
    ids = {}
    for f in (tmp_path / "scores" / "gpt2" / "params").glob("*.jsonl"):
        seed = json.loads(f.with_name(f.name.replace(".jsonl", ".meta.json")).read_text())["seed"]
        ids[seed] = {json.loads(x)["arch_id"] for x in f.read_text().splitlines()}
    assert sorted(ids) == [0, 1] and all(len(v) == 20 for v in ids.values())
    assert ids[0] != ids[1]  # different seeds, different samples
    from zcbench import create_space
    from zcbench.runner import select_archs

    space = create_space("gpt2")
    assert {a.id for a in select_archs(space, 20, 0)} == ids[0]  # same seed, same sample
