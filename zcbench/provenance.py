"""Which code produced a result: the one git-commit helper (core layer).

:func:`source_commit` is recorded as ``zcbench_commit`` in score files (``run``), in
project-built ground-truth tables (``groundtruth build``) and in the report/leaderboard
provenance line. It is

* ``None`` for an installed wheel (no ``.git`` beside the package) or without git;
* ``<sha>`` when the code is exactly that commit;
* ``<sha>+dirty.<h>`` when the *code* differs from the commit: ``h`` is the first 12 hex
  digits of a sha256 over ``git diff HEAD`` of tracked files plus the path and content of
  untracked, not-ignored files — so two dirty runs with the same ``h`` ran the same code.

Changes under ``results/`` (the committed outputs) are not code and are ignored: writing
scores or rebuilding the site does not make the next run "dirty".
(tests/test_architecture.py::test_source_commit_dirty_means_code_differs)
"""
from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path

#: Paths (relative to the checkout root) whose changes are outputs, not code.
NOT_CODE = ("results",)


def checkout_root() -> Path:
    """The folder holding the zcbench package (a source checkout's root)."""
    return Path(__file__).resolve().parent.parent


def _git(root: Path, *args: str, text: bool = True):
    env = {**os.environ, "GIT_OPTIONAL_LOCKS": "0"}
    return subprocess.run(["git", "--no-optional-locks", "-C", str(root), *args], capture_output=True, text=text,
                          timeout=20, env=env)


def code_diff_hash(root: Path | None = None) -> str | None:
    """sha256 (hex) of how the code differs from HEAD, or None when it does not (or git fails)."""
    root = Path(root) if root is not None else checkout_root()
    excludes = [f":(exclude){p}" for p in NOT_CODE]
    diff = _git(root, "diff", "HEAD", "--no-ext-diff", "--binary", "--", ".", *excludes, text=False)
    if diff.returncode != 0:
        return None
    untracked = _git(root, "ls-files", "--others", "--exclude-standard", "-z", "--", ".", *excludes, text=False)
    names = sorted(n for n in untracked.stdout.split(b"\0") if n) if untracked.returncode == 0 else []
    if not diff.stdout and not names:
        return None
    h = hashlib.sha256(diff.stdout)
    for n in names:
        h.update(b"\0untracked\0" + n + b"\0")
        try:
            h.update((root / n.decode("utf-8", "surrogateescape")).read_bytes())
        except OSError:
            h.update(b"<unreadable>")
    return h.hexdigest()


def source_commit(root: Path | None = None) -> str | None:
    """``<sha>``, ``<sha>+dirty.<12 hex>`` or None (see the module docstring)."""
    root = Path(root) if root is not None else checkout_root()
    if not (root / ".git").exists():
        return None
    try:
        head = _git(root, "rev-parse", "HEAD")
        if head.returncode != 0:
            return None
        dirty = code_diff_hash(root)
    except (OSError, subprocess.SubprocessError):
        return None
    return head.stdout.strip() + (f"+dirty.{dirty[:12]}" if dirty else "")
