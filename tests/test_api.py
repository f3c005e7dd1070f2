"""zcbench.evaluate / zcbench.score (the Python entry points) and the user results folder of `run`."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from scipy import stats
from torch import nn

import zcbench
from zcbench.proxy import Proxy
from zcbench.runner import ConfigError

REPO = Path(__file__).resolve().parents[1]


def test_evaluate_returns_scores_truth_and_the_printed_correlations(data_dir, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # in memory: nothing may be written anywhere, cwd included
    df = zcbench.evaluate("gpt2", ["params_nonembedding", "snip"], n_archs=20, batch_size=2, seq_len=32)
    assert len(df) == 20 and df.index.name == "arch_id"
    assert {"key", "params_nonembedding", "snip", "valid_ppl"} <= set(df.columns)
    assert df["key"].str.match(r"^config_\d+_j\d+$").all()
    assert df[["params_nonembedding", "snip"]].notna().all().all()
    corr = df.attrs["correlations"]
    assert df.attrs["metric"] == "valid_ppl" and df.attrs["higher_is_better"] is False
    for name in ("params_nonembedding", "snip"):
        tau = stats.kendalltau(df[name], -df["valid_ppl"]).statistic
        rho = stats.spearmanr(df[name], -df["valid_ppl"]).statistic
        assert corr[name]["n"] == 20
        assert corr[name]["kendall_tau"] == pytest.approx(tau, abs=1e-12)
        assert corr[name]["spearman_rho"] == pytest.approx(rho, abs=1e-12)
    assert df.attrs["status_counts"]["snip"] == {"ok": 20}
    assert df.attrs["results_dir"] is None and not any(tmp_path.iterdir())
    # upstream parameter counts are what params_nonembedding reproduces on the stored networks
    space = zcbench.create_space("gpt2")
    for arch_id, row in df.head(3).iterrows():
        assert row["params_nonembedding"] == space.by_id(arch_id).meta["params"]["nonembedding"]


def test_evaluate_takes_unregistered_function_and_class_proxies(data_dir):
    def abs_weight_sum(ctx):
        return float(sum(p.detach().abs().sum() for p in ctx.model.parameters()))

    abs_weight_sum.needs = {"weights"}

    class DepthProxy(Proxy):
        name = "depth"
        needs = frozenset({"arch"})

        def score(self, ctx):
            return float(ctx.space.summary(ctx.arch)["n_layer"])

    assert "abs_weight_sum" not in zcbench.list_proxies()
    df = zcbench.evaluate("gpt2", [abs_weight_sum, DepthProxy], n_archs=3, bootstrap=0)
    space = zcbench.create_space("gpt2")
    for arch_id, row in df.iterrows():
        arch = space.by_id(arch_id)
        torch.manual_seed(0)  # the engine builds every model under the run seed
        model = space.build(arch)
        assert row["abs_weight_sum"] == pytest.approx(sum(float(p.detach().abs().sum()) for p in model.parameters()), rel=1e-6)
        assert row["depth"] == space.summary(arch)["n_layer"]


def test_evaluate_stores_and_resumes_only_when_given_a_results_dir(data_dir, tmp_path, capfd):
    df1 = zcbench.evaluate("gpt2", "params", n_archs=4, results_dir=tmp_path, bootstrap=0)
    files = sorted((tmp_path / "scores" / "gpt2" / "params").glob("*.jsonl"))
    assert len(files) == 1 and len(files[0].read_text().splitlines()) == 4
    capfd.readouterr()
    df2 = zcbench.evaluate("gpt2", "params", n_archs=4, results_dir=tmp_path, bootstrap=0)
    assert "4 of 4 architectures already scored" in capfd.readouterr().err
    pd.testing.assert_frame_equal(df1, df2)


def test_evaluate_hvp_chunk_gives_the_same_grasp_and_says_so_in_the_records(data_dir, tmp_path):
    whole = zcbench.evaluate("gpt2", ["grasp", "snip"], n_archs=2, batch_size=4, seq_len=16, bootstrap=0)
    df = zcbench.evaluate("gpt2", ["grasp", "snip"], n_archs=2, batch_size=4, seq_len=16, bootstrap=0,
                          hvp_chunk=1, results_dir=tmp_path)
    np.testing.assert_allclose(df["grasp"], whole["grasp"], rtol=1e-5)
    assert df["snip"].equals(whole["snip"])
    recs = {p: [json.loads(x) for f in (tmp_path / "scores" / "gpt2" / p).glob("*.jsonl") for x in f.read_text().splitlines()]
            for p in ("grasp", "snip")}
    assert [r.get("hvp_chunk") for r in recs["grasp"]] == [1, 1]  # provenance of how H g was computed
    assert all("hvp_chunk" not in r for r in recs["snip"])
    with pytest.raises(ConfigError, match="hvp_chunk must be a positive integer"):
        zcbench.evaluate("gpt2", "grasp", n_archs=1, hvp_chunk=0)


def test_evaluate_rejects_unknown_options_naming_the_valid_ones(data_dir):
    with pytest.raises(ConfigError, match="unknown option.*batchsize.*valid: batch_size"):
        zcbench.evaluate("gpt2", "params", n_archs=2, batchsize=4)


# ---- zcbench.score on models built offline from configs (no hub download) -------------------
transformers = pytest.importorskip("transformers")  # the [hf] extra; the [test] extra installs it


def _maps(ctx):
    """Checks the automatically found taps: attention rows sum to 1, head outputs are (B, H, T, Dh)."""
    maps = ctx.tap_records("attn_probs")
    heads = ctx.tap_records("head_out")
    assert len(maps) == len(heads) == 2 and [r.layer for r in maps] == [0, 1]
    B, T = ctx.batch.inputs.shape
    for r in maps:
        assert r.activation.shape == (B, 4, T, T)
        assert torch.allclose(r.activation.sum(-1), torch.ones(B, 4, T), atol=1e-5)
    for r in heads:
        assert r.activation.shape == (B, 4, T, 8) and r.grad is not None
    assert ctx.tap_records("ffn_act")[0].activation.shape == (B, T, 64)
    return 1.0


_maps.needs = {"forward", "backward"}
_maps.taps = {"attn_probs", "head_out", "ffn_act"}
_maps.tap_grads = {"head_out"}
PROXIES = ["snip", "grad_norm", "synflow", "nwot", "attention_confidence", "head_importance", "fisher",
           "jacob_cov", "params", "params_nonembedding", "sept", _maps]


def _hf(kind: str):
    torch.manual_seed(0)
    transformers.logging.set_verbosity_error()
    if kind == "gpt2":
        cfg = transformers.GPT2Config(n_layer=2, n_embd=32, n_head=4, n_inner=64, vocab_size=100, n_positions=64,
                                      bos_token_id=0, eos_token_id=0)
        return transformers.GPT2LMHeadModel(cfg)
    cfg = transformers.BertConfig(num_hidden_layers=2, hidden_size=32, num_attention_heads=4, intermediate_size=64,
                                  vocab_size=100, max_position_embeddings=64)
    return transformers.BertForMaskedLM(cfg)


@pytest.mark.parametrize("kind", ["gpt2", "bert"])
def test_score_hf_models_built_from_configs(kind):
    model = _hf(kind)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    x = torch.randint(0, 100, (4, 12), generator=torch.Generator().manual_seed(1))
    batch = x if kind == "gpt2" else {"input_ids": x, "labels": x}
    s = zcbench.score(model, batch, PROXIES)
    assert s.attrs["status"] == {name: "ok" for name in s.index}, s.attrs["message"]
    assert s.attrs["roles"]["roles"] == ({"embedding": 2, "output": 1, "block": 2, "attn": 2, "ffn": 2} if kind == "gpt2"
                                         else {"embedding": 1, "output": 1, "block": 2, "attn": 2, "ffn": 4})
    # the caller's model is untouched: same weights, no hooks, GPT-2's Conv1D layers still there
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert not any(m._forward_hooks or m._forward_pre_hooks for m in model.modules())
    assert s["params"] == sum(p.numel() for p in model.parameters())  # tied LM head counted once
    emb = sum(p.numel() for m in model.modules() if isinstance(m, nn.Embedding) for p in m.parameters())
    assert s["params_nonembedding"] < s["params"] - emb + 1
    # deterministic: the same call gives the same numbers
    assert zcbench.score(model, batch, ["snip", "synflow"]).equals(s[["snip", "synflow"]])
    # snip from the definition (|w * dL/dw| over the weight layers) on the model's own loss
    ref = model.__class__(model.config)
    ref.load_state_dict(model.state_dict())
    ref.eval()
    out = ref(input_ids=x, labels=x)
    lins = [m for m in ref.modules() if isinstance(m, nn.Linear) or type(m).__name__ == "Conv1D"]
    head = {id(m) for name in ("lm_head", "cls") if hasattr(ref, name) for m in getattr(ref, name).modules()}
    lins = [m for m in lins if id(m) not in head]  # snip leaves the output head out (include_output=False)
    grads = torch.autograd.grad(out.loss, [m.weight for m in lins], allow_unused=True)
    want = sum(float((m.weight.detach() * g).abs().sum()) for m, g in zip(lins, grads) if g is not None)
    assert s["snip"] == pytest.approx(want, rel=1e-4)


def test_score_hf_vit_built_from_a_config():
    torch.manual_seed(0)
    transformers.logging.set_verbosity_error()
    cfg = transformers.ViTConfig(image_size=32, patch_size=8, num_hidden_layers=2, hidden_size=32,
                                 num_attention_heads=4, intermediate_size=64, num_labels=10)
    model = transformers.ViTForImageClassification(cfg)
    batch = {"pixel_values": torch.randn(4, 3, 32, 32), "labels": torch.tensor([0, 1, 2, 3])}
    s = zcbench.score(model, batch, ["snip", "attention_confidence", "head_importance", "synflow", "params"])
    assert s.attrs["status"] == {name: "ok" for name in s.index}, s.attrs["message"]
    assert s.attrs["roles"]["taps"] == {"embedding": 1, "attn_probs": 2, "head_out": 2, "ffn_act": 2, "block_out": 2}
    assert s["params"] == sum(p.numel() for p in model.parameters())


def test_score_multihead_attention_model_and_the_na_rule():
    class Tiny(nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = nn.Embedding(50, 16)
            self.layers = nn.ModuleList(nn.ModuleDict({"attn": nn.MultiheadAttention(16, 2, batch_first=True),
                                                       "ff": nn.Linear(16, 16)}) for _ in range(2))
            self.head = nn.Linear(16, 50)

        def forward(self, x):
            h = self.emb(x)
            for blk in self.layers:
                a, w = blk["attn"](h, h, h, need_weights=False)
                assert w is None  # the caller's request is honoured while the engine taps the maps
                h = h + a
                h = h + blk["ff"](h).relu()
            return self.head(h)

    torch.manual_seed(0)
    x = torch.randint(0, 50, (3, 7))

    def rows(ctx):
        return float(sum(r.activation.sum() for r in ctx.tap_records("attn_probs")))

    rows.taps = {"attn_probs"}
    s = zcbench.score(Tiny(), x, ["snip", "nwot", "attention_confidence", rows],
                      loss=lambda out, y: nn.functional.cross_entropy(out.flatten(0, 1), x.flatten()))
    assert s.attrs["status"] == {"snip": "ok", "nwot": "ok", "attention_confidence": "n/a", "rows": "ok"}
    assert "head_out" in s.attrs["message"]["attention_confidence"]
    assert s["rows"] == pytest.approx(2 * 3 * 2 * 7)  # 2 layers x B x H x T rows, each summing to 1


def test_score_rejects_padded_batches_with_one_line():
    with pytest.raises(ConfigError, match="padded attention_mask"):
        zcbench.score(_hf("bert"), {"input_ids": torch.ones(2, 4, dtype=torch.long),
                                    "attention_mask": torch.tensor([[1, 1, 1, 0], [1, 1, 1, 1]])}, ["snip"])


# ---- the command line's results folder ---------------------------------------------------------
def _porcelain() -> set[str]:
    out = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=all"],
                         capture_output=True, text=True, check=True).stdout
    return set(out.splitlines())


@pytest.mark.skipif(not (REPO / ".git").exists(), reason="needs a git checkout")
def test_default_user_run_leaves_the_repository_clean(data_dir, tmp_path):
    env = dict(os.environ, HOME=str(tmp_path / "home"), ZCBENCH_HOME=str(tmp_path / "zchome"),
               ZCBENCH_DATA=str(data_dir))
    before = _porcelain()
    res = subprocess.run([sys.executable, "-m", "zcbench", "run", "proxy=params", "space=gpt2", "n_archs=5",
                          "bootstrap=0", "progress=false"], cwd=REPO, env=env, capture_output=True, text=True,
                         timeout=600)
    assert res.returncode == 0, res.stderr
    assert "gpt2 | params | seed 0 | n=5" in res.stdout
    assert "already scored" not in res.stderr  # computed in this run, never resumed from results/
    new = _porcelain() - before
    if before:  # a working tree others are editing: only what this run could have written counts
        new = {e for e in new if "/gpt2/params/" in e or "multirun" in e or "outputs/" in e}
    assert new == set()  # in CI's fresh clone `before` is empty and this is the whole `git status`
    stored = list((tmp_path / "zchome" / "results" / "scores" / "gpt2" / "params").glob("*.jsonl"))
    assert len(stored) == 1 and len(stored[0].read_text().splitlines()) == 5
    # zcbench.evaluate with the same settings is the same run: same run key, same scores
    df = zcbench.evaluate("gpt2", "params", n_archs=5, bootstrap=0)
    assert stored[0].name == df.attrs["run_keys"]["params"] + ".jsonl"
    import json

    cli = {r["arch_id"]: r["score"] for r in map(json.loads, stored[0].read_text().splitlines())}
    assert cli == df["params"].to_dict()


def test_run_help_lists_every_key_with_one_line():
    res = subprocess.run([sys.executable, "-m", "zcbench", "run", "--help"], capture_output=True, text=True,
                         timeout=120)
    assert res.returncode == 0
    for key in ("space=", "proxy=", "seed=0", "n_archs=null", "results_dir=null", "official=false", "device=cpu"):
        assert any(line.strip().startswith(key) for line in res.stdout.splitlines()), key
    assert "hydra" not in res.stdout.lower().split("usage")[-1].split("keys")[1]  # not Hydra's raw config dump


def test_official_and_results_dir_together_are_refused(tmp_path):
    res = subprocess.run([sys.executable, "-m", "zcbench", "run", "official=true", f"results_dir={tmp_path}"],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 2 and res.stderr.count("\n") == 1 and "official=true" in res.stderr
