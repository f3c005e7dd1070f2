"""ETAS's proxies: sept (separation-rank bound), ntkt (NTK trace), ntsr (= rankfuse:[ntkt,sept])."""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from zcbench.engine import score_arch
from zcbench.introspect import Tap, tag
from zcbench.registry import create_space, get_proxy
from zcbench.space import ModelOutput

REPO = Path(__file__).resolve().parents[1]


# ---- sept -----------------------------------------------------------------------
def test_sept_finite_for_huge_widths_depths_and_lengths():
    from zcbench.proxies.sept import log_rank_recursion, sept_bound

    for L, d, n in [(10_000, 1_000_000, 10**6), (5000, 64, 10**9), (3, 10**6, 2), (200, 1, 192)]:
        v = sept_bound(L, d, n)
        assert math.isfinite(v) and v > 0
    # the uncapped recursion overflows to +inf (never raises); the cap keeps the score finite
    assert log_rank_recursion([3] * 2000, 192) == math.inf
    assert math.isfinite(sept_bound(2000, 512, 192))


def test_sept_monotone_and_levine_regimes():
    from zcbench.proxies.sept import log_binom_plus, sept_bound

    for d in (64, 128, 512):
        vals = [sept_bound(L, d, 192) for L in range(1, 40)]
        assert all(b > a for a, b in zip(vals, vals[1:]))  # strictly increasing in depth
    for L in (1, 4, 16):
        vals = [sept_bound(L, d, 192) for d in (8, 64, 128, 256, 512, 4096)]
        assert all(b >= a for a, b in zip(vals, vals[1:]))  # non-decreasing in width
        vals = [sept_bound(L, 256, n) for n in (2, 16, 192, 4096)]
        assert all(b >= a for a, b in zip(vals, vals[1:]))  # non-decreasing in length
    # rank recursion exactly: L_1 = log(N + 1), L_2 = log(N (N+1)^3 + (N+1))
    assert sept_bound(1, 10**6, 192) == pytest.approx(math.log(193))
    assert sept_bound(2, 10**6, 192) == pytest.approx(math.log(192 * 193**3 + 193))
    # width cap = log C(3^L + d, d) (exact binomial for small numbers)
    assert log_binom_plus(math.log(9), 4) == pytest.approx(math.log(math.comb(13, 4)))
    assert sept_bound(30, 4, 192) == pytest.approx(math.log(math.comb(3**30 + 4, 4)), rel=1e-12)
    # Levine et al.'s deep regime: ~ d L log 3 once 3^L >> d
    d, L = 64, 200
    assert sept_bound(L, d, 192) / (d * L * math.log(3)) == pytest.approx(1.0, abs=0.05)


def test_sept_on_spaces_uses_depth_width_and_linear_mixers(data_dir):
    g = create_space("gpt2", data_dir=data_dir)
    recs = score_arch(g, g.by_id("config_0_j0"), [get_proxy("sept")])
    s = g.summary(g.by_id("config_0_j0"))
    from zcbench.proxies.sept import sept_bound

    assert recs["sept"].value == pytest.approx(sept_bound(s["n_layer"], s["d_model"], s["seq_len"]))
    f = create_space("flexibert", data_dir=data_dir)
    lt = next(a for a in f.stored() if all(x["operation_type"] == "LT" for x in a.genes["encoder_layers"]))
    sa = next(a for a in f.stored() if all(x["operation_type"] == "SA" for x in a.genes["encoder_layers"])
              and len(a.genes["encoder_layers"]) == len(lt.genes["encoder_layers"])
              and a.genes["hidden_size"] == lt.genes["hidden_size"])
    v_lt, v_sa = (score_arch(f, a, [get_proxy("sept")])["sept"].value for a in (lt, sa))
    assert v_lt < v_sa  # fixed linear transforms do not raise the polynomial degree


# ---- ntkt -----------------------------------------------------------------------
class TinyLM(nn.Module):
    """Two blocks of causal mixing + tanh MLP, with block_out taps, for brute-force checks."""

    def __init__(self, vocab=11, d=5, T=6):
        super().__init__()
        self.emb = tag(nn.Embedding(vocab, d), "embedding")
        self.blocks = nn.ModuleList()
        for _ in range(2):
            blk = tag(nn.Module(), "block")
            blk.attn = tag(nn.Linear(d, d), "attn")
            blk.ffn = tag(nn.Linear(d, d), "ffn")
            blk.out = Tap("block_out")
            self.blocks.append(blk)
        self.norm = tag(nn.LayerNorm(d), "norm")
        self.register_buffer("mix", torch.tril(torch.ones(T, T)) / torch.arange(1, T + 1)[:, None])

    def forward(self, inputs, targets=None):
        x = self.emb(inputs)
        T = x.shape[1]
        for blk in self.blocks:
            x = x + self.mix[:T, :T] @ torch.tanh(blk.attn(x))
            x = blk.out(x + torch.tanh(blk.ffn(x)))
        return ModelOutput(loss=None, hidden=self.norm(x))


def _brute_force_jacobian(model, inputs, output):
    """J[b, d, :] = d mean_t h_{b,t,d} / d theta from ONE batched forward (no per-example trick)."""
    from torch.func import functional_call, jacrev

    from zcbench.proxies.ntkt import last_block_output

    names = [n for n, p in model.named_parameters()]
    params = {n: p.detach() for n, p in model.named_parameters()}

    def f(p):
        class Functional:  # the model's taps (hooks), evaluated at parameters p
            def __call__(self, x, t=None):
                return functional_call(model, p, (x, t))

            def modules(self):
                return model.modules()

        return last_block_output(Functional(), inputs, output).mean(dim=1)  # (B, D)

    jac = jacrev(f)(params)
    return torch.cat([jac[n].reshape(inputs.shape[0], -1, jac[n][0, 0].numel()) for n in names], dim=-1)


@pytest.mark.parametrize("output", ["block_out", "hidden"])
def test_ntkt_equals_brute_force_per_sample_gradients(output):
    torch.manual_seed(0)
    model = TinyLM().double().eval()
    inputs = torch.randint(0, 11, (3, 6))
    J = _brute_force_jacobian(model, inputs, output).double()  # (B, D, P)
    from zcbench.proxies.ntkt import ntk_trace, readout_directions

    exact = ntk_trace(model, inputs, None, output)
    assert exact == pytest.approx(float((J ** 2).sum()), rel=1e-10)
    u = readout_directions(0, 5, 2, "cpu", torch.float64)
    probe = ntk_trace(model, inputs, u, output)
    want = float(sum(((torch.einsum("kd,bdp->bkp", u, J)) ** 2).sum(dim=(0, 2))) / 2)
    assert probe == pytest.approx(want, rel=1e-10)
    # Hutchinson: many probes approach the exact trace
    many = ntk_trace(model, inputs, readout_directions(1, 5, 200, "cpu", torch.float64), output)
    assert many == pytest.approx(exact, rel=0.2)
    assert all(p.grad is None for p in model.parameters())  # .grad never touched


def test_ntkt_through_the_engine_is_deterministic_and_batch_keyed(data_dir):
    space = create_space("gpt2", data_dir=data_dir)
    arch = space.by_id("config_9_j3")  # the smallest stored net (2 layers, d_model 64)
    a = score_arch(space, arch, [get_proxy("ntkt")], seed=0, batch_size=2, seq_len=16)["ntkt"]
    b = score_arch(space, arch, [get_proxy("ntkt")], seed=0, batch_size=2, seq_len=16)["ntkt"]
    c = score_arch(space, arch, [get_proxy("ntkt")], seed=1, batch_size=2, seq_len=16)["ntkt"]
    assert a.status == "ok" and a.value > 0 and a.value == b.value and c.value != a.value
    from zcbench.runner import DATA_FREE_NEEDS

    assert not set(get_proxy("ntkt").needs) <= DATA_FREE_NEEDS  # keyed by batch size / length / corpus



def _ntk_trace_loop_reference(model, inputs, directions, output="block_out"):
    """The straightforward definition: per example, one forward, dense gradients, float64 norms."""
    from zcbench.proxies.ntkt import last_block_output

    params = [p for p in model.parameters() if p.requires_grad]
    total = 0.0
    with torch.enable_grad():
        for b in range(inputs.shape[0]):
            m = last_block_output(model, inputs[b:b + 1], output).mean(dim=1)[0]
            for u in directions:
                grads = torch.autograd.grad((m * u).sum(), params, retain_graph=True, allow_unused=True)
                total += sum(float(torch.linalg.vector_norm(g.to_dense() if g.is_sparse else g,
                                                            dtype=torch.float64) ** 2)
                             for g in grads if g is not None)
    return total / directions.shape[0]


@pytest.mark.parametrize("space_name", ["gpt2", "flexibert", "transxl"])
def test_ntkt_fast_path_equals_loop_reference_on_real_archs(space_name, data_dir):
    """ntk_trace (sparse embedding gradients, fused float64 sums) == the plain loop, <= 1e-6 relative."""
    import random

    from zcbench.proxies.ntkt import last_block_output, ntk_trace, readout_directions

    space = create_space(space_name, data_dir=data_dir)
    stored = sorted(space.stored(), key=lambda a: a.id)
    for arch in random.Random(0).sample(stored, 2):
        torch.manual_seed(0)
        model = space.build(arch).eval()
        inputs = space.make_batch(2, 24, 0).inputs
        with torch.no_grad():
            d = last_block_output(model, inputs[:1]).shape[-1]
        u = readout_directions(0, d, 2, "cpu", torch.float32)
        sparse_before = [m.sparse for m in model.modules() if isinstance(m, nn.Embedding)]
        want = _ntk_trace_loop_reference(model, inputs, u)
        got = ntk_trace(model, inputs, u)
        assert got == pytest.approx(want, rel=1e-6), arch.id
        assert [m.sparse for m in model.modules() if isinstance(m, nn.Embedding)] == sparse_before  # restored
        assert all(p.grad is None for p in model.parameters())

# ---- ntsr -----------------------------------------------------------------------
def test_ntsr_is_rankfuse_of_ntkt_and_sept(tmp_path, data_dir):
    from zcbench.fusion import RankFuse

    p = get_proxy("ntsr")
    assert isinstance(p, RankFuse) and p.components == ("ntkt", "sept") and p.name == "ntsr"
    env = dict(os.environ, PYTHONPATH=str(REPO), ZCBENCH_DATA=str(data_dir), OMP_NUM_THREADS="1")
    common = ["space=gpt2", "n_archs=10", "batch_size=2", "seq_len=32", f"results_dir={tmp_path}", "bootstrap=0",
              "progress=false"]
    fused = {}
    for proxy, folder in (("ntsr", "ntsr"), ("rankfuse:[ntkt,sept]", None)):
        out = subprocess.run([sys.executable, "-m", "zcbench", "run", f"proxy={proxy}", *common],
                             capture_output=True, text=True, cwd=REPO, env=env, timeout=900)
        assert out.returncode == 0, out.stderr[-2000:]
        assert f"gpt2 | {proxy} | seed 0 | n=10" in out.stdout
        base = tmp_path / "scores" / "gpt2"
        d = base / folder if folder else next(x for x in base.iterdir() if x.name.startswith("rankfuse"))
        (f,) = d.glob("*.jsonl")
        fused[proxy] = {r["arch_id"]: r["score"] for r in map(json.loads, f.read_text().splitlines())}
    assert len(fused["ntsr"]) == 10
    assert fused["ntsr"] == fused["rankfuse:[ntkt,sept]"]
    # and it is the mean within-set rank of the stored components
    from scipy.stats import rankdata

    comp = {}
    for c in ("ntkt", "sept"):
        (f,) = (tmp_path / "scores" / "gpt2" / c).glob("*.jsonl")
        comp[c] = {r["arch_id"]: r["score"] for r in map(json.loads, f.read_text().splitlines())}
    ids = sorted(fused["ntsr"])
    ranks = [rankdata([comp[c][i] for i in ids]) for c in ("ntkt", "sept")]
    for j, i in enumerate(ids):
        assert fused["ntsr"][i] == pytest.approx((ranks[0][j] + ranks[1][j]) / 2)
