"""Results store: per-architecture scores that survive kills and concurrent writers.

Layout under the results directory::

    scores/<space>/<proxy>/<run_key>.jsonl      one line per scored architecture
    scores/<space>/<proxy>/<run_key>.meta.json  what the key stands for
    summaries/<space>/<proxy>/<run_key>.json    correlations of the latest run

``run_key`` = ``seed<seed>-<data hash>-v<proxy version>``: a score is keyed by
(space, proxy, arch ID, seed, data config, proxy version), so a changed batch,
sequence length, corpus, tokenizer or proxy definition never mixes with old
numbers. Each finished architecture is one JSON line appended with a single
``write`` under an exclusive ``flock`` and fsynced before the next one starts:
a SIGKILL loses at most the architecture in flight, shards may append to the
same file at once, and a rerun skips every ID already present.
"""
from __future__ import annotations

import fcntl
import hashlib
import json
import math
import os
import tempfile
import warnings
from pathlib import Path
from typing import Iterable


def data_key(data_cfg: dict) -> str:
    return hashlib.sha1(json.dumps(data_cfg, sort_keys=True).encode()).hexdigest()[:10]


def run_key(seed: int, data_cfg: dict, proxy_version: str) -> str:
    return f"seed{seed}-{data_key(data_cfg)}-v{proxy_version}"


def atomic_write_text(path: Path, text: str) -> None:
    """Write via a temporary file in the same folder and rename: readers never see half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _json_value(v: float):
    # JSON has no NaN/inf; keep them explicit as strings so nothing is silently coerced.
    if isinstance(v, float) and (math.isnan(v) or math.isinf(v)):
        return str(v)
    return v


def _float(v) -> float:
    return float(v) if v is not None else float("nan")


class ScoreFile:
    """Append-only JSONL of one (space, proxy, seed, data config, proxy version)."""

    def __init__(self, root: Path, space: str, proxy: str, seed: int, data_cfg: dict, proxy_version: str):
        self.dir = Path(root) / "scores" / space / _safe(proxy)
        self.key = run_key(seed, data_cfg, proxy_version)
        self.path = self.dir / f"{self.key}.jsonl"
        self.meta = {"space": space, "proxy": proxy, "seed": seed, "data": data_cfg, "proxy_version": proxy_version,
                     "run_key": self.key}

    def ensure_meta(self, extra: dict | None = None) -> None:
        meta_path = self.dir / f"{self.key}.meta.json"
        if not meta_path.exists():
            atomic_write_text(meta_path, json.dumps({**self.meta, **(extra or {})}, indent=2, sort_keys=True))

    def read(self) -> dict[str, dict]:
        """arch_id -> record; first record per ID wins (shards never overlap, reruns skip)."""
        out: dict[str, dict] = {}
        if not self.path.exists():
            return out
        with open(self.path) as f:
            lines = f.read().split("\n")
        for i, line in enumerate(lines):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                # Only a write torn by a crash of the machine itself can leave this; the
                # architecture is simply scored again.
                warnings.warn(f"{self.path}: ignoring unreadable line {i + 1}")
                continue
            rec["score"] = _float(rec.get("score"))  # "nan"/"inf" strings parse back to floats
            out.setdefault(rec["arch_id"], rec)
        return out

    def append(self, record: dict) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        rec = {k: _json_value(v) for k, v in record.items()}
        line = (json.dumps(rec, sort_keys=True) + "\n").encode()
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            view = memoryview(line)
            while view:  # os.write may write less than asked (signals, full pipes on odd file systems)
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)


def _safe(name: str) -> str:
    """File-system-safe form of a proxy name such as ``rankfuse:[ntkt,sept]``."""
    keep = "".join(c if c.isalnum() or c in "-_.+" else "_" for c in name)
    if keep == name:
        return name
    return f"{keep}-{hashlib.sha1(name.encode()).hexdigest()[:6]}"


def iter_score_files(root: Path, space: str | None = None) -> Iterable[tuple[dict, Path]]:
    """Yield (meta, jsonl path) for every score file under ``root``."""
    base = Path(root) / "scores"
    pattern = f"{space}/*/*.meta.json" if space else "*/*/*.meta.json"
    for meta_path in sorted(base.glob(pattern)):
        meta = json.loads(meta_path.read_text())
        yield meta, meta_path.with_name(meta_path.name[: -len(".meta.json")] + ".jsonl")


def summary_path(root: Path, space: str, proxy: str, key: str) -> Path:
    return Path(root) / "summaries" / space / _safe(proxy) / f"{key}.json"
