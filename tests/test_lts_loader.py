"""LTS tables of any corpus: the general loader, GPT-2 on LM1B with parameter parity, corpora, ETAS sub-space."""
from __future__ import annotations

import json
import random
import shutil

import pytest
import torch
import yaml

from zcbench import create_space
from zcbench.data import DataError
from zcbench.runner import ConfigError, RunConfig, run
from zcbench.spaces._adaptive import clean_cutoffs
from zcbench.spaces._lts import LTSRecord, read_lts_table
from zcbench.spaces.gpt2 import GPT2Flex, lts_counts

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def lm1b(data_dir):
    return create_space("gpt2_lm1b", data_dir=str(data_dir))


# ---- archai's cut-off cleaning ------------------------------------------------------------
def test_clean_cutoffs_drops_entries_above_n_token():
    # LM1B: every entry after the first exceeds n_token -> dropped; the first is clipped: one band
    assert clean_cutoffs([59997, 99997, 639997, 50264], 50264) == [50264]
    # WikiText-103 GPT-2 / Transformer-XL: unchanged by the rule
    assert clean_cutoffs([19997, 39997, 199997, 50264], 50264) == [19997, 39997, 50264]
    assert clean_cutoffs([19997, 39997, 199997, 267736], 267736) == [19997, 39997, 199997, 267736]
    # an entry above n_token is dropped, not clipped (clipping would leave an empty band)
    assert clean_cutoffs([100, 2000, 999], 1000) == [100, 1000]
    assert clean_cutoffs([100, 500, 5000, 10], 1000) == [100, 500, 1000]
    with pytest.raises(ValueError, match="increase"):
        clean_cutoffs([500, 100], 1000)


# ---- GPT-2 LM1B ------------------------------------------------------------------------------
def test_lm1b_table_settings(lm1b):
    st = lm1b.stored()
    assert len(st) == 200 and lm1b.metric == "valid_ppl"
    a = lm1b.by_id("config_0_j0")
    g = a.genes
    assert g["cutoffs"] == [50264] and g["tie_projs"] == [False] and g["tgt_len"] == 32
    assert g["d_embed"] == g["d_model"] == 512 and g["div_val"] == 2 and g["n_layer"] == 16
    assert a.truth["valid_ppl"] == pytest.approx(52.27780055567351)
    assert lm1b.default_seq_len() == 32 == min(x.meta["tgt_len"] for x in st) == max(x.meta["tgt_len"] for x in st)
    assert a.id == "64cb991de2a6"  # pinned: stored LM1B scores are keyed by it
    assert len({x.id for x in st}) == 200


def test_lm1b_parity_200_of_200(lm1b):
    """The table's own five counts, reproduced for every network (archai's MemTransformerLM counting)."""
    got = {a.key: lm1b.param_counts(a) for a in lm1b.stored()}
    bad = [(a.key, got[a.key], a.meta["params"]) for a in lm1b.stored() if got[a.key] != a.meta["params"]]
    assert not bad, f"{len(bad)} of 200 differ, e.g. {bad[:2]}"


def test_lm1b_counting_quirk_is_the_measured_pattern(lm1b):
    """Counts of the GPT-2 network itself differ from the table exactly by the documented pattern."""
    for a in lm1b.stored()[::20]:
        g, n, d = a.genes, a.genes["n_layer"], a.genes["d_model"]
        with torch.device("meta"):
            own = lts_counts(GPT2Flex(lm1b.build_settings(g)))
        t = a.meta["params"]
        assert t["FFN"] == own["FFN"]
        assert t["Attn"] == own["Attn"] + n * d * (d - 2)
        assert t["AdaEmb"] == own["AdaEmb"] - g["tgt_len"] * d  # no position table
        assert t["nonembedding"] == t["Attn"] + t["FFN"] + 4 * n * d  # block norms (attn's twice), no ln_f


def test_lm1b_published_correlations(lm1b, data_dir, tmp_path):
    """LTS's LM1B numbers: total params rho 0.944 / tau 0.840, non-embedding 0.986 / 0.913."""
    rc = RunConfig(space="gpt2_lm1b", proxies=["params", "params_nonembedding"], seed=0, batch_size=16,
                   seq_len=None, data_dir=str(data_dir), results_dir=str(tmp_path), bootstrap=0, progress=False)
    out = run(rc)
    c = {k: v["correlation"] for k, v in out.items()}
    assert (round(c["params"]["spearman_rho"], 3), round(c["params"]["kendall_tau"], 3)) == (0.944, 0.840)
    assert (round(c["params_nonembedding"]["spearman_rho"], 3),
            round(c["params_nonembedding"]["kendall_tau"], 3)) == (0.986, 0.913)


def test_lm1b_model_runs_at_its_length(lm1b):
    a = min(lm1b.stored(), key=lambda x: x.meta["params"]["total"])
    batch = lm1b.make_batch(2, 32, seed=0)
    torch.manual_seed(0)
    m = lm1b.build(a)
    assert m.crit.n_clusters == 0 and len(m.wte.emb_layers) == 1
    out = m(batch.inputs, batch.targets)
    assert torch.isfinite(out.loss)
    assert out.loss.item() == pytest.approx(torch.log(torch.tensor(50264.0)).item(), abs=0.1)
    with pytest.raises(ValueError, match="32 positions"):
        m(torch.zeros(1, 33, dtype=torch.long))


def test_lm1b_sample_and_mutate(lm1b):
    rng = random.Random(0)
    for _ in range(50):
        a = lm1b.sample(rng)
        assert a.genes["d_embed"] == a.genes["d_model"] and a.genes["tgt_len"] == 32
        m = lm1b.mutate(a, rng)
        lm1b.validate(m.genes)
        assert m.genes["d_embed"] == m.genes["d_model"]


def test_records_are_plain_json(data_dir):
    recs = read_lts_table(data_dir / "lts" / "random_GPT2_lm1b")
    blob = json.dumps([r.as_dict() for r in recs])
    again = [LTSRecord.from_dict(d) for d in json.loads(blob)]
    assert again == recs
    assert recs[0].params == {"AdaEmb": 25997312, "Attn": 20987904, "FFN": 24515942, "nonembedding": 45536614,
                              "total": 71846334}


# ---- any table in the layout ----------------------------------------------------------------
def _write_table(folder, configs: dict, ppl: dict):
    folder.mkdir(parents=True, exist_ok=True)
    for key, cfg in configs.items():
        i, j = key.split("_")[1], key.split("_")[2]
        d = folder / f"config_{i}" / j
        d.mkdir(parents=True, exist_ok=True)
        (d / "model_config.yaml").write_text(yaml.safe_dump(cfg))
    (folder / "ppl_summary.yaml").write_text(yaml.safe_dump({k: {"valid_ppl": v, "test_ppl": v} for k, v in ppl.items()}))
    (folder / "params_summary.yaml").write_text(yaml.safe_dump({k: {} for k in configs}))


SYN = {  # settings no WikiText-103 table has
    "n_token": 1000, "cutoffs": [300, 600, 5000, 1000], "tie_projs": [False, True, False, True],
    "tie_weight": True, "dropout": 0.0, "dropatt": 0.05, "tgt_len": 24, "weight_init_std": 0.03,
    "div_val": 2, "d_embed": 64, "attn_type": 0, "d_head": -1, "adaptive": True, "mem_len": 24,
}


def _syn_configs():
    return {
        "config_0_j0": {**SYN, "n_layer": 2, "d_model": 64, "n_head": [2, 4, 8], "d_inner": [700, 800, 900]},
        "config_0_j1": {**SYN, "n_layer": 3, "d_model": 96, "n_head": [2, 4, 2], "d_inner": [300, 2500, 1200]},
        "config_1_j0": {**SYN, "n_layer": 1, "d_model": 128, "n_head": 8, "d_inner": 256, "d_embed": -1},
    }


def test_synthetic_table_loads_builds_and_scores(tmp_path, data_dir):
    table = tmp_path / "my_pool"
    _write_table(table, _syn_configs(), {"config_0_j0": 80.0, "config_0_j1": 60.0, "config_1_j0": 70.0})
    s = create_space("gpt2", data_dir=str(data_dir), table_dir=str(table))
    st = s.stored()
    assert [a.key for a in st] == ["config_0_j0", "config_0_j1", "config_1_j0"]
    g = s.by_id("config_0_j1").genes
    assert g["n_token"] == 1000 and g["cutoffs"] == [300, 600, 1000] and g["tie_projs"] == [False, True, False]
    assert g["tgt_len"] == 24 and g["dropout"] == 0.0 and g["dropatt"] == 0.05 and g["weight_init_std"] == 0.03
    assert "proj_init_std" not in g  # equal to the WikiText-103 value: stays out of the genes (IDs)
    assert s.by_id("config_1_j0").genes["d_embed"] == 128 and s.default_seq_len() == 24
    torch.manual_seed(0)
    m = s.build(s.by_id("config_0_j1"))
    assert m.h[0].mlp.drop.p == 0.0 and m.h[0].attn.attn_drop.p == 0.05 and m.n_positions == 24
    assert m.h[0].attn.c_attn.weight.std().item() == pytest.approx(0.03, rel=0.15)
    # sampled architectures take the table-wide settings the records share
    a = s.sample(random.Random(0))
    assert a.genes["n_token"] == 1000 and a.genes["tgt_len"] == 24 and a.genes["dropout"] == 0.0
    # scored with no code change; the minibatch length defaults to the table's tgt_len
    rc = RunConfig(space="gpt2", proxies=["params", "grad_norm"], seed=0, batch_size=2, seq_len=None,
                   data_dir=str(data_dir), results_dir=str(tmp_path / "res"), bootstrap=0, progress=False,
                   space_options={"table_dir": str(table)})
    out = run(rc)
    assert out["grad_norm"]["n_scored"] == 3 and out["grad_norm"]["status_counts"] == {"ok": 3}
    assert out["params"]["correlation"]["n"] == 3
    meta = json.loads(next((tmp_path / "res" / "scores" / "gpt2" / "grad_norm").glob("*.meta.json")).read_text())
    assert meta["data"]["seq_len"] == 24 and meta["data"]["batch"]["vocab_cap"] == 1000
    # a length the networks cannot take fails the run in one line instead of n=0
    with pytest.raises(ConfigError, match="all 3 architectures failed.*24 positions"):
        run(RunConfig(**{**rc.__dict__, "seq_len": 32, "proxies": ["grad_norm"]}))


def test_synthetic_transxl_table(tmp_path, data_dir):
    table = tmp_path / "xl"
    cfgs = {k: {**v, "dropout": 0.0} for k, v in _syn_configs().items()}
    _write_table(table, cfgs, {"config_0_j0": 80.0, "config_0_j1": 60.0, "config_1_j0": 70.0})
    s = create_space("transxl", data_dir=str(data_dir), table_dir=str(table))
    g = s.by_id("config_0_j0").genes
    assert "tgt_len" not in g and g["dropout"] == 0.0 and s.default_seq_len() == 24
    torch.manual_seed(0)
    m = s.build(s.by_id("config_0_j0"))
    assert m.layers[0].ff.drop.p == 0.0 and m.drop.p == 0.0
    batch = s.make_batch(2, 24, seed=0)
    assert torch.isfinite(m(batch.inputs, batch.targets).loss)


@pytest.mark.parametrize("key,value,msg", [
    ("attn_type", 2, "attn_type=2"),
    ("n_head", [5, 5], "n_head=[5, 5]"),
    ("cutoffs", [600, 300], "cutoffs=[600, 300]"),
    ("dropout", 1.5, "dropout=1.5"),
    ("tie_projs", [False], "tie_projs=[False]"),
])
def test_unbuildable_table_fails_in_one_line(tmp_path, data_dir, key, value, msg):
    table = tmp_path / "bad"
    cfgs = _syn_configs()
    cfgs["config_0_j1"] = {**cfgs["config_0_j1"], "n_layer": 2, key: value}
    _write_table(table, cfgs, {"config_0_j0": 80.0, "config_0_j1": 60.0, "config_1_j0": 70.0})
    with pytest.raises(DataError) as e:
        create_space("gpt2", data_dir=str(data_dir), table_dir=str(table)).stored()
    text = str(e.value)
    assert "\n" not in text and "config_0/j1/model_config.yaml" in text and msg in text, text


def test_table_dir_copy_of_wt103_gives_the_same_ids(tmp_path, data_dir):
    src = data_dir / "lts" / "random_GPT2_wt103"
    dst = tmp_path / "copy"
    shutil.copytree(src, dst)
    a = create_space("gpt2", data_dir=str(data_dir), table_dir=str(dst))
    assert a.by_id("config_0_j0").id == "7782ef9c008b" and a.default_seq_len() == 192


# ---- minibatch corpus -----------------------------------------------------------------------
def test_default_corpus_provenance_unchanged(data_dir):
    s = create_space("gpt2", data_dir=str(data_dir))
    info = s.make_batch(2, 8, seed=0).info
    assert set(info) == {"corpus", "split", "tokenizer", "seed", "batch_size", "seq_len", "vocab_cap", "space"}
    assert info["corpus"] == "wikitext-2" and info["tokenizer"].startswith("bpe-50264-wikitext-2-")


def test_datasets_corpus_offline(tmp_path, data_dir):
    datasets = pytest.importorskip("datasets")
    words = "the quick brown fox jumps over the lazy dog while seven wizards quietly judge boxing".split()
    rng = random.Random(0)
    lines = [" ".join(rng.choice(words) for _ in range(40)) for _ in range(400)]
    saved = tmp_path / "tiny_ds"
    datasets.DatasetDict({"validation": datasets.Dataset.from_dict({"text": lines[:200]}),
                          "test": datasets.Dataset.from_dict({"text": lines[200:]})}).save_to_disk(str(saved))
    s = create_space("gpt2", data_dir=str(data_dir), corpus={"disk": str(saved)})
    b = s.make_batch(2, 16, seed=0)
    assert b.info["corpus"] == "disk:tiny_ds" and b.info["source"]["kind"] == "disk"
    assert b.info["source"]["splits"] == {"valid": "validation", "test": "test"}
    assert b.info["source"]["fingerprints"]["valid"]
    tok = __import__("zcbench.text", fromlist=["get_tokenizer"]).get_tokenizer("bpe", 50264, str(data_dir),
                                                                                {"disk": str(saved)})[0]
    toks = tok.decode(b.inputs.reshape(-1).tolist()).split()
    assert sum(t in words for t in toks) >= 0.9 * len(toks)  # the batch is the dataset's text
    fb = create_space("flexibert", data_dir=str(data_dir), corpus={"disk": str(saved)})  # every text space
    assert fb.make_batch(2, 16, seed=0).info["corpus"] == "disk:tiny_ds"
    base = create_space("gpt2", data_dir=str(data_dir)).make_batch(2, 16, seed=0)
    assert not torch.equal(base.inputs, b.inputs)
    # the run key records the corpus: a run with it starts its own score file
    rc = RunConfig(space="gpt2", proxies=["grad_norm"], seed=0, batch_size=2, seq_len=16, n_archs=1,
                   data_dir=str(data_dir), results_dir=str(tmp_path / "r"), bootstrap=0, progress=False,
                   space_options={"corpus": {"disk": str(saved)}})
    run(rc)
    meta = json.loads(next((tmp_path / "r" / "scores" / "gpt2" / "grad_norm").glob("*.meta.json")).read_text())
    assert meta["data"]["batch"]["corpus"] == "disk:tiny_ds"


def test_corpus_specs():
    from zcbench.text import resolve_corpus

    assert resolve_corpus(None).label == "wikitext-2" and resolve_corpus(None).kind == "local"
    c = resolve_corpus("lm1b")  # resolved without touching the network
    assert (c.kind, c.dataset, dict(c.splits)["valid"]) == ("hf", "lm1b", "test")
    assert resolve_corpus("wikitext-103-raw-v1").config == "wikitext-103-raw-v1"
    assert resolve_corpus("openwebtext").dataset == "openwebtext"
    with pytest.raises(ValueError, match="valid:"):
        resolve_corpus("no such corpus!")
    with pytest.raises(ValueError, match="unknown key"):
        resolve_corpus({"hf": "lm1b", "bogus": 1})


# ---- ETAS's GPT-2 sub-space ------------------------------------------------------------------
def test_etas_subspace_constraints(data_dir):
    s = create_space("gpt2", data_dir=str(data_dir), subspace="etas")
    assert s.stored() == []  # no trained table of it is public
    rng = random.Random(0)
    seen = {"d_model": set(), "n_layer": set()}
    for _ in range(300):
        g = s.sample(rng).genes
        assert 2 <= g["n_layer"] <= 16 and set(g["n_head"]) <= {2, 4, 8}
        assert 128 <= g["d_model"] <= 1024 and g["d_model"] % 64 == 0
        assert all(256 <= d <= 4096 and d % 64 == 0 and d > 2 * g["d_model"] for d in g["d_inner"])
        assert g["d_embed"] in (128, 256, 512) and g["div_val"] == 4
        seen["d_model"].add(g["d_model"])
        seen["n_layer"].add(g["n_layer"])
        s.validate(s.mutate(s.make_arch(g), rng).genes)
    assert seen["d_model"] == set(range(128, 1025, 64)) and seen["n_layer"] == set(range(2, 17))
    g = s.sample(random.Random(1)).genes
    with pytest.raises(ValueError, match="d_inner"):
        s.validate(dict(g, d_inner=[2 * g["d_model"]] * g["n_layer"]))  # must be strictly larger
    with pytest.raises(ValueError, match="unknown subspace"):
        create_space("gpt2", data_dir=str(data_dir), subspace="nope")


@pytest.mark.slow  # two CLI subprocesses (the same path runs in-process in test_synthetic_table_loads_builds_and_scores)
def test_cli_table_dir_by_path(tmp_path, data_dir):
    """As a user types it: the table loads by path, the run fails in one line when no network fits."""
    import subprocess
    import sys

    table = tmp_path / "pool"
    _write_table(table, _syn_configs(), {"config_0_j0": 80.0, "config_0_j1": 60.0, "config_1_j0": 70.0})
    base = [sys.executable, "-m", "zcbench", "run", "proxy=params", "space=gpt2", f"space.options.table_dir={table}",
            f"results_dir={tmp_path / 'r'}", "progress=false", "bootstrap=0"]
    ok = subprocess.run(base, capture_output=True, text=True, timeout=300)
    assert ok.returncode == 0, ok.stderr[-2000:]
    assert "gpt2 | params | seed 0 | n=3 |" in ok.stdout
    bad = subprocess.run([*base, "proxy=grad_norm", "seq_len=32"], capture_output=True, text=True, timeout=300)
    assert bad.returncode != 0
    last = bad.stderr.strip().splitlines()[-1]
    assert "all 3 architectures failed" in last and "24 positions" in last
