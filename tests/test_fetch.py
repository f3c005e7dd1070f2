"""The download path: manifest pins + sha256, fetch through a local mirror, failure modes.

A local HTTP server (127.0.0.1, ephemeral port) stands in for GitHub: fetch() with a
base_url reads the data-dir layout, which is exactly how /work/shared/data is laid out.
Nothing here touches the internet.
"""
from __future__ import annotations

import functools
import hashlib
import http.server
import json
import shutil
import socket
import threading
from pathlib import Path

import pytest

from zcbench import fetch as zf
from zcbench.data import DataError, read_nasbench_bert
from zcbench.spaces._lts import read_lts_table

TABLES = ["gpt2", "gpt2_lm1b", "transxl", "transxl_homogeneous", "flexibert", "text"]


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep pytest output clean
        pass


@pytest.fixture
def serve():
    """serve(folder) -> base URL of a threaded HTTP server on 127.0.0.1 serving folder."""
    servers = []

    def start(folder: Path) -> str:
        handler = functools.partial(_QuietHandler, directory=str(folder))
        srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        srv.daemon_threads = True
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        servers.append(srv)
        return f"http://127.0.0.1:{srv.server_address[1]}"

    yield start
    for srv in servers:
        srv.shutdown()
        srv.server_close()


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _files(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}


def _mirror_copy(data_dir: Path, tmp_path: Path, folders) -> Path:
    """A private copy of some data-dir folders under tmp_path, to damage freely."""
    mirror = tmp_path / "mirror"
    for folder in folders:
        shutil.copytree(data_dir / folder, mirror / folder)
    for p in mirror.rglob("*"):  # the shared data is read-only; the copy must be writable
        p.chmod(0o755 if p.is_dir() else 0o644)
    return mirror


def test_list_tables_and_unknown_table():
    assert zf.list_tables() == TABLES
    with pytest.raises(DataError) as exc:
        zf.fetch("gpt3")
    msg = str(exc.value)
    assert "\n" not in msg and "'gpt3'" in msg
    for name in TABLES:
        assert name in msg
    with pytest.raises(DataError, match="valid tables"):
        zf.verify("nope")


def test_manifest_sha256_matches_data_dir(data_dir):
    """Drift check: every manifest file exists in the data dir with its sha256 and size, and every data file is listed."""
    man = json.loads(zf.MANIFEST.read_text())
    listed = set()
    for name in TABLES:
        assert zf.verify(name, data_dir) == [], name
        info = man["tables"][name]
        for entry in info["files"]:
            path = data_dir / entry["path"]
            assert path.stat().st_size == entry["size"], entry["path"]
            assert _sha(path) == entry["sha256"], entry["path"]
            listed.add(entry["path"])
        # the table folder holds nothing the manifest does not list
        folder = data_dir / info["folder"]
        on_disk = {f"{info['folder']}/{p}" for p in _files(folder)}
        assert on_disk <= listed, sorted(on_disk - listed)[:5]
    assert _files(data_dir) - {"README.md"} == listed
    assert {"lts/LICENSE", "flexibert/LICENSE"} <= listed


def test_manifest_pins_commits_and_upstream_paths():
    for name in TABLES:
        info = zf.table_info(name)
        assert len(info["commit"]) == 40 and int(info["commit"], 16) >= 0
        paths = [e["path"] for e in info["files"]]
        assert len(paths) == len(set(paths))
        for e in info["files"]:
            assert len(e["sha256"]) == 64 and e["size"] > 0
            assert e["path"].startswith(info["folder"] + "/") or e["path"].endswith("LICENSE")
    gpt2 = zf.table_info("gpt2")
    assert (gpt2["repo"], gpt2["commit"]) == ("pprp/LPZero", "9faa34d2c63c6b276a0082442e7eb0aa70be2526")
    assert zf.file_url("gpt2", "lts/random_GPT2_wt103/config_0/j2/model_config.yaml") == (
        "https://raw.githubusercontent.com/pprp/LPZero/9faa34d2c63c6b276a0082442e7eb0aa70be2526/"
        "saved_logs/random_GPT2_wt103/config_0/j2/model_config.yaml")
    assert zf.file_url("flexibert", "flexibert/BERT_benchmark.json") == (
        "https://raw.githubusercontent.com/aaronserianni/training-free-nas/"
        "2d76e01b9586cad7340e8268dadba3056efd070b/data/BERT_benchmark.json")
    # a mirror serves the data-dir layout
    assert zf.file_url("flexibert", "flexibert/BERT_benchmark.json", "http://m.example/zc/") == (
        "http://m.example/zc/flexibert/BERT_benchmark.json")


def test_fetch_gpt2_and_flexibert(data_dir, serve, tmp_path):
    base = serve(data_dir)
    dest = tmp_path / "data"
    lines = []
    gpt2 = zf.fetch("gpt2", dest, base, progress=lines.append)
    bert = zf.fetch("flexibert", dest, base, progress=lines.append)
    assert gpt2 == dest / "lts" / "random_GPT2_wt103" and bert == dest / "flexibert"

    expected = {e["path"]: e["sha256"] for t in ("gpt2", "flexibert") for e in zf.table_info(t)["files"]}
    assert _files(dest) == set(expected)  # every file, no temporaries left behind
    for rel, sha in expected.items():
        assert _sha(dest / rel) == sha, rel
    assert len(lines) == len(expected) + 2  # one header per table + one line per file
    assert sum("downloaded" in ln for ln in lines) == len(expected)

    records = read_lts_table(gpt2)
    assert len(records) == 200
    ref = read_lts_table(data_dir / "lts" / "random_GPT2_wt103")
    assert [(r.key, r.ppl, r.params) for r in records] == [(r.key, r.ppl, r.params) for r in ref]
    assert len(read_nasbench_bert(bert / "BERT_benchmark.json")) == 500
    assert zf.verify("gpt2", dest) == [] and zf.verify("flexibert", dest) == []


def _dead_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"  # nothing listens here any more


def test_present_files_are_skipped_and_damaged_ones_refetched(data_dir, serve, tmp_path):
    base = serve(data_dir)
    dest = tmp_path / "data"
    zf.fetch("flexibert", dest, base, progress=None)
    # everything present with the right hash: no network needed at all
    lines = []
    zf.fetch("flexibert", dest, _dead_url(), progress=lines.append)
    assert sum("present, sha256 ok" in ln for ln in lines) == 3
    # a damaged local file is detected and replaced
    target = dest / "flexibert" / "search_space.json"
    target.write_text("{}")
    assert zf.verify("flexibert", dest) == [f"sha256 mismatch {target}: expected "
                                            f"{_sha(data_dir / 'flexibert/search_space.json')}, got {_sha(target)}"]
    zf.fetch("flexibert", dest, base, progress=None)
    assert zf.verify("flexibert", dest) == []
    (dest / "flexibert" / "LICENSE").unlink()
    assert zf.verify("flexibert", dest) == [f"missing {dest / 'flexibert' / 'LICENSE'}"]


def test_corrupted_mirror_gives_one_line_error_and_no_partial_file(data_dir, serve, tmp_path):
    mirror = _mirror_copy(data_dir, tmp_path, ["flexibert"])
    bad = mirror / "flexibert" / "BERT_benchmark.json"
    raw = bytearray(bad.read_bytes())
    raw[1000] ^= 0x01  # one byte changed, same size
    bad.write_bytes(bytes(raw))
    dest = tmp_path / "data"
    with pytest.raises(DataError) as exc:
        zf.fetch("flexibert", dest, serve(mirror), progress=None)
    msg = str(exc.value)
    assert "\n" not in msg
    assert "flexibert/BERT_benchmark.json" in msg and "sha256" in msg
    assert not (dest / "flexibert" / "BERT_benchmark.json").exists()
    left = _files(dest) if dest.exists() else set()
    assert not any(".part" in p for p in left), left
    # whatever else finished is verified upstream content
    for rel in left:
        assert _sha(dest / rel) == _sha(data_dir / rel), rel


def test_missing_file_gives_one_line_404_error(data_dir, serve, tmp_path):
    mirror = _mirror_copy(data_dir, tmp_path, ["flexibert"])
    (mirror / "flexibert" / "LICENSE").unlink()
    dest = tmp_path / "data"
    with pytest.raises(DataError) as exc:
        zf.fetch("flexibert", dest, serve(mirror), progress=None)
    msg = str(exc.value)
    assert "\n" not in msg
    assert "flexibert/LICENSE" in msg and "404" in msg
    left = _files(dest) if dest.exists() else set()
    assert "flexibert/LICENSE" not in left and not any(".part" in p for p in left), left


def test_mirror_env_and_default_destination(data_dir, serve, tmp_path, monkeypatch):
    dest = tmp_path / "envdata"
    monkeypatch.setenv("ZCBENCH_DATA", str(dest))
    monkeypatch.setenv("ZCBENCH_MIRROR", serve(data_dir) + "/")
    folder = zf.fetch("text", progress=None)
    assert folder == dest.resolve() / "text" / "wikitext-2"
    for e in zf.table_info("text")["files"]:
        assert (dest / e["path"]).read_bytes() == (data_dir / e["path"]).read_bytes()
    # an explicit base_url wins over the environment
    monkeypatch.setenv("ZCBENCH_MIRROR", _dead_url())
    assert zf.file_url("text", "text/wikitext-2/valid.txt", "file:///m").startswith("file:///m/text/")
