"""GPT-2 LTS space: parameter parity with the upstream table, model behaviour, sampling."""
from __future__ import annotations

import math
import random

import pytest
import torch

from zcbench import create_space
from zcbench.introspect import blocks, params_by_role, taps
from zcbench.space import Arch
from zcbench.spaces._adaptive import clean_cutoffs

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def space(data_dir):
    return create_space("gpt2", data_dir=str(data_dir))


@pytest.fixture(scope="module")
def stored(space):
    return space.stored()


def test_table_loaded(space, stored):
    assert len(stored) == 200
    assert space.metric == "valid_ppl" and space.higher_is_better is False
    assert space.metrics == ("valid_ppl", "test_ppl")
    a = space.by_id("config_0_j0")
    assert a.truth["valid_ppl"] == pytest.approx(45.022968707221274)
    assert a.truth["test_ppl"] == pytest.approx(45.11893898899607)
    assert a.meta["params"]["total"] == 8505006
    # archai's band ends: the entry above n_token cuts the list, n_token closes it
    assert a.genes["cutoffs"] == [19997, 39997, 50264]
    assert a.genes["tie_projs"] == [False, True, True]
    assert a.genes["n_head"] == [2, 4, 4, 8, 8] and a.genes["d_inner"] == [1071, 640, 1286, 800, 1871]
    assert {x.meta["tgt_len"] for x in stored} == {space.default_seq_len()} == {192}  # the table's length


def test_param_parity_all_200(space, stored):
    """The acceptance test: archai's five counts, exactly, for every stored network."""
    mismatches = []
    for a in stored:
        got = space.param_counts(a)
        want = {k: int(v) for k, v in a.meta["params"].items()}
        assert set(got) == {"total", "nonembedding", "Attn", "FFN", "AdaEmb"}
        if got != want:
            mismatches.append((a.key, got, want))
    assert not mismatches, f"{len(mismatches)} of {len(stored)} differ, e.g. {mismatches[:3]}"


def test_counts_follow_the_model(space, stored):
    """Counts are read off the built model: a wider FFN adds exactly 2*d_model+1 per unit."""
    a = space.by_id("config_0_j0")
    base = space.param_counts(a)
    g = dict(a.genes, d_inner=list(a.genes["d_inner"]))
    g["d_inner"][0] += 10
    bigger = space.param_counts(space.make_arch(g))
    assert bigger["FFN"] - base["FFN"] == 10 * (2 * g["d_model"] + 1)
    assert bigger["total"] - base["total"] == bigger["FFN"] - base["FFN"]
    assert bigger["AdaEmb"] == base["AdaEmb"] and bigger["Attn"] == base["Attn"]
    # tied tables are counted once: the total is the sum over distinct tensors
    with torch.device("meta"):
        m = space.build(a)
    assert base["total"] == sum(p.numel() for p in m.parameters())
    assert params_by_role(m).get("other", 0) == 0


def test_clean_cutoffs():
    assert clean_cutoffs([19997, 39997, 199997, 50264], 50264) == [19997, 39997, 50264]
    assert clean_cutoffs([19997, 39997, 199997, 267736], 267736) == [19997, 39997, 199997, 267736]
    assert clean_cutoffs([], 100) == [100]
    with pytest.raises(ValueError):
        clean_cutoffs([20, 10], 100)


def _uniform_nll(targets: torch.Tensor, cutoffs: list[int]) -> float:
    """NLL of the adaptive softmax when every logit is equal (what init approximates)."""
    bounds = [0] + cutoffs
    head = cutoffs[0] + len(cutoffs) - 1
    total = 0.0
    for t in targets.reshape(-1).tolist():
        band = next(i for i in range(len(cutoffs)) if t < bounds[i + 1])
        total += math.log(head) + (math.log(bounds[band + 1] - bounds[band]) if band else 0.0)
    return total / targets.numel()


def _smallest_per_kind(space, stored):
    """Smallest stored net for each div_val, plus one without embedding projection if any."""
    picks = {}
    for a in sorted(stored, key=lambda a: a.meta["params"]["total"]):
        picks.setdefault(("div_val", a.genes["div_val"]), a)
        if a.genes["div_val"] == 1 and a.genes["d_embed"] == a.genes["d_model"]:
            picks.setdefault(("noproj",), a)
    return list(picks.values())


def test_forward_backward_on_real_batch(space, stored):
    batch = space.make_batch(2, 32, seed=0)
    assert batch.inputs.shape == (2, 32) and batch.targets.shape == (2, 32)
    expected = _uniform_nll(batch.targets, stored[0].genes["cutoffs"])
    for a in _smallest_per_kind(space, stored):
        torch.manual_seed(0)
        model = space.build(a)
        out = model(batch.inputs, batch.targets)
        assert out.logits is None
        assert out.hidden.shape == (2, 32, a.genes["d_model"])
        assert torch.isfinite(out.loss)
        # at init the adaptive softmax is near-uniform: loss ~ ln(head) (+ ln(band) for tail tokens)
        assert out.loss.item() == pytest.approx(expected, abs=0.05), a.key
        # the helper is exact for equal logits: zero every output table/bias and the loss is it
        with torch.no_grad():
            torch.manual_seed(0)
            flat = space.build(a)
            for p in (*flat.wte.emb_layers.parameters(), *flat.crit.parameters()):
                p.zero_()
            assert flat(batch.inputs, batch.targets).loss.item() == pytest.approx(expected, rel=1e-6)
        out.loss.backward()
        for name, p in model.named_parameters():
            if p.grad is None:
                # only vocabulary bands that no input/target token falls in get no gradient
                # (the WikiText-2 BPE has ~26k tokens: band [39997, 50264) never occurs)
                assert name.startswith(("wte.emb_layers.", "wte.emb_projs.", "crit.out_biases.")), name
                assert not name.endswith(".0"), name
            else:
                assert torch.isfinite(p.grad).all(), (a.key, name)
        assert all(p.grad is not None for p in model.h.parameters())


def test_taps_and_roles(space, stored):
    a = space.by_id("config_0_j0")  # 5 layers, d_model 128, heads [2, 4, 4, 8, 8], d_inner varies
    torch.manual_seed(0)
    model = space.build(a)
    batch = space.make_batch(2, 16, seed=1)
    seen = {}

    def record(tap, inputs, output):
        seen[(tap.kind, tap.layer)] = tuple(output.shape)

    hooks = [t.register_forward_hook(record) for t in taps(model)]
    model(batch.inputs, batch.targets)
    for h in hooks:
        h.remove()
    g, B, T = a.genes, 2, 16
    assert len(blocks(model)) == g["n_layer"]
    assert seen[("embedding", None)] == (B, T, g["d_model"])
    for i in range(g["n_layer"]):
        H = g["n_head"][i]
        assert seen[("attn_probs", i)] == (B, H, T, T)
        assert seen[("head_out", i)] == (B, H, T, g["d_model"] // H)
        assert seen[("ffn_act", i)] == (B, T, g["d_inner"][i])
        assert seen[("block_out", i)] == (B, T, g["d_model"])
    # attention rows are causal probability distributions
    probs = []
    hook = taps(model, "attn_probs")[0].register_forward_hook(lambda m, i, o: probs.append(o.detach()) and None)
    model(batch.inputs, batch.targets)
    hook.remove()
    p = probs[0]
    assert torch.allclose(p.sum(-1), torch.ones(()), atol=1e-5)
    assert torch.all(p.triu(1) == 0)
    roles = params_by_role(model)
    assert set(roles) == {"embedding", "attn", "ffn", "norm", "output", "total"}


def test_seeded_build_and_batch_are_deterministic(space):
    a = space.by_id("config_0_j0")
    torch.manual_seed(3)
    w1 = space.build(a).h[0].attn.c_attn.weight.clone()
    torch.manual_seed(3)
    w2 = space.build(a).h[0].attn.c_attn.weight.clone()
    assert torch.equal(w1, w2)
    assert w1.std().item() == pytest.approx(0.02, rel=0.1)
    b1, b2, b3 = space.make_batch(4, 24, 7), space.make_batch(4, 24, 7), space.make_batch(4, 24, 8)
    assert torch.equal(b1.inputs, b2.inputs) and not torch.equal(b1.inputs, b3.inputs)
    assert torch.equal(b1.inputs[:, 1:], b1.targets[:, :-1])
    assert b1.info["seed"] == 7 and b1.info["corpus"] == "wikitext-2" and b1.info["tokenizer"].startswith("bpe-50264")
    assert int(b1.inputs.max()) < 50264


def test_causal_prefix_consistency(space):
    torch.manual_seed(0)
    model = space.build(space.by_id("config_0_j0")).eval()
    batch = space.make_batch(2, 24, seed=2)
    with torch.no_grad():
        full, prefix = model(batch.inputs).hidden, model(batch.inputs[:, :10]).hidden
    assert torch.allclose(full[:, :10], prefix, atol=1e-5)
    assert not torch.allclose(full[:, 10:20], model(batch.inputs[:, 10:20]).hidden, atol=1e-3)


def test_dropout_option(space, data_dir):
    s0 = create_space("gpt2", data_dir=str(data_dir), dropout=0.0)
    a = Arch(genes=space.by_id("config_0_j0").genes)  # not via s0: no need to load its table
    batch = s0.make_batch(2, 16, seed=0)
    torch.manual_seed(0)
    m = s0.build(a)
    assert torch.equal(m(batch.inputs).hidden, m.eval()(batch.inputs).hidden)  # train == eval without dropout
    s1 = create_space("gpt2", data_dir=str(data_dir))
    torch.manual_seed(0)
    m1 = s1.build(a)
    assert s1.dropout == 0.1 and m1.h[0].mlp.drop.p == 0.1 and m.h[0].mlp.drop.p == 0.0
    assert s0.param_counts(a) == s1.param_counts(a)
    with pytest.raises(ValueError, match="dropout"):
        create_space("gpt2", data_dir=str(data_dir), dropout=1.5)


def test_sequence_longer_than_positions_fails(space):
    torch.manual_seed(0)
    model = space.build(space.by_id("config_0_j0"))
    with pytest.raises(ValueError, match="positions"):
        model(torch.zeros(1, 193, dtype=torch.long))


def test_sample_respects_constraints_and_is_seeded(space, stored):
    a1 = [space.sample(random.Random(s)).id for s in range(5)]
    a2 = [space.sample(random.Random(s)).id for s in range(5)]
    assert a1 == a2 and len(set(a1)) == 5
    rng = random.Random(0)
    seen = {"n_layer": set(), "d_model": set(), "div_val": set(), "d_embed": set()}
    for _ in range(300):
        g = space.sample(rng).genes
        space.validate(g)
        assert len(g["n_head"]) == len(g["d_inner"]) == g["n_layer"]
        assert all(space.d_inner_floor(g["d_model"]) <= d <= 2048 for d in g["d_inner"])
        assert all(d >= int(1.7 * g["d_model"]) for d in g["d_inner"])
        for k in seen:
            seen[k].add(g[k])
    assert seen["n_layer"] == set(range(2, 17)) and seen["d_model"] == {64, 128, 256, 512}
    assert seen["div_val"] == {1, 2, 4} and seen["d_embed"] == {128, 256, 512}
    # every stored network is inside the sampled space
    for a in stored:
        space.validate(a.genes)
    counts = space.param_counts(space.sample(random.Random(1)))
    assert counts["total"] > counts["nonembedding"] > 0


def _changed_genes(g0: dict, g1: dict) -> list:
    """Gene-level diff; per-layer entries are genes of their own, a depth change is one gene."""
    diff = [k for k in g0 if k not in ("n_head", "d_inner", "n_layer") and g0[k] != g1[k]]
    n = min(g0["n_layer"], g1["n_layer"])
    for k in ("n_head", "d_inner"):
        diff += [(k, i) for i in range(n) if g0[k][i] != g1[k][i]]
    if g0["n_layer"] != g1["n_layer"]:
        diff.append("n_layer")
    return diff


def test_mutate_changes_exactly_one_gene(space, stored):
    rng = random.Random(0)
    kinds = set()
    for i in range(300):
        a = stored[i % len(stored)] if i % 2 else space.sample(rng)
        m = space.mutate(a, rng)
        space.validate(m.genes)
        diff = _changed_genes(a.genes, m.genes)
        assert len(diff) == 1, (a.genes, m.genes, diff)
        kinds.add(diff[0] if isinstance(diff[0], str) else diff[0][0])
    assert kinds == {"n_layer", "d_model", "n_head", "d_inner", "d_embed", "div_val"}


def test_validate_names_the_gene(space):
    g = space.by_id("config_0_j0").genes
    bad = {
        "n_layer": dict(g, n_layer=17),
        "d_model": dict(g, d_model=96),
        "n_head": dict(g, n_head=[3] * g["n_layer"]),
        "d_inner": dict(g, d_inner=[100] * g["n_layer"]),
        "d_embed": dict(g, d_embed=64),
        "div_val": dict(g, div_val=3),
        "n_token": dict(g, n_token=1000),
    }
    for gene, genes in bad.items():
        with pytest.raises(ValueError, match=gene):
            space.validate(genes)
    with pytest.raises(ValueError, match="d_inner"):  # 1.7 * 512 = 870 is the floor for d_model 512
        space.validate(dict(g, d_model=512, d_inner=[869] * g["n_layer"]))
    space.validate(dict(g, d_model=512, d_inner=[870] * g["n_layer"]))


def test_arch_ids_stable_and_unique(space, stored, data_dir):
    ids = [a.id for a in stored]
    assert len(set(ids)) == 200
    again = create_space("gpt2", data_dir=str(data_dir)).stored()
    assert [a.id for a in again] == ids
    assert space.by_id("config_0_j0").id == "7782ef9c008b"  # pinned: the gene format is part of the ID
    a = space.by_id("config_0_j1")
    assert space.make_arch(dict(a.genes)) is a  # same genes -> the stored arch with its truth


def test_summary(space):
    s = space.summary(space.by_id("config_0_j0"))
    assert s == {"n_layer": 5, "d_model": 128, "n_head": [2, 4, 4, 8, 8],
                 "d_inner": [1071, 640, 1286, 800, 1871], "seq_len": 192}
