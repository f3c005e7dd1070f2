"""Fault-injection sweep (issue #19; the fast subset is tests/test_faults.py).

    ZCBENCH_DATA=../shared/data nice -n 10 python bench/fault_injection.py [--store-rounds 60]
        [--run-kills 8] [--n-archs 24] [--torn-records 20] [--out /tmp/zcbench-faults]

1. store kill storm: three writer processes append deterministic records to one score file
   while random ones are killed with SIGKILL and restarted, until every record is in;
2. runner kill storm: two shards of a real ``python -m zcbench run`` (params,
   params_nonembedding and snip on GPT-2) share one results folder and are killed with SIGKILL
   at random moments and restarted; ``merge`` then correlates, and the correlations must equal
   those of a clean, unkilled run in another folder;
3. torn writes: every prefix of each of ``--torn-records`` real score records (from the clean
   run) is written before a following append; every whole record must stay readable;
4. damaged ground truth: ``ppl_summary.yaml`` / ``params_summary.yaml`` truncated at several
   lengths and with single bytes flipped must be refused with a one-line DataError;
5. malformed configurations: bad overrides for each command must be one-line ConfigErrors.

Prints one summary line: kills, faults injected, records checked, records lost (must be 0).
Exit status 1 when anything was lost, corrupted or accepted that should not have been.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

WRITER = (
    "import sys; from zcbench.store import ScoreFile\n"
    "root, w, n = sys.argv[1], sys.argv[2], int(sys.argv[3])\n"
    "f = ScoreFile(root, 's', 'p', 0, {}, '1')\n"
    "done = f.read()\n"
    "for i in range(n):\n"
    "    a = f'{w}-{i}'\n"
    "    if a not in done:\n"
    "        f.append({'arch_id': a, 'score': i * 0.25 + len(w), 'status': 'ok', 'pad': 'z' * (i % 700)})\n"
)


def env():
    return dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")


def store_storm(root: Path, rounds: int, rng: random.Random) -> dict:
    from zcbench.store import ScoreFile

    writers, n = ["wa", "wb", "wc"], 150
    kills = 0
    for _ in range(rounds):
        procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(root), w, str(n)], env=env()) for w in writers]
        time.sleep(rng.uniform(0.2, 1.2))
        for p in procs:
            if p.poll() is None and rng.random() < 0.8:
                p.send_signal(signal.SIGKILL)
                kills += 1
        for p in procs:
            p.wait()
    for w in writers:  # finish without kills
        subprocess.run([sys.executable, "-c", WRITER, str(root), w, str(n)], env=env(), check=True)
    recs = ScoreFile(root, "s", "p", 0, {}, "1").read()
    want = {f"{w}-{i}": i * 0.25 + len(w) for w in writers for i in range(n)}
    lost = [a for a in want if a not in recs]
    wrong = [a for a in want if a in recs and recs[a]["score"] != want[a]]
    lines = ScoreFile(root, "s", "p", 0, {}, "1").path.read_text().splitlines()
    return {"kills": kills, "checked": len(want), "lost": len(lost), "wrong": len(wrong),
            "duplicates": len(lines) - len(recs)}


RUN = ["run", "space=gpt2", "proxy=[params,params_nonembedding,snip]", "bootstrap=0", "progress=false"]


def zc(args, timeout=900):
    return subprocess.run([sys.executable, "-m", "zcbench", *args], capture_output=True, text=True, env=env(),
                          cwd=REPO, timeout=timeout)


def corr_of(results: Path) -> dict:
    out = {}
    for p in sorted((results / "summaries").rglob("*.json")):
        s = json.loads(p.read_text())
        c = s.get("correlation") or {}
        out[s["proxy"]] = (s["n_scored"], c.get("kendall_tau"), c.get("spearman_rho"))
    return out


def n_records(results: Path) -> int:
    return sum(len(p.read_bytes().splitlines()) for p in (results / "scores").rglob("*.jsonl")) \
        if (results / "scores").is_dir() else 0


def run_storm(base: Path, kills_wanted: int, n_archs: int, rng: random.Random) -> dict:
    clean, dirty = base / "clean", base / "killed"
    sel = [f"n_archs={n_archs}"]
    p = zc(RUN + sel + [f"results_dir={clean}"])
    if p.returncode:
        raise SystemExit(f"clean run failed: {p.stderr.strip().splitlines()[-1]}")
    kills = starts = 0
    while True:
        procs = [subprocess.Popen([sys.executable, "-m", "zcbench", *RUN, *sel, f"results_dir={dirty}",
                                   f"shard={i}/2"], env=env(), cwd=REPO, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.PIPE, text=True) for i in range(2)]
        starts += 2
        if kills < kills_wanted:
            # kill while scoring: wait for the shards' next stored record, then a random moment later
            n0 = n_records(dirty)
            while n_records(dirty) == n0 and any(pr.poll() is None for pr in procs):
                time.sleep(0.2)
            time.sleep(rng.uniform(0.0, 4.0))
            for pr in procs:
                if pr.poll() is None:
                    pr.send_signal(signal.SIGKILL)
                    kills += 1
        codes = [pr.wait() for pr in procs]
        if all(c == 0 for c in codes):  # both shards finished (when they outran the kills, fewer kills)
            break
        if starts > 4 * kills_wanted + 10:
            raise SystemExit("runner storm did not converge")
    m = zc(["merge", *RUN[1:], *sel, f"results_dir={dirty}"])
    if m.returncode:
        raise SystemExit(f"merge failed: {m.stderr.strip().splitlines()[-1]}")
    a, b = corr_of(clean), corr_of(dirty)
    shard_free = {k: v for k, v in b.items()}
    return {"kills": kills, "equal": a == shard_free, "clean": a, "killed": shard_free,
            "checked": sum(v[0] for v in a.values())}


def torn_sweep(src: Path, n_records: int, root: Path) -> dict:
    from zcbench.store import ScoreFile

    lines = [ln for ln in src.read_text().splitlines() if ln.strip()][: n_records + 2]
    torn = checked = lost = 0
    for k in range(min(n_records, len(lines) - 2)):
        rec = lines[k + 1] + "\n"
        for cut in range(1, len(rec)):
            d = root / f"{k}-{cut}"
            f = ScoreFile(d, "s", "p", 0, {}, "1")
            f.dir.mkdir(parents=True, exist_ok=True)
            f.path.write_text(lines[k] + "\n" + rec[:cut])
            f.append(json.loads(lines[k + 2]))
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                got = f.read()
            for ln in (lines[k], lines[k + 2]):
                r = json.loads(ln)
                checked += 1
                if r["arch_id"] not in got or (got[r["arch_id"]]["score"] != r["score"]
                                                and not (r["score"] != r["score"])):
                    lost += 1
            torn += 1
            shutil.rmtree(d)
    return {"torn": torn, "checked": checked, "lost": lost}


def damage_sweep(data_dir: Path, root: Path, rng: random.Random) -> dict:
    from zcbench import fetch
    from zcbench.errors import DataError
    from zcbench.registry import create_space

    table = "lts/random_GPT2_wt103"
    shutil.copytree(data_dir / table, root / table)
    shutil.copytree(data_dir / "flexibert", root / "flexibert")
    refused = accepted = 0
    for space, table, name in (("gpt2", table, "ppl_summary.yaml"), ("gpt2", table, "params_summary.yaml"),
                               ("flexibert", "flexibert", "BERT_benchmark.json")):
        path = root / table / name
        good = path.read_bytes()
        cases = [good[: int(len(good) * f)] for f in (0.1, 0.5, 0.9, 0.999)]
        for _ in range(6):
            b = bytearray(good)
            i = rng.randrange(len(b))
            b[i] ^= 1 << rng.randrange(8)
            cases.append(bytes(b))
        for data in cases:
            path.write_bytes(data)
            try:
                create_space(space, data_dir=root).stored()
                accepted += 1
            except DataError as exc:
                refused += "\n" not in str(exc) and name in str(exc)
                accepted += not ("\n" not in str(exc) and name in str(exc))
            except Exception as exc:  # a traceback instead of one line counts as a failure
                print(f"  {name}: {type(exc).__name__}: {exc}", flush=True)
                accepted += 1
        path.write_bytes(good)
        fetch._verified.clear()
    return {"refused": refused, "accepted": accepted}


BAD_CONFIGS = [
    ("config", ["n_arch=5"]), ("config", ["+n_arch=5"]), ("config", ["progress=maybe"]), ("config", ["seed=-1"]),
    ("config", ["n_archs=0"]), ("config", ["bootstrap=many"]), ("config", ["batch_size=2.5"]),
    ("config", ["replace_summary=1"]), ("config", ["-m", "seed=0,1,x"]), ("etas", ["seed=0"]),
    ("etas", ["N0=-3"]), ("etas", ["seeds=4"]), ("search", ["rps=maybe"]), ("search", ["populaton=10"]),
    ("search", ["generations=1.5"]), ("groundtruth", ["n_arch=3"]), ("groundtruth", ["seeds=1"]),
]


def config_sweep() -> dict:
    from zcbench.errors import ConfigError
    from zcbench.options import check_overrides, check_proxy_options
    from zcbench.registry import get_proxy

    refused = accepted = 0
    for name, argv in BAD_CONFIGS:
        try:
            check_overrides(argv, name)
            accepted += 1
        except ConfigError as exc:
            refused += "\n" not in str(exc)
    for name, opts in [("synflow", {"include_output": "maybe"}), ("synflow", {"include_outptu": True}),
                       ("zico", {"include_output": 1})]:
        try:
            get_proxy(name, **opts)
            accepted += 1
        except ConfigError:
            refused += 1
    check_proxy_options("x", {"a": True}, {"a": False})  # and a valid one passes
    return {"refused": refused, "accepted": accepted}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--store-rounds", type=int, default=60)
    ap.add_argument("--run-kills", type=int, default=8)
    ap.add_argument("--n-archs", type=int, default=24)
    ap.add_argument("--torn-records", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="/tmp/zcbench-faults")
    args = ap.parse_args()
    rng = random.Random(args.seed)
    out = Path(args.out)
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    data_dir = Path(os.environ.get("ZCBENCH_DATA", REPO.parent / "shared" / "data"))
    t0 = time.time()

    s = store_storm(out / "store", args.store_rounds, rng)
    print(f"store: {s['kills']} kills of concurrent writers, {s['checked']} records checked, {s['lost']} lost, "
          f"{s['wrong']} wrong, {s['duplicates']} duplicate lines", flush=True)
    r = run_storm(out / "run", args.run_kills, args.n_archs, rng)
    print(f"runner: {r['kills']} kills of 2 concurrent shards, merged correlations equal to a clean run: "
          f"{r['equal']} ({r['killed']})", flush=True)
    src = next((out / "run" / "clean" / "scores" / "gpt2" / "snip").glob("*.jsonl"))
    t = torn_sweep(src, args.torn_records, out / "torn")
    print(f"torn writes: {t['torn']} (every byte offset of {args.torn_records} records), {t['checked']} "
          f"neighbours checked, {t['lost']} lost", flush=True)
    d = damage_sweep(data_dir, out / "data", rng)
    print(f"ground truth: {d['refused']} truncated/bit-flipped files refused in one line, {d['accepted']} accepted",
          flush=True)
    c = config_sweep()
    print(f"configs: {c['refused']} malformed configurations refused in one line, {c['accepted']} accepted", flush=True)

    kills = s["kills"] + r["kills"]
    faults = kills + t["torn"] + d["refused"] + d["accepted"] + c["refused"] + c["accepted"]
    checked = s["checked"] + r["checked"] + t["checked"]
    lost = s["lost"] + s["wrong"] + t["lost"]
    ok = lost == 0 and s["duplicates"] == 0 and r["equal"] and d["accepted"] == 0 and c["accepted"] == 0
    print(f"SUMMARY: {kills} kills, {t['torn']} torn writes, {d['refused'] + d['accepted']} damaged data files, "
          f"{c['refused'] + c['accepted']} malformed configs ({faults} faults), {checked} records checked, "
          f"{lost} records lost; correlations equal a clean run: {r['equal']}; "
          f"{time.time() - t0:.0f} s -> {'OK' if ok else 'FAILED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
