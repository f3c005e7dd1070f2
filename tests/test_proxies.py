"""The proxy catalogue: formula checks on hand-computable cases, finite scores on the tiny space
and on real stored architectures of the built-in spaces."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn
from torch.func import functional_call

import zcbench
from zcbench.engine import Context, TapRecord, _projection, score_arch

from test_engine import (LinearSpace, TinyLM, TinySpace, data_proxies, linear_arch, run, tiny_arch)

torch.set_num_threads(1)


def fresh_tiny(arch, seed=0):
    torch.manual_seed(seed)
    return TinyLM(arch.genes).eval()


def fake_ctx(model=None, **fields) -> Context:
    ctx = Context(space=None, arch=None, seed=0, batch_size=2, seq_len=2, model=model)
    for k, v in fields.items():
        setattr(ctx, k, v)
    return ctx


def score(name, ctx, **opt):
    with torch.no_grad():
        return float(zcbench.get_proxy(name, **opt).score(ctx))


# ---- every proxy is registered, documented and finite on the tiny space -------------------
def test_catalogue_registered_with_docstrings_and_citations():
    names = set(zcbench.list_proxies())
    assert {"params", "snip", "synflow", "zico", "lpzero", "zerolm", "ntsr"} <= names  # discovery works
    for n in sorted(names):
        p = zcbench.get_proxy(n)
        doc = (type(p).__doc__ or "") + (__import__(type(p).__module__, fromlist=["x"]).__doc__ or "")
        assert p.citation and len(doc) > 200, n


@pytest.mark.parametrize("fused", [False, True])
def test_every_proxy_finite_on_tiny_space(fused):
    res = run(TinySpace(), tiny_arch(fused=fused), data_proxies(), batch_size=4, seq_len=12)
    bad = {n: (r.status, r.value, r.message) for n, r in res.items() if r.status != "ok" or not math.isfinite(r.value)}
    assert not bad


# ---- gradient-saliency family: recomputed independently with autograd ------------------------
def _tiny_reference(arch, seed=0, batch_size=4, seq_len=12):
    space = TinySpace()
    model = fresh_tiny(arch, seed)
    batch = space.make_batch(batch_size, seq_len, seed)
    out = model(batch.inputs, batch.targets)
    layers = [m for n, m in model.named_modules() if isinstance(m, nn.Linear) and m is not model.head]
    grads = torch.autograd.grad(out.loss, [m.weight for m in layers])
    return model, batch, layers, grads


def test_snip_grad_norm_plain_match_autograd():
    arch = tiny_arch()
    res = run(TinySpace(), arch, ["snip", "grad_norm", "plain", "synaptic_saliency", "synaptic_diversity"])
    _, _, layers, grads = _tiny_reference(arch)
    layers_w = [m.weight.detach() for m in layers]
    snip = sum(float((w * g).abs().sum()) for w, g in zip(layers_w, grads))
    gn = sum(float(g.norm()) for g in grads)
    plain = sum(float((w * g).sum()) for w, g in zip(layers_w, grads))
    ffn = [(m, g) for m, g in zip(layers, grads) if m.out_features == 32 or m.in_features == 32]
    ss = sum(float((m.weight.detach() * g).abs().sum()) for m, g in ffn)
    attn = [(m, g) for m, g in zip(layers, grads) if m.in_features == 16 and m.out_features == 16]
    sd = sum(float(torch.linalg.matrix_norm(m.weight.detach(), "nuc") * torch.linalg.matrix_norm(g, "nuc"))
             for m, g in attn)
    assert res["snip"].value == pytest.approx(snip, rel=1e-5)
    assert res["grad_norm"].value == pytest.approx(gn, rel=1e-5)
    assert res["plain"].value == pytest.approx(plain, rel=1e-4, abs=1e-9)
    assert res["synaptic_saliency"].value == pytest.approx(ss, rel=1e-5)
    assert res["synaptic_diversity"].value == pytest.approx(sd, rel=1e-4)
    # the output head is excluded by default and included on request
    with_head = run(TinySpace(), arch, ["snip"], snip={"include_output": True})["snip"].value
    assert with_head > res["snip"].value


def test_grasp_matches_explicit_hessian():
    space, arch = LinearSpace(), linear_arch()
    res = run(space, arch, ["grasp"], batch_size=6)
    torch.manual_seed(0)
    model = space.build(arch).eval()
    batch = space.make_batch(6, 0, 0)
    w1, w2 = model.l1.weight.detach(), model.l2.weight.detach()
    n1 = w1.numel()

    def loss_of(flat):
        p = {"l1.weight": flat[:n1].view_as(w1), "l2.weight": flat[n1:].view_as(w2)}
        return functional_call(model, p, (batch.inputs, batch.targets)).loss

    flat = torch.cat([w1.reshape(-1), w2.reshape(-1)]).double()
    model.double()
    batch.inputs = batch.inputs.double()
    H = torch.autograd.functional.hessian(loss_of, flat)
    g = torch.autograd.functional.jacobian(loss_of, flat)
    expected = float(-(flat * (H @ g)).sum())
    assert res["grasp"].value == pytest.approx(expected, rel=1e-4)


def test_fisher_matches_definition():
    space, arch = LinearSpace(), linear_arch()
    res = run(space, arch, ["fisher"], batch_size=6)
    torch.manual_seed(0)
    model = space.build(arch).eval()
    batch = space.make_batch(6, 0, 0)
    a1 = model.l1(batch.inputs)
    a2 = model.l2(a1)
    loss = torch.nn.functional.cross_entropy(a2, batch.targets)
    g1, g2 = torch.autograd.grad(loss, [a1, a2])
    a1, a2 = a1.detach(), a2.detach()
    expected = 5 * float((0.5 * (a1 * g1).pow(2).mean(0)).sum()) + 4 * float((0.5 * (a2 * g2).pow(2).mean(0)).sum())
    assert res["fisher"].value == pytest.approx(expected, rel=1e-5)


# ---- synflow family: closed form on a 2-layer linear network -----------------------------
def test_synflow_closed_form_on_two_layer_linear_net():
    space, arch = LinearSpace(), linear_arch()
    res = run(space, arch, ["synflow", "logsynflow", "dss", "flops"], batch_size=3)
    torch.manual_seed(0)
    model = space.build(arch)
    W1, W2 = model.l1.weight.detach().double().abs(), model.l2.weight.detach().double().abs()
    ones_in, ones_out = torch.ones(W1.shape[1], dtype=torch.float64), torch.ones(W2.shape[0], dtype=torch.float64)
    R = float(ones_out @ W2 @ W1 @ ones_in)
    # R is homogeneous of degree 1 in each layer: sum(W * dR/dW) = R per layer
    assert res["synflow"].value == pytest.approx(2 * R, rel=1e-10)
    g1 = (W2.T @ ones_out)[:, None] * ones_in[None, :]  # dR/dW1
    g2 = ones_out[:, None] * (W1 @ ones_in)[None, :]  # dR/dW2
    log_expected = float((W1 * torch.log1p(g1)).sum() + (W2 * torch.log1p(g2)).sum())
    assert res["logsynflow"].value == pytest.approx(log_expected, rel=1e-10)
    assert res["dss"].value == pytest.approx(2 * R, rel=1e-10)  # no attention: DSS = saliency = synflow here
    assert res["flops"].value == 2 * 5 * 4 + 2 * 4 * 3  # one example: two matrix-vector products


# ---- Jacobian family -------------------------------------------------------------------------
def _tiny_jacobian(arch, seed=0, batch_size=4, seq_len=12):
    model = fresh_tiny(arch, seed)
    batch = TinySpace().make_batch(batch_size, seq_len, seed)
    emb = {}
    h = model.emb_tap.register_forward_hook(lambda m, i, o: emb.setdefault("e", o))
    out = model(batch.inputs)
    h.remove()
    u = _projection(seed, out.hidden.shape[-1], out.hidden.device, out.hidden.dtype)
    (J,) = torch.autograd.grad((out.hidden * u).sum(), emb["e"])
    return J.reshape(batch_size, -1).double().numpy()


def test_jacob_cov_and_jacobian_cosine_match_numpy():
    arch = tiny_arch()
    res = run(TinySpace(), arch, ["jacob_cov", "jacobian_cosine"])
    J = _tiny_jacobian(arch)
    v = np.linalg.eigvalsh(np.corrcoef(J))
    k = 1e-5
    assert res["jacob_cov"].value == pytest.approx(-np.sum(np.log(v + k) + 1 / (v + k)), rel=1e-6)
    Jn = J / np.linalg.norm(J, axis=1, keepdims=True)
    c = np.abs(Jn @ Jn.T)
    np.fill_diagonal(c, 0.0)  # i != j only (upstream's "- I" leaves round-off there, which ^(1/20) inflates)
    expected = 1 - np.sum(c ** (1 / 20)) / (len(J) ** 2 - len(J))
    assert res["jacobian_cosine"].value == pytest.approx(expected, rel=1e-6)


def test_jacobian_examples_are_independent():
    """One backward gives per-example Jacobians: example 0's row does not depend on example 1."""
    from zcbench.engine import _standard_pass

    space, arch = TinySpace(), tiny_arch()
    rows = []
    for bs in (2, 3):
        ctx = Context(space=space, arch=arch, seed=0, batch_size=bs, seq_len=8, model=fresh_tiny(arch),
                      batch=space.make_batch(bs, 8, 0))
        ctx.batch.inputs[0] = torch.arange(8)  # same first example in both batches
        _standard_pass(ctx, {"jacobian"}, set(), set())
        rows.append(ctx.jacobian[0])
    torch.testing.assert_close(rows[0], rows[1])


# ---- activation-pattern family: hand-computable kernels ------------------------------------
def test_nwot_and_activation_distance_hand_cases():
    # two examples, one token, two units: codes [1, 0] and [1, 1] -> K = [[2, 1], [1, 2]], log det = log 3
    act = torch.tensor([[[0.5, -1.0]], [[2.0, 0.1]]])
    ctx = fake_ctx(taps={"ffn_act": [TapRecord("ffn_act", 0, "f", act)]})
    assert score("nwot", ctx) == pytest.approx(math.log(3))
    # example 0 with two tokens x = [[1, 0], [1, 1]]: K = [[2, 1], [1, 2]], sum = 6; two layers -> 12
    act = torch.tensor([[[0.5, -1.0], [2.0, 0.1]]])
    rec = TapRecord("ffn_act", 0, "f", act)
    assert score("activation_distance", fake_ctx(taps={"ffn_act": [rec, rec]})) == 12.0
    # identical examples make K singular: -inf, recorded as status inf by the engine
    same = torch.ones(2, 1, 3)
    assert score("nwot", fake_ctx(taps={"ffn_act": [TapRecord("ffn_act", 0, "f", same)]})) == -math.inf


def test_confidences_hand_cases():
    T = 5
    uniform = torch.full((2, 3, T, T), 1.0 / T)
    peaked = torch.eye(T).expand(2, 3, T, T)
    ctx = fake_ctx(taps={"attn_probs": [TapRecord("attn_probs", 0, "a", uniform), TapRecord("attn_probs", 1, "a", peaked)]})
    assert score("softmax_confidence", ctx) == pytest.approx(1.0 / T + 1.0)
    heads = torch.zeros(1, 2, T, 4)
    heads[0, 0, 2, :] = 3.0  # head 0 peaks at 3 on every feature, head 1 is flat 0
    ctx = fake_ctx(taps={"head_out": [TapRecord("head_out", 0, "h", heads)]})
    assert score("attention_confidence", ctx) == pytest.approx(1.5)


def test_head_importance_hand_case_and_variant():
    ctx = fake_ctx(head_mask_grads=[(0, torch.tensor([[1.0, -2.0], [3.0, 0.0]])), (1, torch.tensor([[0.5], [-0.5]]))])
    assert score("head_importance", ctx) == pytest.approx(2.0 + 1.0 + 0.5)
    res = run(TinySpace(), tiny_arch(), ["head_importance"],
              head_importance={"variant": "weights", "min_out_features": 0})
    model, _, layers, grads = _tiny_reference(tiny_arch())
    # upstream's layer set: the attention operation's q/k/v, not its output projection
    qkv = {id(getattr(b.attn, n)) for b in model.blocks for n in ("query", "key", "value")}
    attn = [(m, g) for m, g in zip(layers, grads) if id(m) in qkv]
    assert len(attn) == 3 * len(model.blocks)
    expected = sum(float((m.weight.detach() * g).abs().sum()) for m, g in attn)
    assert res["head_importance"].value == pytest.approx(expected, rel=1e-5)
    # upstream's out_features >= 128 filter leaves nothing of the 16-wide tiny model: n/a, not 0
    res = run(TinySpace(), tiny_arch(), ["head_importance"], head_importance={"variant": "weights"})
    assert res["head_importance"].status == "n/a"


# ---- ZiCo, MeCo, EZNAS ---------------------------------------------------------------------
def test_zico_hand_case():
    model = nn.Sequential(nn.Linear(3, 1, bias=False))
    g1, g2 = torch.tensor([[1.0, 2.0, 0.0]]), torch.tensor([[3.0, 2.0, 0.0]])
    ctx = fake_ctx(model=model, multi_batch_grads=[{"0": g1}, {"0": g2}])
    # std = [1, 0, 0], mean|g| = [2, 2, 0]: only unit 0 counts -> log(2 / 1)
    assert score("zico", ctx) == pytest.approx(math.log(2.0))


def test_zico_groups_are_the_two_halves():
    space, arch = TinySpace(), tiny_arch()
    res = run(space, arch, ["zico"], batch_size=4)
    model = fresh_tiny(arch)
    batch = space.make_batch(4, 12, 0)
    layers = [m for m in model.modules() if isinstance(m, nn.Linear) and m is not model.head]
    gs = []
    for sl in (slice(0, 2), slice(2, 4)):
        loss = model(batch.inputs[sl], batch.targets[sl]).loss
        gs.append(torch.autograd.grad(loss, [m.weight for m in layers]))
    total = 0.0
    for a, b in zip(*gs):
        G = torch.stack([a.reshape(-1), b.reshape(-1)]).double()
        std, mu = G.std(0, unbiased=False), G.abs().mean(0)
        total += math.log(float((mu[std != 0] / std[std != 0]).sum()))
    assert res["zico"].value == pytest.approx(total, rel=1e-6)


def test_meco_matches_numpy():
    space, arch = TinySpace(), tiny_arch()
    res = run(space, arch, ["meco"], batch_size=4, seq_len=12)
    model = fresh_tiny(arch)
    batch = space.make_batch(4, 12, 0)
    outs = []
    hooks = [b.out.register_forward_hook(lambda m, i, o: outs.append(o.detach())) for b in model.blocks]
    model(batch.inputs)
    for h in hooks:
        h.remove()
    expected = sum(np.linalg.eigvalsh(np.corrcoef(o.reshape(-1, o.shape[-1]).double().numpy().T)).min() for o in outs)
    assert res["meco"].value == pytest.approx(expected, rel=1e-6, abs=1e-9)


def test_eznas_hand_cases():
    model = nn.Sequential(nn.Linear(2, 2, bias=False), nn.Linear(2, 3, bias=False))
    names = {id(p): n for n, p in model.named_parameters()}
    ctx = fake_ctx(model=model, _param_names=names,
                   weight_grads={"0.weight": torch.tensor([[1.0, -1.0], [1.0, 1.0]]),
                                 "1.weight": torch.ones(3, 2)})
    # sign matrix [[1,-1],[1,1]] has det 2: sigmoid(log 2) = 2/3; the 3x2 layer has no determinant
    assert score("eznas", ctx) == pytest.approx(2.0 / 3.0)
    ctx.weight_grads["0.weight"] = torch.tensor([[1.0, 2.0], [3.0, 4.0]])  # singular sign matrix
    assert score("eznas", ctx) == pytest.approx(0.0)
    only_rect = nn.Sequential(nn.Linear(2, 3, bias=False))
    with pytest.raises(zcbench.engine.NotApplicable):
        score("eznas", fake_ctx(model=only_rect, weight_grads={}))


def test_eznas_lpzero_variant_hand_case():
    """LPZero's BERT program: sum over the attention input projections of
    sigmoid(log|det(S S^T)|), S = sign(G); the output projection and the FFN do not count."""
    from zcbench.introspect import tag

    class Attn(nn.Module):
        def __init__(self):
            super().__init__()
            self.query = nn.Linear(3, 2, bias=False)  # non-square: counted through S S^T
            self.value = nn.Linear(3, 2, bias=False)
            self.out = nn.Linear(2, 2, bias=False)  # output projection: skipped

    model = nn.Sequential(tag(Attn(), "attn"), nn.Linear(2, 2, bias=False))
    names = {id(p): n for n, p in model.named_parameters()}
    grads = {"0.query.weight": torch.tensor([[1.0, -1.0, 1.0], [1.0, 1.0, -1.0]]),  # S S^T = [[3,-1],[-1,3]], det 8
             "0.value.weight": torch.tensor([[1.0, 2.0, 3.0], [2.0, 2.0, 2.0]]),  # equal sign rows: det 0
             "0.out.weight": torch.tensor([[1.0, -1.0], [1.0, 1.0]]),
             "1.weight": torch.tensor([[1.0, -1.0], [1.0, 1.0]])}
    ctx = fake_ctx(model=model, _param_names=names, weight_grads=grads)
    assert score("eznas", ctx, variant="lpzero") == pytest.approx(8.0 / 9.0 + 0.0)  # sigmoid(log 8) = 8/9
    # the published program sees only the two square layers, each sigmoid(log 2) = 2/3, and averages
    assert score("eznas", ctx) == pytest.approx(2.0 / 3.0)
    with pytest.raises(ValueError, match="published"):
        zcbench.get_proxy("eznas", variant="nope")


def test_eznas_lpzero_gpt2_variant_uses_the_fan_in_gram_on_every_layer():
    model = nn.Sequential(nn.Linear(2, 3, bias=False), nn.Linear(3, 2, bias=False))
    names = {id(p): n for n, p in model.named_parameters()}
    # layer 0: S is 3 x 2, S^T S = [[3, 1], [1, 3]], det 8 -> 8/9; layer 1: fan-in 3 > fan-out 2, singular -> 0
    grads = {"0.weight": torch.tensor([[1.0, 1.0], [1.0, -1.0], [1.0, 1.0]]), "1.weight": torch.ones(2, 3)}
    ctx = fake_ctx(model=model, _param_names=names, weight_grads=grads)
    assert score("eznas", ctx, variant="lpzero_gpt2") == pytest.approx(8.0 / 9.0)


def test_lpzero_gpt2_genotype_matches_hand_computation():
    arch = tiny_arch()
    res = run(TinySpace(), arch, ["lpzero"], lpzero={"genotype": "gpt2"})
    _, _, layers, grads = _tiny_reference(arch)
    terms = [float(m.weight.detach().double().pow(2).mean())
             + float(torch.softmax(g.double(), dim=1).pow(2).mean()) for m, g in zip(layers, grads)]
    assert res["lpzero"].status == "ok"
    assert res["lpzero"].value == pytest.approx(sum(terms) / len(terms), rel=1e-6)


def test_activation_distance_over_every_weight_layer_matches_hand_hooks():
    arch = tiny_arch()
    res = run(TinySpace(), arch, ["activation_distance"], batch_size=3, seq_len=8,
              activation_distance={"layers": "weight_layers"})
    model = fresh_tiny(arch)
    batch = TinySpace().make_batch(3, 8, 0)
    outs = []
    hooks = [m.register_forward_hook(lambda mod, i, o: outs.append(o.detach()))
             for m in model.modules() if isinstance(m, nn.Linear) and m is not model.head]
    model(batch.inputs)
    for h in hooks:
        h.remove()
    expected = 0.0
    for o in outs:
        x = (o[0] > 0).double()
        expected += float((x @ x.T + (1 - x) @ (1 - x).T).sum())
    assert res["activation_distance"].value == pytest.approx(expected, rel=1e-12)


# ---- LPZero ---------------------------------------------------------------------------------
@pytest.mark.parametrize("fused", [False, True])
def test_lpzero_is_the_mean_squared_query(fused):
    space, arch = TinySpace(), tiny_arch(fused=fused, n_layer=3)
    res = run(space, arch, ["lpzero"], batch_size=3, seq_len=8)
    model = fresh_tiny(arch)
    batch = space.make_batch(3, 8, 0)
    qs, acts = [], []
    hooks = []
    for blk in model.blocks:
        lin = blk.attn.c_attn if fused else blk.attn.query
        hooks.append(lin.register_forward_hook(lambda m, i, o: qs.append(o[..., : m.out_features // 3] if fused else o)))
        hooks.append(blk.ffn.act.register_forward_hook(lambda m, i, o: acts.append(o)))
    model(batch.inputs)
    for h in hooks:
        h.remove()
    h_terms = [float(q.detach().double().pow(2).mean()) for q in qs]
    # the proxy sums squares from float32 row norms (proxies/_common.sum_sq): ~1e-8 relative
    assert res["lpzero"].value == pytest.approx(sum(h_terms) / len(h_terms), rel=1e-6)
    # the alternative reading: a softmax across the layers' activation norms
    norms = torch.tensor([float(a.detach().double().norm()) for a in acts], dtype=torch.float64)
    alt = sum(h + float(ls) for h, ls in zip(h_terms, torch.log_softmax(norms, 0))) / 3
    got = run(space, arch, ["lpzero"], batch_size=3, seq_len=8, lpzero={"softmax_over": "layers"})["lpzero"].value
    assert got == pytest.approx(alt, rel=1e-6)
    summed = run(space, arch, ["lpzero"], batch_size=3, seq_len=8, lpzero={"reduce": "sum"})["lpzero"].value
    assert summed == pytest.approx(sum(h_terms), rel=1e-6)


# ---- real stored architectures of the built-in spaces ----------------------------------------
def _check_real(space_name, n_archs, batch_size, seq_len, data_dir):
    space = zcbench.create_space(space_name, data_dir=str(data_dir))
    archs = sorted(space.stored(), key=lambda a: a.id)[:n_archs]
    proxies = [zcbench.get_proxy(n) for n in data_proxies()]
    for arch in archs:
        res = score_arch(space, arch, proxies, seed=0, batch_size=batch_size, seq_len=seq_len)
        bad = {n: (r.status, r.value, r.message) for n, r in res.items()
               if r.status != "ok" or not math.isfinite(r.value)}
        assert not bad, (arch.key, bad)


def test_all_proxies_finite_on_real_gpt2_archs(data_dir):
    _check_real("gpt2", 2, 4, 32, data_dir)


@pytest.mark.slow
@pytest.mark.parametrize("space_name", ["gpt2", "flexibert", "transxl"])
def test_all_proxies_finite_on_real_archs_slow(space_name, data_dir):
    _check_real(space_name, 3, 8, 64, data_dir)


@pytest.mark.parametrize("space_name,kw", [("flexibert", {"variant": "upstream_pt"}), ("gpt2", {})])
def test_attention_confidence_qkv_equals_upstream_hooks(data_dir, space_name, kw):
    """The engine's value equals the training-free-nas recipe done by hand: forward hooks on the
    attention input projections, mean(max over tokens) per projection, summed (a fused q/k/v
    linear split into its three parts)."""
    space = zcbench.create_space(space_name, data_dir=str(data_dir), **kw)
    arch = space.stored()[1]
    res = score_arch(space, arch, [zcbench.get_proxy("attention_confidence_qkv")], seed=0, batch_size=2, seq_len=24)
    torch.manual_seed(0)
    model = space.build(arch).eval()
    batch = space.make_batch(2, 24, 0)
    outs = []
    for name, m in model.named_modules():
        leaf = name.rsplit(".", 1)[-1]
        if isinstance(m, nn.Linear) and leaf in ("query", "key", "value", "input", "weight", "c_attn"):
            m.register_forward_hook(lambda _m, _i, o, fused=(leaf == "c_attn"): outs.extend(
                o.chunk(3, dim=-1) if fused else [o]))
    with torch.no_grad():
        model(batch.inputs, batch.targets)
    assert outs, "no projection hooked"
    expected = sum(float(torch.mean(torch.max(o.double(), 1)[0])) for o in outs)
    r = res["attention_confidence_qkv"]
    assert r.status == "ok" and r.value == pytest.approx(expected, rel=1e-6)


def test_sum_sq_matches_float64_sum_of_squares():
    from zcbench.proxies._common import sum_sq

    g = torch.Generator().manual_seed(0)
    x = torch.randn(32, 64, 1024, generator=g) * 3 + 1  # offset: a plain float32 sum would drift
    exact = float(x.double().pow(2).sum())
    assert sum_sq(x) == pytest.approx(exact, rel=1e-6)
    assert sum_sq(x[0, 0]) == pytest.approx(float(x[0, 0].double().pow(2).sum()), rel=1e-6)  # 1-D


def test_options_added_later_keep_stored_runs_valid():
    """Options added after the reproduction runs (eznas variant, head_importance min_out_features,
    activation_distance layers, lpzero genotype) must not change the identity of a default run:
    the stored score files of the default computation stay the ones a rerun resumes."""
    import json
    from pathlib import Path

    repo = Path(__file__).resolve().parents[1]
    for name, opt, other in [("eznas", "variant", "lpzero"), ("head_importance", "min_out_features", 0),
                             ("activation_distance", "layers", "weight_layers"), ("lpzero", "genotype", "gpt2")]:
        metas = sorted((repo / "results" / "scores").glob(f"*/{name}/seed0-*.meta.json"))
        assert metas, name
        stored = [json.loads(m.read_text())["data"].get("proxy_options") for m in metas]
        default = zcbench.get_proxy(name)
        assert opt not in default.identity_options and default.identity_options in stored, name
        assert zcbench.get_proxy(name, **{opt: other}).identity_options[opt] == other  # a choice is recorded
