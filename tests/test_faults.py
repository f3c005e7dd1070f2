"""Fault injection, fast (issue #19): kill -9 with concurrent writers, torn writes at every byte
offset, damaged ground truth, malformed options, environment faults, outputs never replaced by
emptier ones, torch.load hygiene. The longer sweep is bench/fault_injection.py."""
from __future__ import annotations

import ast
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from zcbench import fetch
from zcbench.errors import ConfigError, DataError
from zcbench.options import check_overrides, check_proxy_options, closest
from zcbench.store import ScoreFile, StoreError

REPO = Path(__file__).resolve().parents[1]
GPT2 = "lts/random_GPT2_wt103"


def _env(**extra):
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
    env.update(extra)
    return env


def _zc(*args, env=None, timeout=300):
    return subprocess.run([sys.executable, "-m", "zcbench", *args], capture_output=True, text=True,
                          env=env or _env(), timeout=timeout, cwd=REPO)


def _one_error_line(proc):
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert proc.returncode != 0 and lines, proc.stderr
    assert "Traceback" not in proc.stderr and "HYDRA_FULL_ERROR" not in proc.stderr, proc.stderr
    return lines[-1]


@pytest.fixture
def gpt2_copy(data_dir, tmp_path):
    """A private copy of the pinned GPT-2 table in the data-dir layout (so verify-on-read applies)."""
    root = tmp_path / "data"
    shutil.copytree(data_dir / GPT2, root / GPT2)
    return root


# ---- 1/6: store under kills and torn writes --------------------------------------------------
WRITER = (
    "import sys, time; from zcbench.store import ScoreFile\n"
    "root, w, n = sys.argv[1], sys.argv[2], int(sys.argv[3])\n"
    "f = ScoreFile(root, 's', 'p', 0, {}, '1')\n"
    "done = f.read()\n"
    "for i in range(n):\n"
    "    a = f'{w}-{i}'\n"
    "    if a not in done:\n"
    "        f.append({'arch_id': a, 'score': i * 0.5 + len(w), 'status': 'ok', 'pad': 'x' * 300})\n"
    "        time.sleep(0.02)  # a writer lives >= 1.2 s, so the kill moment (0.3-0.9 s) finds it running\n"
)


def test_kill9_with_concurrent_writers_loses_no_finished_record(tmp_path):
    rng = random.Random(0)
    writers, n = ["wa", "wb", "wc"], 60
    kills = 0
    for _ in range(40):
        procs = {w: subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path), w, str(n)], env=_env())
                 for w in writers}
        time.sleep(rng.uniform(0.3, 0.9))
        for w, p in procs.items():
            if p.poll() is None and rng.random() < 0.7:
                p.send_signal(signal.SIGKILL)
                kills += 1
        for p in procs.values():
            p.wait(timeout=60)
        recs = ScoreFile(tmp_path, "s", "p", 0, {}, "1").read()
        if len(recs) == len(writers) * n:
            break
    assert kills > 0
    recs = ScoreFile(tmp_path, "s", "p", 0, {}, "1").read()
    assert sorted(recs) == sorted(f"{w}-{i}" for w in writers for i in range(n))
    for a, r in recs.items():  # every stored score is the one its writer computed
        w, i = a.rsplit("-", 1)
        assert r["score"] == int(i) * 0.5 + len(w)
    lines = ScoreFile(tmp_path, "s", "p", 0, {}, "1").path.read_text().splitlines()
    assert len(lines) == len(recs)  # no duplicates, no fragments


def test_torn_write_at_every_byte_offset_hides_no_neighbour(tmp_path):
    good = [{"arch_id": f"a{i}", "score": float(i), "status": "ok"} for i in range(3)]
    torn = json.dumps({"arch_id": "t", "score": 1.25, "status": "ok"}, sort_keys=True) + "\n"
    for cut in range(1, len(torn)):  # every prefix that is not the whole record
        f = ScoreFile(tmp_path / str(cut), "s", "p", 0, {}, "1")
        f.append(good[0])
        f.append(good[1])
        with open(f.path, "a") as fh:
            fh.write(torn[:cut])
        f.append(good[2])
        with _quiet():
            recs = f.read()
        want = {"a0", "a1", "a2"} | ({"t"} if cut == len(torn) - 1 else set())  # all but the newline = whole
        assert set(recs) == want, (cut, f.path.read_text())
        assert [recs[g["arch_id"]]["score"] for g in good] == [0.0, 1.0, 2.0]
        f.append({"arch_id": "t", "score": 1.25, "status": "ok"})  # the rerun re-scores the torn one
        assert set(f.read()) == {"a0", "a1", "a2", "t"}


class _quiet:
    def __enter__(self):
        import warnings

        self._cm = warnings.catch_warnings()
        self._cm.__enter__()
        warnings.simplefilter("ignore")

    def __exit__(self, *a):
        return self._cm.__exit__(*a)


# ---- 2: data integrity on every read ---------------------------------------------------------
def test_truncated_or_bitflipped_ground_truth_is_refused_naming_the_file(gpt2_copy):
    from zcbench.registry import create_space

    ppl = gpt2_copy / GPT2 / "ppl_summary.yaml"
    good = ppl.read_bytes()
    create_space("gpt2", data_dir=gpt2_copy).stored()  # the pristine copy reads fine
    ppl.write_bytes(good[: len(good) // 2])  # truncated (still valid YAML)
    with pytest.raises(DataError, match=r"ppl_summary.yaml is not the pinned upstream file") as e:
        create_space("gpt2", data_dir=gpt2_copy).stored()
    assert "\n" not in str(e.value) and "allow_modified_data=true" in str(e.value)
    ppl.write_bytes(good[:100] + bytes([0xF4]) + good[101:])  # a flip that breaks UTF-8: one line too
    with pytest.raises(DataError, match=r"ppl_summary.yaml: not UTF-8 text at byte 100"):
        create_space("gpt2", data_dir=gpt2_copy).stored()
    flipped = bytearray(good)
    i = good.index(b"valid_ppl: ") + len(b"valid_ppl: ")
    flipped[i] = ord("9") if flipped[i] != ord("9") else ord("8")  # same size, one digit changed
    ppl.write_bytes(bytes(flipped))
    with pytest.raises(DataError, match="sha256"):
        create_space("gpt2", data_dir=gpt2_copy).stored()
    fetch.allow_modified_data(True)
    try:
        assert len(create_space("gpt2", data_dir=gpt2_copy).stored()) == 200
        assert any("ppl_summary.yaml" in m for m in fetch.modified_files())
    finally:
        fetch.allow_modified_data(False)


def test_verify_is_cached_by_path_mtime_size(gpt2_copy, monkeypatch):
    path = gpt2_copy / GPT2 / "params_summary.yaml"
    fetch.verify_files([path])
    calls = []
    monkeypatch.setattr(fetch, "sha256_file", lambda p: calls.append(p) or "x")
    fetch.verify_files([path] * 5)
    assert calls == []  # unchanged file: no re-hash
    os.utime(path, ns=(time.time_ns(), time.time_ns()))
    with pytest.raises(DataError):
        fetch.verify_files([path])  # touched: hashed again (the fake hash differs)
    assert len(calls) == 1


def test_missing_ground_truth_is_counted_and_provenance_records_modified_data(gpt2_copy, tmp_path, capsys):
    from zcbench.runner import RunConfig, run

    ppl = gpt2_copy / GPT2 / "ppl_summary.yaml"
    text = ppl.read_text()
    ppl.write_text(text[: len(text) // 2].rsplit("\nconfig_", 1)[0] + "\n")  # drop the second half of the keys
    rc = RunConfig(space="gpt2", proxies=["params"], n_archs=12, data_dir=str(gpt2_copy),
                   results_dir=str(tmp_path / "r"), bootstrap=0, progress=False)
    with pytest.raises(DataError, match="ppl_summary.yaml"):
        run(rc)
    rc.allow_modified_data = True
    try:
        s = run(rc)["params"]
    finally:
        fetch.allow_modified_data(False)
    err = capsys.readouterr().err
    assert s["n_without_truth"] > 0 and f"{s['n_without_truth']} of 12 scored architectures have no valid_ppl" in err
    assert s["correlation"]["n"] == 12 - s["n_without_truth"]
    stored = json.loads(next((tmp_path / "r" / "summaries").rglob("*.json")).read_text())
    assert any("ppl_summary.yaml" in m for m in stored["modified_data"])


# ---- 3: typed options ------------------------------------------------------------------------
def test_options_unknown_keys_suggest_the_closest_and_types_are_checked():
    with pytest.raises(ConfigError, match=r"unknown key 'n_arch' for run \(did you mean n_archs\?\)"):
        check_overrides(["n_arch=5"], "config")
    with pytest.raises(ConfigError, match="did you mean n_archs"):
        check_overrides(["+n_arch=5"], "config")  # Hydra's own hint must not slip through either
    with pytest.raises(ConfigError, match=r"unknown key 'seed' for etas \(did you mean seeds\?\)"):
        check_overrides(["seed=0"], "etas")
    with pytest.raises(ConfigError, match="progress for run must be true or false, got 'maybe'"):
        check_overrides(["progress=maybe"], "config")
    with pytest.raises(ConfigError, match="n_archs for run must be >= 1"):
        check_overrides(["n_archs=0"], "config")
    with pytest.raises(ConfigError, match="hvp_chunk for run must be >= 1"):
        check_overrides(["hvp_chunk=0"], "config")
    with pytest.raises(ConfigError, match="seed for run must be an integer"):
        check_overrides(["-m", "seed=0,x"], "config")  # every value of a sweep
    with pytest.raises(ConfigError, match="seeds for groundtruth must be a list"):
        check_overrides(["seeds=3"], "groundtruth")
    with pytest.raises(ConfigError, match="rps for search must be true or false"):
        check_overrides(["rps=yes please"], "search")
    # valid input passes untouched
    check_overrides(["n_archs=5", "seed=1", "progress=false", "hvp_chunk=4", "hvp_chunk=null", "proxies=[params,snip]", "space=gpt2",
                     "++proxy_options.snip.objective=null", "hydra/launcher=joblib", "-m"], "config")
    check_overrides(["seeds=[0,1]", "N0=10", "proxies=none"], "etas")
    assert closest("n_arch", ["n_archs", "seed"]) == "n_archs"


def test_proxy_options_are_typed_and_suggest_names():
    from zcbench.registry import get_proxy

    with pytest.raises(ConfigError, match="include_output for proxy synflow must be true or false, got 'maybe'"):
        get_proxy("synflow", include_output="maybe")
    with pytest.raises(ConfigError, match=r"unknown option 'include_outptu' .*did you mean include_output\?"):
        get_proxy("synflow", include_outptu=True)
    assert get_proxy("synflow", include_output=True).options["include_output"] is True
    check_proxy_options("x", {"alpha": 0.5, "n": 3, "mode": "a", "free": None}, {"alpha": 1, "n": 4, "free": [1]})
    with pytest.raises(ConfigError, match="n for proxy x must be an integer"):
        check_proxy_options("x", {"n": 3}, {"n": 2.5})


def test_cli_bad_options_are_one_line_errors_before_any_work():
    line = _one_error_line(_zc("etas", "space=gpt2", "seed=0"))
    assert "unknown key 'seed' for etas (did you mean seeds?)" in line


def test_n_archs_above_the_pool_is_a_printed_cap(data_dir, capsys):
    from zcbench.registry import create_space
    from zcbench.runner import select_archs

    archs = select_archs(create_space("gpt2", data_dir=data_dir), 1000, 0)
    assert len(archs) == 200
    assert "n_archs=1000 but space gpt2 stores 200 architectures; scoring all 200" in capsys.readouterr().err


# ---- 4: outputs never replaced by emptier ones -----------------------------------------------
def test_report_and_leaderboard_without_data_fail_and_keep_the_previous_output(data_dir, tmp_path, monkeypatch):
    from zcbench.leaderboard import main_leaderboard
    from zcbench.report import main_report
    from zcbench.runner import RunConfig, run

    res = tmp_path / "r"
    for p in ("params", "params_nonembedding"):
        run(RunConfig(space="gpt2", proxies=[p], n_archs=8, data_dir=str(data_dir), results_dir=str(res),
                      bootstrap=0, progress=False, echo=False))
    # damage the store the way the issue did: a JSON list, a record without arch_id, a corrupted meta.json
    jsonl = next((res / "scores" / "gpt2" / "params").glob("*.jsonl"))
    with open(jsonl, "a") as fh:
        fh.write('[1, 2]\n{"score": 3.0}\n')
    damaged = jsonl.read_bytes()
    (jsonl.parent / "seed9-0000000000-v1.meta.json").write_text('{"space": "gpt2", "pro')
    out, site = tmp_path / "report", tmp_path / "site"
    common = ["--results-dir", str(res), "--bootstrap", "0"]
    assert main_report(common + ["--data-dir", str(data_dir), "--out", str(out), "--figures", ""]) == 0
    assert main_leaderboard(common + ["--data-dir", str(data_dir), "--out", str(site), "--no-figures"]) == 0
    before = {p: p.read_bytes() for p in list(out.rglob("*")) + list(site.rglob("*")) if p.is_file()}
    assert before
    assert jsonl.read_bytes() == damaged  # reports read the store, they never change it
    nodata = str(tmp_path / "no-data")
    assert main_report(common + ["--data-dir", nodata, "--out", str(out), "--figures", ""]) == 2
    assert main_leaderboard(common + ["--data-dir", nodata, "--out", str(site), "--no-figures"]) == 2
    after = {p: p.read_bytes() for p in list(out.rglob("*")) + list(site.rglob("*")) if p.is_file()}
    assert after == before
    # a site build that fails half-way leaves the previous site as it was, and no staging folder
    import zcbench.leaderboard as lb
    from zcbench.report.cli import add_common_args, build_from_args

    ap = __import__("argparse").ArgumentParser()
    add_common_args(ap)
    data = build_from_args(ap.parse_args(common + ["--data-dir", str(data_dir)]))

    def boom(*a, **k):
        raise RuntimeError("disk gone")

    monkeypatch.setattr(lb, "index_page", boom)  # fails after the tables and assets are written
    with pytest.raises(RuntimeError):
        lb.build_site(data, site, figures=False, data_dir=data_dir)
    after = {p: p.read_bytes() for p in list(out.rglob("*")) + list(site.rglob("*")) if p.is_file()}
    assert after == before
    assert not [p for p in tmp_path.iterdir() if ".building" in p.name or p.name.endswith(".old")]


# ---- 5: environment faults -------------------------------------------------------------------
def _read_only(cmd: list[str], folder: Path):
    """Run ``cmd`` with ``folder`` read-only: chmod for ordinary users, a private read-only bind
    mount for root (which ignores permissions); None when neither is possible here."""
    if os.geteuid() != 0:
        modes = {p: p.stat().st_mode for p in [folder, *folder.rglob("*")]}
        for p in modes:
            p.chmod(modes[p] & ~0o222)
        try:
            return subprocess.run(cmd, capture_output=True, text=True, env=_env(), cwd=REPO, timeout=300)
        finally:
            for p, m in modes.items():
                p.chmod(m)
    if not shutil.which("unshare"):
        return None
    f = str(folder)
    script = f'mount --bind "{f}" "{f}" && mount -o remount,bind,ro "{f}" && exec "$@"'
    proc = subprocess.run(["unshare", "-m", "sh", "-c", script, "sh", *cmd], capture_output=True, text=True,
                          env=_env(), cwd=REPO, timeout=300)
    if "mount:" in proc.stderr or "unshare:" in proc.stderr:
        return None
    return proc


def test_read_only_results_resumed_run_succeeds_new_work_is_one_line(data_dir, tmp_path):
    res = tmp_path / "r"
    base = [sys.executable, "-m", "zcbench", "run", "space=gpt2", "n_archs=4", f"results_dir={res}",
            "bootstrap=0", "progress=false"]
    from zcbench.runner import RunConfig, run

    run(RunConfig(space="gpt2", proxies=["params"], n_archs=4, data_dir=str(data_dir), results_dir=str(res),
                  bootstrap=0, progress=False, echo=False))  # the same run, in-process (faster)
    snapshot = {p: p.read_bytes() for p in res.rglob("*") if p.is_file()}
    resumed = _read_only(base + ["proxy=params"], res)
    if resumed is None:
        pytest.skip("cannot make a read-only folder here (root without mount namespaces)")
    assert resumed.returncode == 0, resumed.stderr
    assert "gpt2 | params | seed 0 | n=4" in resumed.stdout
    new = _read_only(base + ["proxy=params_nonembedding"], res)
    line = _one_error_line(new)
    assert "cannot write" in line and str(res) in line and ("read-only" in line or "permission" in line)
    assert {p: p.read_bytes() for p in res.rglob("*") if p.is_file()} == snapshot


def test_results_dir_below_a_file_and_missing_searched_file_are_one_line(data_dir, tmp_path):
    from zcbench.registry import get_proxy
    from zcbench.runner import RunConfig, run

    blocker = tmp_path / "a-file"
    blocker.write_text("keep me")
    with pytest.raises(StoreError) as e:
        run(RunConfig(space="gpt2", proxies=["params"], n_archs=2, data_dir=str(data_dir),
                      results_dir=str(blocker / "results"), bootstrap=0, progress=False, echo=False))
    assert str(blocker) in str(e.value) and "\n" not in str(e.value)
    assert blocker.read_text() == "keep me"
    with pytest.raises(ConfigError) as e:
        get_proxy(f"searched:{tmp_path / 'nope.yaml'}")
    msg = str(e.value)
    assert "no searched proxy" in msg and "\n" not in msg
    paths = msg.split("no file at ", 1)[1].split(", ")
    assert len(paths) == len(set(paths))  # each candidate named once


DISK_FULL = (
    "import resource, signal, sys\n"
    "from zcbench.store import ScoreFile, StoreError\n"
    "f = ScoreFile(sys.argv[1], 's', 'p', 0, {}, '1')\n"
    "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
    "resource.setrlimit(resource.RLIMIT_FSIZE, (int(sys.argv[2]), int(sys.argv[2])))\n"
    "try:\n"
    "    for i in range(1000):\n"
    "        f.append({'arch_id': f'a{i}', 'score': float(i), 'status': 'ok', 'pad': 'y' * 100})\n"
    "except StoreError as e:\n"
    "    print(e, file=sys.stderr); sys.exit(2)\n"
)


def test_disk_full_is_one_line_and_keeps_every_whole_record(tmp_path):
    proc = subprocess.run([sys.executable, "-c", DISK_FULL, str(tmp_path), "5000"], capture_output=True,
                          text=True, env=_env(), timeout=60)
    assert proc.returncode == 2, proc.stderr
    assert "file size limit reached" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    f = ScoreFile(tmp_path, "s", "p", 0, {}, "1")
    text = f.path.read_text()
    assert text.endswith("\n")  # the partial record was taken back
    recs = f.read()
    assert len(recs) == len(text.splitlines()) > 10 and not f.quarantine_path.exists()
    assert all(recs[f"a{i}"]["score"] == float(i) for i in range(len(recs)))


# ---- 7: security -----------------------------------------------------------------------------
def test_every_torch_load_passes_weights_only_true():
    offenders = []
    for folder in ("zcbench", "proxies", "spaces", "bench", "experiments", "scripts"):
        for py in (REPO / folder).rglob("*.py"):
            tree = ast.parse(py.read_text(encoding="utf-8"))
            for node in ast.walk(tree):
                if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "load"
                        and isinstance(node.func.value, ast.Name) and node.func.value.id == "torch"):
                    kw = {k.arg: k.value for k in node.keywords}
                    ok = isinstance(kw.get("weights_only"), ast.Constant) and kw["weights_only"].value is True
                    if not ok:
                        offenders.append(f"{py.relative_to(REPO)}:{node.lineno}")
    assert offenders == []


def test_searched_files_are_data_parsed_by_a_whitelist(tmp_path):
    import yaml

    from zcbench.search.lpzero.expr import load_expr_file

    marker = tmp_path / "pwned"
    tagged = tmp_path / "tagged.yaml"
    tagged.write_text(f"expression: !!python/object/apply:os.system ['touch {marker}']\n")
    with pytest.raises(yaml.YAMLError):
        load_expr_file(tagged)
    inject = tmp_path / "inject.yaml"
    inject.write_text(yaml.safe_dump({"expression": {"formula": f"__import__('os').system('touch {marker}') + A"}}))
    with pytest.raises(ValueError):
        load_expr_file(inject)
    bad_op = tmp_path / "op.yaml"
    bad_op.write_text(yaml.safe_dump({"expression": {"inputs": ["A", "G"], "ops": [["system"], []], "binary": "+"}}))
    with pytest.raises(ValueError, match="unknown unary operation 'system'"):
        load_expr_file(bad_op)
    assert not marker.exists()


def test_flag_commands_give_one_line_with_the_closest_flag():
    from zcbench.report import main_report

    proc = _zc("leaderboard", "--outt", "x")
    assert "unknown flag --outt (did you mean --out?)" in _one_error_line(proc)
    assert len(proc.stderr.strip().splitlines()) == 1
    with pytest.raises(SystemExit) as e:
        main_report(["--bootstrp", "5"])
    assert e.value.code == 2
