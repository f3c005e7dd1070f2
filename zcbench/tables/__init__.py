"""Compact ground-truth tables shipped with zcbench, and the command that derives them.

``python -m zcbench data build-embedded`` runs :func:`build`: it reads each verbatim upstream
file with zcbench's own importers (``zcbench.spaces._lts.read_lts_table``,
``zcbench.data.read_nasbench_bert``) from the data directory (``--data-dir``, ``ZCBENCH_DATA``
or the download cache) and writes the derived files next to this module, xz-compressed
(deterministic bytes). What each file holds, its source and licence: ``ATTRIBUTION.md``.
``zcbench.embedded`` reads them; tests/test_embedded.py checks they equal a fresh build.
"""
from __future__ import annotations

import json
import lzma
from pathlib import Path

from zcbench.embedded import EMBEDDED_FILES, TABLES_DIR

# Only what the spaces read from a NAS-Bench-BERT row (spaces/flexibert.py: FlexiBERT.records).
NASBENCH_FIELDS = ("id", "scores")


def _xz(data: bytes) -> bytes:
    return lzma.compress(data, format=lzma.FORMAT_XZ, check=lzma.CHECK_CRC64, preset=9)


def _jsonl(rows) -> bytes:
    return "".join(json.dumps(r, sort_keys=True, separators=(",", ":")) + "\n" for r in rows).encode()


def derive(rel: str, data_dir: Path) -> bytes:
    """The uncompressed derived content for the verbatim path ``rel`` under ``data_dir``."""
    src = Path(data_dir) / rel
    if rel.startswith("lts/"):
        from zcbench.spaces._lts import read_lts_table

        return _jsonl(r.as_dict() for r in read_lts_table(src))
    if rel == "flexibert/BERT_benchmark.json":
        from zcbench.data import read_nasbench_bert

        rows = []
        for row in read_nasbench_bert(src):
            compact = {k: row[k] for k in NASBENCH_FIELDS}
            compact["hparams"] = {"model_hparam_overrides": row["hparams"]["model_hparam_overrides"]}
            rows.append(compact)
        return _jsonl(rows)
    if rel.startswith("text/"):
        from zcbench.data import DataError

        if not src.is_file():
            raise DataError(f"missing text file {src}; run `python -m zcbench data fetch` or set --data-dir")
        return src.read_bytes()
    raise ValueError(f"no derivation for {rel!r}; valid: {', '.join(EMBEDDED_FILES)}")


def build(data_dir=None, out: Path | None = None, check: bool = False) -> list[str]:
    """Write (or with ``check`` only compare) every embedded file; returns one line per file."""
    from zcbench.data import resolve_data_dir

    d = resolve_data_dir(data_dir)
    out = Path(out) if out is not None else TABLES_DIR
    lines = []
    for rel, name in EMBEDDED_FILES.items():
        blob = _xz(derive(rel, d))
        target = out / name
        if check:
            same = target.is_file() and target.read_bytes() == blob
            lines.append(f"{name}: {'ok' if same else 'DIFFERS from a fresh derivation of ' + str(d / rel)}")
            continue
        if target.is_file() and target.read_bytes() == blob:
            lines.append(f"{name}: unchanged")
            continue
        out.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name("." + name + ".tmp")
        tmp.write_bytes(blob)
        tmp.replace(target)
        lines.append(f"{name}: written ({len(blob)} bytes, from {d / rel})")
    return lines
