"""FlexiBERT / NAS-Bench-BERT space: parameter facts, models on real text, sampling, IDs, targets."""
from __future__ import annotations

import json
import math
import random
from collections import Counter

import pytest
import torch

from zcbench.introspect import blocks, index_taps, params_by_role, taps
from zcbench.registry import create_space, list_spaces
from zcbench.space import Arch
from zcbench.spaces.flexibert import (
    FIRST_WORD_ID,
    METRICS,
    PUBLISHED_SPACE_SIZE,
    FlexiBertRTD,
    flat_genes,
    layer_choices,
    space_size,
    validate_genes,
)

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def space(data_dir):
    return create_space("flexibert", data_dir=str(data_dir))


@pytest.fixture(scope="module")
def records(space):
    return space.records()


def _ops(genes):
    return [(layer["operation_type"], layer["operation_parameter"]) for layer in genes["encoder_layers"]]


# ---- stored table ---------------------------------------------------------------
def test_registered_and_table(space, records):
    assert "flexibert" in list_spaces()
    assert space.metric == "glue" and space.higher_is_better and space.metrics == METRICS
    assert len(records) == 500 and [k for k, _, _ in records] == [str(i) for i in range(500)]
    stored = space.stored()
    assert len(stored) == len({a.id for a in stored}) == 491  # 9 networks were trained twice
    twice = [a for a in stored if len(a.meta["runs"]) == 2]
    assert len(twice) == 9
    a = space.by_id("222")  # the second run of the network first stored as "60"
    assert a.key == "60" and a.meta["keys"] == ["60", "222"]
    assert a.truth["glue"] == pytest.approx((67.75875 + 65.74) / 2)
    a0 = space.by_id("0")
    assert a0.truth["glue"] == pytest.approx(74.73375) and a0.truth["cola"] == pytest.approx(42.69)
    # glue is the mean of the eight task scores in every record
    for _, _, scores in records:
        assert scores["glue"] == pytest.approx(sum(scores[m] for m in METRICS[1:]) / 8, abs=1e-6)


# ---- parameter facts ------------------------------------------------------------
def test_param_facts_released_by_authors(space):
    """Authors' PyTorch counts: id 0 -> 13,330,176, id 1 -> 11,106,199 (BERT_results_activation.csv)."""
    for key, expected in (("0", 13_330_176), ("1", 11_106_199)):
        pc = space.param_counts(space.by_id(key))
        assert pc["total"] == expected
        assert pc["total"] == pc["embedding"] + pc["attn"] + pc["ffn"] + pc["norm"]
        assert pc["nonembedding"] == pc["total"] - pc["embedding"]
        # word+position+type tables (30522+512+2) x 128 plus the 128->256 projection
        assert pc["embedding"] == (30522 + 512 + 2) * 128 + 128 * 256 + 256
    # the network the genes describe: id 0 has FFN widths 1024, 512, 512, 1024 with depths 3, 3, 3, 1
    pc0 = space.param_counts(space.by_id("0"))
    lin = lambda i, o: i * o + o  # noqa: E731
    ffn = ((lin(256, 1024) + 2 * lin(1024, 1024) + lin(1024, 256))
           + 2 * (lin(256, 512) + 2 * lin(512, 512) + lin(512, 256))
           + (lin(256, 1024) + lin(1024, 256)))
    assert pc0["genes_ffn"] == ffn == 4_726_784
    assert pc0["genes_attn"] == pc0["attn"] and pc0["genes_total"] == 9_657_088
    assert pc0["head"] == lin(256, 256) + lin(256, 1)


def test_upstream_rule_equals_genes_when_genes_match_the_defaults(space):
    for a in space.stored():
        layers = a.genes["encoder_layers"]
        if a.genes["hidden_size"] == 256 and all(layer["feed_forward_dimension"] == 1024 for layer in layers):
            pc = space.param_counts(a)
            assert pc["genes_total"] == pc["total"]
            break
    else:
        pytest.fail("no stored network with hidden 256 and all FFN widths 1024")
    small = next(a for a in space.stored() if a.genes["hidden_size"] == 128)
    pc = space.param_counts(small)
    assert pc["genes_embedding"] == (30522 + 512 + 2) * 128  # no projection when hidden == 128
    assert pc["total"] > pc["genes_total"]  # the upstream rule pins hidden 256


def test_all_500_records_build_on_meta(space, records):
    for key, genes, _ in records:
        arch = Arch(genes=genes)
        with torch.device("meta"):
            model = space.build(arch)
        assert all(p.is_meta for p in model.parameters())
        layers = genes["encoder_layers"]
        assert len(blocks(model)) == len(layers)
        kinds = Counter(t.kind for t in taps(model))
        assert kinds["embedding"] == 1 and kinds["block_out"] == kinds["head_out"] == len(layers), key
        assert kinds["attn_probs"] == sum(t != "LT" for t, _ in _ops(genes)), key
        assert kinds["ffn_act"] == sum(layer["num_feed_forward"] for layer in layers), key
        roles = params_by_role(model)
        assert set(roles) == {"embedding", "attn", "ffn", "norm", "output", "total"}, key


# ---- forward / backward on real text --------------------------------------------
def _subset(space):
    """A few stored networks covering every operation and both hidden sizes."""
    all_ops = {(c["operation_type"], c["operation_parameter"]) for c in layer_choices()}
    chosen, need = [], {(op, h) for op in all_ops for h in (128, 256)}
    for a in space.stored():
        got = {(op, a.genes["hidden_size"]) for op in _ops(a.genes)} & need
        if got:
            chosen.append(a)
            need -= got
        if not need:
            return chosen
    raise AssertionError(f"no stored network covers {need}")


def test_forward_backward_subset(space):
    batch = space.make_batch(2, 24, seed=3)
    subset = _subset(space)
    assert len(subset) <= 8
    for arch in subset:
        torch.manual_seed(0)
        model = space.build(arch)
        index_taps(model)
        seen = []
        hooks = [t.register_forward_hook(lambda m, i, o: seen.append((m.kind, m.layer, o))) for t in taps(model)]
        out = model(batch.inputs, batch.targets)
        for h in hooks:
            h.remove()
        assert torch.isfinite(out.loss) and 0.3 < out.loss.item() < 1.5
        out.loss.backward()
        grads = [p.grad for p in model.parameters()]
        assert all(g is not None and torch.isfinite(g).all() for g in grads)
        d = arch.genes["hidden_size"]
        b, t = batch.inputs.shape
        assert out.hidden.shape == (b, t, d) and out.logits.shape == (b, t)
        layers = arch.genes["encoder_layers"]
        last_block = [o for k, _, o in seen if k == "block_out"][-1]
        assert torch.equal(out.hidden, last_block)
        for kind, i, o in seen:
            if kind in ("embedding", "block_out"):
                assert o.shape == (b, t, d)
                continue
            layer = layers[i]
            h = layer["num_operation_heads"]
            if kind == "head_out":
                assert o.shape == (b, h, t, d // h)
            elif kind == "attn_probs":
                n = h if layer["operation_type"] == "SA" else max(1, h // 2)
                assert layer["operation_type"] != "LT" and o.shape == (b, n, t, t)
                assert torch.allclose(o.sum(-1), torch.ones(b, n, t))
            elif kind == "ffn_act":
                assert o.shape == (b, t, layer["feed_forward_dimension"])


def test_upstream_variant_builds_what_the_notebook_built(data_dir):
    sp = create_space("flexibert", data_dir=str(data_dir), variant="upstream_pt")
    small = next(a for a in sp.stored() if a.genes["hidden_size"] == 128)
    torch.manual_seed(0)
    model = sp.build(small)
    assert model.backbone.hidden == 256
    assert params_by_role(model.backbone)["total"] == sp.param_counts(small)["total"]
    for layer, spec in zip(model.backbone.layers, small.genes["encoder_layers"]):
        assert [up.out_features for up in layer.ffn.ups] == [1024] * spec["num_feed_forward"]
    batch = sp.make_batch(2, 16, 0)
    out = model(batch.inputs, batch.targets)
    assert torch.isfinite(out.loss) and out.hidden.shape[-1] == 256
    with pytest.raises(ValueError, match="variant"):
        create_space("flexibert", data_dir=str(data_dir), variant="tf")


# ---- minibatch --------------------------------------------------------------------
def test_make_batch_is_seeded_bert_style_rtd(space):
    a, b = space.make_batch(3, 40, seed=7), space.make_batch(3, 40, seed=7)
    c = space.make_batch(3, 40, seed=8)
    assert torch.equal(a.inputs, b.inputs) and torch.equal(a.targets, b.targets)
    assert not torch.equal(a.inputs, c.inputs)
    x, y = a.inputs, a.targets
    assert x.dtype == torch.long and x.shape == y.shape == (3, 40)
    assert (x[:, 0] == 101).all() and (x[:, -1] == 102).all()  # [CLS] ... [SEP]
    assert (y[:, 0] == 0).all() and (y[:, -1] == 0).all()
    n_corrupt = round(0.15 * 38)
    assert ((y.sum(1) <= n_corrupt) & (y.sum(1) >= n_corrupt - 1)).all()
    assert (x[y == 1] >= FIRST_WORD_ID).all() and (x < 30522).all()
    assert a.info["seed"] == 7 and a.info["objective"] == "electra-rtd"
    with pytest.raises(ValueError):
        space.make_batch(2, 600, seed=0)


# ---- space size, sampling, mutation, IDs ---------------------------------------------
def test_space_size_matches_publication(data_dir):
    published = json.loads((data_dir / "flexibert" / "search_space.json").read_text())
    assert len(layer_choices()) == len(layer_choices(published)) == 48
    assert space_size() == space_size(published) == PUBLISHED_SPACE_SIZE == 10_621_440
    assert space_size() == 2 * (48 ** 2 + 48 ** 4)
    # every 2-layer network is distinct and valid: 2 hidden sizes x 48^2 IDs
    ids = set()
    for h in (128, 256):
        for l1 in layer_choices():
            for l2 in layer_choices():
                genes = {"hidden_size": h, "encoder_layers": [l1, l2]}
                validate_genes(genes)
                ids.add(Arch(genes=genes).id)
    assert len(ids) == 2 * 48 ** 2


def test_sample_is_valid_and_uniform(space):
    rng = random.Random(0)
    archs = [space.sample(rng) for _ in range(300)]
    for a in archs:
        space.validate(a.genes)
    rng2 = random.Random(0)
    assert [a.id for a in archs] == [space.sample(rng2).id for _ in range(300)]
    hidden = Counter(a.genes["hidden_size"] for a in archs)
    assert 110 < hidden[128] < 190
    # uniform over networks: 4-layer ones outnumber 2-layer ones 48^2 : 1
    assert sum(len(a.genes["encoder_layers"]) == 4 for a in archs) >= 298
    ops = Counter(op for a in archs for op in _ops(a.genes))
    n = sum(ops.values())
    assert len(ops) == 6 and all(abs(c - n / 6) < 5 * math.sqrt(n / 6) for c in ops.values())


def test_mutate_changes_exactly_one_gene(space):
    rng = random.Random(1)
    kinds = Counter()
    arch = space.by_id("1")
    for _ in range(300):
        child = space.mutate(arch, rng)
        space.validate(child.genes)
        before, after = flat_genes(arch.genes), flat_genes(child.genes)
        if before["num_layers"] != after["num_layers"]:
            changed = ["num_layers"]
            kept = min(before["num_layers"], after["num_layers"])
            assert child.genes["encoder_layers"][:kept] == arch.genes["encoder_layers"][:kept]
            assert child.genes["hidden_size"] == arch.genes["hidden_size"]
        else:
            changed = [k for k in before if before[k] != after[k]]
        assert len(changed) == 1 and child.id != arch.id
        kinds[changed[0].split(".")[-1]] += 1
        arch = child
    assert set(kinds) == {"hidden_size", "num_layers", "operation", "num_operation_heads",
                          "feed_forward_dimension", "num_feed_forward"}


def test_ids_are_stable_and_tie_back_to_the_table(space, records):
    _, genes0, _ = records[0]
    assert space.by_id("0").id == "13a57d62aff4"
    again = space.make_arch(json.loads(json.dumps(genes0)))
    assert again.id == "13a57d62aff4" and again.key == "0" and again.truth["glue"] == pytest.approx(74.73375)
    s = space.summary(again)
    assert s == {"n_layer": 4, "d_model": 256, "n_head": [4, 2, 4, 4], "d_inner": [1024, 512, 512, 1024],
                 "seq_len": 128, "d_embed": 128, "n_ffn": [3, 3, 3, 1],
                 "operations": ["SA:WMA", "LT:DCT", "SA:SDP", "SA:SDP"]}


@pytest.mark.parametrize("mutation, gene", [
    (lambda g: g.update(hidden_size=512), "hidden_size"),
    (lambda g: g.update(hidden_size=256.0), "hidden_size"),
    (lambda g: g["encoder_layers"].pop(), "encoder_layers"),
    (lambda g: g["encoder_layers"][0].update(operation_type="DSC", operation_parameter="5"), "operation_parameter"),
    (lambda g: g["encoder_layers"][0].update(operation_type="CONV"), "operation_type"),
    (lambda g: g["encoder_layers"][1].update(num_operation_heads=8), "num_operation_heads"),
    (lambda g: g["encoder_layers"][1].update(feed_forward_dimension=2048), "feed_forward_dimension"),
    (lambda g: g["encoder_layers"][1].update(num_feed_forward=2), "num_feed_forward"),
    (lambda g: g["encoder_layers"][1].pop("num_feed_forward"), "encoder_layers\\[1\\]"),
])
def test_validate_names_the_offending_gene(space, records, mutation, gene):
    genes = json.loads(json.dumps(records[0][1]))
    mutation(genes)
    with pytest.raises(ValueError, match=gene):
        space.validate(genes)


# ---- targets ----------------------------------------------------------------------
def test_target_selection(data_dir):
    sp = create_space("flexibert", data_dir=str(data_dir), target="cola")
    a = sp.by_id("0")
    assert sp.metric == "cola" and sp.truth(a) == pytest.approx(42.69)
    assert sp.truth(a, "sts") == pytest.approx(84.59)
    for m in METRICS:
        assert m in a.truth
    with pytest.raises(ValueError, match="unknown target"):
        create_space("flexibert", data_dir=str(data_dir), target="squad")


def test_model_rejects_too_long_input(space):
    model = FlexiBertRTD(space.by_id("3").genes)
    with pytest.raises(ValueError, match="position"):
        model(torch.zeros(1, 513, dtype=torch.long))


@pytest.mark.slow
def test_all_stored_forward(space):
    batch = space.make_batch(2, 32, seed=0)
    for arch in space.stored():
        torch.manual_seed(0)
        model = space.build(arch)
        with torch.no_grad():
            out = model(batch.inputs, batch.targets)
        assert torch.isfinite(out.loss) and torch.isfinite(out.hidden).all(), arch.key
