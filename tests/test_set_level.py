"""Set-level proxies (ntsr, rankfuse:[...]) across seeds and project-built tables (issue #22).

A set-level run's identity holds no seed, so its seeds form one configuration in the report;
a run on a project-built table is filed under that table; the one-off migration of the old
metadata (``zcbench.migrate``) gives the committed ntsr runs the same identity a fresh run
gets, without touching a score line.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from zcbench.report.load import load_runs, select_configs
from zcbench.runner import RunConfig, run

REPO = Path(__file__).resolve().parents[1]
FUSE = "rankfuse:[params,grad_norm]"  # grad_norm uses the minibatch, so its per-seed run keys differ


LABEL = "gpt2[table=gpt2_wt2]"  # the project-built table's GPT-2s are small: fast to build


def _run(res, data_dir, seed):
    """A set-level run on 4 architectures of the committed project-built GPT-2 table."""
    if not (Path(res) / "groundtruth" / "gpt2_wt2").exists():
        shutil.copytree(REPO / "results" / "groundtruth" / "gpt2_wt2", Path(res) / "groundtruth" / "gpt2_wt2")
    return run(RunConfig(space="gpt2", proxies=[FUSE], seed=seed, n_archs=4, batch_size=2, seq_len=16,
                         space_options={"table": "gpt2_wt2"}, data_dir=str(data_dir), results_dir=str(res),
                         bootstrap=0, progress=False))


def test_two_seeds_of_a_set_level_run_are_one_configuration(tmp_path, data_dir):
    out = {seed: _run(tmp_path, data_dir, seed) for seed in (0, 1)}
    s0, s1 = out[0][FUSE], out[1][FUSE]
    comp0, comp1 = out[0]["grad_norm"]["run_key"], out[1]["grad_norm"]["run_key"]
    assert comp0.split("-")[1] != comp1.split("-")[1]  # the component's per-seed keys differ ...
    assert s0["run_key"].split("-", 1)[1] == s1["run_key"].split("-", 1)[1]  # ... the fused one's data key not
    groups, notes = select_configs(load_runs(tmp_path, proxies=[FUSE]))
    assert list(groups) == [(LABEL, FUSE)] and not notes
    rows = groups[(LABEL, FUSE)]
    assert [r.seed for r in rows] == [0, 1] and all(len(r.records) == 4 for r in rows)
    meta = rows[1].meta
    assert meta["set_level"] and meta["component_runs"]["grad_norm"] == comp1
    # a rerun rewrites the same file (same key) with the same scores
    before = rows[1].path.read_text()
    assert _run(tmp_path, data_dir, 1)[FUSE]["run_key"] == s1["run_key"] and rows[1].path.read_text() == before


def test_a_table_run_is_filed_under_its_table(tmp_path, data_dir):
    shutil.copytree(REPO / "results" / "groundtruth" / "gpt2_wt2", tmp_path / "groundtruth" / "gpt2_wt2")
    fuse = "rankfuse:[params,params_nonembedding]"
    run(RunConfig(space="gpt2", proxies=[fuse], seed=0, n_archs=5, seq_len=64, space_options={"table": "gpt2_wt2"},
                  data_dir=str(data_dir), results_dir=str(tmp_path), bootstrap=0, progress=False))
    run(RunConfig(space="gpt2", proxies=[fuse], seed=0, n_archs=5, data_dir=str(data_dir),
                  results_dir=str(tmp_path), bootstrap=0, progress=False))
    groups, _ = select_configs(load_runs(tmp_path, proxies=[fuse]))
    assert sorted(groups) == [("gpt2", fuse), ("gpt2[table=gpt2_wt2]", fuse)]
    table_run = groups[("gpt2[table=gpt2_wt2]", fuse)][0]
    assert Path(table_run.meta["data"]["space_options"]["table"]).name == "gpt2_wt2"
    assert len(table_run.records) == 5


def _old_format_copy(dst: Path) -> list[Path]:
    """The committed set-level runs still in the old format, with the component metadata they name."""
    olds = []
    for meta_path in sorted((REPO / "results" / "scores").glob("*/*/*.meta.json")):
        meta = json.loads(meta_path.read_text())
        if not meta.get("set_level") or "space_options" in meta["data"]:
            continue
        for c, key in meta["data"]["components"].items():
            src = REPO / "results" / "scores" / meta["space"] / c / f"{key}.meta.json"
            (dst / src.relative_to(REPO / "results")).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(src, dst / src.relative_to(REPO / "results"))
        for p in (meta_path, meta_path.with_name(meta_path.name.replace(".meta.json", ".jsonl"))):
            (dst / p.relative_to(REPO / "results")).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(p, dst / p.relative_to(REPO / "results"))
        olds.append(meta_path)
    return olds


def _old_meta(path: Path, data_cfg: dict, seed: int) -> None:
    from zcbench.store import run_key

    key = run_key(seed, data_cfg, "1")
    meta = {"space": "gpt2", "proxy": FUSE, "seed": seed, "data": data_cfg, "proxy_version": "1", "run_key": key,
            "set_level": True}
    (path / f"{key}.meta.json").write_text(json.dumps(meta))
    return key


def test_migration_gives_old_runs_the_key_of_a_fresh_run_and_keeps_every_score(tmp_path, data_dir):
    from zcbench.migrate import migrate_set_level
    from zcbench.store import safe_name

    out = {seed: _run(tmp_path, data_dir, seed) for seed in (0, 1)}
    fresh = {seed: out[seed][FUSE]["run_key"] for seed in (0, 1)}
    folder = tmp_path / "scores" / "gpt2" / safe_name(FUSE)
    comps = {seed: {c: out[seed][c]["run_key"] for c in ("params", "grad_norm")} for seed in (0, 1)}
    for seed, key in fresh.items():  # turn the fresh files back into the old layout
        lines = (folder / f"{key}.jsonl").read_text()
        (folder / f"{key}.jsonl").unlink()
        (folder / f"{key}.meta.json").unlink()
        old = _old_meta(folder, {"components": comps[seed], "archs": "0123456789"}, seed)
        (folder / f"{old}.jsonl").write_text(lines)
    assert len(select_configs(load_runs(tmp_path, proxies=[FUSE]))[1]) == 1  # two configurations before
    moved = migrate_set_level(tmp_path)
    assert sorted(new.name for _, new in moved) == sorted(f"{k}.jsonl" for k in fresh.values())
    groups, notes = select_configs(load_runs(tmp_path, proxies=[FUSE]))
    assert not notes and [r.seed for r in groups[(LABEL, FUSE)]] == [0, 1]
    assert migrate_set_level(tmp_path) == []  # idempotent


def test_committed_ntsr_runs_group_seeds_and_tables(tmp_path):
    """The committed ntsr runs (migrated in the repository; an unmigrated checkout is migrated
    in a copy first, every score line kept byte for byte): the seeds of gpt2 and flexibert are
    one configuration each, and the project-built table runs are filed under their tables."""
    from zcbench.migrate import migrate_set_level

    root = REPO / "results"
    olds = _old_format_copy(tmp_path)
    if olds:
        before = {p.name[: -len(".meta.json")]: p.with_name(p.name.replace(".meta.json", ".jsonl")).read_bytes()
                  for p in olds}
        moved = migrate_set_level(tmp_path)
        assert len(moved) == len(olds)
        for old, new in moved:
            assert not old.exists() and new.read_bytes() == before[old.name[: -len(".jsonl")]]
        root = tmp_path
    groups, _ = select_configs(load_runs(root, proxies=["ntsr"]))
    seeds = {label: [r.seed for r in rs] for (label, _), rs in groups.items()}
    if root != REPO / "results":  # migrated old-format runs
        assert {1, 2} <= set(seeds["gpt2"]) and {1, 2} <= set(seeds["flexibert"])
    if root == REPO / "results":  # the committed store: fused from today's sept (Eq. 16, v2); GPT-2 and
        # FlexiBERT reported at the papers' minibatches (16 x 192: seeds 0 and 1; 128 x 128: seed 0; complete),
        # their three seeds at the reduced minibatches (4 x 192, 16 x 128) still stored and named in the notes
        from zcbench.report.load import run_minibatch

        runs = load_runs(root)
        for label, papers, reduced_mb, reported in (("gpt2", (16, 192), (4, 192), [0, 1]),
                                                    ("flexibert", (128, 128), (16, 128), [0])):
            assert all(r.data["components"]["sept"].endswith("-v2") for r in groups[(label, "ntsr")]), label
            assert seeds[label] == reported, label
            assert all(run_minibatch(r, runs) == papers for r in groups[(label, "ntsr")]), label
            every, _ = select_configs([r for r in load_runs(root, proxies=["ntsr"]) if r.space == label],
                                      all_configs=True)
            reduced = [rs for rs in every.values() if run_minibatch(rs[0], runs) == reduced_mb
                       and rs[0].data["components"]["sept"].endswith("-v2")]
            assert [[r.seed for r in rs] for rs in reduced] == [[0, 1, 2]], label
    assert seeds["gpt2[table=gpt2_wt2]"] == [0] and seeds["autoformer[table=autoformer_digits]"] == [0]
    assert "autoformer" not in seeds  # the table run no longer shows as an empty plain-autoformer row
    sizes = {label: {len(r.records) for r in rs} for (label, _), rs in groups.items()}
    assert sizes["gpt2"] == {200} and sizes["flexibert"] == {491} and sizes["gpt2[table=gpt2_wt2]"] == {100}


def test_a_set_level_run_fused_from_newer_components_is_reported(tmp_path, data_dir):
    """Two configurations of one set-level proxy, equal in seeds and records, differing only in a
    component's version (sept v2 = ETAS Eq. 16, the default; v1 = variant=rank_recursion): the
    report shows the one fused from the newer component, whichever was stored first."""
    fuse = "rankfuse:[params,sept]"
    for variant in ("rank_recursion", None):
        opts = {"sept": {"variant": variant}} if variant else {}
        run(RunConfig(space="gpt2", proxies=[fuse, "sept"] if variant else [fuse], seed=0, n_archs=5,
                      data_dir=str(data_dir), results_dir=str(tmp_path), bootstrap=0, progress=False,
                      proxy_options=opts))
    groups, notes = select_configs(load_runs(tmp_path, proxies=[fuse]))
    (rows,) = groups.values()
    assert rows[0].data["components"]["sept"].endswith("-v2") and len(notes) == 1


def test_a_complete_run_at_the_default_minibatch_is_the_reported_configuration(tmp_path, data_dir):
    """Issue 18: the leaderboard reports the papers' minibatch (the space's conf default) once a run
    there is complete, even against a reduced minibatch with more seeds; an incomplete one does not."""
    from zcbench.report.load import default_minibatch, run_minibatch

    shutil.copytree(REPO / "results" / "groundtruth" / "gpt2_wt2", tmp_path / "groundtruth" / "gpt2_wt2")

    def go(seed, n, b=None, t=None):
        run(RunConfig(space="gpt2", proxies=["grad_norm", FUSE], seed=seed, n_archs=n, batch_size=b or 16,
                      seq_len=t, space_options={"table": "gpt2_wt2"}, data_dir=str(data_dir),
                      results_dir=str(tmp_path), bootstrap=0, progress=False))

    for seed in (0, 1):
        go(seed, 3, b=2, t=16)  # reduced minibatch, two seeds
    default = default_minibatch("gpt2", load_runs(tmp_path, proxies=["grad_norm"])[0].space_options)
    assert default == (16, 64)  # conf/space/gpt2.yaml's 16 x the table networks' tgt_len
    go(0, 2)  # the default minibatch, incomplete: 2 of 3 architectures
    groups, notes = select_configs(load_runs(tmp_path, proxies=["grad_norm", FUSE]))
    for proxy in ("grad_norm", FUSE):
        rows = groups[(LABEL, proxy)]
        assert [r.seed for r in rows] == [0, 1] and run_minibatch(rows[0], load_runs(tmp_path)) == (2, 16)
    go(0, 3)  # now complete
    runs = load_runs(tmp_path, proxies=["grad_norm", FUSE])
    groups, notes = select_configs(runs)
    for proxy in ("grad_norm", FUSE):
        rows = groups[(LABEL, proxy)]
        assert [r.seed for r in rows] == [0] and len(rows[0].records) == 3
        assert run_minibatch(rows[0], runs) == default  # the fused run's, through its components
    assert any("grad_norm: configuration" in n and "seeds [0, 1]" in n for n in notes)
    alone, _ = select_configs(load_runs(tmp_path, proxies=[FUSE]))  # components not loaded: read beside the run
    assert [r.seed for r in alone[(LABEL, FUSE)]] == [0] and run_minibatch(alone[(LABEL, FUSE)][0]) == default
