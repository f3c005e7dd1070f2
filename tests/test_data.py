"""Data layer: upstream importers, data-dir resolution, real-text minibatches."""
from __future__ import annotations

import shutil

import pytest
import torch

from zcbench import create_space
from zcbench.data import DataError, read_nasbench_bert, resolve_data_dir
from zcbench.spaces._lts import read_lts_table
from zcbench.text import get_tokenizer, lm_windows, token_stream


def test_lts_importer_reads_all_tables(data_dir):
    for folder, n, n_ppl in [("random_GPT2_wt103", 200, 200), ("random_TransXL_wt103", 200, 200),
                             ("random_TransXL_wt103_homogeneous", 99, 98)]:
        recs = read_lts_table(data_dir / "lts" / folder)
        assert len(recs) == n and all(r.params["total"] > 0 for r in recs)
        assert sum(r.ppl.get("valid_ppl", 0) > 0 for r in recs) == n_ppl
    homog = {r.key: r for r in read_lts_table(data_dir / "lts" / "random_TransXL_wt103_homogeneous")}
    assert homog["config_6_j4"].ppl == {}  # upstream has no perplexity for it
    recs = read_lts_table(data_dir / "lts" / "random_GPT2_wt103")
    assert recs[0].key == "config_0_j0" and recs[0].model_config["n_layer"] == 5


def test_nasbench_bert_importer(data_dir):
    rows = read_nasbench_bert(data_dir / "flexibert" / "BERT_benchmark.json")
    assert len(rows) == 500 and {"glue", "cola", "mnli"} <= set(rows[0]["scores"])


def test_broken_files_give_one_line_errors_naming_the_file(data_dir, tmp_path):
    src = data_dir / "lts" / "random_GPT2_wt103"
    dst = tmp_path / "gpt2"
    shutil.copytree(src, dst)  # a temporary copy, never inside the repository
    (dst / "config_3" / "j4" / "model_config.yaml").write_text("n_layer: [unclosed\n")
    with pytest.raises(DataError) as e:
        read_lts_table(dst)
    assert "config_3/j4/model_config.yaml" in str(e.value) and "\n" not in str(e.value)
    (dst / "config_3" / "j4" / "model_config.yaml").unlink()
    with pytest.raises(DataError, match="config_3/j4/model_config.yaml"):
        read_lts_table(dst)
    bad = tmp_path / "b.json"
    bad.write_text("{not json")
    with pytest.raises(DataError, match="b.json"):
        read_nasbench_bert(bad)


def test_data_dir_resolution(monkeypatch, tmp_path):
    assert resolve_data_dir(tmp_path) == tmp_path.resolve()
    monkeypatch.setenv("ZCBENCH_DATA", str(tmp_path / "x"))
    assert resolve_data_dir(None) == (tmp_path / "x").resolve()
    monkeypatch.delenv("ZCBENCH_DATA")
    monkeypatch.setenv("ZCBENCH_CACHE", str(tmp_path / "cache"))
    assert resolve_data_dir(None) == (tmp_path / "cache" / "data")
    with pytest.raises(DataError, match="missing data file"):
        create_space("gpt2", data_dir=tmp_path / "empty").stored()


def test_bpe_tokenizer_and_seeded_batches(data_dir):
    tok, key = get_tokenizer("bpe", 50264, data_dir)
    assert tok.get_vocab_size() <= 50264
    text = "The tower is 324 metres tall ."
    assert tok.decode(tok.encode(text).ids) == text  # byte-level BPE round-trips real text
    ids, info = token_stream("bpe", 50264, data_dir)
    assert ids.dtype == torch.long and ids.numel() > 100_000 and int(ids.max()) < 50264
    assert info["tokenizer"] == key and info["split"] == "valid"
    a, b, c = (lm_windows(ids, 4, 64, s) for s in (7, 7, 8))
    assert a.shape == (4, 65) and torch.equal(a, b) and not torch.equal(a, c)
    # the space's batch: targets are inputs shifted by one token, identical for equal seeds
    space = create_space("gpt2", data_dir=data_dir)
    x, y = space.make_batch(2, 32, 5), space.make_batch(2, 32, 5)
    assert torch.equal(x.inputs, y.inputs) and torch.equal(x.inputs[:, 1:], x.targets[:, :-1])


def test_token_stream_is_read_once_per_process_and_again_when_the_file_changes(data_dir, tmp_path, monkeypatch):
    """issue 18 (whole-pipeline time): the tokenizer and the token file are loaded once per process,
    not once per architecture; a token file that changes on disk is read again."""
    import os

    import torch

    from zcbench import text

    monkeypatch.setenv("ZCBENCH_CACHE", str(tmp_path / "cache"))
    ids1, _ = text.token_stream("wordpiece", 30522, data_dir)  # trains + writes the cache files
    loads = []
    real_load = torch.load
    monkeypatch.setattr(torch, "load", lambda *a, **k: loads.append(a[0]) or real_load(*a, **k))
    ids2, _ = text.token_stream("wordpiece", 30522, data_dir)
    ids3, _ = text.token_stream("wordpiece", 30522, data_dir)
    assert ids3 is ids2 and len(loads) <= 1 and torch.equal(ids2, ids1)
    path = loads[0] if loads else next((tmp_path / "cache" / "tokens").glob("*.pt"))
    st = os.stat(path)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    ids4, _ = text.token_stream("wordpiece", 30522, data_dir)
    assert ids4 is not ids2 and torch.equal(ids4, ids1)
