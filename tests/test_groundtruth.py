"""Ground-truth builder (zcbench.groundtruth): build, resume after SIGKILL, shards, importer,
runner against a table, noise ceiling. Real data: scikit-learn's bundled digits (image
recipe) and WikiText-2 from ../shared/data (LM recipe), with tiny step counts."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from zcbench.data import DataError, read_groundtruth_table
from zcbench.groundtruth import BuildError, build, noise_ceiling
from zcbench.runner import ConfigError, RunConfig, run

REPO = Path(__file__).resolve().parents[1]


def recipe(name: str, **train) -> dict:
    r = yaml.safe_load((REPO / "conf" / "recipe" / f"{name}.yaml").read_text())
    r["train"].update(train)
    return r


def cfg(table: Path, rec: dict, n_archs=3, **kw) -> dict:
    return {"recipe": rec, "space": None, "n_archs": n_archs, "seeds": [0, 1], "sample_seed": 0, "table": str(table),
            "results_dir": "results", "shard": None, "threads": 1, "bootstrap": 200, **kw}


def digits_params(genes: dict, img_size=8, patch=4, classes=10, head_dim=64, rel_tables=4 * (2 * 14 + 2)) -> int:
    """Parameter count of an AutoFormer network of the digits recipe, written out by hand (not the
    space's code): patch conv, class token + position embedding, per layer biased qkv to 3 * 64 H
    and proj back, four relative-position tables of (2 * 14 + 2) x 64 rows, two LayerNorms and the
    MLP (hidden int(D r)); final LayerNorm and the classifier."""
    D, n = genes["embed_dim"], (img_size // patch) ** 2
    total = (3 * patch * patch * D + D) + D * (n + 2) + 2 * D + (D * classes + classes)
    for H, r in zip(genes["num_heads"], genes["mlp_ratio"]):
        Q, F = head_dim * H, int(D * r)
        total += (D * 3 * Q + 3 * Q) + (Q * D + D) + rel_tables * head_dim + 4 * D + (D * F + F) + (F * D + D)
    return total


def test_digits_params_formula_by_hand():
    # worked through by hand for D=48, heads [1,2,2,2], ratios [4,4,4,2]: patch 2352, tokens 288,
    # layers 39072 + 51552 + 51552 + 42240, final norm 96, classifier 490
    g = {"embed_dim": 48, "depth": 4, "num_heads": [1, 2, 2, 2], "mlp_ratio": [4.0, 4.0, 4.0, 2.0]}
    assert digits_params(g) == 2352 + 288 + 39072 + 2 * 51552 + 42240 + 96 + 490 == 187642


def test_committed_digits_table_counts_match_the_hand_formula():
    t = read_groundtruth_table(REPO / "results" / "groundtruth" / "autoformer_digits")
    assert len(t.archs) >= 100
    assert all(a.params == digits_params(a.genes) for a in t.archs)


def rows(folder: Path) -> list[dict]:
    return [json.loads(ln) for ln in (folder / "table.jsonl").read_text().splitlines() if ln.strip()]


def zc(*args, timeout=120, wait=True):
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "zcbench", *args]
    if not wait:
        return subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def image_table(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("gt") / "digits"
    build(cfg(folder, recipe("image_digits", steps=8, warmup_steps=2)), command="test")
    return folder


def test_build_writes_rows_header_and_is_seeded(image_table, tmp_path):
    rs = rows(image_table)
    assert len(rs) == 6 and len({(r["arch_id"], r["seed"]) for r in rs}) == 6
    assert {r["seed"] for r in rs} == {0, 1}
    for r in rs:
        assert 0.0 <= r["top1"] <= 100.0 and r["train_seconds"] > 0 and r["params"] == digits_params(r["genes"])
        assert set(r["genes"]) == {"embed_dim", "depth", "num_heads", "mlp_ratio"}
        assert r["genes"]["embed_dim"] in (32, 48, 64)  # the recipe's sub-space, not AutoFormer-tiny's
    meta = yaml.safe_load((image_table / "table.yaml").read_text())
    assert meta["space"] == "autoformer" and meta["metric"] == "top1" and meta["higher_is_better"] is True
    assert meta["space_options"]["img_size"] == 8 and meta["recipe"]["train"]["steps"] == 8
    assert meta["machine"]["threads"] == 1 and meta["summary"]["n_rows"] == 6
    # the two seeds of one arch train differently; the same (arch, seed) again gives the same numbers
    by = {(r["arch_id"], r["seed"]): r for r in rs}
    a0 = rs[0]["arch_id"]
    assert (by[(a0, 0)]["test_loss"], by[(a0, 0)]["train_loss"]) != (by[(a0, 1)]["test_loss"], by[(a0, 1)]["train_loss"])
    again = tmp_path / "again"
    build(cfg(again, recipe("image_digits", steps=8, warmup_steps=2), n_archs=1), command="test")
    r2 = rows(again)
    for r in r2:
        old = by[(r["arch_id"], r["seed"])]
        assert (r["top1"], r["test_loss"], r["train_loss"]) == (old["top1"], old["test_loss"], old["train_loss"])


def test_lm_recipe_builds_on_wikitext2(tmp_path):
    folder = tmp_path / "lm"
    rec = recipe("lm_wt2", steps=3, warmup_steps=1)
    rec["eval"]["windows"] = 8
    s = build(cfg(folder, rec, n_archs=2), command="test")
    rs = rows(folder)
    assert len(rs) == 4 and s["n_archs"] == 2
    for r in rs:
        assert r["genes"]["n_token"] == 2048 and r["genes"]["d_model"] in (32, 64)
        assert 10 < r["test_ppl"] < 1e5 and abs(r["test_ppl"] - 2.718281828 ** r["test_loss"]) < 1e-6 * r["test_ppl"]


def test_rebuilding_with_another_recipe_is_refused(image_table):
    with pytest.raises(BuildError, match="recipe_hash"):
        build(cfg(image_table, recipe("image_digits", steps=9, warmup_steps=2)), command="test")
    with pytest.raises(BuildError, match="two distinct training seeds"):
        build(cfg(image_table, recipe("image_digits"), seeds=[0]), command="test")


def test_sigkill_then_rerun_keeps_finished_rows_and_adds_only_missing(tmp_path):
    folder = tmp_path / "kill"
    args = ["groundtruth", "build", "recipe=image_digits", "n_archs=2", "recipe.train.steps=30", f"table={folder}",
            "bootstrap=0"]
    p = zc(*args, wait=False)
    deadline = time.time() + 90
    while time.time() < deadline and not (folder / "table.jsonl").exists():
        time.sleep(0.05)
    while time.time() < deadline and len(rows(folder)) < 1:
        time.sleep(0.05)
    p.send_signal(signal.SIGKILL)
    p.wait(30)
    first = (folder / "table.jsonl").read_text()
    n_first = len(rows(folder))
    assert 1 <= n_first < 4, "killed too late: the build had already finished"
    assert not (folder / "builds.jsonl").exists()  # the killed build never reached its end
    t_restart = time.time()
    r = zc(*args)
    assert r.returncode == 0, r.stderr
    assert f"{n_first} of 4 trainings of this shard already in" in r.stderr
    after = rows(folder)
    assert (folder / "table.jsonl").read_text().startswith(first)  # finished rows untouched
    assert len(after) == 4 and len({(x["arch_id"], x["seed"]) for x in after}) == 4
    from datetime import datetime

    for x in after[n_first:]:  # only the missing trainings were run, all after the restart
        assert datetime.fromisoformat(x["finished_at"]).timestamp() >= int(t_restart)
    log = [json.loads(ln) for ln in (folder / "builds.jsonl").read_text().splitlines()]
    assert [b["rows_added"] for b in log] == [4 - n_first]


def test_joblib_shards_write_one_consistent_table(tmp_path):
    folder = tmp_path / "shards"
    r = zc("groundtruth", "build", "-m", "recipe=image_digits", "n_archs=2", "recipe.train.steps=4", f"table={folder}",
           "shard=0/2,1/2", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", f"hydra.sweep.dir={tmp_path}/mr",
           "bootstrap=0")
    assert r.returncode == 0, r.stderr
    rs = rows(folder)
    assert len(rs) == 4 and len({(x["arch_id"], x["seed"]) for x in rs}) == 4
    log = [json.loads(ln) for ln in (folder / "builds.jsonl").read_text().splitlines()]
    assert sorted(b["shard"] for b in log) == ["0/2", "1/2"] and all(b["rows_added"] == 2 for b in log)
    # the union of the shards is the sample a single process draws
    from zcbench.groundtruth import sample_archs
    from zcbench.registry import create_space

    space = create_space("autoformer", **recipe("image_digits")["space_options"])
    assert {x["arch_id"] for x in rs} == {a.id for a in sample_archs(space, 2, 0)}


def test_importer_round_trip_and_bad_files(image_table, tmp_path):
    t = read_groundtruth_table(image_table)
    assert len(t.archs) == 3 and t.n_rows == 6 and t.metric == "top1" and t.space == "autoformer"
    by = {(r["arch_id"], r["seed"]): r["top1"] for r in rows(image_table)}
    for a in t.archs:
        assert a.seeds == {0: by[(a.arch_id, 0)], 1: by[(a.arch_id, 1)]}
        assert a.mean == pytest.approx((by[(a.arch_id, 0)] + by[(a.arch_id, 1)]) / 2)
    bad = tmp_path / "bad"
    bad.mkdir()
    with pytest.raises(DataError) as e:
        read_groundtruth_table(bad)
    assert "table.yaml" in str(e.value) and "\n" not in str(e.value)
    (bad / "table.yaml").write_text((image_table / "table.yaml").read_text())
    (bad / "table.jsonl").write_text((image_table / "table.jsonl").read_text() + '{"arch_id": "x", "seed": \n')
    with pytest.raises(DataError) as e:
        read_groundtruth_table(bad)
    assert "line 7" in str(e.value) and str(bad / "table.jsonl") in str(e.value) and "\n" not in str(e.value)
    (bad / "table.yaml").write_text("space: autoformer\n")
    with pytest.raises(DataError, match="needs space, metric, higher_is_better"):
        read_groundtruth_table(bad)


def test_runner_scores_params_against_the_table(image_table, tmp_path):
    # the space's conf defaults (224 px, 1000 classes, AutoFormer-tiny) must give way to the table's options
    defaults = yaml.safe_load((REPO / "conf" / "space" / "autoformer.yaml").read_text())["options"]
    rc = RunConfig(space="autoformer", proxies=["params"], batch_size=4, seq_len=17, results_dir=str(tmp_path),
                   space_options={**defaults, "table": str(image_table)}, bootstrap=0, progress=False)
    s = run(rc)["params"]
    assert s["n_scored"] == 3 and s["metric"] == "top1" and s["correlation"]["n"] == 3
    rec = [json.loads(ln) for f in (tmp_path / "scores" / "autoformer" / "params").glob("*.jsonl")
           for ln in f.read_text().splitlines()]
    table_params = {a.arch_id: a.params for a in read_groundtruth_table(image_table).archs}
    assert {r["arch_id"]: r["score"] for r in rec} == pytest.approx(table_params)  # the trained networks
    genes = {a.arch_id: a.genes for a in read_groundtruth_table(image_table).archs}
    assert {r["arch_id"]: r["score"] for r in rec} == {i: digits_params(g) for i, g in genes.items()}  # by hand
    meta = json.loads(next((tmp_path / "scores" / "autoformer" / "params").glob("*.meta.json")).read_text())
    assert meta["data"]["space_options"]["img_size"] == 8 and meta["data"]["space_options"]["table"] == str(image_table)
    with pytest.raises(ConfigError, match="built for space autoformer"):
        run(RunConfig(space="gpt2", proxies=["params"], results_dir=str(tmp_path),
                      space_options={"table": str(image_table)}, progress=False))


def test_noise_ceiling_on_known_cases():
    same = pd.DataFrame({0: [1.0, 2.0, 3.0, 4.0, 5.0], 1: [10.0, 20.0, 30.0, 40.0, 50.0]})
    c = noise_ceiling(same, higher_is_better=False, n_resamples=0)
    assert c["rho"] == pytest.approx(1.0) and c["tau"] == pytest.approx(1.0) and c["n"] == 5
    swap = pd.DataFrame({0: [1.0, 2.0, 3.0, 4.0], 1: [1.0, 2.0, 4.0, 3.0]})
    c = noise_ceiling(swap, higher_is_better=True, n_resamples=0)
    assert c["rho"] == pytest.approx(0.8) and c["tau"] == pytest.approx(2 / 3)
    assert c["k_seeds"] == 2 and c["rho_mean_of_k"] == pytest.approx(2 * 0.8 / 1.8)  # Spearman-Brown
    rev = pd.DataFrame({0: [1.0, 2.0, 3.0, 4.0, float("nan")], 1: [4.0, 3.0, 2.0, 1.0, 7.0]})
    c = noise_ceiling(rev, higher_is_better=True, n_resamples=0)
    assert c["rho"] == pytest.approx(-1.0) and c["n"] == 4  # the arch missing seed 0 is left out
    assert noise_ceiling(pd.DataFrame({0: [1.0, 2.0], 1: [1.0, 2.0]}), True) is None


def test_ceiling_command(image_table, capsys):
    from zcbench.groundtruth import main_groundtruth

    with pytest.raises(SystemExit) as e:
        main_groundtruth(["ceiling", f"table={image_table}", "bootstrap=0"])
    out = capsys.readouterr()
    assert e.value.code == 0, out.err
    assert "noise ceiling (seed 0 vs seed 1, n=3)" in out.out and "3 architectures, 6 rows" in out.out
    with pytest.raises(SystemExit) as e:
        main_groundtruth(["ceiling", "table=/nonexistent/table"])
    err = capsys.readouterr().err
    assert e.value.code == 2 and err.count("\n") == 1 and "no ground-truth table" in err


def test_table_reference_in_run_keys_does_not_depend_on_the_working_directory(tmp_path, monkeypatch):
    """A table under the run's results folder is recorded by name whatever the working directory
    (a run from elsewhere with results_dir=<abs path> gets the same key as one from the checkout);
    a table elsewhere is recorded by its path."""
    from zcbench.groundtruth import table_ref

    folder = tmp_path / "store" / "groundtruth" / "mytable"
    folder.mkdir(parents=True)
    other = tmp_path / "elsewhere"
    other.mkdir()
    monkeypatch.chdir(other)
    assert table_ref(folder, str(tmp_path / "store")) == "mytable"
    assert table_ref(folder, None) == str(folder.resolve())
    monkeypatch.chdir(tmp_path / "store" / "..")
    assert table_ref(folder, "store") == "mytable"
    (tmp_path / "results").symlink_to(tmp_path / "store")
    monkeypatch.chdir(tmp_path)
    assert table_ref(folder, None) == "mytable"  # ./results/groundtruth/mytable, as resolve_table finds names
