"""One-off migration of stored set-level runs (``ntsr``, ``rankfuse:[...]``) to the current metadata.

Before issue #22 the runner keyed a set-level proxy's file by its components' per-seed run
keys and left the space options out: every seed was a separate configuration in the report,
and a run on a project-built table (``table=...``) was filed under the plain space. Today's
``runner.set_data_config`` keys it by the space options, each component's seed-free
configuration and the size of the architecture set (its IDs' hash stays in the metadata).
This rewrites the metadata of old files to that
form, reading the space options and configurations from the component files the old
metadata names; the score lines are copied byte for byte (no number is recomputed or
edited). The old key is kept in the new meta as ``migrated_from`` and the per-seed component
keys as ``component_runs``.

    python -m zcbench.migrate results            # migrate (prints old -> new)
    python -m zcbench.migrate results --dry-run  # only print
"""
from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from zcbench.errors import DataError
from zcbench.store import atomic_write_text, iter_score_files, run_key, safe_name


def _needs_migration(meta: dict) -> bool:
    return bool(meta.get("set_level")) and "space_options" not in (meta.get("data") or {})


def migrate_set_level(results_dir, dry_run: bool = False) -> list[tuple[Path, Path]]:
    """Rewrite every old-format set-level run under ``results_dir``; returns (old, new) jsonl paths.

    Raises ``DataError`` (one line naming the file) when a component file the old metadata
    names is missing or the components disagree on the space options; nothing is written then
    for that run (runs already migrated stay migrated)."""
    from zcbench.runner import set_data_config

    root = Path(results_dir)
    moved = []
    for meta, path in list(iter_score_files(root)):
        if not _needs_migration(meta):
            continue
        data = meta["data"]
        comps = {}
        for c, key in sorted(data["components"].items()):
            cpath = root / "scores" / meta["space"] / safe_name(c) / f"{key}.meta.json"
            if not cpath.exists():
                raise DataError(f"{path.name}: component run {cpath} named in its metadata does not exist")
            cmeta = json.loads(cpath.read_text())
            comps[c] = (cmeta["data"], str(cmeta["proxy_version"]))
        options = {json.dumps(cfg.get("space_options") or {}, sort_keys=True) for cfg, _ in comps.values()}
        if len(options) != 1:
            raise DataError(f"{path.name}: its components were scored with different space options")
        space_options = comps[next(iter(comps))][0].get("space_options") or {}
        n_archs = len({json.loads(line)["arch_id"] for line in path.read_text().splitlines() if line.strip()})
        new_data = set_data_config(space_options, comps, n_archs)
        new_key = run_key(int(meta["seed"]), new_data, str(meta["proxy_version"]))
        new_meta = {**meta, "data": new_data, "run_key": new_key, "migrated_from": meta["run_key"],
                    "component_runs": dict(data["components"]), "archs": data["archs"]}
        new_path = path.with_name(f"{new_key}.jsonl")
        moved.append((path, new_path))
        if dry_run:
            continue
        if new_path.exists() and new_path.read_bytes() != path.read_bytes():
            raise DataError(f"{path.name}: {new_path} already exists with other scores; not overwriting it")
        atomic_write_text(new_path, path.read_text())
        atomic_write_text(new_path.with_name(f"{new_key}.meta.json"), json.dumps(new_meta, indent=2, sort_keys=True))
        os.unlink(path.with_name(f"{meta['run_key']}.meta.json"))
        os.unlink(path)
    return moved


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m zcbench.migrate", description=__doc__.splitlines()[0])
    ap.add_argument("results_dir")
    ap.add_argument("--dry-run", action="store_true")
    args = ap.parse_args(argv)
    for old, new in migrate_set_level(args.results_dir, dry_run=args.dry_run):
        print(f"{old} -> {new.name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
