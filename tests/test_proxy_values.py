"""Value checks of the proxies' attention- and transformer-specific branches (issue #22).

Each test recomputes a proxy on the tiny attention model of ``test_engine`` (``TinyLM``: token +
position embeddings, pre-LN blocks with multi-head softmax attention and a GELU FFN, final norm,
linear head) *by hand*: ``ref_forward`` below re-implements the network from its parameters with
plain tensor operations (no taps, no engine, no ``functional_call``), and each proxy's formula is
written out again here. A proxy that drops or alters its attention term fails these tests;
docs/testing.md lists which test checks which formula and the mutations tried.
"""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

import zcbench
from zcbench.proxy import Context

from test_engine import VOCAB, TinySpace, run, tiny_arch

torch.set_num_threads(1)
B, T = 4, 12


def _model_and_params(arch, seed=0):
    torch.manual_seed(seed)  # the engine builds the model right after seeding with the run seed
    model = TinySpace().build(arch)
    return model, {n: p.detach().clone() for n, p in model.named_parameters()}


def _linear(x, P, name):
    y = x @ P[f"{name}.weight"].T
    return y + P[f"{name}.bias"] if f"{name}.bias" in P else y


def ref_forward(P, inputs, arch, gates=None, record=None):
    """TinyLM's forward from its parameter dict ``P`` (any dtype). ``gates[l]``: (B, H) multipliers
    of block l's head outputs (Michel et al.'s xi). ``record`` collects per block the attention
    probabilities (B, H, T, T) and head outputs (B, H, T, Dh). Returns the logits (B, T, V)."""
    g = arch.genes
    D, H, L = g["d_model"], g["n_head"], g["n_layer"]
    Dh = D // H
    Tn = inputs.shape[1]
    x = P["wte.weight"][inputs] + P["wpe.weight"][torch.arange(Tn)][None]
    for layer in range(L):
        pre = f"blocks.{layer}"

        def ln(t, name):
            return F.layer_norm(t, (D,), P[f"{name}.weight"], P[f"{name}.bias"], eps=1e-5)

        h = ln(x, f"{pre}.ln1")
        if g.get("fused"):
            q, k, v = _linear(h, P, f"{pre}.attn.c_attn").split(D, dim=-1)
        else:
            q, k, v = (_linear(h, P, f"{pre}.attn.{n}") for n in ("query", "key", "value"))
        q, k, v = (t.reshape(t.shape[0], Tn, H, Dh).permute(0, 2, 1, 3) for t in (q, k, v))
        scores = torch.einsum("bhid,bhjd->bhij", q, k) / math.sqrt(Dh)
        probs = torch.exp(scores - scores.amax(-1, keepdim=True))
        probs = probs / probs.sum(-1, keepdim=True)
        heads = torch.einsum("bhij,bhjd->bhid", probs, v)
        if record is not None:
            record.append((probs.detach(), heads.detach()))
        if gates is not None:
            heads = heads * gates[layer][:, :, None, None]
        x = x + _linear(heads.permute(0, 2, 1, 3).reshape(-1, Tn, D), P, f"{pre}.attn.proj")
        f = _linear(ln(x, f"{pre}.ln2"), P, f"{pre}.ffn.fc")
        f = 0.5 * f * (1 + torch.erf(f / math.sqrt(2)))  # exact GELU
        x = x + _linear(f, P, f"{pre}.ffn.out")
    h = F.layer_norm(x, (D,), P["ln_f.weight"], P["ln_f.bias"], eps=1e-5)
    return h @ P["head.weight"].T


def _weight_layers(arch):
    """Linear weights of TinyLM except the head, with whether they belong to the attention."""
    names = []
    for layer in range(arch.genes["n_layer"]):
        att = ["c_attn"] if arch.genes.get("fused") else ["query", "key", "value"]
        names += [(f"blocks.{layer}.attn.{n}.weight", True) for n in att + ["proj"]]
        names += [(f"blocks.{layer}.ffn.{n}.weight", False) for n in ("fc", "out")]
    return names


def test_ref_forward_is_the_model():
    """The hand re-implementation is the network (else the checks below would prove nothing)."""
    arch = tiny_arch()
    model, P = _model_and_params(arch)
    batch = TinySpace().make_batch(B, T, 0)
    torch.testing.assert_close(ref_forward(P, batch.inputs, arch), model.eval()(batch.inputs).logits)


# ---- synflow, logsynflow, DSS on a transformer: the linearised all-ones pass ---------------
def _synflow_reference(arch, seed=0):
    """|theta| in float64, one example of token 1 at every position, R = sum of the logits."""
    _, P = _model_and_params(arch, seed)
    A = {n: p.abs().double().requires_grad_(True) for n, p in P.items()}
    R = ref_forward(A, torch.ones(1, T, dtype=torch.long), arch).sum()
    layers = _weight_layers(arch)
    grads = torch.autograd.grad(R, [A[n] for n, _ in layers])
    return [(A[n].detach(), g, is_attn) for (n, is_attn), g in zip(layers, grads)]


@pytest.mark.parametrize("fused", [False, True])
def test_synflow_logsynflow_dss_on_a_tiny_transformer(fused):
    arch = tiny_arch(fused=fused)
    res = run(TinySpace(), arch, ["synflow", "logsynflow", "dss"], batch_size=B, seq_len=T)
    ref = _synflow_reference(arch)
    synflow = sum(float((w * g).abs().sum()) for w, g, _ in ref)
    logsynflow = sum(float((w * torch.log1p(g.abs())).abs().sum()) for w, g, _ in ref)

    def nuc(m):
        return float(torch.linalg.svdvals(m).sum())

    attn_term = sum(nuc(g) * nuc(w) for w, g, a in ref if a)
    mlp_term = sum(float((w * g).abs().sum()) for w, g, a in ref if not a)
    assert res["synflow"].value == pytest.approx(synflow, rel=1e-9)
    assert res["logsynflow"].value == pytest.approx(logsynflow, rel=1e-9)
    # rel 1e-7, not 1e-9: ``_common.nuclear`` takes singular values as square roots of Gram
    # eigenvalues, so each null direction of a rank-deficient matrix (these synflow gradients have
    # rank <= 12 of 16) adds ~sqrt(eps) * sigma_max: measured 5e-9 to 1.2e-8 relative per layer here
    assert res["dss"].value == pytest.approx(attn_term + mlp_term, rel=1e-7)
    # both of DSS's terms carry weight here: dropping either one fails the check above
    assert min(attn_term, mlp_term) > 1e-3 * (attn_term + mlp_term)
    # and the attention term is not the saliency term in disguise
    sal_on_attn = sum(float((w * g).abs().sum()) for w, g, a in ref if a)
    assert abs(attn_term - sal_on_attn) > 1e-3 * attn_term


# ---- confidences and head importance from the attention itself ---------------------------
@pytest.mark.parametrize("fused", [False, True])
def test_attention_and_softmax_confidence_from_hand_attention(fused):
    arch = tiny_arch(fused=fused)
    res = run(TinySpace(), arch, ["attention_confidence", "softmax_confidence"], batch_size=B, seq_len=T)
    _, P = _model_and_params(arch)
    rec = []
    ref_forward(P, TinySpace().make_batch(B, T, 0).inputs, arch, record=rec)
    # Voita et al.: mean over (b, h, query i) of the largest attention weight of the row
    softmax_conf = sum(float(p.double().amax(dim=3).mean()) for p, _ in rec)
    # head confidence on the heads' outputs: mean over (b, h, feature d) of the max over tokens
    attention_conf = sum(float(h.double().amax(dim=2).mean()) for _, h in rec)
    assert res["softmax_confidence"].value == pytest.approx(softmax_conf, rel=1e-6)
    assert res["attention_confidence"].value == pytest.approx(attention_conf, rel=1e-6)


def test_head_importance_is_michels_per_example_gate_gradient():
    """I_{l,h} = E_x |dL(x)/dxi_{l,h}|, each example's own loss and gates, one example at a time."""
    arch = tiny_arch()
    res = run(TinySpace(), arch, ["head_importance"], batch_size=B, seq_len=T)
    _, P = _model_and_params(arch)
    batch = TinySpace().make_batch(B, T, 0)
    L, H = arch.genes["n_layer"], arch.genes["n_head"]
    total = torch.zeros(L, H, dtype=torch.float64)
    for b in range(B):
        gates = [torch.ones(1, H, requires_grad=True) for _ in range(L)]
        logits = ref_forward(P, batch.inputs[b:b + 1], arch, gates=gates)
        loss = F.cross_entropy(logits.reshape(-1, VOCAB), batch.targets[b:b + 1].reshape(-1))
        for layer, g in enumerate(torch.autograd.grad(loss, gates)):
            total[layer] += g[0].double().abs()
    assert res["head_importance"].value == pytest.approx(float(total.sum() / B), rel=1e-5)


# ---- ZiCo's round-off tolerance ----------------------------------------------------------
def _zico_ctx(g1, g2):
    model = torch.nn.Sequential(torch.nn.Linear(g1.shape[1], g1.shape[0], bias=False))
    return Context(space=None, arch=None, seed=0, batch_size=2, seq_len=2, model=model,
                   multi_batch_grads=[{"0": g1}, {"0": g2}])


def _zico(ctx, **opt):
    with torch.no_grad():
        return float(zcbench.get_proxy("zico", **opt).score(ctx))


def test_zico_tol_skips_round_off_ties_and_is_stable():
    g1 = torch.tensor([[1.0, 2.0, -1.0, 0.5]])
    g2 = torch.tensor([[3.0, 2.0, 1.0, 0.5]])
    g2[0, 3] = torch.nextafter(g2[0, 3], torch.tensor(1.0))  # element 3: the samples differ by one ulp
    # tol=0 (the official rule): unit 3's ratio (|g1|+|g2|)/|g1-g2| = 1 / 2^-24 swamps the sum
    exact = math.log(4 / 2 + 2 / 2 + float((g1[0, 3] + g2[0, 3]) / (g2[0, 3] - g1[0, 3])))
    assert _zico(_zico_ctx(g1, g2)) == pytest.approx(exact, rel=1e-6) and exact > math.log(1e6)
    # tol=1e-4: unit 3 counts as sigma = 0 (a round-off tie), like unit 1's exact tie
    assert _zico(_zico_ctx(g1, g2), tol=1e-4) == pytest.approx(math.log(4 / 2 + 2 / 2))
    # moving unit 3 by another ulp moves the tol=0 score by ~log 2 and the tol=1e-4 score not at all
    g3 = g2.clone()
    g3[0, 3] = torch.nextafter(g3[0, 3], torch.tensor(1.0))
    assert abs(_zico(_zico_ctx(g1, g3)) - _zico(_zico_ctx(g1, g2))) > 0.5
    assert _zico(_zico_ctx(g1, g3), tol=1e-4) == _zico(_zico_ctx(g1, g2), tol=1e-4)
    # a real spread above tol still counts, with the same value as the official rule
    g4 = torch.tensor([[1.0, 2.0, -1.0, 0.5]])
    g5 = torch.tensor([[3.0, 2.0, 1.0, 0.6]])
    assert _zico(_zico_ctx(g4, g5), tol=1e-4) == pytest.approx(_zico(_zico_ctx(g4, g5)), rel=1e-6)


def test_zico_tol_is_validated_and_stays_out_of_the_default_identity():
    import json
    from pathlib import Path

    assert "tol" not in zcbench.get_proxy("zico").identity_options
    metas = sorted((Path(__file__).resolve().parents[1] / "results" / "scores").glob("gpt2/zico/seed0-*.meta.json"))
    stored = [json.loads(m.read_text())["data"].get("proxy_options") for m in metas]
    assert zcbench.get_proxy("zico").identity_options in stored  # a default rerun resumes the stored runs
    assert zcbench.get_proxy("zico", tol=1e-4).identity_options["tol"] == 1e-4
    with pytest.raises(ValueError, match="tol"):
        zcbench.get_proxy("zico", tol=-1)
