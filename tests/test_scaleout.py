"""Scale-out: Hydra launchers (joblib, submitit, Ray), shard=i/n + merge, concurrent store writers.

Every run is a real ``python -m zcbench`` subprocess on the GPT-2 LTS space and the
upstream tables in ../shared/data. Threads are pinned to one per process
(OMP_NUM_THREADS=1) so that a sharded run and a single-process run do the same
floating-point work and can be compared bit for bit.
"""
from __future__ import annotations

import json
import multiprocessing as mp
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from zcbench.registry import get_proxy, list_proxies, list_spaces
from zcbench.store import ScoreFile

REPO = Path(__file__).resolve().parents[1]
LINE = re.compile(r"^(\w+) \| (\S+) \| seed (\d+) \| n=(\d+)")  # space | proxy | seed | n


def _env(**extra):
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1", MKL_NUM_THREADS="1",
               RAY_AUTH_MODE="disabled", **extra)
    return env


def run_zc(*args, timeout=600):
    return subprocess.run([sys.executable, "-m", "zcbench", *args], capture_output=True, text=True, cwd=REPO,
                          env=_env(), timeout=timeout)


def result_lines(stdout: str) -> list[str]:
    """The per-(space, proxy, seed) result lines, with any launcher prefix such as Ray's removed."""
    out = []
    for ln in stdout.splitlines():
        ln = re.sub(r"\x1b\[[0-9;]*m", "", ln)
        ln = re.sub(r"^\(\w+ pid=\d+\)\s*", "", ln)
        if re.match(r"^\w+ \| [^|]+ \| seed \d+ \| n=", ln):
            out.append(ln.strip())
    return out


def score_files(root: Path) -> dict[tuple[str, str, int], Path]:
    """(space, proxy, seed) -> the single .jsonl of that combination under ``root``."""
    found: dict[tuple[str, str, int], Path] = {}
    for meta_path in sorted((root / "scores").glob("*/*/*.meta.json")):
        meta = json.loads(meta_path.read_text())
        key = (meta["space"], meta["proxy"], meta["seed"])
        assert key not in found, f"two score files for {key}: the data config differs between jobs"
        found[key] = meta_path.with_name(meta_path.name[: -len(".meta.json")] + ".jsonl")
    return found


def check_jsonl(path: Path, n: int) -> dict[str, float]:
    """Every line whole JSON, one line per architecture, exactly ``n`` of them; arch_id -> score."""
    text = path.read_text()
    assert text.endswith("\n"), f"{path}: last line not terminated"
    recs = [json.loads(line) for line in text.splitlines()]  # a torn line would not parse
    ids = [r["arch_id"] for r in recs]
    assert len(ids) == len(set(ids)) == n, (path, len(ids), len(set(ids)), n)
    assert all(r["status"] == "ok" for r in recs), [r for r in recs if r["status"] != "ok"][:2]
    return {r["arch_id"]: r["score"] for r in recs}


def data_proxy() -> str:
    """A data-dependent proxy when one is registered (its scores depend on the minibatch)."""
    for name in ("grad_norm", "snip"):
        if name in list_proxies():
            return name
    return "params"


# ---------------------------------------------------------------------------------------------
# 1. a sweep through the joblib launcher: parallel worker processes, one store


def test_joblib_multirun_runs_jobs_in_parallel_workers_into_one_store(tmp_path):
    out = run_zc("run", "-m", "proxy=params,params_nonembedding", "space=gpt2", "seed=0,1", "n_archs=20",
                 "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "hydra.launcher.verbose=1",
                 f"results_dir={tmp_path}", "bootstrap=0", "progress=false")
    assert out.returncode == 0, out.stderr[-3000:]
    # joblib reports its pool: the four jobs went to two loky worker processes
    assert "Using backend LokyBackend with 2 concurrent workers" in out.stderr
    lines = result_lines(out.stdout)
    got = sorted((m.group(2), int(m.group(3)), int(m.group(4))) for m in map(LINE.match, lines))
    assert got == [("params", 0, 20), ("params", 1, 20), ("params_nonembedding", 0, 20),
                   ("params_nonembedding", 1, 20)], lines
    files = score_files(tmp_path)
    assert sorted(files) == [("gpt2", p, s) for p in ("params", "params_nonembedding") for s in (0, 1)]
    scores = {k: check_jsonl(f, 20) for k, f in files.items()}
    # seeds draw different samples of 20 from the 200 LTS architectures; both proxies see the same ones
    assert set(scores["gpt2", "params", 0]) == set(scores["gpt2", "params_nonembedding", 0])
    assert set(scores["gpt2", "params", 0]) != set(scores["gpt2", "params", 1])
    # every job wrote its summary next to the scores
    for (space, proxy, seed), f in files.items():
        s = json.loads((tmp_path / "summaries" / space / proxy / f"{f.stem}.json").read_text())
        assert s["n_scored"] == 20 and s["seed"] == seed and s["correlation"]["n"] == 20


@pytest.mark.slow
def test_issue_example_sweep_with_joblib(tmp_path):
    """The issue's command, small: -m proxy=snip,synflow,ntsr space=gpt2,flexibert seed=0,1,2."""
    proxies = [p for p in ("snip", "synflow", "ntsr") if p in list_proxies()] or ["params"]
    spaces = [s for s in ("gpt2", "flexibert") if s in list_spaces()]
    out = run_zc("run", "-m", f"proxy={','.join(proxies)}", f"space={','.join(spaces)}", "seed=0,1,2",
                 "n_archs=3", "batch_size=2", "seq_len=16", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2",
                 f"results_dir={tmp_path}", "bootstrap=0", "progress=false", timeout=1800)
    assert out.returncode == 0, out.stderr[-3000:]
    # a set-level proxy (ntsr fuses ntkt and sept) stores its components' scores as well
    stored = set(proxies)
    for p in proxies:
        stored |= set(getattr(get_proxy(p), "components", ()))
    files = score_files(tmp_path)
    assert sorted(files) == sorted((s, p, seed) for s in spaces for p in stored for seed in (0, 1, 2))
    for f in files.values():
        check_jsonl(f, 3)
    assert len(result_lines(out.stdout)) == len(files)


# ---------------------------------------------------------------------------------------------
# 2. shard=i/n through one joblib multirun, merged, equals one process


def test_three_concurrent_shards_then_merge_equal_a_single_process_run(tmp_path):
    proxy = data_proxy()
    common = [f"proxy={proxy}", "space=gpt2", "seed=0", "n_archs=4", "batch_size=2", "seq_len=16",
              "bootstrap=200", "progress=false"]
    single_dir, shard_dir = tmp_path / "single", tmp_path / "sharded"

    # reference first: it also fills the tokenizer cache the shards then share
    single = run_zc("run", *common, f"results_dir={single_dir}")
    assert single.returncode == 0, single.stderr[-3000:]

    # merge only combines: with shards missing it refuses instead of scoring
    early = run_zc("merge", *common, f"results_dir={shard_dir}")
    assert early.returncode != 0 and "4 of 4 architectures have no score yet" in early.stderr, early.stderr[-2000:]

    shards = run_zc("run", "-m", *common, "shard=0/3,1/3,2/3", "hydra/launcher=joblib", "hydra.launcher.n_jobs=3",
                    "hydra.launcher.verbose=1", f"results_dir={shard_dir}")
    assert shards.returncode == 0, shards.stderr[-3000:]
    assert "Using backend LokyBackend with 3 concurrent workers" in shards.stderr
    # 4 architectures sliced [i::3]: shards of 2, 1 and 1, all appending to one score file
    sizes = sorted(int(LINE.match(ln).group(4)) for ln in result_lines(shards.stdout))
    assert sizes == [1, 1, 2], shards.stdout
    (key,) = score_files(shard_dir)
    sharded_scores = check_jsonl(score_files(shard_dir)[key], 4)

    merged = run_zc("merge", *common, f"results_dir={shard_dir}")
    assert merged.returncode == 0, merged.stderr[-3000:]

    # the same score file (same run key: same seed, data config, proxy version) ...
    assert [f.name for f in score_files(single_dir).values()] == [f.name for f in score_files(shard_dir).values()]
    single_scores = check_jsonl(score_files(single_dir)[key], 4)
    # ... the same per-architecture scores, bit for bit ...
    assert sharded_scores == single_scores
    assert len(set(single_scores.values())) == 4  # real, distinct scores, not a constant
    # ... and the same printed correlations (tau, rho and their bootstrap CIs)
    (line_single,) = result_lines(single.stdout)
    (line_merged,) = result_lines(merged.stdout)
    assert line_merged == line_single and "n=4 |" in line_merged and "Kendall tau" in line_merged
    f = score_files(shard_dir)[key]
    summ = json.loads((shard_dir / "summaries" / "gpt2" / proxy / f"{f.stem}.json").read_text())
    ref = json.loads((single_dir / "summaries" / "gpt2" / proxy / f"{f.stem}.json").read_text())
    assert summ["correlation"] == ref["correlation"] and summ["n_scored"] == 4


def test_shards_meet_their_largest_networks_at_different_times(tmp_path):
    """Issue 18 (memory): beside each other, shard 0 scores its networks largest first and shard 1
    smallest first (membership unchanged: archs[i::n] of the ID order), so a two-worker sweep does
    not score its two largest networks at once; further pairs of shards start further into their
    lists. Checked on real GPT-2 networks, and end to end in the order a shard's score file is
    written."""
    import torch

    import zcbench
    from zcbench.runner import scoring_order, select_archs

    space = zcbench.create_space("gpt2")

    def size(a):
        with torch.device("meta"):
            return sum(p.numel() for p in space.build(a).parameters())

    archs = select_archs(space, 12, 0)
    sizes = {a.id: size(a) for a in archs}
    assert len(set(sizes.values())) == 12  # distinct sizes: the orders below are strict
    assert scoring_order(space, archs, None) == archs  # no shard: order kept
    for i in (0, 1):
        mine = select_archs(space, 12, 0, f"{i}/2")
        got = scoring_order(space, mine, f"{i}/2")
        assert sorted(a.id for a in got) == sorted(a.id for a in mine)  # same networks, another order
        s = [sizes[a.id] for a in got]
        assert s == sorted(s, reverse=(i == 0)), (i, s)
    quarter = select_archs(space, 12, 0, "2/4")
    got = [sizes[a.id] for a in scoring_order(space, quarter, "2/4")]
    assert got[0] != max(got) and sorted(got, reverse=True) == got[got.index(max(got)):] + got[:got.index(max(got))]

    proxy = data_proxy()
    common = [f"proxy={proxy}", "space=gpt2", "seed=0", "n_archs=6", "batch_size=2", "seq_len=16",
              "bootstrap=200", "progress=false", f"results_dir={tmp_path}"]
    res = run_zc("run", *common, "shard=1/2")
    assert res.returncode == 0, res.stderr[-3000:]
    (f,) = score_files(tmp_path).values()
    written = [json.loads(ln)["arch_id"] for ln in f.read_text().splitlines()]
    six = {a.id: size(a) for a in select_archs(space, 6, 0)}
    assert len(written) == 3 and [six[i] for i in written] == sorted(six[i] for i in written)


def _hammer(root: str, worker: int, n: int, payload: int) -> None:
    f = ScoreFile(Path(root), "gpt2", "stress", 0, {"k": 1}, "1")
    for i in range(n):
        # lines far longer than PIPE_BUF (4 KiB), so only the lock keeps them whole
        f.append({"arch_id": f"w{worker}-{i}", "key": "x", "score": float(i), "status": "ok",
                  "message": chr(97 + worker) * payload})


def test_store_appends_from_concurrent_processes_stay_whole(tmp_path):
    n_proc, n_rec, payload = 4, 150, 50_000
    ctx = mp.get_context("fork")
    procs = [ctx.Process(target=_hammer, args=(str(tmp_path), w, n_rec, payload)) for w in range(n_proc)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    f = ScoreFile(tmp_path, "gpt2", "stress", 0, {"k": 1}, "1")
    lines = f.path.read_text().split("\n")
    assert lines[-1] == ""
    recs = [json.loads(x) for x in lines[:-1]]
    assert len(recs) == n_proc * n_rec == len({r["arch_id"] for r in recs})
    for r in recs:  # no line carries bytes of another writer
        w = int(r["arch_id"][1:].split("-")[0])
        assert r["message"] == chr(97 + w) * payload
    # each writer's own records keep their order
    for w in range(n_proc):
        mine = [int(r["arch_id"].split("-")[1]) for r in recs if r["arch_id"].startswith(f"w{w}-")]
        assert mine == list(range(n_rec))
    assert len(f.read()) == n_proc * n_rec


# ---------------------------------------------------------------------------------------------
# 3. submitit's local executor and a local Ray runtime (when their plugins are installed)


def test_submitit_local_sweep_lands_in_store(tmp_path):
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher",
                        reason="hydra-submitit-launcher is not installed (pip install hydra-submitit-launcher)")
    out = run_zc("run", "-m", "proxy=params", "space=gpt2", "seed=0,1", "n_archs=8", "hydra/launcher=submitit_local",
                 "hydra.launcher.timeout_min=20", f"results_dir={tmp_path}", "bootstrap=0", "progress=false")
    assert out.returncode == 0, out.stderr[-3000:]
    files = score_files(tmp_path)
    assert sorted(files) == [("gpt2", "params", 0), ("gpt2", "params", 1)]
    for f in files.values():
        check_jsonl(f, 8)
    # each job ran as its own submitit process; its printed result is in its log
    logs = sorted(tmp_path.glob("multirun/*/.submitit/*/*_log.out"))
    assert len(logs) == 2
    printed = sorted(ln for log in logs for ln in result_lines(log.read_text()))
    assert [LINE.match(ln).group(3) for ln in printed] == ["0", "1"] and all("n=8 |" in ln for ln in printed)


def test_ray_local_sweep_lands_in_store(tmp_path):
    pytest.importorskip("ray", reason="ray is not installed (pip install hydra-ray-launcher)")
    pytest.importorskip("hydra_plugins.hydra_ray_launcher",
                        reason="hydra-ray-launcher is not installed (pip install hydra-ray-launcher)")
    out = run_zc("run", "-m", "proxy=params,params_nonembedding", "space=gpt2", "seed=0", "n_archs=8",
                 "hydra/launcher=ray", "hydra.launcher.ray.init.address=local", "hydra.launcher.ray.init.num_cpus=2",
                 "hydra.launcher.ray.init.object_store_memory=78643200", f"results_dir={tmp_path}", "bootstrap=0",
                 "progress=false")
    assert out.returncode == 0, out.stderr[-3000:]
    assert "Started a local Ray instance" in out.stderr + out.stdout
    files = score_files(tmp_path)
    assert sorted(files) == [("gpt2", "params", 0), ("gpt2", "params_nonembedding", 0)]
    for f in files.values():
        check_jsonl(f, 8)
    assert sorted(LINE.match(ln).group(2) for ln in result_lines(out.stdout)) == ["params", "params_nonembedding"]


def test_submitit_slurm_writes_the_sbatch_script_the_docs_describe(tmp_path):
    """No Slurm here: a stand-in ``sbatch`` keeps the script submitit hands it and refuses the
    submission (``srun`` only has to exist). The script must carry the settings of
    conf/hydra/launcher/submitit_slurm.yaml and the overrides, as docs/scaling.md's table says."""
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher",
                        reason="hydra-submitit-launcher is not installed (pip install hydra-submitit-launcher)")
    bin_dir, cap = tmp_path / "bin", tmp_path / "captured"
    bin_dir.mkdir()
    cap.mkdir()
    fake = ('#!/bin/sh\nfor a in "$@"; do if [ -f "$a" ]; then cp "$a" "$CAPTURE_DIR/job.sbatch"; fi; done\n'
            'echo "sbatch: error: no Slurm here (test double)" >&2\nexit 1\n')
    for name in ("sbatch", "srun"):
        (bin_dir / name).write_text(fake)
        (bin_dir / name).chmod(0o755)
    env = _env(PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}", CAPTURE_DIR=str(cap))
    out = subprocess.run([sys.executable, "-m", "zcbench", "run", "-m", "proxy=params", "space=gpt2", "seed=0,1,2",
                          "n_archs=2", "hydra/launcher=submitit_slurm", "hydra.launcher.partition=gpu",
                          "hydra.launcher.array_parallelism=2", "hydra.launcher.timeout_min=7",
                          "hydra.launcher.gpus_per_node=1", "+hydra.launcher.additional_parameters={mail-type:END}",
                          f"results_dir={tmp_path / 'res'}", f"hydra.sweep.dir={tmp_path / 'mr'}"],
                         capture_output=True, text=True, cwd=REPO, env=env, timeout=300)
    assert out.returncode != 0 and "no Slurm here (test double)" in out.stderr  # the submission was refused
    script = (cap / "job.sbatch").read_text()
    opts = dict(ln[len("#SBATCH --"):].split("=", 1) for ln in script.splitlines() if ln.startswith("#SBATCH --"))
    assert opts["array"] == "0-2%2"  # 3 jobs of the sweep, at most array_parallelism=2 at once
    assert (opts["partition"], opts["time"], opts["gpus-per-node"], opts["mail-type"]) == ("gpu", "7", "1", "END")
    assert (opts["cpus-per-task"], opts["mem"]) == ("4", "32GB")  # the conf's defaults
    assert opts["signal"] == "USR2@120"  # signal_delay_s
    assert re.search(r"^srun .* -m submitit\.core\._submit ", script, re.M)
    assert not (tmp_path / "res" / "scores").exists()  # nothing ran
