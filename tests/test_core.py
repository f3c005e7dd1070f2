"""Core: registries, entry-point plug-ins, results store, metrics, CLI errors."""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import zcbench
from zcbench import metrics
from zcbench.registry import UnknownNameError
from zcbench.store import ScoreFile

REPO = Path(__file__).resolve().parents[1]
PLUGIN_PATH = Path(__file__).parent / "plugin_pkg"


def _env(**extra):
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO)] + [p for p in [env.get("PYTHONPATH")] if p])
    env.update(extra)
    return env


def zc(*args, env=None, timeout=600):
    return subprocess.run([sys.executable, "-m", "zcbench", *args], capture_output=True, text=True,
                          env=env or _env(), cwd=REPO, timeout=timeout)


def test_builtin_registries():
    assert {"params", "params_nonembedding"} <= set(zcbench.list_proxies())
    assert "gpt2" in zcbench.list_spaces()
    assert zcbench.get_proxy("params").name == "params"
    with pytest.raises(UnknownNameError, match="valid proxies: .*params"):
        zcbench.get_proxy("no_such_proxy")
    with pytest.raises(UnknownNameError, match="valid spaces: .*gpt2"):
        zcbench.create_space("no_such_space")


def test_out_of_tree_plugin_discovered_through_entry_points(tmp_path):
    env = _env(PYTHONPATH=os.pathsep.join([str(PLUGIN_PATH), str(REPO)]))
    out = zc("list", env=env)
    assert out.returncode == 0, out.stderr
    assert "toy_depth" in out.stdout and "toy_mlp" in out.stdout
    # Without the plug-in on the path, neither appears.
    assert "toy_mlp" not in zc("list").stdout
    # And it runs end to end through the Hydra runner: depth == ground truth, so rho = 1.
    run = zc("run", "space=toy_mlp", "proxy=toy_depth", f"results_dir={tmp_path}", "bootstrap=0", env=env)
    assert run.returncode == 0, run.stderr
    assert "Spearman rho = 1.000" in run.stdout


def test_store_roundtrip_keeps_nan_and_inf(tmp_path):
    f = ScoreFile(tmp_path, "s", "p", 0, {"batch_size": 2}, "1")
    f.append({"arch_id": "a", "score": 1.5, "status": "ok"})
    f.append({"arch_id": "b", "score": float("nan"), "status": "nan"})
    f.append({"arch_id": "c", "score": float("inf"), "status": "inf"})
    f.append({"arch_id": "a", "score": 9.0, "status": "ok"})  # a duplicate never overrides the first
    recs = f.read()
    assert recs["a"]["score"] == 1.5
    assert math.isnan(recs["b"]["score"]) and recs["b"]["status"] == "nan"
    assert math.isinf(recs["c"]["score"])
    # A different data config or proxy version is a different file.
    assert ScoreFile(tmp_path, "s", "p", 0, {"batch_size": 4}, "1").path != f.path
    assert ScoreFile(tmp_path, "s", "p", 0, {"batch_size": 2}, "2").path != f.path


def test_store_concurrent_appends_lose_nothing(tmp_path):
    code = (
        "import sys; from zcbench.store import ScoreFile\n"
        "f = ScoreFile(sys.argv[1], 's', 'p', 0, {}, '1')\n"
        "for i in range(200): f.append({'arch_id': f'{sys.argv[2]}-{i}', 'score': float(i), 'status': 'ok', 'pad': 'x' * 500})\n"
    )
    procs = [subprocess.Popen([sys.executable, "-c", code, str(tmp_path), f"w{w}"], env=_env()) for w in range(4)]
    assert all(p.wait(timeout=120) == 0 for p in procs)
    f = ScoreFile(tmp_path, "s", "p", 0, {}, "1")
    lines = f.path.read_text().splitlines()
    assert len(lines) == 800 and all(json.loads(line) for line in lines)
    assert len(f.read()) == 800


def test_metrics_match_scipy_and_orientation():
    rng = np.random.default_rng(0)
    truth = pd.Series(rng.normal(size=60), index=[f"a{i}" for i in range(60)])
    scores = truth + rng.normal(scale=0.5, size=60)
    c = metrics.correlate(scores, truth, n_resamples=200)
    assert c.kendall_tau == pytest.approx(stats.kendalltau(scores, truth).statistic)
    assert c.spearman_rho == pytest.approx(stats.spearmanr(scores, truth).statistic)
    assert c.rho_ci[0] < c.spearman_rho < c.rho_ci[1]
    # lower-is-better ground truth is negated before correlating
    assert metrics.orient(truth, higher_is_better=False).equals(-truth)
    # top-k overlap: identical rankings overlap fully, reversed ones not at all
    assert metrics.top_k_overlap(truth.to_numpy(), truth.to_numpy(), 0.1) == 1.0
    assert metrics.top_k_overlap(-truth.to_numpy(), truth.to_numpy(), 0.1) == 0.0


def test_metrics_exclude_nan_visibly_and_flag_constant():
    truth = pd.Series([1.0, 2.0, 3.0, 4.0, 5.0], index=list("abcde"))
    scores = pd.Series([1.0, float("nan"), 3.0, float("inf"), 5.0], index=list("abcde"))
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        c = metrics.correlate(scores, truth, n_resamples=0)
    assert c.n == 3 and c.n_excluded == 2 and c.spearman_rho == pytest.approx(1.0)
    assert any("2 of 5" in str(x.message) for x in w)
    const = metrics.correlate(pd.Series(1.0, index=list("abcde")), truth, n_resamples=0)
    assert const.constant and math.isnan(const.spearman_rho)


def test_mean_std_over_seeds():
    df = pd.DataFrame({"proxy": ["p"] * 3, "seed": [0, 1, 2], "rho": [0.5, 0.6, 0.7]})
    out = metrics.mean_std_over_seeds(df, ["proxy"], "rho")
    assert out.loc[0, "mean"] == pytest.approx(0.6) and out.loc[0, "std"] == pytest.approx(0.1)


@pytest.mark.parametrize("args,needle", [
    (["run", "space=nope"], "unknown space 'nope'; valid spaces:"),
    (["run", "proxy=nope"], "unknown proxy 'nope'; valid proxies:"),
    (["run", "batch_size=abc"], "batch_size for run must be an integer, got 'abc'"),
    (["run", "seq_len=0"], "seq_len for run must be >= 1, got 0"),
    (["run", "shard=3/2"], "shard must satisfy"),
    (["run", "device=cuda:7"], "device="),
    (["run", "target=nope"], "unknown target 'nope'"),
    (["frobnicate"], "unknown command 'frobnicate'; valid commands:"),
])
def test_bad_input_one_line_error(args, needle, tmp_path):
    out = zc(*args, f"results_dir={tmp_path}" if args[0] == "run" else "--help")
    assert out.returncode != 0
    err = out.stderr.strip().splitlines()
    assert len(err) == 1 and needle in err[0], out.stderr
    assert "Traceback" not in out.stderr


def test_wheel_ships_proxies_spaces_and_conf(tmp_path):
    pytest.importorskip("setuptools")
    out = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w",
                          str(tmp_path), str(REPO)], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    import zipfile

    (wheel,) = tmp_path.glob("zcbench-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "zcbench/proxies/params.py" in names
    assert "zcbench/spaces/gpt2.py" in names
    assert "zcbench/conf/config.yaml" in names and "zcbench/conf/space/gpt2.yaml" in names
    assert "zcbench/manifest.json" in names
    # sub-packages and data the commands need at run time
    assert "zcbench/search/lpzero/gp.py" in names and "zcbench/search/etas.py" in names
    assert "zcbench/conf/hydra/launcher/joblib.yaml" in names and "zcbench/conf/search.yaml" in names
    assert "zcbench/site/style.css" in names and "zcbench/published.yaml" in names
    tops = {n.split("/")[0] for n in names if not n.startswith("zcbench-")}
    assert tops == {"zcbench"}, tops  # no generic top-level names such as proxies/ or spaces/
