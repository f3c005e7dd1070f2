"""Shared fixtures: tests read the upstream data from ZCBENCH_DATA, else ../shared/data.

With neither (a fresh clone without the data beside it), ZCBENCH_DATA stays unset: spaces then
read the package's embedded tables (docs/data.md), and tests that need the verbatim files
(``data_dir`` fixture) are skipped with the command that gets them, unless
ZCBENCH_REQUIRE_DATA=1 (CI: .ci/run) turns the skip into a failure.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data"

# Absolute, so that subprocesses started in other folders (tests that run `python -c` or the CLI
# in a temporary directory) find the same data: a relative ZCBENCH_DATA=../shared/data given on
# the command line would otherwise resolve against their working directory.
if os.environ.get("ZCBENCH_DATA"):
    os.environ["ZCBENCH_DATA"] = str(Path(os.environ["ZCBENCH_DATA"]).expanduser().resolve())
elif DEFAULT_DATA.is_dir():
    os.environ["ZCBENCH_DATA"] = str(DEFAULT_DATA.resolve())


@pytest.fixture(scope="session")
def data_dir() -> Path:
    d = Path(os.environ.get("ZCBENCH_DATA") or DEFAULT_DATA)
    if not ((d / "README.md").exists() or (d / "lts").is_dir()):
        msg = (f"upstream data not found at {d}: run `python -m zcbench data fetch --dest DIR` "
               f"and set ZCBENCH_DATA=DIR")
        if os.environ.get("ZCBENCH_REQUIRE_DATA") == "1":
            pytest.fail(msg)
        pytest.skip(msg)
    return d


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    # The tokenizer/token caches are shared across the session (training once is the
    # point); results written by tests go to per-test temporary folders.
    monkeypatch.setenv("ZCBENCH_CACHE", str(tmp_path_factory.getbasetemp().parent / "zcbench-cache"))
