"""zcbench.report: the table recomputed from per-architecture scores, its outputs and figures.

Real data: the GPT-2 LTS ground truth and the runner's own parameter-count proxies, whose
correlations the LPZero paper printed (Table 4: #Params tau 0.582 / rho 0.737,
Decoder.Params 0.847 / 0.967). Synthetic proxies (ground truth + seeded noise, NaN/inf
scores, constant scores) are written through the store's own ScoreFile to exercise the
statistics and edge cases on the same real architectures.
"""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import zcbench
from zcbench import metrics, report
from zcbench.runner import RunConfig, run
from zcbench.store import ScoreFile

REPO = Path(__file__).resolve().parents[1]
BOOT = 100  # bootstrap resamples in these tests (the CLI default is 1000)


def _write_proxy(root, space, name, seed, scores: dict, *, version="1", data=None, status=None, seconds=0.5):
    data = data if data is not None else {"space_options": {}, "device": "cpu", "batch_size": 4, "seq_len": 32,
                                          "batch": {"corpus": "test", "seed": seed}}
    sf = ScoreFile(root, space, name, seed, data, version)
    sf.ensure_meta({"zcbench_version": zcbench.__version__, "citation": "test proxy"})
    for aid, v in scores.items():
        st = (status or {}).get(aid) or ("ok" if math.isfinite(v) else ("nan" if math.isnan(v) else "inf"))
        sf.append({"arch_id": aid, "key": None, "score": v, "status": st, "seconds": seconds, "pass_seconds": seconds,
                   "message": "", "time": "2026-01-01T00:00:00+00:00"})
    return sf


def _rescore_noisy_seed0(root, truth, rng_seed):
    """Replace the synthetic ``noisy`` proxy's seed-0 scores with new ones (a changed score file)."""
    for f in (root / "scores" / "gpt2" / "noisy").glob("seed0-*.jsonl"):
        f.unlink()
    rng = np.random.default_rng(rng_seed)
    _write_proxy(root, "gpt2", "noisy", 0, {a: float(-v + rng.normal(0, 5.0)) for a, v in truth.items()})


@pytest.fixture(scope="module")
def gpt2(data_dir):
    space = zcbench.create_space("gpt2", data_dir=str(data_dir))
    archs = space.stored()
    truth = pd.Series({a.id: space.truth(a) for a in archs})
    return space, archs, truth


@pytest.fixture(scope="module")
def results(tmp_path_factory, data_dir, gpt2):
    """params + params_nonembedding from the runner (all 200 archs, seeds 0 and 1) + synthetic proxies."""
    import torch

    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("results")
    for seed in (0, 1):
        run(RunConfig(space="gpt2", proxies=["params", "params_nonembedding"], seed=seed, data_dir=str(data_dir),
                      results_dir=str(root), bootstrap=0, progress=False))
    _, archs, truth = gpt2
    good = -truth  # oriented: higher = better
    z = ((good - good.mean()) / good.std()).to_dict()
    for seed in (0, 1, 2):
        rng = np.random.default_rng(100 + seed)
        _write_proxy(root, "gpt2", "noisy", seed, {a: float(np.exp(v + rng.normal(0, 0.6))) for a, v in z.items()})
        # NaN and inf for a few architectures, the rest informative
        bad = {a.id: (math.nan if i % 2 else math.inf) for i, a in enumerate(archs) if i % 25 == 0}
        _write_proxy(root, "gpt2", "holes", seed, {a: bad.get(a, v + rng.normal(0, 1.0)) for a, v in z.items()})
        _write_proxy(root, "gpt2", "flat", seed, {a: 3.0 for a in z}, seconds=0.001)
    return root


@pytest.fixture(scope="module")
def built(results, data_dir):
    return report.build(results, data_dir=str(data_dir), n_resamples=BOOT)


def row(data, space, proxy):
    r = data.table[(data.table["space"] == space) & (data.table["proxy"] == proxy)]
    assert len(r) == 1, f"{space}/{proxy} not in the table"
    return r.iloc[0]


def test_table_reproduces_lpzero_params_numbers(built):
    p, d = row(built, "gpt2", "params"), row(built, "gpt2", "params_nonembedding")
    assert (round(p["tau"], 3), round(p["rho"], 3)) == (0.582, 0.737)
    assert (round(d["tau"], 3), round(d["rho"], 3)) == (0.847, 0.967)
    for r in (p, d):
        assert r["n_archs"] == 200 and r["n_seeds"] == 2 and r["seeds"] == "0,1"
        assert r["rho_std"] == 0  # parameter counts do not depend on the seed
        assert r["rho_ci_lo"] < r["rho"] < r["rho_ci_hi"] and r["tau_ci_lo"] < r["tau"] < r["tau_ci_hi"]
        assert r["metric"] == "valid_ppl" and not r["higher_is_better"]
        assert r["n_records"] == 400 and r["n_nan"] == r["n_inf"] == 0
    assert p["is_baseline"] and not d["is_baseline"]
    # ranked by rho within the space
    g = built.table[built.table["space"] == "gpt2"]
    finite = g["rho"].dropna().to_numpy()
    assert np.all(np.diff(finite) <= 0) and list(g["rank"].dropna()) == sorted(g["rank"].dropna())


def test_reproduction_table_against_published(built):
    rep = report.reproduction_table(built.table)
    lp = rep[(rep["source"] == "lpzero_gpt2")].set_index("paper_name")
    assert len(lp) == 16  # every entry of LPZero Table 4, run or not
    assert lp.loc["#Params", "proxy"] == "params" and lp.loc["Decoder.Params", "proxy"] == "params_nonembedding"
    for name in ("#Params", "Decoder.Params"):
        assert abs(lp.loc[name, "d_rho"]) < 5e-4 and abs(lp.loc[name, "d_tau"]) < 5e-4
        assert bool(lp.loc[name, "in_ci"])
    assert math.isnan(lp.loc["SNIP", "rho_ours"])  # not run here: listed, empty
    assert lp.loc["Activation Distance", "proxy"] == "activation_distance"
    # FlexiBERT sources are left out when the results have no flexibert runs
    assert set(rep["space"]) == {"gpt2"}
    pub = report.load_published()
    assert {"lpzero_gpt2", "lpzero_flexibert", "etas_gpt2_wt103", "etas_gpt2_lm1b", "etas_autoformer_tiny",
            "zerolm_flexibert"} <= set(pub["source"])
    assert len(pub[pub["source"] == "lpzero_flexibert"]) == 15
    z = pub[pub["source"] == "zerolm_flexibert"].iloc[0]
    assert (z["tau_paper"], z["rho_paper"]) == (0.53, 0.76)


def test_correlations_are_recomputed_not_read_from_summaries(results, data_dir, tmp_path):
    import shutil

    copy = tmp_path / "r"
    shutil.copytree(results, copy)
    for s in (copy / "summaries").rglob("*.json"):
        doc = json.loads(s.read_text())
        doc["correlation"]["spearman_rho"] = 0.123
        s.write_text(json.dumps(doc))
    data = report.build(copy, spaces=["gpt2"], proxies=["params"], data_dir=str(data_dir), n_resamples=0)
    assert round(row(data, "gpt2", "params")["rho"], 3) == 0.737
    shutil.rmtree(copy / "summaries")
    data = report.build(copy, spaces=["gpt2"], proxies=["params"], data_dir=str(data_dir), n_resamples=0)
    assert round(row(data, "gpt2", "params")["rho"], 3) == 0.737


def test_seed_mean_std_from_per_seed_correlations(built, gpt2, results):
    _, _, truth = gpt2
    oriented = metrics.orient(truth, False)
    per = []
    for f in sorted((results / "scores" / "gpt2" / "noisy").glob("*.jsonl")):
        recs = [json.loads(x) for x in f.read_text().splitlines()]
        s = pd.Series({r["arch_id"]: float(r["score"]) for r in recs})
        per.append(metrics.correlate(s, oriented, n_resamples=0).spearman_rho)
    r = row(built, "gpt2", "noisy")
    assert r["n_seeds"] == 3 and r["seeds"] == "0,1,2"
    assert r["rho"] == pytest.approx(np.mean(per), abs=1e-12)
    assert r["rho_std"] == pytest.approx(np.std(per, ddof=1), abs=1e-12) and r["rho_std"] > 0
    ps = built.per_seed[(built.per_seed["proxy"] == "noisy")].sort_values("seed")
    assert list(ps["rho"]) == pytest.approx(per)
    assert r["rho_ci_lo"] < r["rho"] < r["rho_ci_hi"]
    assert 0 <= r["top10"] <= 1 and r["sec_per_arch"] == pytest.approx(0.5)


def test_single_seed_ci_is_metrics_bootstrap_ci(gpt2):
    _, _, truth = gpt2
    t = metrics.orient(truth, False).to_numpy()
    x = t + np.random.default_rng(0).normal(0, 5, len(t))
    for kind, fn in (("rho", lambda a, b: stats.spearmanr(a, b).statistic),
                     ("tau", lambda a, b: stats.kendalltau(a, b).statistic)):
        ours = report.seed_mean_ci(x[None, :], t, kind, 300, seed=7)
        ref = metrics.bootstrap_ci(x, t, fn, 300, seed=7)
        assert ours == pytest.approx(ref, abs=1e-12)


def test_paired_bootstrap_against_params(built, gpt2):
    d = row(built, "gpt2", "params_nonembedding")
    assert d["d_rho"] == pytest.approx(0.967 - 0.737, abs=2e-3)
    assert 0 < d["d_rho_ci_lo"] < d["d_rho"] < d["d_rho_ci_hi"]
    assert d["p_vs_base"] <= 2 / (BOOT + 1) + 1e-12  # no resample reverses the order
    assert d["n_paired"] == 200
    assert math.isnan(row(built, "gpt2", "params")["p_vs_base"])  # the baseline is not tested against itself
    # identical scores: difference exactly 0, p = 1
    _, _, truth = gpt2
    t = metrics.orient(truth, False).to_numpy()
    x = np.random.default_rng(1).normal(size=(2, len(t)))
    same = report.paired_bootstrap(x, x.copy(), t, 100, 0)
    assert same["d_rho"] == 0 and same["p_vs_base"] == 1.0 and same["d_rho_ci_lo"] == same["d_rho_ci_hi"] == 0


def test_nan_inf_counted_and_excluded(built):
    r = row(built, "gpt2", "holes")
    k = len(range(0, 200, 25))  # 8 architectures per seed
    assert r["n_nan"] == 3 * (k // 2) and r["n_inf"] == 3 * (k - k // 2)
    assert r["n_archs"] == 200 - k and r["n_common"] == 200 - k and r["n_records"] == 600
    assert any(n.startswith("gpt2/holes: NaN/inf scores excluded") and f"{k} of 200" in n for n in built.notes)
    assert math.isfinite(r["rho"]) and r["d_rho"] == r["d_rho"]


def test_constant_proxy_flagged_not_ranked(built):
    r = row(built, "gpt2", "flat")
    assert bool(r["constant"]) and math.isnan(r["rho"]) and math.isnan(r["rank"]) and math.isnan(r["d_rho"])
    assert built.table.iloc[-1]["proxy"] == "flat"  # unranked rows last
    assert any("gpt2/flat: constant scores" in n for n in built.notes)
    disp = report.display_table(built.table)
    assert (disp[disp["Proxy"] == "flat"].iloc[0, 3]) == "constant"


def test_outputs_md_tex_html_csv_and_figures(results, data_dir, tmp_path):
    out = tmp_path / "rep"
    search = results / "search"
    search.mkdir(exist_ok=True)
    pd.DataFrame([{"space": "gpt2", "method": m, "seed": s, "n_evaluated": n, "best_truth": 60 - n * (1 + s) / 10,
                   "metric": "valid_ppl"} for m in ("random", "evolution") for s in (0, 1) for n in range(1, 21)]
                 ).to_csv(search / "test.csv", index=False)
    (search / "test.json").write_text(json.dumps({"space": "gpt2", "method": "json-method", "seed": 0, "records": [
        {"n_evaluated": 1, "best_truth": 50.0}, {"n_evaluated": 5, "best_truth": 40.0}]}))
    rc = report.main_report(["--results-dir", str(results), "--out", str(out), "--data-dir", str(data_dir),
                             "--bootstrap", "50", "--proxy", "params_nonembedding,noisy,flat"])
    assert rc == 0
    for name in ("leaderboard", "reproduction"):
        for ext in ("md", "tex", "html", "csv"):
            assert (out / f"{name}.{ext}").stat().st_size > 200, f"{name}.{ext}"
    md = (out / "leaderboard.md").read_text()
    assert md.index("| params_nonembedding |") < md.index("| params (baseline) |") < md.index("| flat |")
    tex = (out / "leaderboard.tex").read_text()
    assert "\\toprule" in tex and "\\midrule" in tex and "\\bottomrule" in tex and "$\\rho$" in tex
    assert "params\\_nonembedding" in tex
    csv = pd.read_csv(out / "leaderboard.csv")
    assert set(csv["proxy"]) == {"params", "params_nonembedding", "noisy", "flat"}  # the baseline is kept
    assert {"rho", "rho_std", "rho_ci_lo", "tau", "d_rho", "p_vs_base", "sec_per_arch", "n_nan"} <= set(csv.columns)
    rep = (out / "reproduction.md").read_text()
    assert "| #Params | params | Spearman | 0.582 | 0.582 ± 0.000 |" in rep
    assert "<table" in (out / "leaderboard.html").read_text()
    figs = out / "figures" / "gpt2"
    for stem in ("bar_rho", "heatmap", "pareto", "search", "proxies/noisy", "proxies/params"):
        for ext in ("png", "pdf"):
            p = figs / f"{stem}.{ext}"
            assert p.stat().st_size > 5000, p
        assert (figs / f"{stem}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (figs / "proxies" / "flat.png").exists()  # a constant proxy still shows its (flat) scatter
    assert (figs / "proxies" / "params_nonembedding.pdf").read_bytes()[:5] == b"%PDF-"


def test_search_results_loaded_from_csv_and_json(results, tmp_path):
    d = tmp_path / "s"
    (d / "search").mkdir(parents=True)
    (d / "search" / "a.csv").write_text("space,method,seed,n_evaluated,best_truth\ngpt2,random,0,1,50\n"
                                        "gpt2,random,0,2,45\n")
    (d / "search" / "b.json").write_text(json.dumps([{"space": "gpt2", "method": "evo", "seed": 1,
                                                      "n_evaluated": 3, "best_truth": 40}]))
    (d / "search" / "bad.csv").write_text("space,seed\ngpt2,0\n")
    with pytest.warns(UserWarning, match="lack column"):
        s = report.load_search(d)
    assert len(s) == 3 and set(s["method"]) == {"random", "evo"} and s["best_truth"].dtype == float


def test_configurations_newest_version_wins_or_all_listed(tmp_path, gpt2, data_dir):
    _, archs, truth = gpt2
    ids = [a.id for a in archs[:40]]
    for seed in (0, 1):
        _write_proxy(tmp_path, "gpt2", "px", seed, {a: float(truth[a]) for a in ids}, version="1")
    _write_proxy(tmp_path, "gpt2", "px", 0, {a: -float(truth[a]) for a in ids}, version="2")
    data = report.build(tmp_path, data_dir=str(data_dir), n_resamples=0)
    r = row(data, "gpt2", "px")
    assert r["proxy_version"] == "2" and r["rho"] == pytest.approx(1.0) and r["n_seeds"] == 1
    assert any("px: configuration v1-" in n for n in data.notes)
    data = report.build(tmp_path, data_dir=str(data_dir), n_resamples=0, all_configs=True)
    labels = sorted(data.table["proxy"])
    assert len(labels) == 2 and all(x.startswith("px@v") for x in labels)
    assert sorted(data.table["rho"].round(6)) == [-1.0, 1.0]


def test_several_spaces_and_space_filter(tmp_path, data_dir, gpt2):
    flex = zcbench.create_space("flexibert", data_dir=str(data_dir))
    ft = {a.id: flex.truth(a) for a in flex.stored()}
    rng = np.random.default_rng(3)
    _write_proxy(tmp_path, "flexibert", "noisy", 0, {a: v + rng.normal(0, 5) for a, v in ft.items()})
    _, archs, truth = gpt2
    _write_proxy(tmp_path, "gpt2", "noisy", 0, {a.id: -float(truth[a.id]) for a in archs[:50]})
    data = report.build(tmp_path, data_dir=str(data_dir), n_resamples=0)
    assert list(dict.fromkeys(data.table["space"])) == ["flexibert", "gpt2"]
    f = row(data, "flexibert", "noisy")
    assert f["metric"] == "glue" and f["higher_is_better"] and f["n_archs"] == len(ft) and 0.3 < f["rho"] < 1
    only = report.build(tmp_path, spaces=["gpt2"], data_dir=str(data_dir), n_resamples=0)
    assert set(only.table["space"]) == {"gpt2"}
    assert data.spaces["gpt2"].ceiling()["rho"] > 0.99  # valid vs test perplexity of the same runs


def test_cli_errors_are_one_line(tmp_path, capsys):
    assert report.main_report(["--results-dir", str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "no scores under" in err
    (tmp_path / "scores").mkdir()
    assert report.main_report(["--results-dir", str(tmp_path), "--formats", "md,docx"]) == 2
    assert "unknown table format(s) docx" in capsys.readouterr().err


def test_main_report_via_python_c(results, data_dir, tmp_path):
    out = tmp_path / "cli"
    code = (f"import sys; from zcbench.report import main_report; sys.exit(main_report(['--results-dir', "
            f"{str(results)!r}, '--out', {str(out)!r}, '--figures', '', '--bootstrap', '0', '--space', 'gpt2']))")
    env = dict(os.environ, PYTHONPATH=str(REPO), ZCBENCH_DATA=str(data_dir))
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, env=env,
                       timeout=300)
    assert p.returncode == 0, p.stderr[-2000:]
    assert "gpt2: 5 proxies; best params_nonembedding (ρ=0.967)" in p.stdout
    assert (out / "leaderboard.csv").exists() and not (out / "figures").exists()


def test_like_for_like_statistics_match_scipy_and_exclude_nonfinite():
    rng = np.random.default_rng(3)
    t = rng.normal(size=60)
    x = np.vstack([t + rng.normal(scale=s, size=60) for s in (0.5, 1.0, 2.0)])
    x[1, 7] = np.nan  # excluded from every seed (same records for all), counted
    res = report.like_for_like(x, t, "pearson", n_resamples=200, seed=0)
    keep = np.ones(60, bool)
    keep[7] = False
    r = [stats.pearsonr(xi[keep], t[keep]).statistic for xi in x]
    k = [stats.kendalltau(xi[keep], t[keep]).statistic for xi in x]
    assert res["n"] == 59 and res["n_excluded"] == 1
    assert res["rho"] == pytest.approx(np.mean(r)) and res["rho_std"] == pytest.approx(np.std(r, ddof=1))
    assert res["tau"] == pytest.approx(np.mean(k))
    assert res["rho_ci_lo"] < res["rho"] < res["rho_ci_hi"] and res["tau_ci_lo"] < res["tau"] < res["tau_ci_hi"]
    sp = report.like_for_like(x[:1], t, "spearman", n_resamples=0)
    assert sp["n"] == 60 and sp["rho"] == pytest.approx(stats.spearmanr(x[0], t).statistic)  # row 0 has no NaN
    assert math.isnan(sp["rho_std"]) and math.isnan(sp["rho_ci_lo"])
    with pytest.raises(ValueError, match="valid: spearman, pearson"):
        report.like_for_like(x, t, "kendall")


def test_flexibert_like_for_like_reproduces_lpzero_params_exactly(data_dir, tmp_path):
    """LPZero's Table 3 "rho" is Pearson r over the 500 records (eval_rank_bert.py): with that
    statistic our #Params gives the published pair 0.454 / 0.590; Spearman over the 491 distinct
    networks would give 0.652."""
    space = zcbench.create_space("flexibert", data_dir=str(data_dir))
    recs = space.record_truths()
    assert len(recs) == 500 and len({a for a, _ in recs}) == 491 == len(space.stored())
    run(RunConfig(space="flexibert", proxies=["params"], seed=0, data_dir=str(data_dir), results_dir=str(tmp_path),
                  bootstrap=0, progress=False))
    built = report.build(tmp_path, data_dir=data_dir, n_resamples=BOOT)
    rep = report.reproduction_table(built.table, data=built).set_index("paper_name")
    row = rep.loc["#Params"]
    assert row["statistic"] == "Pearson r, per record" and int(row["n_ours"]) == 500
    assert round(row["tau_ours"], 3) == 0.454 and round(row["rho_ours"], 3) == 0.590
    assert round(row["rho_spearman_ours"], 3) == 0.652  # the standard table's number, kept alongside
    assert bool(row["in_ci"])
    plain = report.reproduction_table(built.table).set_index("paper_name")  # without data: the standard numbers
    assert round(plain.loc["#Params", "rho_ours"], 3) == 0.652
    # the like-for-like bootstrap is cached by its inputs: a second table (the leaderboard builds it twice) and a
    # build without any cache give the same frame
    assert list((tmp_path / "cache" / "report").glob("*.json"))
    again = report.reproduction_table(built.table, data=built).set_index("paper_name")
    fresh_data = report.build(tmp_path, data_dir=data_dir, n_resamples=BOOT, cache=False)
    fresh = report.reproduction_table(fresh_data.table, data=fresh_data).set_index("paper_name")
    pd.testing.assert_frame_equal(again, rep)
    pd.testing.assert_frame_equal(fresh, rep)


def test_reproduction_negated_entry_flips_sign_and_interval():
    """LPZero correlated -GraSP on GPT-2 (eval_rank_gpt2.py); published.yaml marks it and the row shows -grasp."""
    table = pd.DataFrame([{"space": "gpt2", "proxy": "grasp", "tau": -0.5, "tau_std": 0.01, "rho": -0.7,
                           "rho_std": 0.02, "rho_ci_lo": -0.95, "rho_ci_hi": -0.6, "tau_ci_lo": -0.6,
                           "tau_ci_hi": -0.4, "n_archs": 200, "n_seeds": 3}])
    rep = report.reproduction_table(table).set_index("paper_name")
    g = rep.loc["GraSP"]
    assert g["proxy"] == "-grasp" and g["rho_ours"] == 0.7 and g["tau_ours"] == 0.5
    assert (g["rho_ci_lo"], g["rho_ci_hi"]) == (0.6, 0.95) and bool(g["in_ci"])  # 0.922 inside [0.6, 0.95]
    assert g["d_rho"] == pytest.approx(0.7 - 0.922)
    assert rep.loc["SNIP", "proxy"] == "snip"  # other rows untouched


def test_record_truths_default_is_one_record_per_stored_arch(gpt2):
    space, archs, truth = gpt2
    recs = space.record_truths()
    assert len(recs) == len(archs) == 200
    assert dict(recs) == {a: float(v) for a, v in truth.items()}


def test_cached_rows_equal_fresh_rows(results, built, data_dir, gpt2, tmp_path):
    """The content-keyed row cache (zcbench/report/cache.py): a warm build is the fresh table;
    a changed score file recomputes exactly its own row."""
    import shutil

    copy = tmp_path / "results"
    shutil.copytree(results, copy)
    cold = report.build(copy, data_dir=str(data_dir), n_resamples=BOOT)  # the copy carries the cache of `built`
    warm = report.build(copy, data_dir=str(data_dir), n_resamples=BOOT)
    assert warm.cache_stats == {"hits": len(warm.table), "misses": 0}
    fresh = report.build(copy, data_dir=str(data_dir), n_resamples=BOOT, cache=False)
    assert fresh.cache_stats == {"hits": 0, "misses": 0}
    pd.testing.assert_frame_equal(cold.table, fresh.table)
    pd.testing.assert_frame_equal(warm.table, fresh.table)
    # new scores for one proxy and seed: only that row is recomputed, and it matches a fresh build
    _rescore_noisy_seed0(copy, gpt2[2], rng_seed=7)
    again = report.build(copy, data_dir=str(data_dir), n_resamples=BOOT)
    assert again.cache_stats == {"hits": len(again.table) - 1, "misses": 1}
    fresh = report.build(copy, data_dir=str(data_dir), n_resamples=BOOT, cache=False)
    pd.testing.assert_frame_equal(again.table, fresh.table)
    assert row(again, "gpt2", "noisy")["rho"] != row(warm, "gpt2", "noisy")["rho"]


def test_space_page_states_the_minibatch_protocol_read_from_the_runs(built):
    """issue 18: the leaderboard says at what minibatch its rows were scored (read from each run's stored
    configuration), beside the space's default (the papers' setting, conf/space/<name>.yaml)."""
    from zcbench.leaderboard import minibatch_protocol

    rows = built.table[built.table["space"] == "gpt2"]
    line = minibatch_protocol(rows, "gpt2")
    n_synthetic = int(rows["proxy"].isin(["noisy", "holes", "flat"]).sum())
    assert n_synthetic == 3
    assert f"4 × 32: {n_synthetic} proxies" in line  # _write_proxy's batch 4 x 32
    assert "data-free: 2 proxies" in line  # params, params_nonembedding
    assert "conf/space/gpt2.yaml: 16 × the table's tgt_len" in line  # batch_size 16, seq_len null


def test_figures_are_redrawn_only_when_their_data_changed(results, data_dir, gpt2, tmp_path):
    """issue 18 (instant reports): a figure whose rows and drawing code are unchanged is copied from
    ``<results_dir>/cache/figures`` (same bytes); changed scores redraw the figures drawn from them
    and nothing else; ``cache=False`` draws everything."""
    import shutil

    copy = tmp_path / "results"
    shutil.copytree(results, copy)
    data = report.build(copy, data_dir=str(data_dir), n_resamples=BOOT)
    first = report.write_figures(data, tmp_path / "f1", formats=("png",))
    n = data.cache_stats["figures"]["misses"]
    assert first and data.cache_stats["figures"]["hits"] == 0 and n >= len(data.table)
    data = report.build(copy, data_dir=str(data_dir), n_resamples=BOOT)
    second = report.write_figures(data, tmp_path / "f2", formats=("png",))
    assert data.cache_stats["figures"] == {"hits": n, "misses": 0}
    rel = sorted(p.relative_to(tmp_path / "f1") for p in first)
    assert rel == sorted(p.relative_to(tmp_path / "f2") for p in second)
    assert all((tmp_path / "f1" / r).read_bytes() == (tmp_path / "f2" / r).read_bytes() for r in rel)
    # new scores for one proxy: its scatter plot and the space-level figures are redrawn, the others' not
    _rescore_noisy_seed0(copy, gpt2[2], rng_seed=11)
    data = report.build(copy, data_dir=str(data_dir), n_resamples=BOOT)
    third = report.write_figures(data, tmp_path / "f3", formats=("png",))
    stats_ = data.cache_stats["figures"]
    assert 1 <= stats_["misses"] < n and stats_["hits"] + stats_["misses"] == n
    noisy = Path("gpt2") / "proxies" / "noisy.png"
    assert (tmp_path / "f3" / noisy).read_bytes() != (tmp_path / "f1" / noisy).read_bytes()
    flat = Path("gpt2") / "proxies" / "params.png"
    assert (tmp_path / "f3" / flat).read_bytes() == (tmp_path / "f1" / flat).read_bytes()
    assert sorted(p.relative_to(tmp_path / "f3") for p in third) == rel
    fresh = report.build(copy, data_dir=str(data_dir), n_resamples=BOOT, cache=False)
    report.write_figures(fresh, tmp_path / "f4", formats=("png",))
    assert fresh.cache_stats["figures"] == {"hits": 0, "misses": 0}  # no cache: drawn, not counted


def test_an_up_to_date_report_is_not_rebuilt(results, data_dir, gpt2, tmp_path, capsys):
    """issue 18 (second build): the output folder records the fingerprint of the inputs it was built from
    (options, code, results, data); the same command on the same inputs returns at once, a changed score
    file or --force rebuilds, an option changes the fingerprint."""
    import shutil

    from zcbench.report.cache import STAMP

    copy = tmp_path / "results"
    shutil.copytree(results, copy)
    out = tmp_path / "rep"
    argv = ["--results-dir", str(copy), "--data-dir", str(data_dir), "--bootstrap", "20", "--out", str(out),
            "--figures", "png", "--no-proxy-figures"]
    assert report.main_report(argv) == 0 and "wrote" in capsys.readouterr().out
    stamp = (out / STAMP).read_text()
    md = out / "leaderboard.md"
    before = md.stat().st_mtime_ns
    assert report.main_report(argv) == 0 and "up to date" in capsys.readouterr().out
    assert md.stat().st_mtime_ns == before
    assert report.main_report(argv + ["--force"]) == 0 and "wrote" in capsys.readouterr().out
    assert md.stat().st_mtime_ns != before and (out / STAMP).read_text() == stamp
    assert report.main_report(list(argv)) == 0 and "up to date" in capsys.readouterr().out
    f = next((copy / "scores" / "gpt2" / "noisy").glob("seed0-*.jsonl"))
    f.write_text(f.read_text().replace('"score": ', '"score": 1', 1))  # one score changes
    assert report.main_report(argv) == 0 and "wrote" in capsys.readouterr().out
    assert (out / STAMP).read_text() != stamp
    assert report.main_report([*argv[:5], "30", *argv[6:]]) == 0 and "wrote" in capsys.readouterr().out


def test_an_up_to_date_site_is_not_rebuilt(results, data_dir, tmp_path, capsys):
    """The leaderboard's stamp travels inside the site it describes (written before the atomic swap)."""
    import shutil

    from zcbench.leaderboard import main_leaderboard
    from zcbench.report.cache import STAMP

    copy = tmp_path / "results"
    shutil.copytree(results, copy)
    site = tmp_path / "site"
    argv = ["--results-dir", str(copy), "--data-dir", str(data_dir), "--bootstrap", "20", "--out", str(site),
            "--no-figures"]
    assert main_leaderboard(argv) == 0 and "wrote the leaderboard" in capsys.readouterr().out
    index = (site / "index.html").stat().st_mtime_ns
    assert (site / STAMP).is_file()
    assert main_leaderboard(argv) == 0 and "up to date" in capsys.readouterr().out
    assert (site / "index.html").stat().st_mtime_ns == index
    (copy / "submissions").mkdir()  # a new (empty) submissions folder is a changed input
    (copy / "submissions" / "README").write_text("none yet\n")
    assert main_leaderboard(argv) == 0 and "wrote the leaderboard" in capsys.readouterr().out
    assert main_leaderboard(argv + ["--no-cache"]) == 0 and "wrote the leaderboard" in capsys.readouterr().out
