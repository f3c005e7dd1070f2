"""Few-shot predictors, search efficiency and robustness (issue #21): zcbench.predict,
zcbench.search.efficiency, zcbench.robustness."""
from __future__ import annotations

import math
import random

import numpy as np
import pandas as pd
import pytest

from conftest import REPO
from zcbench import predict as P
from zcbench.search import efficiency as E
from zcbench.space import Arch

RESULTS = REPO / "results"


# --------------------------------------------------------------------------- synthetic spaces
def synthetic(n=200, n_proxies=8, seed=0, genes=True, components=True) -> P.SpaceData:
    """Truth = 2 * rank(p0) + rank(p1) exactly; p2..p7 are independent noise; params is noise too."""
    rng = np.random.default_rng(seed)
    ids = [f"a{i:04d}" for i in range(n)]
    cols = {f"p{j}": rng.normal(size=n) for j in range(n_proxies)}
    cols["params"] = rng.normal(size=n)
    scores = pd.DataFrame(cols, index=ids)
    r = scores.rank(pct=True)
    truth = 2.0 * r["p0"] + r["p1"]
    g = pd.DataFrame({"layers": rng.integers(1, 5, n).astype(float), "width": rng.integers(1, 9, n) * 32.0},
                     index=ids) if genes else None
    c = pd.DataFrame({"attn": rng.random(n), "ffn": rng.random(n)}, index=ids) if components else None
    return P.SpaceData(space="synthetic", ids=ids, scores=scores, truth=truth, genes=g, components=c,
                       metric="synthetic")


def test_synthetic_truth_of_two_proxies_is_recovered():
    d = synthetic()
    splits = P.evaluate_splits(d, ks=(50,), n_splits=5, seed=0)
    mean = splits.groupby("predictor").rho.mean()
    assert mean["ridge_ranks"] > 0.99  # linear in the ranks: ridge recovers it almost exactly
    assert mean["hgb"] > 0.9
    assert abs(mean["params"]) < 0.2  # noise baseline
    # best single proxy is p0 (the heavier term): rho(p0 rank, 2 p0 + p1) ~ 0.89
    assert 0.8 < mean["best_single"] < 0.95
    # the ridge weights: p0 about twice p1, the noise proxies about 0
    tr, _ = P.make_splits(d.ids, 50, 1, seed=0)[0]
    coef, _ = P.ridge_loo(d.R[d.index(tr)], P._rank_target(d.y[d.index(tr)]))
    w = dict(zip(d.proxies, coef))
    assert w["p0"] > 1.5 * w["p1"] > 0
    assert max(abs(w[p]) for p in d.proxies if p not in ("p0", "p1")) < 0.25 * w["p1"]
    # greedy forward selection picks exactly the two true proxies first
    fwd = P.forward_selection(d, k=50, n_splits=5, seed=0, max_steps=3)
    assert set(fwd.added[:2]) == {"p0", "p1"}
    assert fwd.rho.iloc[1] > 0.99 > fwd.rho.iloc[0]
    # and the summary says the ensemble beats the baseline
    s = P.summarize(splits, n_boot=500)
    assert bool(s.set_index("predictor").loc["ridge_ranks", "beats_params"])
    assert P.smallest_k(s)["synthetic"]["k"] == 50


def test_ridge_loo_matches_sklearn_ridgecv():
    from sklearn.linear_model import RidgeCV

    rng = np.random.default_rng(3)
    x, y = rng.random((40, 6)), rng.random(40)
    coef, b = P.ridge_loo(x, y)
    ref = RidgeCV(alphas=P.RIDGE_ALPHAS).fit(x, y)
    np.testing.assert_allclose(coef, ref.coef_, atol=1e-10)
    assert b == pytest.approx(ref.intercept_, abs=1e-10)


def test_splits_are_deterministic_by_seed_and_partition_the_pool():
    ids = [f"x{i}" for i in range(60)]
    a = P.make_splits(ids, 10, 5, seed=0)
    assert a == P.make_splits(list(reversed(ids)), 10, 5, seed=0)  # order of the input does not matter
    assert a != P.make_splits(ids, 10, 5, seed=1)
    assert len({tuple(tr) for tr, _ in a}) == 5  # splits differ from each other
    for tr, te in a:
        assert len(tr) == 10 and not set(tr) & set(te) and sorted(tr + te) == sorted(ids)
    with pytest.raises(P.PredictError, match="k=59"):
        P.make_splits(ids, 59, 1)


def test_no_heldout_architecture_leaks_into_fitting():
    """Scrambling the held-out architectures' truth must not change a single prediction."""
    d = synthetic(n=120)
    preds = P.available_predictors(d)
    assert set(preds) == set(P.PREDICTORS) - {"params_nonembedding"}
    for k in (5, 20):
        tr_ids, te_ids = P.make_splits(d.ids, k, 1, seed=4)[0]
        tr, te = d.index(tr_ids), d.index(te_ids)
        before = {p: P.PREDICT_FUNCS[p](d, tr, te, 0) for p in preds}
        scrambled = d.truth.copy()
        rng = np.random.default_rng(9)
        scrambled.loc[te_ids] = rng.permutation(scrambled.loc[te_ids].to_numpy()) * 10 - 3
        d2 = P.SpaceData(space=d.space, ids=d.ids, scores=d.scores, truth=scrambled, genes=d.genes,
                         components=d.components)
        for p in preds:
            np.testing.assert_array_equal(P.PREDICT_FUNCS[p](d2, tr, te, 0), before[p], err_msg=p)
        # and the labelled truth does matter (the test can fail): change it, ridge changes
        moved = d.truth.copy()
        moved.loc[tr_ids] = -moved.loc[tr_ids]
        d3 = P.SpaceData(space=d.space, ids=d.ids, scores=d.scores, truth=moved, genes=d.genes,
                         components=d.components)
        assert not np.allclose(P.PREDICT_FUNCS["ridge_ranks"](d3, tr, te, 0), before["ridge_ranks"])


def test_predict_on_stored_gpt2_scores(tmp_path):
    res = P.run_predict(RESULTS, "gpt2", ks=(10,), n_splits=3, out=tmp_path / "predict", forward=False, n_boot=200)
    d, s = res["data"], res["summary"]
    assert len(d.ids) == 200 and {"params", "params_nonembedding", "snip"} <= set(d.proxies)
    assert set(s.predictor) >= {"params", "params_nonembedding", "ridge_ranks", "hgb_genes", "zerolm_alpha"}
    # params needs no fitting: its held-out rho on each split is the plain Spearman on the held-out set
    tr, te = P.make_splits(d.ids, 10, 1, seed=0)[0]
    from scipy import stats

    want = stats.spearmanr(d.scores.loc[te, "params"], d.truth.loc[te]).statistic
    got = res["splits"].query("predictor == 'params' and split == 0").rho.iloc[0]
    assert got == pytest.approx(want, abs=1e-12)
    tables = P.ensemble_tables(tmp_path)
    assert list(tables) == ["gpt2"] and len(tables["gpt2"]) == len(s)
    out = tmp_path / "predict"
    assert (out / "gpt2.md").exists() and (out / "gpt2.png").exists() and (out / "summary.md").exists()
    # the leaderboard hook: an ensembles section on the gpt2 page and a summary on the index
    from types import SimpleNamespace

    secs = P.site_sections(SimpleNamespace(provenance={"results_dir": str(tmp_path)}, spaces={"gpt2": None}))
    assert sorted(x.page for x in secs) == ["index", "space:gpt2"]
    page = next(x for x in secs if x.page == "space:gpt2").html
    params_rho = s[s.predictor == "params"].rho.iloc[0]
    assert f"{params_rho:.3f}" in page and "data:image/png;base64" in page


def test_predict_command_errors_are_one_line(capsys):
    assert P.main_predict(["space=nope"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "unknown space 'nope'" in err and "gpt2" in err
    assert P.main_predict(["spcae=gpt2"]) == 2
    assert "valid keys: space" in capsys.readouterr().err
    assert P.main_predict(["space=gpt2", "ks=[1]"]) == 2
    assert "every k must be >= 2" in capsys.readouterr().err


# --------------------------------------------------------------------------- search efficiency
class ToySpace:
    """A 1-D pool: genes {"x": i}, truth = a fixed permutation; mutation moves x by +-1..3."""

    name = "toy"
    higher_is_better = True

    def __init__(self, n=100, seed=0):
        rng = random.Random(seed)
        vals = list(range(n))
        rng.shuffle(vals)
        self.archs = [Arch(genes={"x": i}, truth={"t": float(v)}) for i, v in enumerate(vals)]

    def truth(self, a):
        return a.truth["t"]

    def mutate(self, a, rng):
        return Arch(genes={"x": a.genes["x"] + rng.choice([-3, -2, -1, 1, 2, 3])})


def test_perfect_proxy_reaches_top1_in_the_minimum_number_of_trainings():
    sp = ToySpace()
    pool = sp.archs
    truth = pd.Series({a.id: sp.truth(a) for a in pool})
    t = truth.to_numpy()
    index = E.fast_index(pool)
    for seed in range(3):
        perfect = E.etas_search(sp, pool, index, truth, seed, budget=30)
        m = E.trace_metrics(perfect, t, budget=30)
        assert m["to_top1"] == 1.0 and m["regret20"] == 0.0  # warm-up ranks the whole pool (N0 >= 100)
        worst = E.etas_search(sp, pool, index, -truth, seed, budget=30)
        assert E.trace_metrics(worst, t, budget=30)["to_top1"] > 1.0
    # random search: the best is found at its position in the shuffled order
    for seed in range(3):
        rs = E.random_search(list(truth.index), truth, "toy", seed, budget=100)
        order = sorted(truth.index)
        random.Random(f"random:toy:{seed}").shuffle(order)
        assert E.trace_metrics(rs, t, budget=100)["to_top1"] == order.index(truth.idxmax()) + 1


def test_trace_metrics_and_aggregate():
    t = np.arange(200, dtype=float)  # top 1 % = the 2 best: threshold 198
    m = E.trace_metrics(np.array([5, 50, 150, 197, 198, 199] + [199] * 30, float), t, budget=25)
    assert m == {"to_top1": 5.0, "regret20": 0.0, "n_trained": 25}
    m = E.trace_metrics(np.full(30, 150.0), t, budget=30)
    assert math.isinf(m["to_top1"]) and m["regret20"] == 49.0
    per_seed = pd.DataFrame({"space": "s", "method": "etas", "proxy": "p", "seed": range(3),
                             "to_top1": [3.0, math.inf, 7.0], "regret20": [0.0, 2.0, 1.0], "n_trained": 100})
    a = E.aggregate(per_seed).iloc[0]
    assert a.to_top1_median == 7.0 and a.reach_top1 == pytest.approx(2 / 3) and a.regret20_median == 1.0


def test_fast_index_is_the_etas_gower_distance(data_dir):
    import zcbench
    from zcbench.search.etas import GeneIndex

    space = zcbench.create_space("gpt2", data_dir=data_dir)
    pool = sorted(space.stored(), key=lambda a: a.id)
    slow, fast = GeneIndex(pool), E.fast_index(pool)
    rng = random.Random(0)
    for _ in range(20):
        child = space.mutate(pool[rng.randrange(len(pool))], rng)
        np.testing.assert_allclose(fast.distances(child.genes), slow.distances(child.genes), rtol=0, atol=1e-12)
        np.testing.assert_array_equal(fast.distances(child.genes), fast.distances(child.genes))  # cached


# --------------------------------------------------------------------------- robustness
def test_batch_run_differs_from_the_standard_one_only_in_batch_size():
    from zcbench.robustness import with_batch

    data = {"batch": {"batch_size": 4, "seq_len": 192, "seed": 0, "corpus": "wikitext-2"}, "batch_size": 4,
            "seq_len": 192, "device": "cpu", "proxy_options": {"a": 1}}
    b1 = with_batch(data, 1)
    assert b1["batch_size"] == 1 and b1["batch"]["batch_size"] == 1 and data["batch_size"] == 4
    assert {k: v for k, v in b1.items() if k not in ("batch", "batch_size")} == \
        {k: v for k, v in data.items() if k not in ("batch", "batch_size")}


def test_robustness_columns_from_the_store():
    """Seed spread and the batch-size columns recomputed by hand for one proxy (snip, GPT-2)."""
    from scipy import stats

    from zcbench.report import load_runs, load_space
    from zcbench.robustness import batch_sensitivity, seed_spread

    spread = seed_spread(RESULTS)
    row = spread[(spread.space == "gpt2") & (spread.proxy == "snip")].iloc[0]
    runs = [r for r in load_runs(RESULTS, ["gpt2"], {"snip"}) if r.space == "gpt2"]
    info = load_space("gpt2", "gpt2", {}, None, None)
    # the spread is over the seeds of the reported configuration, the one its row names
    # (the committed store: 16 x 192, seeds 0 and 1)
    batch_size, seq_len = (int(v) for v in row.minibatch.split("x"))
    rhos, seeds = [], []
    for r in runs:
        if (r.data.get("batch_size"), r.data.get("seq_len")) != (batch_size, seq_len):
            continue
        s = pd.Series({i: rec["score"] for i, rec in r.records.items()})
        if len(s) < 200:
            continue
        rhos.append(stats.spearmanr(s, info.oriented.reindex(s.index)).statistic)
        seeds.append(r.seed)
    assert row.n_seeds == len(rhos) >= 2 and row.seeds == ",".join(map(str, sorted(seeds)))
    assert row.rho_seed_std == pytest.approx(np.std(rhos, ddof=1), abs=1e-9)
    batch = batch_sensitivity(RESULTS)
    if batch.empty:
        pytest.skip("no batch-size runs in the store")
    b = batch.set_index("proxy")
    assert "snip" in b.index and b.loc["snip", "n_batch"] >= 3
    assert set(b.columns) >= {"rho_b1", "rho_b4", "rho_b16", "sign_flip"}
    flips = b.sign_flip.astype(bool)
    signs = np.sign(b[["rho_b1", "rho_b4", "rho_b16"]])
    assert (flips == signs.apply(lambda x: len(set(x.dropna()) - {0}) > 1, axis=1)).all()
