"""Shared fixtures: tests read the upstream data from ../shared/data (or ZCBENCH_DATA)."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data"

# Absolute, so that subprocesses started in other folders (tests that run `python -c` or the CLI
# in a temporary directory) find the same data: a relative ZCBENCH_DATA=../shared/data given on
# the command line would otherwise resolve against their working directory.
os.environ["ZCBENCH_DATA"] = str(Path(os.environ.get("ZCBENCH_DATA") or DEFAULT_DATA).expanduser().resolve())


@pytest.fixture(scope="session")
def data_dir() -> Path:
    d = Path(os.environ["ZCBENCH_DATA"])
    if not (d / "README.md").exists():
        pytest.fail(f"upstream data not found at {d}: set ZCBENCH_DATA")
    return d


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    # The tokenizer/token caches are shared across the session (training once is the
    # point); results written by tests go to per-test temporary folders.
    monkeypatch.setenv("ZCBENCH_CACHE", str(tmp_path_factory.getbasetemp().parent / "zcbench-cache"))
