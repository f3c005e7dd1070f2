"""Embedded default data: compact tables shipped inside the package, derived from the verbatim files.

zcbench reads upstream ground truth verbatim from a data directory (``zcbench.data``). So that
the main job works offline on a fresh install with no data directory, the package also ships
compact tables *derived* from those files by ``python -m zcbench data build-embedded``
(``zcbench.tables.build``), where the licence allows it, with attribution and licence texts in
``zcbench/tables/`` (``ATTRIBUTION.md``). ``tests/test_embedded.py`` rebuilds them from the
verbatim files and asserts the shipped bytes are equal, so they cannot drift.

The rule (docs/data.md): the embedded tables are used only when *no* data directory is
configured (no ``data_dir=``, no ``ZCBENCH_DATA``) and the download cache
(``python -m zcbench data fetch``) does not hold the file either. A configured directory that
lacks a file is an error, never silently replaced. The readers call :func:`lts_records`,
:func:`nasbench_rows` and :func:`text_dir` at the point where they resolve the verbatim path;
each returns what the verbatim reader returns for the same table (LTS: the records'
``as_dict()``; NAS-Bench-BERT: the rows with the fields the space reads; text: a folder holding
the same ``valid.txt`` / ``test.txt`` bytes, so tokenizers and batches are identical).
"""
from __future__ import annotations

import json
import lzma
import os
from pathlib import Path

TABLES_DIR = Path(__file__).resolve().parent / "tables"

# verbatim path under the data dir -> embedded file under zcbench/tables/
EMBEDDED_FILES = {
    "lts/random_GPT2_wt103": "lts_random_GPT2_wt103.jsonl.xz",
    "lts/random_GPT2_lm1b": "lts_random_GPT2_lm1b.jsonl.xz",
    "lts/random_TransXL_wt103": "lts_random_TransXL_wt103.jsonl.xz",
    "lts/random_TransXL_wt103_homogeneous": "lts_random_TransXL_wt103_homogeneous.jsonl.xz",
    "flexibert/BERT_benchmark.json": "flexibert_BERT_benchmark.jsonl.xz",
    "text/wikitext-2/valid.txt": "text_wikitext-2_valid.txt.xz",
    "text/wikitext-2/test.txt": "text_wikitext-2_test.txt.xz",
}


def data_dir_configured() -> bool:
    """True when the user pointed zcbench at a data directory (``ZCBENCH_DATA``)."""
    return bool(os.environ.get("ZCBENCH_DATA"))


def _rel_if_default(path) -> str | None:
    """``path`` relative to the *unconfigured* default data dir (the download cache), or None."""
    from zcbench.data import resolve_data_dir

    if data_dir_configured():
        return None
    base = resolve_data_dir(None)
    try:
        return Path(path).expanduser().resolve().relative_to(base.resolve()).as_posix()
    except ValueError:
        return None


def substitute(path) -> str | None:
    """The embedded counterpart of a verbatim ``path`` that does not exist, when the rule allows it
    (see the module docstring): the key of ``EMBEDDED_FILES`` (or its folder), else None."""
    if Path(path).exists():
        return None
    rel = _rel_if_default(path)
    if rel is None:
        return None
    if rel in EMBEDDED_FILES and (TABLES_DIR / EMBEDDED_FILES[rel]).is_file():
        return rel
    if rel == "text/wikitext-2" and all((TABLES_DIR / EMBEDDED_FILES[f"{rel}/{f}"]).is_file()
                                         for f in ("valid.txt", "test.txt")):
        return rel
    return None


def read_bytes(rel: str) -> bytes:
    """The decompressed bytes of the embedded file standing for verbatim ``rel``."""
    return lzma.decompress((TABLES_DIR / EMBEDDED_FILES[rel]).read_bytes())


def _jsonl(rel: str) -> list[dict]:
    return [json.loads(line) for line in read_bytes(rel).decode().splitlines() if line.strip()]


def lts_records(folder) -> list[dict] | None:
    """``[LTSRecord.as_dict(), ...]`` of an LTS table folder, from the embedded copy; None when the
    rule does not allow it (the folder exists, a data dir is configured, or nothing is embedded)."""
    rel = substitute(folder)
    return _jsonl(rel) if rel else None


def nasbench_rows(path) -> list[dict] | None:
    """NAS-Bench-BERT rows (``id``, ``scores``, ``hparams.model_hparam_overrides``) from the embedded
    copy of ``flexibert/BERT_benchmark.json``; None when the rule does not allow it."""
    rel = substitute(path)
    return _jsonl(rel) if rel else None


def text_dir(folder) -> Path | None:
    """A folder with the embedded ``valid.txt`` / ``test.txt`` (written once into the cache, byte for
    byte the verbatim files) standing for ``folder``; None when the rule does not allow it."""
    rel = substitute(folder)
    if rel is None:
        return None
    from zcbench.data import cache_dir

    out = cache_dir() / "embedded" / rel
    for name in ("valid.txt", "test.txt"):
        target = out / name
        data = read_bytes(f"{rel}/{name}")
        if not target.is_file() or target.stat().st_size != len(data):
            out.mkdir(parents=True, exist_ok=True)
            tmp = target.with_name(f".{name}.{os.getpid()}")
            tmp.write_bytes(data)
            os.replace(tmp, target)
    return out
