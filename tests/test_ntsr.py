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
def _log_geom_exact(d: int, T: int) -> float:
    """log((d^(T+1) - 1) / (d - 1)) from exact Python integers (d >= 2), no floats until the end."""
    num = d ** (T + 1) - 1  # exact integer (1024^193 has 1935 bits)
    q, r = divmod(num, d - 1)
    assert r == 0
    return math.log(q) if q.bit_length() < 1000 else (
        math.log(q >> (q.bit_length() - 64)) + (q.bit_length() - 64) * math.log(2))


def test_sept_eq16_hand_computed_small():
    from zcbench.proxies.sept import log_geometric_sum, sept_eq16

    # one block, d=2, T=3: log(2) + log(1 + 2 + 4 + 8) = log 2 + log 15
    assert sept_eq16([2], 3) == pytest.approx(math.log(2) + math.log(15), rel=1e-15)
    # two blocks d=2 and d=3, T=2: log(2+3) + log((1+2+4) + (1+3+9)) = log 5 + log 20
    assert sept_eq16([2, 3], 2) == pytest.approx(math.log(5) + math.log(20), rel=1e-15)
    # d = 1: the limit (T+1); three such blocks, T=192: log 3 + log(3 * 193)
    assert log_geometric_sum(1, 192) == pytest.approx(math.log(193), rel=1e-15)
    assert sept_eq16([1, 1, 1], 192) == pytest.approx(math.log(3) + math.log(3 * 193), rel=1e-15)
    # 0 < d < 1 follows the same closed form
    assert log_geometric_sum(0.5, 3) == pytest.approx(math.log(1 + 0.5 + 0.25 + 0.125), rel=1e-15)
    with pytest.raises(ValueError, match="d > 0"):
        log_geometric_sum(0, 3)


@pytest.mark.parametrize("d,T,L", [(2, 192, 1), (2, 192, 7), (1024, 192, 1), (1024, 192, 16), (128, 192, 2),
                                   (64, 2048, 3)])
def test_sept_eq16_large_d_and_T_against_exact_integers(d, T, L):
    """G = sum_{k<=T} d^k overflows float64 (1024^193 ~ 1e581); the log-space value matches exact integers."""
    from zcbench.proxies.sept import log_geometric_sum, sept_eq16

    g = _log_geom_exact(d, T)
    assert log_geometric_sum(d, T) == pytest.approx(g, rel=1e-14)
    want = math.log(L * d) + math.log(L) + g  # identical blocks: log(L d) + log(L G)
    assert sept_eq16([d] * L, T) == pytest.approx(want, rel=1e-14)
    # by hand for the realistic case: (T+1) log d dominates, the rest is -log(d-1) + O(d^-(T+1))
    assert log_geometric_sum(d, T) == pytest.approx((T + 1) * math.log(d) - math.log(d - 1), rel=1e-14)


def test_sept_eq16_mixed_widths_against_exact_integers():
    from zcbench.proxies.sept import sept_eq16

    ds, T = [128, 512, 1024, 64], 192
    total = sum((d ** (T + 1) - 1) // (d - 1) for d in ds)  # exact integer sum of the geometric series
    log_total = math.log(total >> (total.bit_length() - 64)) + (total.bit_length() - 64) * math.log(2)
    assert sept_eq16(ds, T) == pytest.approx(math.log(sum(ds)) + log_total, rel=1e-14)


def test_sept_default_is_eq16_and_rank_recursion_keeps_the_stored_v1_key(tmp_path, data_dir):
    """variant=rank_recursion reproduces the stored v1 scores under the stored key; the default gets v2."""
    import shutil

    from zcbench.proxies.sept import block_widths, sept_bound, sept_eq16
    from zcbench.runner import RunConfig, run

    g = create_space("gpt2", data_dir=data_dir)
    arch = g.by_id("config_0_j0")
    s = g.summary(arch)
    assert get_proxy("sept").version == "2" and get_proxy("sept", variant="rank_recursion").version == "1"
    assert score_arch(g, arch, [get_proxy("sept")])["sept"].value == pytest.approx(
        sept_eq16(block_widths(s), s["seq_len"]), rel=1e-15)
    with pytest.raises(ValueError, match="valid: eq16, rank_recursion"):
        get_proxy("sept", variant="eq17")
    stored = REPO / "results" / "scores" / "gpt2" / "sept"
    key = "seed0-2cd2f90362-v1"
    if not (stored / f"{key}.jsonl").exists():
        pytest.skip("official sept v1 scores not in this checkout")
    dest = tmp_path / "scores" / "gpt2" / "sept"
    dest.mkdir(parents=True)
    for f in stored.glob(f"{key}.*"):
        shutil.copy(f, dest / f.name)
    old = {r["arch_id"]: r["score"] for r in map(json.loads, (dest / f"{key}.jsonl").read_text().splitlines())}
    common = dict(space="gpt2", seed=0, results_dir=str(tmp_path), data_dir=str(data_dir), bootstrap=0,
                  progress=False)
    out = run(RunConfig(proxies=["sept"], proxy_options={"sept": {"variant": "rank_recursion"}}, **common))
    assert out["sept"]["run_key"] == key and len(old) == 200
    assert (dest / f"{key}.jsonl").read_text().count("\n") == 200  # nothing rescored: resumed
    for a in g.stored()[:20]:
        sa = g.summary(a)
        assert old[a.id] == pytest.approx(sept_bound(sa["n_layer"], sa["d_model"], sa["seq_len"]), rel=1e-12)
    new = run(RunConfig(proxies=["sept"], **common))
    assert new["sept"]["run_key"].endswith("-v2") and new["sept"]["run_key"] != key


def test_sept_eq16_reproduces_the_independent_gpt2_check(data_dir):
    """Eq. 16 on the 200 LTS GPT-2 networks (T=192, d_z^l = d_model): rho 0.957 / tau 0.859 vs valid ppl
    (the check quoted in issue #16); the earlier rank-recursion bound: 0.787 / 0.620."""
    from scipy.stats import kendalltau, spearmanr

    g = create_space("gpt2", data_dir=data_dir)
    archs = g.stored()
    ppl = [g.truth(a) for a in archs]
    for variant, rho, tau in (("eq16", 0.957, 0.859), ("rank_recursion", 0.787, 0.620)):
        p = get_proxy("sept", variant=variant)
        s = [score_arch(g, a, [p])["sept"].value for a in archs]
        assert -spearmanr(s, ppl)[0] == pytest.approx(rho, abs=5e-4)
        assert -kendalltau(s, ppl)[0] == pytest.approx(tau, abs=5e-4)


def test_sept_rank_recursion_finite_for_huge_widths_depths_and_lengths():
    from zcbench.proxies.sept import log_rank_recursion, sept_bound

    for L, d, n in [(10_000, 1_000_000, 10**6), (5000, 64, 10**9), (3, 10**6, 2), (200, 1, 192)]:
        v = sept_bound(L, d, n)
        assert math.isfinite(v) and v > 0
    # the uncapped recursion overflows to +inf (never raises); the cap keeps the score finite
    assert log_rank_recursion([3] * 2000, 192) == math.inf
    assert math.isfinite(sept_bound(2000, 512, 192))


def test_sept_rank_recursion_exact_values_and_levine_regimes():
    from zcbench.proxies.sept import log_binom_plus, sept_bound

    for d in (64, 128, 512):
        vals = [sept_bound(L, d, 192) for L in range(1, 40)]
        assert all(b > a for a, b in zip(vals, vals[1:]))  # strictly increasing in depth
    # rank recursion exactly (hand-computed integers): L_1 = log(N + 1), L_2 = log(N (N+1)^3 + (N+1))
    assert sept_bound(1, 10**6, 192) == pytest.approx(math.log(193), rel=1e-14)
    assert sept_bound(2, 10**6, 192) == pytest.approx(math.log(192 * 193**3 + 193), rel=1e-14)
    # with a linear mixer (e=1) in between: L_2 = log(N (N+1) + (N+1)) = log((N+1)^2)
    assert sept_bound(2, 10**6, 192, exponents=[3, 1]) == pytest.approx(2 * math.log(193), rel=1e-14)
    # width cap = log C(3^L + d, d) (exact binomials)
    assert log_binom_plus(math.log(9), 4) == pytest.approx(math.log(math.comb(13, 4)), rel=1e-14)
    assert sept_bound(30, 4, 192) == pytest.approx(math.log(math.comb(3**30 + 4, 4)), rel=1e-12)
    # Levine et al.'s deep regime: ~ d L log 3 once 3^L >> d
    d, L = 64, 200
    assert sept_bound(L, d, 192) / (d * L * math.log(3)) == pytest.approx(1.0, abs=0.05)


def test_sept_rank_recursion_on_flexibert_counts_linear_mixers(data_dir):
    f = create_space("flexibert", data_dir=data_dir)
    lt = next(a for a in f.stored() if all(x["operation_type"] == "LT" for x in a.genes["encoder_layers"]))
    sa = next(a for a in f.stored() if all(x["operation_type"] == "SA" for x in a.genes["encoder_layers"])
              and len(a.genes["encoder_layers"]) == len(lt.genes["encoder_layers"])
              and a.genes["hidden_size"] == lt.genes["hidden_size"])
    rr = get_proxy("sept", variant="rank_recursion")
    v_lt, v_sa = (score_arch(f, a, [rr])["sept"].value for a in (lt, sa))
    assert v_lt < v_sa  # fixed linear transforms do not raise the polynomial degree
    # Eq. 16 sees only widths, depth and T: the two networks get the same value
    e_lt, e_sa = (score_arch(f, a, [get_proxy("sept")])["sept"].value for a in (lt, sa))
    assert e_lt == e_sa


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


def _brute_force_token_jacobian(model, inputs, params_filter=None):
    """J[b, t*D + d, :] = d h_{b,t,d} / d theta (the full per-token Jacobian, Eq. 11's ingredients)."""
    from torch.func import functional_call, jacrev

    from zcbench.proxies.ntkt import last_block_output

    all_params = {n: p.detach() for n, p in model.named_parameters()}
    names = [n for n in all_params if params_filter is None or params_filter(n)]

    def f(sub):
        p = {**all_params, **sub}

        class Functional:
            def __call__(self, x, t=None):
                return functional_call(model, p, (x, t))

            def modules(self):
                return model.modules()

        return last_block_output(Functional(), inputs)  # (B, T, D)

    jac = jacrev(f)({n: all_params[n] for n in names})
    B, T, D = inputs.shape[0], inputs.shape[1], jac[names[0]].shape[2]
    return torch.cat([jac[n].reshape(B, T * D, -1) for n in names], dim=-1), T, D


def test_ntkt_is_eq12_trace_and_eq13_form_by_brute_force():
    """Eq. 12: tr Kbar = (1/T^2) sum_b sum_{t1,t2} sum_d <grad z_{t1,d}, grad z_{t2,d}>, from the full
    per-token Jacobian; Eq. 13's printed line keeps only t1 = t2 — a different number (cross terms)."""
    from zcbench.proxies.ntkt import ntk_trace, paper_parameters, readout_directions

    torch.manual_seed(0)
    model = TinyLM().double().eval()
    inputs = torch.randint(0, 11, (2, 6))
    J, T, D = _brute_force_token_jacobian(model, inputs)
    Jt = J.reshape(2, T, D, -1)
    eq12 = float(sum((Jt[b, t1, d] @ Jt[b, t2, d]) for b in range(2) for t1 in range(T) for t2 in range(T)
                     for d in range(D))) / T**2
    eq13 = float((J ** 2).sum()) / T**2
    assert ntk_trace(model, inputs, None) == pytest.approx(eq12, rel=1e-10)
    assert ntk_trace(model, inputs, None, form="eq13") == pytest.approx(eq13, rel=1e-10)
    assert abs(eq12 - eq13) > 1e-3 * eq12  # the two readings differ on a network that mixes tokens
    # Hutchinson over (t, d) for eq13: the mean over many probes approaches the exact value
    many = ntk_trace(model, inputs, readout_directions(2, T * D, 400, "cpu", torch.float64), form="eq13")
    assert many == pytest.approx(eq13, rel=0.1)
    # params="weights": only Linear/Embedding weights (no biases, no LayerNorm) enter
    Jw, _, _ = _brute_force_token_jacobian(model, inputs, lambda n: n.endswith("weight") and "norm" not in n)
    Jwt = Jw.reshape(2, T, D, -1).mean(dim=1)  # token mean of the gradients
    want = float((Jwt ** 2).sum())
    assert ntk_trace(model, inputs, None, params=paper_parameters(model)) == pytest.approx(want, rel=1e-10)
    assert want < eq12  # fewer parameters, smaller trace
    assert {id(p) for p in paper_parameters(model)} == {
        id(p) for n, p in model.named_parameters() if n.endswith("weight") and "norm" not in n}


def test_ntkt_probe_estimate_is_unbiased():
    """E_u ||J^T u||^2 = tr(J J^T): the average of single-probe scores over 300 seeds is within 6 % of exact."""
    from zcbench.proxies.ntkt import ntk_trace, readout_directions

    torch.manual_seed(0)
    model = TinyLM().double().eval()
    inputs = torch.randint(0, 11, (2, 6))
    exact = ntk_trace(model, inputs, None)
    single = [ntk_trace(model, inputs, readout_directions(s, 5, 1, "cpu", torch.float64)) for s in range(300)]
    assert sum(single) / len(single) == pytest.approx(exact, rel=0.06)
    assert min(single) < 0.8 * exact < 1.25 * exact < max(single)  # one probe alone is not the exact trace


def test_ntkt_new_options_keep_the_stored_run_identity():
    p = get_proxy("ntkt")
    assert p.identity_options == {"probes": 1, "exact": False, "output": "block_out"}  # = stored v1 meta
    assert get_proxy("ntkt", form="eq13").identity_options["form"] == "eq13"
    with pytest.raises(ValueError, match="valid: all, weights"):
        get_proxy("ntkt", params="some")


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
    from zcbench.proxies.rankfuse import RankFuse

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


def test_sept_rank_recursion_named_variant_equals_the_option(data_dir):
    g = create_space("gpt2", data_dir=data_dir)
    archs = g.stored()[:5]
    rr = get_proxy("sept_rank_recursion")
    opt = get_proxy("sept", variant="rank_recursion")
    assert rr.version == opt.version == "1" and rr.identity_options == opt.identity_options
    for a in archs:
        assert score_arch(g, a, [rr])["sept_rank_recursion"].value == score_arch(g, a, [opt])["sept"].value
    with pytest.raises(ValueError, match="unknown option"):
        get_proxy("sept_rank_recursion", variant="eq16")
