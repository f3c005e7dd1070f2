"""Results store reliability (issue #19, bullet 1): fresh-line appends, quarantine of malformed
records, corrupted metadata, summaries never narrowed silently, umask-respecting writes."""
from __future__ import annotations

import json
import os
import stat
import warnings

import pytest

from zcbench.store import (ScoreFile, StoreError, atomic_write_text, iter_score_files, parse_lines,
                           write_summary)


def _rec(i, score=1.0):
    return {"arch_id": f"a{i}", "score": score, "status": "ok"}


def _new(tmp_path):
    return ScoreFile(tmp_path, "s", "p", 0, {}, "1")


def test_append_after_torn_line_starts_fresh_and_loses_nothing(tmp_path):
    f = _new(tmp_path)
    for i in range(3):
        f.append(_rec(i))
    with open(f.path, "ab") as fh:  # a crash tore the next record: no trailing newline
        fh.write(b'{"arch_id": "a3", "sco')
    f.append(_rec(4))
    with pytest.warns(UserWarning, match=r"1 malformed line\(s\) \(1 torn line"):
        recs = f.read()
    assert sorted(recs) == ["a0", "a1", "a2", "a4"]  # a4 not swallowed by the torn a3
    # the fragment moved to the side file; the score file is clean and reported only once
    q = [json.loads(x) for x in f.quarantine_path.read_text().splitlines()]
    assert len(q) == 1 and q[0]["text"].startswith('{"arch_id": "a3"') and q[0]["reason"] == "torn line"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert sorted(f.read()) == ["a0", "a1", "a2", "a4"]


def test_glued_record_written_by_old_versions_is_recovered():
    torn = '{"arch_id": "a3", "sco' + json.dumps(_rec(4), sort_keys=True)
    recs, bad = parse_lines(json.dumps(_rec(1), sort_keys=True) + "\n" + torn + "\n")
    assert [r["arch_id"] for r in recs] == ["a1", "a4"]
    assert [(i, why) for i, _, why in bad] == [(2, "torn line")]


@pytest.mark.parametrize("line,reason", [('{"score": 1.0, "status": "ok"}', "no arch_id"),
                                         ('[1, 2, 3]', "a JSON list"),
                                         ('"just a string"', "a JSON str"),
                                         ('{"arch_id": 7, "score": 1}', "no arch_id"),
                                         ("\x00\x00garbage", "torn line")])
def test_malformed_records_are_quarantined_not_fatal_and_hide_no_neighbour(tmp_path, line, reason):
    f = _new(tmp_path)
    f.append(_rec(0))
    with open(f.path, "a") as fh:
        fh.write(line + "\n")
    f.append(_rec(1))
    with pytest.warns(UserWarning, match=reason):
        recs = f.read()
    assert sorted(recs) == ["a0", "a1"]
    assert f.n_quarantined == 1 and f.quarantine_path.exists()
    assert line not in f.path.read_text()


def test_append_waits_for_quarantine_and_writes_to_the_new_file(tmp_path):
    # A writer that opened the file before a quarantine replaced it must not append to the orphan.
    f = _new(tmp_path)
    f.append(_rec(0))
    with open(f.path, "a") as fh:
        fh.write("[]\n")
    old_inode = os.stat(f.path).st_ino
    with pytest.warns(UserWarning):
        f.read()
    assert os.stat(f.path).st_ino != old_inode
    f.append(_rec(1))
    assert sorted(f.read()) == ["a0", "a1"]


def test_corrupted_meta_is_rebuilt_by_run_and_skipped_by_readers(tmp_path):
    f = _new(tmp_path)
    f.ensure_meta({"target": "x"})
    f.append(_rec(0))
    f.meta_path.write_text('{"space": "s", "pro')  # truncated
    with pytest.warns(UserWarning, match="corrupted metadata"):
        assert list(iter_score_files(tmp_path)) == []
    with pytest.warns(UserWarning, match="rebuilt"):
        f.ensure_meta({"target": "x"})
    assert json.loads(f.meta_path.read_text())["run_key"] == f.key
    assert [m["run_key"] for m, _ in iter_score_files(tmp_path)] == [f.key]


def test_summary_is_not_replaced_by_a_narrower_run(tmp_path):
    p = tmp_path / "summaries" / "x.json"
    wide = [f"a{i}" for i in range(200)]
    assert write_summary(p, {"n_scored": 200}, wide) == "written"
    note = write_summary(p, {"n_scored": 20}, wide[:20])
    assert "kept the existing summary" in note and "replace_summary=true" in note
    assert json.loads(p.read_text())["n_scored"] == 200
    assert write_summary(p, {"n_scored": 20}, wide[:20], replace=True) == "written"
    assert json.loads(p.read_text())["n_scored"] == 20
    # an older summary without IDs: judged by its count
    p.write_text(json.dumps({"n_scored": 200}))
    assert "kept" in write_summary(p, {"n_scored": 20}, wide[:20])
    assert write_summary(p, {"n_scored": 200}, wide) == "written"
    assert write_summary(p, {"n_scored": 200}, wide) == "unchanged"


def test_atomic_write_keeps_the_umask_and_existing_modes(tmp_path):
    old = os.umask(0o022)
    try:
        atomic_write_text(tmp_path / "a.json", "{}")
        assert stat.S_IMODE(os.stat(tmp_path / "a.json").st_mode) == 0o644
        os.umask(0o077)
        atomic_write_text(tmp_path / "b.json", "{}")
        assert stat.S_IMODE(os.stat(tmp_path / "b.json").st_mode) == 0o600
        os.chmod(tmp_path / "a.json", 0o640)
        atomic_write_text(tmp_path / "a.json", "{1}")  # a replaced file keeps its mode
        assert stat.S_IMODE(os.stat(tmp_path / "a.json").st_mode) == 0o640
        os.umask(0o022)
        f = _new(tmp_path)
        f.append(_rec(0))
        assert stat.S_IMODE(os.stat(f.path).st_mode) == 0o644
    finally:
        os.umask(old)


def test_store_errors_are_one_line_and_name_the_path(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(StoreError, match="a file is in the way|is a file") as e:
        ScoreFile(blocker / "results", "s", "p", 0, {}, "1").append(_rec(0))
    assert "\n" not in str(e.value) and str(blocker) in str(e.value)
    with pytest.raises(StoreError) as e:
        atomic_write_text(blocker / "sub" / "x.json", "{}")
    assert "\n" not in str(e.value)


def test_readers_that_must_not_change_the_store_only_report(tmp_path):
    f = _new(tmp_path)
    f.append(_rec(0))
    with open(f.path, "a") as fh:
        fh.write('{"no": "id"}\n')
    f.append(_rec(1))
    before = f.path.read_bytes()
    with pytest.warns(UserWarning, match="left in place"):
        assert sorted(f.read(quarantine=False)) == ["a0", "a1"]
    assert f.path.read_bytes() == before and not f.quarantine_path.exists()
