"""The WikiText-103 vs LM1B generalization view, computed from a store built here."""
from __future__ import annotations

import math

import pytest

from zcbench.generalization import agreement, generalization_table, markdown
from zcbench.runner import RunConfig, run


@pytest.fixture(scope="module")
def store(tmp_path_factory, data_dir):
    root = tmp_path_factory.mktemp("gen")
    out = {}
    for space in ("gpt2", "gpt2_lm1b"):
        rc = RunConfig(space=space, proxies=["params", "params_nonembedding"], seed=0, batch_size=4, seq_len=None,
                       data_dir=str(data_dir), results_dir=str(root), bootstrap=0, progress=False)
        out[space] = run(rc)
    # a proxy scored on a 20-architecture sample of LM1B only (a data-free one, to stay fast)
    rc = RunConfig(space="gpt2_lm1b", proxies=["sept"], seed=0, batch_size=4, seq_len=None, n_archs=20,
                   data_dir=str(data_dir), results_dir=str(root), bootstrap=0, progress=False)
    out["sept"] = run(rc)
    return root, out


def test_table_matches_the_runs(store, data_dir):
    root, out = store
    df = generalization_table(root, data_dir=str(data_dir)).set_index("proxy")
    for p in ("params", "params_nonembedding"):
        for sp in ("gpt2", "gpt2_lm1b"):
            assert df.loc[p, f"rho_{sp}"] == pytest.approx(out[sp][p]["correlation"]["spearman_rho"], abs=1e-12)
            assert df.loc[p, f"n_{sp}"] == 200 and df.loc[p, f"seeds_{sp}"] == 1
        assert df.loc[p, "d_rho"] == pytest.approx(df.loc[p, "rho_gpt2_lm1b"] - df.loc[p, "rho_gpt2"])
    assert round(df.loc["params_nonembedding", "rho_gpt2_lm1b"], 3) == 0.986
    assert round(df.loc["params", "rho_gpt2_lm1b"], 3) == 0.944
    # the baseline on the same architectures: for params that is all 200 -> the baseline's own rho
    assert df.loc["params", "base_rho_gpt2_lm1b"] == pytest.approx(df.loc["params_nonembedding", "rho_gpt2_lm1b"])
    assert not df["beats_base_gpt2_lm1b"].any()
    # a proxy scored on a sample is compared with the baseline on that sample, and kept with NaN for gpt2
    sept = df.loc["sept"]
    assert sept["n_gpt2_lm1b"] == 20 and math.isnan(sept["rho_gpt2"]) and sept["seeds_gpt2"] == 0
    assert sept["rho_gpt2_lm1b"] == pytest.approx(out["sept"]["sept"]["correlation"]["spearman_rho"])
    assert sept["base_rho_gpt2_lm1b"] != pytest.approx(df.loc["params_nonembedding", "rho_gpt2_lm1b"])
    assert sept["beats_base_gpt2_lm1b"] == (sept["rho_gpt2_lm1b"] > sept["base_rho_gpt2_lm1b"])
    a = agreement(df.reset_index())
    assert a["n_proxies"] == 2 and math.isnan(a["rho"])  # fewer than 3 proxies on both: no agreement claimed
    text = markdown(df.reset_index())
    row = next(line for line in text.splitlines() if line.startswith("| `params_nonembedding` |"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[1] == f"{df.loc['params_nonembedding', 'rho_gpt2']:.3f}" and cells[5] == "0.986"
    assert ("non-embedding parameters on LM1B (same architectures): " +
            ("`sept`" if sept["beats_base_gpt2_lm1b"] else "none")) in text


def test_leaderboard_section(store, data_dir):
    from zcbench.generalization import site_sections
    from zcbench.report.tables import build

    root, _ = store
    data = build(root, n_resamples=0, data_dir=str(data_dir), cache=False)
    (sec,) = site_sections(data)
    assert sec.page == "index" and sec.id == "generalization"
    df = generalization_table(root, data_dir=str(data_dir)).set_index("proxy")
    assert sec.html.count("<tr>") == 1 + len(df)  # header + one row per proxy
    assert f"<td>params</td><td>{df.loc['params', 'rho_gpt2']:.3f}</td>" in sec.html
    only_one = build(root, spaces=["gpt2_lm1b"], n_resamples=0, data_dir=str(data_dir), cache=False)
    assert site_sections(only_one) == []  # no view without both corpora
