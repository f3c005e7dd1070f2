"""Transformer-XL LTS spaces (heterogeneous and homogeneous): parity, model, sampling."""
from __future__ import annotations

import math
import random

import pytest
import torch

from zcbench import create_space
from zcbench.introspect import blocks, taps
from zcbench.spaces.transxl import RelPartialLearnableAttention, sinusoid_positions

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def hetero(data_dir):
    return create_space("transxl", data_dir=str(data_dir))


@pytest.fixture(scope="module")
def homo(data_dir):
    return create_space("transxl_homogeneous", data_dir=str(data_dir))


def test_tables_loaded(hetero, homo):
    assert len(hetero) == 200 and len(homo) == 99
    assert hetero.metric == homo.metric == "valid_ppl" and not hetero.higher_is_better
    # upstream's homogeneous table has 99 configs and parameter entries, 98 perplexities
    no_truth = [a.key for a in homo if not a.truth]
    assert no_truth == ["config_6_j4"]
    assert all(set(a.truth) == {"valid_ppl", "test_ppl"} for a in hetero)
    a = hetero.by_id("config_0_j0")
    assert a.genes["cutoffs"] == [19997, 39997, 199997, 267736] and a.genes["n_token"] == 267736
    assert a.genes["n_head"] == [4, 2, 2, 8, 8] and a.genes["d_inner"] == [710, 1021, 1683, 1053, 1748]
    h = homo.by_id("config_0_j0")
    assert isinstance(h.genes["n_head"], int) and isinstance(h.genes["d_inner"], int)
    assert homo.summary(h)["n_head"] == [h.genes["n_head"]] * h.genes["n_layer"]
    # the default minibatch length is the table's tgt_len (tgt_len is no gene here: it sizes nothing)
    for sp in (hetero, homo):
        assert {x.meta["tgt_len"] for x in sp} == {sp.default_seq_len()} == {192}
        assert "tgt_len" not in sp.by_id("config_0_j0").genes


@pytest.mark.parametrize("which", ["hetero", "homo"])
def test_param_parity_all(which, hetero, homo):
    """Acceptance: archai's five counts exactly, for all 200 and all 99 configurations."""
    space = hetero if which == "hetero" else homo
    bad = []
    for a in space:
        got = space.param_counts(a)
        want = {k: int(v) for k, v in a.meta["params"].items()}
        assert set(got) == set(want) == {"total", "nonembedding", "Attn", "FFN", "AdaEmb"}
        if got != want:
            bad.append((a.key, got, want))
    assert not bad, f"{len(bad)} of {len(space)} differ, e.g. {bad[:3]}"


def test_counting_rule_by_hand(hetero):
    """config_0_j0 (d_model 64, 5 layers, d_embed 512, div_val 2) worked out from the
    archai rules the module docstring states, including the LayerNorm double count."""
    a = hetero.by_id("config_0_j0")
    g, d, n = a.genes, 64, 5
    c = hetero.param_counts(a)
    assert c["Attn"] == n * (5 * d * d + 2 * d)  # qkv 3d^2 + r_net d^2 + o_net d^2 + attention LayerNorm
    assert c["FFN"] == sum(2 * d * f + f + d for f in g["d_inner"])
    assert c["nonembedding"] == c["Attn"] + c["FFN"] + n * 2 * (2 * d)  # both LayerNorms of every layer
    bands = [19997, 20000, 160000, 67739]
    dims = [512, 256, 128, 64]
    assert c["AdaEmb"] == sum(b * e for b, e in zip(bands, dims)) + d * sum(dims)
    softmax_only = 3 * 512 + 3 + 267736 + d * 512  # clusters, output biases, untied head projection
    u_v = n * 2 * d
    ff_norm = n * 2 * d
    assert c["total"] == c["AdaEmb"] + c["Attn"] + c["FFN"] + ff_norm + u_v + softmax_only


def test_relative_attention_matches_definition():
    """Scores ((q+u)k + (q+v) W_r R_{i-j}) / sqrt(Dh) with R the sinusoid of distance i-j."""
    torch.manual_seed(0)
    B, T, D, H = 2, 7, 16, 4
    Dh = D // H
    att = RelPartialLearnableAttention(D, H)
    x, u, v = torch.randn(B, T, D), torch.randn(H, Dh), torch.randn(H, Dh)
    r = sinusoid_positions(T, D, x.device, x.dtype)
    got = []
    att.attn_probs.register_forward_hook(lambda m, i, o: got.append(o))
    att(x, r, u, v)
    q, k, _ = att.qkv_net(x).view(B, T, 3, H, Dh).unbind(2)
    ref = torch.full((B, H, T, T), float("-inf"))
    for i in range(T):
        for j in range(i + 1):
            rk = att.r_net(r[T - 1 - (i - j)]).view(H, Dh)  # row T-1-m embeds distance m
            ref[:, :, i, j] = (((q[:, i] + u) * k[:, j]).sum(-1) + ((q[:, i] + v) * rk).sum(-1)) / math.sqrt(Dh)
    assert torch.allclose(got[0], ref.softmax(-1), atol=1e-6)


def _uniform_nll(targets, cutoffs):
    bounds = [0] + cutoffs
    head = cutoffs[0] + len(cutoffs) - 1
    total = 0.0
    for t in targets.reshape(-1).tolist():
        band = next(i for i in range(len(cutoffs)) if t < bounds[i + 1])
        total += math.log(head) + (math.log(bounds[band + 1] - bounds[band]) if band else 0.0)
    return total / targets.numel()


@pytest.mark.parametrize("which", ["hetero", "homo"])
def test_forward_backward_prefix_consistent(which, hetero, homo):
    space = hetero if which == "hetero" else homo
    batch = space.make_batch(2, 24, seed=0)
    assert batch.info["vocab_cap"] == 267736 and batch.info["tokenizer"].startswith("bpe-267736")
    expected = _uniform_nll(batch.targets, space.FIXED["cutoffs"])
    picks = {}
    for a in sorted(space, key=lambda a: a.meta["params"]["total"]):
        picks.setdefault(a.genes["div_val"], a)
    for a in picks.values():
        torch.manual_seed(0)
        model = space.build(a)
        out = model(batch.inputs, batch.targets)
        assert out.hidden.shape == (2, 24, a.genes["d_model"]) and torch.isfinite(out.loss)
        assert out.loss.item() == pytest.approx(expected, abs=0.05), a.key
        out.loss.backward()
        assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.layers.parameters())
        # causal + relative positions: a prefix's hidden states do not depend on later tokens
        model.eval()
        with torch.no_grad():
            full = model(batch.inputs).hidden
            prefix = model(batch.inputs[:, :10]).hidden
        assert torch.allclose(full[:, :10], prefix, atol=1e-5), a.key


def test_taps(hetero):
    a = hetero.by_id("config_0_j0")
    torch.manual_seed(0)
    model = hetero.build(a)
    seen = {}

    def record(tap, inputs, output):
        seen[(tap.kind, tap.layer)] = tuple(output.shape)

    for t in taps(model):
        t.register_forward_hook(record)
    batch = hetero.make_batch(2, 12, seed=3)
    model(batch.inputs, batch.targets)
    g, B, T = a.genes, 2, 12
    assert len(blocks(model)) == g["n_layer"] == 5
    assert seen[("embedding", None)] == (B, T, g["d_model"])
    for i in range(g["n_layer"]):
        H = g["n_head"][i]
        assert seen[("attn_probs", i)] == (B, H, T, T)
        assert seen[("head_out", i)] == (B, H, T, g["d_model"] // H)
        assert seen[("ffn_act", i)] == (B, T, g["d_inner"][i])
        assert seen[("block_out", i)] == (B, T, g["d_model"])


def test_init_follows_archai(hetero):
    torch.manual_seed(0)
    m = hetero.build(hetero.by_id("config_0_j1"))
    ln = m.layers[0].ff_norm.weight
    assert ln.mean().item() == pytest.approx(1.0, abs=0.01) and 0.01 < ln.std().item() < 0.03
    assert m.layers[0].attn.qkv_net.weight.std().item() == pytest.approx(0.02, rel=0.1)
    assert m.word_emb.emb_projs[0].std().item() == pytest.approx(0.01, rel=0.1)


@pytest.mark.parametrize("which", ["hetero", "homo"])
def test_sample_mutate_validate(which, hetero, homo):
    space = hetero if which == "hetero" else homo
    assert [space.sample(random.Random(s)).id for s in range(4)] == [space.sample(random.Random(s)).id
                                                                     for s in range(4)]
    rng = random.Random(1)
    layers = set()
    for _ in range(200):
        a = space.sample(rng)
        space.validate(a.genes)
        layers.add(a.genes["n_layer"])
        inner = space.summary(a)["d_inner"]
        assert all(max(512, 2 * a.genes["d_model"]) <= d <= 2048 for d in inner)
        m = space.mutate(a, rng)
        space.validate(m.genes)
        changed = [k for k in a.genes if k not in ("n_head", "d_inner") and a.genes[k] != m.genes[k]]
        for k in ("n_head", "d_inner"):
            x, y = a.genes[k], m.genes[k]
            if isinstance(x, int):
                changed += [k] if x != y else []
            else:
                changed += [(k, i) for i in range(min(len(x), len(y))) if x[i] != y[i]]
        assert len(changed) == 1, (a.genes, m.genes)
    assert layers == set(space.N_LAYER)
    for a in space:  # every stored net is inside its space
        space.validate(a.genes)
    g = space.by_id("config_0_j0").genes
    with pytest.raises(ValueError, match="d_inner"):
        space.validate(dict(g, d_model=256, d_inner=511 if space.homogeneous else [511] * g["n_layer"]))
    with pytest.raises(ValueError, match="n_layer"):
        space.validate(dict(g, n_layer=9))
    with pytest.raises(ValueError, match="cutoffs"):
        space.validate(dict(g, cutoffs=[20000, 267736]))
    with pytest.raises(ValueError, match="n_head"):
        space.validate(dict(g, n_head=[4] * g["n_layer"] if space.homogeneous else 4))


def test_ids_stable_and_unique(hetero, homo, data_dir):
    assert len({a.id for a in hetero}) == 200 and len({a.id for a in homo}) == 99
    again = create_space("transxl", data_dir=str(data_dir))
    assert [a.id for a in again] == [a.id for a in hetero]
    assert hetero.by_id("config_0_j0").id == "99eb937d7041"
    assert homo.by_id("config_0_j0").id == "d6cdaf3de8c1"
