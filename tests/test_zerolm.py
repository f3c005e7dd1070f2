"""ZeroLM: the capacity formula, the alpha strategies on real GPT-2 data, the registered proxy."""
from __future__ import annotations

import json
import math
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from zcbench.engine import Context, score_arch
from zcbench.introspect import tag
from zcbench.registry import create_space, get_proxy

REPO = Path(__file__).resolve().parents[1]


def _ctx(model):
    return Context(space=None, arch=None, seed=0, batch_size=1, seq_len=1, model=model)


class Tiny(nn.Module):
    """Hand-made weights with known singular values, tagged attn / ffn / embedding."""

    def __init__(self):
        super().__init__()
        self.emb = tag(nn.Embedding(10, 2), "embedding")  # never counted
        self.attn = tag(nn.Module(), "attn")
        self.attn.q = nn.Linear(2, 2, bias=False)  # diag(3, 4): sigma = 3, 4
        self.attn.o = nn.Linear(3, 2, bias=False)  # 2x3 with sigma = 5, 1
        self.ffn = tag(nn.Module(), "ffn")
        self.ffn.up = nn.Linear(2, 4, bias=True)  # 4x2 with sigma = 2, 2 (2 * isometry)
        self.ffn.conv = nn.Conv1d(1, 2, 2, bias=False)  # (2, 1, 2) -> 2x2 [[1, 0], [0, 6]]: sigma = 6, 1
        with torch.no_grad():
            self.attn.q.weight.copy_(torch.diag(torch.tensor([3.0, 4.0])))
            self.attn.o.weight.copy_(torch.tensor([[5.0, 0.0, 0.0], [0.0, 1.0, 0.0]]))
            self.ffn.up.weight.copy_(2.0 * torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0], [0.0, 0.0]]))
            self.ffn.conv.weight.copy_(torch.tensor([[[1.0, 0.0]], [[0.0, 6.0]]]))


@pytest.mark.parametrize("exact_svd", [False, True])
def test_capacity_formula_on_hand_made_matrices(exact_svd):
    ctx = _ctx(Tiny())
    # mean_sq: sum sigma^2 / min(m, n)
    c_attn = (9 + 16) / 2 + (25 + 1) / 2
    c_ffn = (4 + 4) / 2 + (36 + 1) / 2
    for alpha in (0.0, 0.3, 1.0):
        p = get_proxy("zerolm", alpha=alpha, exact_svd=exact_svd)
        assert p.score(ctx) == pytest.approx(alpha * c_attn + (1 - alpha) * c_ffn, rel=1e-12)
    nuc = get_proxy("zerolm", alpha=0.3, capacity="nuclear")
    assert nuc.score(_ctx(Tiny())) == pytest.approx(0.3 * (3 + 4 + 5 + 1) + 0.7 * (2 + 2 + 6 + 1), rel=1e-12)
    spec = get_proxy("zerolm", alpha=0.5, capacity="spectral")
    assert spec.score(_ctx(Tiny())) == pytest.approx(0.5 * (4 + 5) + 0.5 * (2 + 6), rel=1e-12)
    with pytest.raises(ValueError, match="alpha"):
        get_proxy("zerolm", alpha=1.5)


def test_frobenius_identity_and_proxy_on_a_real_gpt2_model(data_dir):
    space = create_space("gpt2", data_dir=data_dir)
    arch = space.by_id("config_0_j0")
    res = score_arch(space, arch, [get_proxy("zerolm", alpha=0.3)], seed=0)
    assert res["zerolm"].status == "ok"
    torch.manual_seed(0)
    model = space.build(arch)
    ctx = _ctx(model)
    from zcbench.proxies.zerolm import module_capacities

    fro = module_capacities(ctx, "mean_sq", exact_svd=False)
    svd = module_capacities(ctx, "mean_sq", exact_svd=True)
    assert fro == pytest.approx(svd, rel=1e-9)
    assert res["zerolm"].value == pytest.approx(0.3 * fro[0] + 0.7 * fro[1], rel=1e-12)
    # only attention / FFN weight layers count: 4 per block
    assert len(ctx.weight_layers(roles=("attn", "ffn"))) == 4 * arch.genes["n_layer"]


def test_alpha_fitting_beats_a_bad_alpha_on_held_out_gpt2(data_dir):
    """Benchmark sampling on real data: alpha fitted on k=10 labelled nets beats alpha=0 held out."""
    from zcbench.search.zerolm_alpha import combine, components, fit_alpha, heuristic_alpha, rho_tau

    space = create_space("gpt2", data_dir=data_dir)
    archs = random.Random(1).sample(space.stored(), 40)
    df = components(space, seed=0, archs=archs)
    assert len(df) == 40 and (df[["attn", "ffn"]] > 0).all().all()
    wins = 0
    for split in range(3):
        train = random.Random(split).sample(list(df.index), 10)
        test = [i for i in df.index if i not in train]
        a = fit_alpha(df.loc[train])
        good = rho_tau(combine(df.loc[test], a), df.loc[test, "truth"].to_numpy())[0]
        bad = rho_tau(combine(df.loc[test], 0.0), df.loc[test, "truth"].to_numpy())[0]
        wins += good > bad + 0.05
    assert wins >= 2
    # the heuristic needs no ground truth: alpha = r_a / (r_a + r_f), r_x = max(0, Spearman(C_x, #params)),
    # recomputed here from ranks by hand (Pearson of the average ranks)
    a_h = heuristic_alpha(df.drop(columns=["truth"]))

    def spearman(x, y):
        rx, ry = (torch.tensor(v.rank().to_numpy(), dtype=torch.float64) for v in (x, y))
        rx, ry = rx - rx.mean(), ry - ry.mean()
        return float((rx * ry).sum() / torch.sqrt((rx * rx).sum() * (ry * ry).sum()))

    ra, rf = (max(0.0, spearman(df[c], df["n_params"])) for c in ("attn", "ffn"))
    assert ra + rf > 0 and a_h == pytest.approx(ra / (ra + rf), rel=1e-12)
    # the answer does not change when the ground truth is there (it is never read)
    assert heuristic_alpha(df) == a_h


def test_alpha_option_overridable_from_the_command_line(tmp_path, data_dir):
    env = dict(os.environ, PYTHONPATH=str(REPO), ZCBENCH_DATA=str(data_dir))
    out = subprocess.run([sys.executable, "-m", "zcbench", "run", "proxy=zerolm", "space=gpt2", "n_archs=2",
                          "proxy_options.zerolm.alpha=0.3", f"results_dir={tmp_path}", "bootstrap=0",
                          "progress=false"], capture_output=True, text=True, cwd=REPO, env=env, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    (meta,) = (tmp_path / "scores" / "gpt2" / "zerolm").glob("*.meta.json")
    assert json.loads(meta.read_text())["data"]["proxy_options"]["alpha"] == 0.3
    (scores,) = (tmp_path / "scores" / "gpt2" / "zerolm").glob("*.jsonl")
    recs = [json.loads(x) for x in scores.read_text().splitlines()]
    space = create_space("gpt2", data_dir=data_dir)
    from zcbench.search.zerolm_alpha import components

    df = components(space, seed=0, archs=[space.by_id(r["arch_id"]) for r in recs])
    for r in recs:
        row = df.loc[r["arch_id"]]
        assert r["score"] == pytest.approx(0.3 * row.attn + 0.7 * row.ffn, rel=1e-12)
        assert math.isfinite(r["score"]) and r["status"] == "ok"


def test_blocks_variants_ffn_only_attn_only_both(data_dir):
    """ZeroLM Fig. 5 ablations: blocks=attn -> C_attn, blocks=ffn -> C_ffn, named variants equal them."""
    ctx = _ctx(Tiny())
    c_attn = (9 + 16) / 2 + (25 + 1) / 2
    c_ffn = (4 + 4) / 2 + (36 + 1) / 2
    assert get_proxy("zerolm", blocks="attn").score(_ctx(Tiny())) == pytest.approx(c_attn, rel=1e-12)
    assert get_proxy("zerolm", blocks="ffn").score(_ctx(Tiny())) == pytest.approx(c_ffn, rel=1e-12)
    assert get_proxy("zerolm_attn").score(_ctx(Tiny())) == pytest.approx(c_attn, rel=1e-12)
    assert get_proxy("zerolm_ffn").score(ctx) == pytest.approx(c_ffn, rel=1e-12)
    assert get_proxy("zerolm_ffn", capacity="nuclear").score(_ctx(Tiny())) == pytest.approx(2 + 2 + 6 + 1, rel=1e-12)
    with pytest.raises(ValueError, match="valid: both, attn, ffn"):
        get_proxy("zerolm", blocks="norm")
    with pytest.raises(ValueError, match="unknown option"):
        get_proxy("zerolm_attn", alpha=0.3)
    # the default keeps the stored runs' identity; a variant is its own
    assert get_proxy("zerolm").identity_options == {"alpha": 0.5, "capacity": "mean_sq", "exact_svd": False}
    assert get_proxy("zerolm", blocks="ffn").identity_options["blocks"] == "ffn"
    # log complexity = sum log ||W||_F over attn/ffn matrices: log 5 + log sqrt 26 + log sqrt 8 + log sqrt 37
    from zcbench.proxies.zerolm import log_complexity

    want = math.log(5) + 0.5 * (math.log(26) + math.log(8) + math.log(37))
    assert log_complexity(_ctx(Tiny())) == pytest.approx(want, rel=1e-12)
    # on a real network through the engine: both = 0.5 attn + 0.5 ffn
    space = create_space("gpt2", data_dir=data_dir)
    arch = space.by_id("config_0_j0")
    res = score_arch(space, arch, [get_proxy("zerolm"), get_proxy("zerolm_attn"), get_proxy("zerolm_ffn")], seed=0)
    assert res["zerolm"].value == pytest.approx(0.5 * res["zerolm_attn"].value + 0.5 * res["zerolm_ffn"].value,
                                                rel=1e-12)


def test_ablation_table_reads_the_store(tmp_path, data_dir):
    """zerolm_ablation tabulates exactly the stored scores' correlations (recomputed here with scipy)."""
    from scipy.stats import kendalltau, spearmanr

    from zcbench.runner import RunConfig, run
    from zcbench.search.zerolm_ablation import ablation_table, write

    names = ["params", "zerolm", "zerolm_attn", "zerolm_ffn", "zerolm_logc"]
    run(RunConfig(space="gpt2", proxies=names, n_archs=12, results_dir=str(tmp_path), data_dir=str(data_dir),
                  bootstrap=0, progress=False))
    df = ablation_table(tmp_path, n_resamples=50)
    assert set(df["proxy"]) == set(names) and set(df["space"]) == {"gpt2"} and (df["n_archs"] == 12).all()
    space = create_space("gpt2", data_dir=data_dir)
    for name in names:
        (f,) = (tmp_path / "scores" / "gpt2" / name).glob("*.jsonl")
        recs = [json.loads(x) for x in f.read_text().splitlines()]
        s = [r["score"] for r in recs]
        ppl = [-space.truth(space.by_id(r["arch_id"])) for r in recs]
        row = df[df["proxy"] == name].iloc[0]
        assert row["rho"] == pytest.approx(spearmanr(s, ppl)[0], abs=1e-12)
        assert row["tau"] == pytest.approx(kendalltau(s, ppl)[0], abs=1e-12)
    text = write(df, tmp_path / "out", "cmd")
    assert "| gpt2 | 12 | " in text and "(1 seed)" in text and (tmp_path / "out" / "ablation.csv").exists()
