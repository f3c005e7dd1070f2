"""Embedded default tables (zcbench/tables/): equal to a fresh derivation, same records as the
verbatim readers, used only when no data dir is configured (docs/data.md)."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import zcbench
from zcbench import embedded
from zcbench.data import DataError
from zcbench.tables import build

REPO = Path(__file__).resolve().parents[1]


def test_shipped_tables_equal_a_fresh_derivation_from_the_verbatim_files(data_dir, tmp_path):
    lines = build(data_dir, check=True)
    assert len(lines) == len(embedded.EMBEDDED_FILES)
    assert all(line.endswith(": ok") for line in lines), lines
    # and the build writes exactly the shipped bytes (deterministic compression)
    build(data_dir, out=tmp_path)
    for name in embedded.EMBEDDED_FILES.values():
        assert (tmp_path / name).read_bytes() == (embedded.TABLES_DIR / name).read_bytes(), name


def test_attribution_and_licence_ship_with_the_tables():
    text = (embedded.TABLES_DIR / "ATTRIBUTION.md").read_text()
    for name in embedded.EMBEDDED_FILES.values():
        assert f"`{name}`" in text, name
    assert "CC BY 4.0" in text and "CC BY-SA 3.0" in text
    assert "Attribution 4.0 International" in (embedded.TABLES_DIR / "LICENSE-CC-BY-4.0.txt").read_text()


@pytest.fixture
def no_data_dir(monkeypatch, tmp_path):
    """A fresh machine: no ZCBENCH_DATA and an empty download cache."""
    monkeypatch.delenv("ZCBENCH_DATA", raising=False)
    session = Path(os.environ["ZCBENCH_CACHE"]) / "tokenizers"
    if session.is_dir():  # trained tokenizers are keyed by the text's sha256: reuse them, as a user's cache would
        shutil.copytree(session, tmp_path / "cache" / "tokenizers")
    monkeypatch.setenv("ZCBENCH_CACHE", str(tmp_path / "cache"))
    return tmp_path


def _stored(space):
    return [(a.id, a.key, a.truth, a.meta) for a in space.stored()]


@pytest.mark.parametrize("name", ["gpt2", "flexibert", "transxl", "gpt2_lm1b"])
def test_embedded_tables_give_the_same_architectures_as_the_verbatim_files(name, data_dir, no_data_dir):
    if name not in zcbench.list_spaces():
        pytest.skip(f"space {name} not registered in this checkout")
    emb = zcbench.create_space(name)
    assert not (Path(emb.data_dir) / ("flexibert" if name == "flexibert" else "lts")).exists()
    verbatim = zcbench.create_space(name, data_dir=str(data_dir))
    assert _stored(emb) == _stored(verbatim)
    assert len(emb.stored()) >= 200 if name != "flexibert" else len(emb.stored()) == 491


def test_embedded_text_is_the_verbatim_bytes(data_dir, no_data_dir):
    from zcbench.data import resolve_data_dir

    folder = embedded.text_dir(resolve_data_dir(None) / "text" / "wikitext-2")
    for f in ("valid.txt", "test.txt"):
        assert (folder / f).read_bytes() == (data_dir / "text" / "wikitext-2" / f).read_bytes()


def test_minibatch_from_the_embedded_text_equals_the_verbatim_one(data_dir, no_data_dir):
    import torch

    emb = zcbench.create_space("gpt2").make_batch(2, 16, 0)
    verbatim = zcbench.create_space("gpt2", data_dir=str(data_dir)).make_batch(2, 16, 0)
    assert torch.equal(emb.inputs, verbatim.inputs) and torch.equal(emb.targets, verbatim.targets)
    assert emb.info == verbatim.info  # same corpus label, split and tokenizer key (content hash)


def test_a_configured_data_dir_is_never_replaced_by_the_embedded_copy(tmp_path, monkeypatch):
    monkeypatch.setenv("ZCBENCH_DATA", str(tmp_path / "empty"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="BERT_benchmark.json"):
        zcbench.create_space("flexibert").stored()
    monkeypatch.delenv("ZCBENCH_DATA")
    with pytest.raises(DataError, match="BERT_benchmark.json"):  # data_dir= given explicitly: same rule
        zcbench.create_space("flexibert", data_dir=str(tmp_path / "empty")).stored()


def test_main_job_without_any_data_dir_prints_a_correlation_it_computed(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "ZCBENCH_DATA"}
    env.update(HOME=str(tmp_path / "home"), ZCBENCH_HOME=str(tmp_path / "zchome"),
               ZCBENCH_CACHE=str(tmp_path / "cache"), PYTHONPATH=str(REPO))
    res = subprocess.run([sys.executable, "-m", "zcbench", "run", "proxy=params", "space=gpt2", "n_archs=30",
                          "bootstrap=0", "progress=false"], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=600)
    assert res.returncode == 0, res.stderr
    assert "gpt2 | params | seed 0 | n=30 | Kendall tau = " in res.stdout
    assert "already scored" not in res.stderr
    assert not (tmp_path / "cache" / "data").exists()  # nothing was downloaded


def test_data_fetch_hint_names_a_command_that_parses():
    res = subprocess.run([sys.executable, "-m", "zcbench", "data", "fetch", "--help"], capture_output=True,
                         text=True, timeout=120)
    assert res.returncode == 0 and "default: all" in res.stdout
