"""LPZero search: expressions, shape rules, RPS, GP determinism, fitness, searched proxies.

Real inputs: 5 GPT-2 LTS architectures captured once (batch 2, 32 tokens) through the
engine into the test session's cache.
"""
from __future__ import annotations

import os
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from zcbench import metrics
from zcbench.search.lpzero import rules
from zcbench.search.lpzero.evaluate import Evaluator, spearman, valid_scores
from zcbench.search.lpzero.expr import Expr, load_expr_file, parse, random_expr
from zcbench.search.lpzero.gp import Fitness, SearchConfig, crossover, mutate, search
from zcbench.search.lpzero.inputs import Bank, CacheConfig, load_or_capture
from zcbench.search.lpzero.ops import INPUTS, UNARY_NAMES, apply_branch, branch_shape

REPO = Path(__file__).resolve().parents[1]
BS, SL, N = 2, 32, 5


@pytest.fixture(scope="module")
def gpt2_bank(data_dir, tmp_path_factory):
    torch.set_num_threads(1)
    from zcbench.registry import create_space
    from zcbench.runner import select_archs

    space = create_space("gpt2", data_dir=str(data_dir))
    archs = select_archs(space, N, 0)  # the runner's own sample for n_archs=5, seed=0
    cc = CacheConfig(space="gpt2", seed=0, batch_size=BS, seq_len=SL)
    root = tmp_path_factory.mktemp("lpzcache")
    per = load_or_capture(space, archs, cc, root=root, log=False)
    bank = Bank([a.id for a in archs], per)
    truth = -np.array([space.truth(a) for a in archs])
    return space, archs, bank, truth, per


def test_formula_round_trip():
    rng = random.Random(0)
    for n_unary in (1, 2, 3, 5):
        for _ in range(300):
            e = random_expr(rng, n_unary)
            assert parse(e.formula) == e
            assert Expr.from_dict(e.to_dict()) == e
    e = parse("sqrt(log(A)) ⊙ id(fro(W))")
    assert e.inputs == ("A", "W") and e.ops == (("log", "sqrt"), ("fro", "id")) and e.binary == "had"
    assert parse("sqrt(log(A)) .* id(fro(W))") == e
    with pytest.raises(ValueError):
        parse("sqrt(log(Q)) + A")
    with pytest.raises(ValueError):
        parse("foo(A) + W")


def test_expression_file_round_trip(tmp_path):
    e = parse("square(neg(H)) + logsoftmax(fro(A))")
    for suffix, dump in ((".yaml", yaml.safe_dump), (".json", __import__("json").dumps)):
        p = tmp_path / f"x{suffix}"
        p.write_text(dump({"expression": e.to_dict(), "data": {"rows": 16}}))
        e2, d = load_expr_file(p)
        assert e2 == e and d["data"]["rows"] == 16
    # a file whose formula disagrees with its genotype is refused
    bad = e.to_dict() | {"binary": "sub"}
    p = tmp_path / "bad.yaml"
    p.write_text(yaml.safe_dump({"expression": bad}))
    with pytest.raises(ValueError):
        load_expr_file(p)


def test_shape_rules():
    assert branch_shape(("fro", "std")) is None  # std of one number
    assert branch_shape(("mean", "softmax")) is None  # softmax over one number
    assert branch_shape(("normalize", "fro")) == "scalar"
    assert branch_shape(("log", "sqrt")) == "matrix"
    assert not parse("id(A) ⊙ id(H)").valid_shape  # unaligned matrices
    assert parse("id(W) ⊙ id(G)").valid_shape
    assert parse("fro(A) ⊙ id(H)").valid_shape  # scalar side: a product
    X = torch.randn(3, 4, 5)
    with pytest.raises(ValueError):
        apply_branch(X, torch.ones(3, dtype=torch.float64), ("mean", "std"))


def test_shape_valid_candidates_never_crash_on_real_inputs(gpt2_bank):
    _, archs, bank, _, _ = gpt2_bank
    ev = Evaluator(bank)
    rng = random.Random(1)
    n = n_valid = 0
    while n < 400:
        e = random_expr(rng, rng.choice((1, 2, 3)))
        if not e.valid_shape:
            continue
        s = ev.scores(e)  # must not raise
        assert s.shape == (len(archs),)
        n += 1
        n_valid += valid_scores(s)
    assert n_valid > 100  # most candidates give usable scores


def test_every_op_on_real_inputs(gpt2_bank):
    _, _, bank, _, _ = gpt2_bank
    for k in INPUTS:
        X, sc = bank.X[k], bank.scale[k]
        assert X.shape[0] > 0 and torch.isfinite(X).all()
        for o in UNARY_NAMES:
            shape, v = apply_branch(X, sc, (o,))
            assert v.shape[0] == X.shape[0]
            assert shape == ("scalar" if o in ("fro", "nsum", "l1", "mean", "std") else "matrix")


@pytest.mark.parametrize("formula,rule", [
    ("log(neg(A)) + id(W)", "domain"),
    ("sqrt(neg(G)) + id(W)", "domain"),
    ("sqrt(logsoftmax(S)) + id(W)", "domain"),
    ("invert(relu(A)) + id(W)", "zero-inverse"),
    ("invert(minmax(H)) + id(W)", "zero-inverse"),
    ("log(exp(A)) + id(W)", "cancel"),
    ("sqrt(square(A)) + id(W)", "cancel"),
    ("exp(log(A)) + id(W)", "cancel"),
    ("invert(invert(J)) + id(W)", "cancel"),
    ("neg(neg(J)) + id(W)", "cancel"),
    ("abs(abs(A)) + id(W)", "idempotent"),
    ("abs(square(A)) + id(W)", "redundant"),
    ("mean(fro(A)) + id(W)", "reduce-twice"),
    ("log(id(exp(A))) + id(W)", "cancel"),  # id is transparent
    ("fro(A) - fro(A)", "same-branches"),
])
def test_rps_rejects_conflicts(formula, rule):
    found = rules.conflicts(parse(formula))
    assert any(rule in c for c in found), found


def test_rps_passes_clean_candidates():
    for f in ("log(abs(H)) + sigmoid(relu(G))", "square(neg(H)) + logsoftmax(fro(A))", "fro(W) * l1(G)",
              "exp(neg(A)) - sqrt(relu(W))"):
        assert rules.passes(parse(f)), rules.conflicts(parse(f))


def test_fitness_equals_metrics_spearman(gpt2_bank):
    _, archs, bank, truth, _ = gpt2_bank
    fit = Fitness(Evaluator(bank), truth)
    ids = [a.id for a in archs]
    for f in ("fro(W) + id(G)", "log(abs(H)) + sigmoid(relu(G))", "l1(A) * std(J)"):
        e = parse(f)
        ok, rho = fit(e)
        s = fit.ev.scores(e)
        assert ok == valid_scores(s)
        c = metrics.correlate(pd.Series(s, index=ids), pd.Series(truth, index=ids), n_resamples=0)
        assert rho == pytest.approx(c.spearman_rho, abs=1e-12)
        assert spearman(s, truth) == pytest.approx(c.spearman_rho, abs=1e-12)


def test_gp_deterministic_per_seed(gpt2_bank):
    _, _, bank, truth, _ = gpt2_bank
    ev = Evaluator(bank)
    runs = []
    for seed in (7, 7, 8):
        cfg = SearchConfig(population=12, generations=25, seed=seed)
        r = search(Fitness(ev, truth), cfg)
        runs.append([(h["best_rho"], h["best"]) for h in r.history] + r.population)
    assert runs[0] == runs[1]
    assert runs[0] != runs[2]
    # the baselines run too and record one row per generation
    for method, rps in (("random", False), ("gp", False)):
        r = search(Fitness(ev, truth), SearchConfig(population=8, generations=10, seed=3, method=method, rps=rps))
        assert len(r.history) == 10
        assert all(b >= a for a, b in zip([h["best_rho"] for h in r.history], [h["best_rho"] for h in r.history][1:]))


def test_rps_offspring_pass_rules(gpt2_bank):
    _, _, bank, truth, _ = gpt2_bank
    r = search(Fitness(Evaluator(bank), truth), SearchConfig(population=10, generations=30, seed=5, rps=True))
    for _, formula in r.population:
        assert rules.passes(parse(formula)) and parse(formula).valid_shape


def test_crossover_and_mutation_keep_structure():
    rng = random.Random(0)
    a, b = random_expr(rng, 3), random_expr(rng, 3)
    for _ in range(50):
        c = crossover(a, b, rng)
        assert all(x in (a.inputs[i], b.inputs[i]) for i, x in enumerate(c.inputs))
        assert len(c.ops[0]) == len(c.ops[1]) == 3
        m = mutate(c, rng)
        assert len(m.ops[0]) == 3 and m.binary in ("add", "sub", "mul", "had")


def test_searched_proxy_matches_search_and_runs_through_runner(gpt2_bank, tmp_path, data_dir):
    space, archs, bank, truth, per = gpt2_bank
    from zcbench.engine import score_arch
    from zcbench.registry import get_proxy

    e = parse("log(abs(H)) + sigmoid(relu(G))")
    f = tmp_path / "cand.yaml"
    f.write_text(yaml.safe_dump({"expression": e.to_dict(), "data": {"rows": 16, "cols": 256, "subsample_seed": 0}},
                                allow_unicode=True))
    p = get_proxy(f"searched:{f}")
    assert p.needs == frozenset({"forward", "backward"}) and "head_out" in p.taps
    want = Evaluator(bank).scores(e)
    got = [score_arch(space, a, [p], seed=0, batch_size=BS, seq_len=SL)[p.name] for a in archs[:2]]
    for r, w in zip(got, want[:2]):
        assert r.status == "ok", r.message
        assert r.value == pytest.approx(w, rel=1e-5)

    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    cmd = [sys.executable, "-m", "zcbench", "run", f"proxy=searched:{f}", "space=gpt2", f"n_archs={N}",
           f"batch_size={BS}", f"seq_len={SL}", "bootstrap=0", "progress=false", f"results_dir={tmp_path / 'res'}"]
    out = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert f"searched:{f}" in out.stdout and "Spearman rho" in out.stdout
    rho_cli = float(out.stdout.split("Spearman rho = ")[1].split()[0])
    assert rho_cli == pytest.approx(spearman(want, truth), abs=1e-3)


def test_paper_ablation_table_comes_from_the_data_files(tmp_path):
    """results/lpzero/ablation_vs_paper.md: Table 5 from published_ablation.yaml, ours from the ablation CSVs."""
    import shutil

    import pandas as pd

    from zcbench.search.lpzero.paper import table

    src = Path(__file__).resolve().parents[1] / "results" / "lpzero"
    shutil.copy(src / "published_ablation.yaml", tmp_path)
    text = table(tmp_path)  # no CSVs: paper column only, ours "—"
    assert "| n_unary=2 | 0.8648 | 0.2561 | — | — |" in text and "| n_unary=4 | 0.7515 | 0.0869 | — | — |" in text
    pd.DataFrame({"study": "n_unary", "variant": ["n_unary=2"] * 2, "seed": [0, 1], "best_rho": [0.9, 0.8],
                  "space": "gpt2", "n_archs": 50, "generations": 10}).to_csv(tmp_path / "ablation_n_unary_final.csv")
    text = table(tmp_path)
    assert "| n_unary=2 | 0.8648 | 0.2561 | 0.850 ± 0.071 | 2 |" in text
    assert "ours: gpt2, S = 50 architectures, 10 generations" in text
