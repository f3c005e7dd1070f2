"""AutoFormer ViT space: choice sets, counting, sampling/mutation, models and real-image batches."""
from __future__ import annotations

import json
import math
import random
from collections import Counter

import pytest
import torch
import torch.nn.functional as F

import zcbench
from zcbench.introspect import blocks, index_taps, params_by_role, taps
from zcbench.spaces.autoformer import (HEAD_DIM, IMAGENET_MEAN, IMAGENET_STD, VARIANTS, AutoFormerSpace,
                                       _rel_index, param_count_formula)

torch.set_num_threads(1)

# Parameter counts printed by AutoFormer's own get_sampled_params_numel (supernet code with
# --gp --change_qkv --relative_position, qkv_bias=True) in public search logs:
#  * tiny, ImageNet head (1000 classes): ZeyuZhao-git/Autoformer_based_code, all_output/1/output.log
#  * base, CIFAR-10 head (10 classes): intel/e2eAIOK, e2eAIOK/DeNas/README.md (supernet-B evolution log)
UPSTREAM_COUNTS = [
    ("tiny", 1000, dict(embed_dim=192, depth=14,
                        mlp_ratio=[4.0, 3.5, 3.5, 3.5, 4.0, 3.5, 4.0, 4.0, 3.5, 4.0, 3.5, 3.5, 3.5, 3.5],
                        num_heads=[3, 4, 3, 3, 4, 4, 3, 4, 4, 3, 4, 3, 4, 4]), 6776776),
    ("tiny", 1000, dict(embed_dim=192, depth=14,
                        mlp_ratio=[4.0, 3.5, 3.5, 3.5, 4.0, 3.5, 3.5, 4.0, 3.5, 4.0, 4.0, 3.5, 3.5, 3.5],
                        num_heads=[3, 3, 3, 3, 3, 3, 3, 4, 3, 4, 3, 3, 3, 3]), 6480712),
    ("base", 10, dict(embed_dim=624, depth=15,
                      mlp_ratio=[3.5, 3.0, 3.5, 4.0, 3.5, 3.5, 3.5, 3.5, 3.5, 4.0, 3.0, 4.0, 3.0, 3.5, 3.0],
                      num_heads=[9, 10, 9, 10, 9, 9, 10, 10, 9, 10, 10, 10, 9, 10, 10]), 64340602),
    ("base", 10, dict(embed_dim=624, depth=15,
                      mlp_ratio=[3.0, 4.0, 3.0, 3.0, 4.0, 3.5, 4.0, 4.0, 4.0, 3.0, 4.0, 3.5, 3.5, 3.0, 4.0],
                      num_heads=[10, 9, 9, 9, 9, 9, 10, 9, 9, 10, 10, 9, 10, 10, 9]), 65029858),
    ("base", 10, dict(embed_dim=624, depth=15,
                      mlp_ratio=[4.0, 3.0, 4.0, 4.0, 4.0, 3.5, 3.5, 3.0, 4.0, 3.5, 3.5, 4.0, 3.0, 3.5, 3.0],
                      num_heads=[9, 9, 9, 10, 10, 9, 9, 9, 9, 9, 9, 10, 10, 9, 9]), 64709986),
]


@pytest.fixture(scope="module")
def spaces():
    return {v: AutoFormerSpace(variant=v) for v in VARIANTS}


def gene_diffs(a: dict, b: dict) -> list[str]:
    """Names of genes that differ; per-layer genes compared over the common layers."""
    out = [k for k in ("embed_dim", "depth") if a[k] != b[k]]
    for k in ("num_heads", "mlp_ratio"):
        out += [f"{k}[{i}]" for i, (x, y) in enumerate(zip(a[k], b[k])) if x != y]
    return out


# ---- registry and config -------------------------------------------------
def test_registered_with_options_and_no_stored_truth():
    sp = zcbench.create_space("autoformer", variant="small", num_classes=100)
    assert isinstance(sp, AutoFormerSpace) and sp.variant == "small" and sp.num_classes == 100
    assert sp.modality == "image" and sp.metric == "top1" and sp.higher_is_better
    assert sp.load_stored() == [] and len(sp) == 0
    with pytest.raises(ValueError, match="unknown variant 'huge'"):
        AutoFormerSpace(variant="huge")
    with pytest.raises(ValueError, match="unknown target"):
        AutoFormerSpace(target="ppl")


# ---- counting ------------------------------------------------------------
@pytest.mark.parametrize("variant,num_classes,genes,expected", UPSTREAM_COUNTS)
def test_param_counts_match_autoformer_code_exactly(variant, num_classes, genes, expected):
    sp = AutoFormerSpace(variant=variant, num_classes=num_classes)
    assert param_count_formula(genes, num_classes=num_classes) == expected
    # base logs come from the {9, 10}-head yaml; these genes are inside our {8, 9, 10} set too
    counts = sp.param_counts(sp.make_arch(genes))
    assert counts["total"] == expected
    D, n_tok = genes["embed_dim"], 197
    assert counts["embedding"] == 3 * 16 * 16 * D + D + D + n_tok * D  # conv (w, b) + cls + pos
    assert counts["output"] == D * num_classes + num_classes
    assert counts["norm"] == 2 * D * (2 * genes["depth"] + 1)
    assert "other" not in counts


def test_relative_position_adds_7680_per_layer(spaces):
    a = spaces["small"].sample(random.Random(0))
    off = AutoFormerSpace(variant="small", relative_position=False)
    diff = spaces["small"].param_counts(a)["total"] - off.param_counts(a)["total"]
    assert diff == a.genes["depth"] * 4 * 30 * HEAD_DIM


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_sampled_param_counts_in_published_ranges(spaces, variant):
    sp = spaces[variant]
    lo, hi = sp.params_range
    rng = random.Random(123)
    archs = [sp.sample(rng) for _ in range(200)]
    counts = [param_count_formula(a.genes) for a in archs]
    # the analytic count is the built model's count (checked on a few, meta device)
    for a, c in zip(archs[:4], counts):
        assert sp.param_counts(a)["total"] == c
    assert min(counts) >= lo
    above = sum(c > hi for c in counts) / len(counts)
    if variant == "tiny":
        # Table 1's "4-9M" understates the tiny space: ~29% of it counts 9.0-10.5M (see docstring)
        assert 0.15 < above < 0.45 and max(counts) < 10.6e6
        assert sorted(counts)[len(counts) // 2] < hi
    else:
        assert above == 0


def test_space_size_formula_and_paper_order(spaces):
    exact = {v: sp.space_size() for v, sp in spaces.items()}
    assert exact["tiny"] == 3 * (4**12 + 4**13 + 4**14)
    assert exact["small"] == 3 * (9**12 + 9**13 + 9**14)
    assert exact["base"] == 3 * (9**14 + 9**15 + 9**16)
    # AutoFormer: "over 1.7 x 10^16 candidates" over the three supernets, counted as |E||D|c^Dmax
    paper = sum(sp.paper_space_size() for sp in spaces.values())
    assert f"{paper:.1e}" == "1.7e+16"
    assert spaces["base"].paper_space_size() == 3 * 3 * 9**16
    assert 1e15 < sum(exact.values()) < paper  # exact distinct count: same order, smaller


def test_uniform_sampling_and_size_on_a_miniature_space():
    sp = AutoFormerSpace(variant="tiny")
    sp.choices = {"embed_dim": (192, 240), "depth": (1, 2), "num_heads": (3, 4), "mlp_ratio": (4.0,)}
    assert sp.space_size() == 2 * (2 + 4)
    rng = random.Random(7)
    n = 6000
    seen = Counter(sp.sample(rng).id for _ in range(n))
    assert len(seen) == sp.space_size()
    expected = n / sp.space_size()
    chi2 = sum((c - expected) ** 2 / expected for c in seen.values())
    assert chi2 < 40  # 11 dof: p ~ 4e-5 at 40; a depth-uniform sampler gives chi2 ~ 750 here


# ---- genes ---------------------------------------------------------------
def test_sampling_is_deterministic_per_seed(spaces):
    for sp in spaces.values():
        a = [sp.sample(random.Random(5)).id for _ in range(3)]
        assert len(set(a)) == 1
        r1, r2 = random.Random(11), random.Random(11)
        assert [sp.sample(r1).id for _ in range(20)] == [sp.sample(r2).id for _ in range(20)]
        assert sp.sample(random.Random(11)).id != sp.sample(random.Random(12)).id


def test_samples_are_valid_and_cover_choices(spaces):
    for v, sp in spaces.items():
        rng = random.Random(1)
        archs = [sp.sample(rng) for _ in range(300)]
        for a in archs:
            sp.validate(a.genes)
            assert len(a.genes["num_heads"]) == len(a.genes["mlp_ratio"]) == a.genes["depth"]
        for k in ("embed_dim", "depth"):
            assert {a.genes[k] for a in archs} == set(VARIANTS[v][k])
        for k in ("num_heads", "mlp_ratio"):
            assert {x for a in archs for x in a.genes[k]} == set(VARIANTS[v][k])


def test_mutate_changes_exactly_one_gene(spaces):
    for sp in spaces.values():
        rng = random.Random(3)
        kinds = Counter()
        for _ in range(300):
            a = sp.sample(rng)
            b = sp.mutate(a, rng)
            sp.validate(b.genes)
            d = gene_diffs(a.genes, b.genes)
            assert len(d) == 1, d
            assert b.id != a.id
            kinds[d[0].split("[")[0]] += 1
            if d == ["depth"]:  # common layers untouched, lists re-sized with depth
                n = min(a.genes["depth"], b.genes["depth"])
                for k in ("num_heads", "mlp_ratio"):
                    assert a.genes[k][:n] == b.genes[k][:n] and len(b.genes[k]) == b.genes["depth"]
        assert set(kinds) == {"embed_dim", "depth", "num_heads", "mlp_ratio"}


def test_ids_are_stable_and_canonical(spaces):
    sp = spaces["tiny"]
    genes = UPSTREAM_COUNTS[0][2]
    a = sp.make_arch(genes)
    assert a.id == "b04fb0fabd84"  # sha1 of the canonical JSON; must never change
    as_ints = dict(genes, mlp_ratio=[int(r) if r == int(r) else r for r in genes["mlp_ratio"]])
    assert json.dumps(as_ints) != json.dumps(genes)
    assert sp.make_arch(as_ints).id == a.id
    assert sp.make_arch(json.loads(json.dumps(a.genes))).id == a.id


def test_validate_names_the_offending_gene(spaces):
    sp = spaces["tiny"]
    good = sp.sample(random.Random(0)).genes
    with pytest.raises(ValueError, match="embed_dim=200"):
        sp.validate(dict(good, embed_dim=200))
    with pytest.raises(ValueError, match="depth=16"):
        sp.validate(dict(good, depth=16))
    with pytest.raises(ValueError, match="num_heads must be a list of depth"):
        sp.validate(dict(good, num_heads=good["num_heads"][:-1]))
    with pytest.raises(ValueError, match=r"mlp_ratio\[2\]=3.0"):
        sp.validate(dict(good, mlp_ratio=good["mlp_ratio"][:2] + [3.0] + good["mlp_ratio"][3:]))
    with pytest.raises(ValueError, match="exactly"):
        sp.validate({k: v for k, v in good.items() if k != "depth"})
    with pytest.raises(ValueError, match="embed_dim"):
        spaces["base"].validate(good)  # a tiny network is not in the base space


def test_summary(spaces):
    sp = spaces["small"]
    a = sp.sample(random.Random(9))
    s = sp.summary(a)
    g = a.genes
    assert s["n_layer"] == g["depth"] and s["d_model"] == g["embed_dim"] and s["seq_len"] == 197
    assert s["n_head"] == g["num_heads"] and s["qkv_dim"] == [64 * h for h in g["num_heads"]]
    assert s["d_inner"] == [int(g["embed_dim"] * r) for r in g["mlp_ratio"]]
    assert AutoFormerSpace(variant="small", img_size=64).summary(a)["seq_len"] == 17


# ---- model ---------------------------------------------------------------
def test_relative_position_index():
    ri, ci = _rel_index(14, 14)
    assert ri.shape == ci.shape == (197, 197)
    assert (ri[0] == 0).all() and (ri[:, 0] == 0).all() and (ci[0] == 0).all()
    body_r, body_c = ri[1:, 1:], ci[1:, 1:]
    assert body_r.min() == 2 and body_r.max() == 28 and (body_r.diagonal() == 15).all()
    # token t sits at (t // 14, t % 14): offsets depend only on displacement
    p, q = 1 + 2 * 14 + 3, 1 + 5 * 14 + 9  # (2, 3) -> (5, 9)
    assert ri[p, q] == 15 + 3 and ci[p, q] == 15 + 6 and ri[q, p] == 15 - 3 and ci[q, p] == 15 - 6
    ri2, _ = _rel_index(14, 2)  # clipping
    assert ri2[1:, 1:].max() == 5 and ri2[1:, 1:].min() == 1


def test_builds_on_meta_device(spaces):
    a = spaces["base"].sample(random.Random(2))
    with torch.device("meta"):
        m = spaces["base"].build(a)
    assert all(p.is_meta for p in m.parameters())


@pytest.fixture(scope="module")
def tiny_batch(spaces):
    return spaces["tiny"].make_batch(batch_size=3, seq_len=128, seed=0)


def test_forward_backward_on_real_images(spaces, tiny_batch):
    sp = spaces["tiny"]
    for seed in (0, 1):
        a = sp.sample(random.Random(seed))
        torch.manual_seed(seed)
        model = sp.build(a)
        out = model(tiny_batch.inputs, tiny_batch.targets)
        T, D = 197, a.genes["embed_dim"]
        assert out.hidden.shape == (3, T, D) and out.logits.shape == (3, 1000)
        assert torch.isfinite(out.loss) and abs(out.loss.item() - math.log(1000)) < 1.0
        assert torch.allclose(out.loss, F.cross_entropy(out.logits, tiny_batch.targets))
        out.loss.backward()
        grads = [p.grad for p in model.parameters()]
        assert all(g is not None and torch.isfinite(g).all() for g in grads)
        rel = model.blocks[0].attn.rel_k.table_row.grad
        assert rel.abs().sum() > 0  # relative position tables are used


def test_taps_and_roles(spaces, tiny_batch):
    sp = spaces["tiny"]
    a = sp.make_arch(dict(embed_dim=216, depth=12, num_heads=[3, 4] * 6, mlp_ratio=[3.5] * 6 + [4.0] * 6))
    torch.manual_seed(0)
    model = sp.build(a)
    index_taps(model)
    assert len(blocks(model)) == 12
    seen: dict[str, list] = {}
    hooks = [t.register_forward_hook(lambda m, i, o, t=t: seen.setdefault(t.kind, []).append((t.layer, o)))
             for t in taps(model)]
    with torch.no_grad():
        out = model(tiny_batch.inputs[:2], tiny_batch.targets[:2])
    for h in hooks:
        h.remove()
    assert [len(seen[k]) for k in ("embedding", "attn_probs", "head_out", "ffn_act", "block_out")] == [1, 12, 12, 12, 12]
    assert seen["embedding"][0][0] is None and seen["embedding"][0][1].shape == (2, 197, 216)
    for i, (layer, p) in enumerate(seen["attn_probs"]):
        h = a.genes["num_heads"][i]
        assert layer == i and p.shape == (2, h, 197, 197)
        assert torch.allclose(p.sum(-1), torch.ones(2, h, 197), atol=1e-5)
        assert seen["head_out"][i][1].shape == (2, h, 197, 64)
        assert seen["ffn_act"][i][1].shape == (2, 197, int(216 * a.genes["mlp_ratio"][i]))
    # hidden = final LayerNorm of the last block's output
    last = seen["block_out"][-1][1]
    assert torch.allclose(out.hidden, model.norm(last), atol=1e-6)
    roles = params_by_role(model)
    assert {"embedding", "attn", "ffn", "norm", "output"} <= set(roles) and "other" not in roles


def test_mean_pool_default_and_cls_option(tiny_batch):
    a = AutoFormerSpace(variant="tiny").sample(random.Random(4))
    outs = {}
    for pool in ("mean", "cls"):
        torch.manual_seed(0)
        m = AutoFormerSpace(variant="tiny", pool=pool).build(a)
        with torch.no_grad():
            outs[pool] = m(tiny_batch.inputs)
        assert outs[pool].loss is None
        feat = outs[pool].hidden[:, 1:].mean(1) if pool == "mean" else outs[pool].hidden[:, 0]
        assert torch.allclose(outs[pool].logits, m.head(feat), atol=1e-6)
    assert torch.allclose(outs["mean"].hidden, outs["cls"].hidden)  # same weights, only the readout differs


# ---- data ----------------------------------------------------------------
def test_make_batch_is_real_labelled_digits_and_seeded(spaces, tiny_batch):
    from sklearn.datasets import load_digits

    sp = spaces["tiny"]
    b = tiny_batch
    assert b.inputs.shape == (3, 3, 224, 224) and b.inputs.dtype == torch.float32
    assert b.targets.dtype == torch.long
    digits = load_digits()
    idx = b.info["indices"]
    assert b.targets.tolist() == digits.target[idx].tolist()
    # undo the normalisation and pool 28x28 cells: we get the original 8x8 digits back
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    raw = b.inputs * std + mean
    assert torch.allclose(raw[:, 0], raw[:, 2], atol=1e-5)  # grey copied to RGB
    pooled = F.avg_pool2d(raw[:, :1], 28)[:, 0]
    orig = torch.as_tensor(digits.images[idx], dtype=torch.float32) / 16
    assert (pooled - orig).abs().max() < 0.35  # bilinear smoothing blurs edges a little
    assert torch.corrcoef(torch.stack([pooled.flatten(), orig.flatten()]))[0, 1] > 0.95
    # seeded: same seed same batch, other seed other batch; seq_len does not matter
    again = sp.make_batch(3, 7, seed=0)
    assert torch.equal(again.inputs, b.inputs) and torch.equal(again.targets, b.targets)
    other = sp.make_batch(3, 128, seed=1)
    assert other.info["indices"] != idx
    many = sp.make_batch(200, 128, seed=3)
    assert len(set(many.info["indices"])) == 200 and set(many.targets.tolist()) == set(range(10))
    with pytest.raises(ValueError, match="num_classes >= 10"):
        AutoFormerSpace(variant="tiny", num_classes=5).make_batch(2, 0, 0)


# ---- slow: every variant end to end -------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("variant", list(VARIANTS))
def test_slow_full_size_models(variant):
    sp = AutoFormerSpace(variant=variant)
    rng = random.Random(42)
    archs = [sp.sample(rng) for _ in range(200)]
    lo, hi = sp.params_range
    counts = [sp.param_counts(a)["total"] for a in archs]  # built on the meta device
    assert counts == [param_count_formula(a.genes) for a in archs] and min(counts) >= lo
    batch = sp.make_batch(4, 0, seed=1)
    for a in archs[:2]:
        torch.manual_seed(0)
        m = sp.build(a)
        out = m(batch.inputs, batch.targets)
        out.loss.backward()
        assert torch.isfinite(out.loss)
        assert all(torch.isfinite(p.grad).all() for p in m.parameters())


@pytest.mark.slow
def test_slow_tiny_model_fits_a_batch():
    # trainability sanity check at 64x64 (17 tokens) to keep it short: 30 AdamW steps memorise 16 digits
    sp = AutoFormerSpace(variant="tiny", img_size=64)
    a = sp.sample(random.Random(0))
    batch = sp.make_batch(16, 0, seed=0)
    torch.manual_seed(0)
    m = sp.build(a)
    opt = torch.optim.AdamW(m.parameters(), lr=1e-3)
    losses = []
    for _ in range(30):
        out = m(batch.inputs, batch.targets)
        opt.zero_grad()
        out.loss.backward()
        opt.step()
        losses.append(out.loss.item())
    assert losses[0] > 6 and losses[-1] < 1.5
    assert (out.logits.argmax(-1) == batch.targets).float().mean() > 0.5
