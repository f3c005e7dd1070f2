"""The shape of the code (docs/architecture.md): one-way layers, no import cycles, no
cross-module private imports, every module importable on its own, no oversized module
without a written reason, and the one provenance helper's meaning of "+dirty".

The import graph is read from the source (module- and function-level imports, as
/work/shared/hooks/import_graph.py does), so a lazy import inside a function counts too.
"""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from zcbench.provenance import source_commit

REPO = Path(__file__).resolve().parents[1]
PACKAGES = {"zcbench": "zcbench", "zcbench.proxies": "proxies", "zcbench.spaces": "spaces", "zcbench.conf": "conf"}
# The core layer (docs/architecture.md): imports only itself. Everything else in zcbench/ is a
# job (run, report, leaderboard, groundtruth, search/*, ...) except the command line on top.
CORE = {"zcbench", "zcbench.registry", "zcbench.space", "zcbench.proxy", "zcbench.engine", "zcbench.introspect",
        "zcbench.store", "zcbench.data", "zcbench.metrics", "zcbench.config", "zcbench.errors",
        "zcbench.provenance", "zcbench.fetch", "zcbench.text", "zcbench.options", "zcbench.embedded", "zcbench.conf"}
CLI = {"zcbench.cli", "zcbench.__main__"}
MAX_LINES = 500


def _modules() -> dict[str, Path]:
    mods = {}
    for prefix, folder in PACKAGES.items():
        base = REPO / folder
        for path in sorted(base.rglob("*.py")):
            rel = path.relative_to(base).with_suffix("").parts
            if folder == "zcbench" and rel[0] in ("proxies", "spaces"):
                continue
            parts = rel[:-1] if rel[-1] == "__init__" else rel
            mods[".".join((prefix,) + parts)] = path
    return mods


MODULES = _modules()


def _graph() -> tuple[dict[str, set], list[str]]:
    """(edges, private-name violations) of the project's modules."""
    edges, private = {}, []
    for m, path in MODULES.items():
        tree = ast.parse(path.read_text())
        deps: set[str] = set()
        aliases: dict[str, str] = {}  # local name -> project module it is bound to
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0 and node.module in MODULES:
                deps.add(node.module)
                for a in node.names:
                    sub = f"{node.module}.{a.name}"
                    if sub in MODULES:
                        deps.add(sub)
                        aliases[a.asname or a.name] = sub
                    elif a.name.startswith("_") and not a.name.startswith("__") and node.module != m:
                        private.append(f"{m} imports {node.module}.{a.name}")
            elif isinstance(node, ast.Import):
                for a in node.names:
                    if a.name in MODULES:
                        deps.add(a.name)
                        if a.asname:
                            aliases[a.asname] = a.name
        for node in ast.walk(tree):  # module._name, for a module bound by an import
            if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in aliases
                    and node.attr.startswith("_") and not node.attr.startswith("__") and aliases[node.value.id] != m):
                private.append(f"{m} uses {aliases[node.value.id]}.{node.attr}")
        # a package's __init__ re-exporting (or lazily importing) its own children is not a dependency cycle
        edges[m] = {d for d in deps if d != m and not d.startswith(m + ".")}
    return edges, sorted(set(private))


def _cycles(edges: dict[str, set]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    sys.setrecursionlimit(max(10000, sys.getrecursionlimit()))
    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


def test_the_graph_sees_the_project():
    assert {"zcbench.engine", "zcbench.proxy", "zcbench.report.tables", "zcbench.proxies.rankfuse",
            "zcbench.spaces.gpt2"} <= set(MODULES)
    edges, _ = _graph()
    assert "zcbench.proxy" in edges["zcbench.engine"]  # the engine imports the contract
    assert "zcbench.report.load" in edges["zcbench.report.tables"]


def test_the_cycle_check_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycles():
    edges, _ = _graph()
    assert _cycles(edges) == []


def test_no_cross_module_private_imports():
    _, private = _graph()
    assert private == []


def test_layers_only_look_down():
    """Core imports only core; nothing but ``python -m zcbench`` imports the command line."""
    edges, _ = _graph()
    up = [f"{m} -> {d}" for m in sorted(CORE & set(edges)) for d in sorted(edges[m])
          if d.startswith("zcbench") and d not in CORE and not d.startswith(("zcbench.conf",))]
    assert up == [], "core modules importing jobs / the CLI"
    into_cli = [f"{m} -> {d}" for m, ds in edges.items() for d in ds if d in CLI and m not in CLI]
    assert into_cli == []
    plugins = [f"{m} -> {d}" for m in CORE & set(edges) for d in edges[m]
               if d.startswith(("zcbench.proxies", "zcbench.spaces"))]
    assert plugins == [], "the core must not know a plug-in by name"


def test_every_module_imports_on_its_own():
    """Each module in a clean zcbench state (dropped from sys.modules in between), one interpreter."""
    names = sorted(m for m in MODULES if m.startswith("zcbench") and not m.endswith("__main__")
                   and not m.startswith(("zcbench.conf",)))
    code = (
        "import importlib, sys, traceback\n"
        f"names = {names!r}\n"
        "bad = []\n"
        "for n in names:\n"
        "    for k in [k for k in sys.modules if k == 'zcbench' or k.startswith('zcbench.')]:\n"
        "        del sys.modules[k]\n"
        "    try:\n"
        "        importlib.import_module(n)\n"
        "    except Exception as exc:\n"
        "        bad.append(f'{n}: {type(exc).__name__}: {exc}')\n"
        "print('\\n'.join(bad))\n"
        "sys.exit(1 if bad else 0)\n")
    res = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stdout + res.stderr[-2000:]


def test_no_oversized_module_without_a_reason():
    """A zcbench/ source file over 500 lines says why near its top, in a line starting with ``Size:``."""
    unexplained = []
    for m, path in MODULES.items():
        if not m.startswith("zcbench") or m.startswith(("zcbench.proxies", "zcbench.spaces", "zcbench.conf")):
            continue
        lines = path.read_text().splitlines()
        if len(lines) > MAX_LINES and not any(ln.lstrip("# ").startswith("Size:") for ln in lines[:60]):
            unexplained.append(f"{path.relative_to(REPO)} ({len(lines)} lines)")
    assert unexplained == []


def test_no_code_under_results():
    assert sorted(str(p.relative_to(REPO)) for p in (REPO / "results").rglob("*.py")) == []


# --------------------------------------------------------------------------- provenance
def _git(root: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, check=True,
                          env={"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
                               "GIT_COMMITTER_EMAIL": "t@t", "PATH": "/usr/bin:/bin", "HOME": str(root)}).stdout


@pytest.fixture
def checkout(tmp_path):
    root = tmp_path / "repo"
    (root / "zcbench").mkdir(parents=True)
    (root / "results" / "scores").mkdir(parents=True)
    (root / "zcbench" / "core.py").write_text("x = 1\n")
    (root / "results" / "scores" / "a.jsonl").write_text('{"score": 1}\n')
    _git(root, "init", "-q")
    _git(root, "add", ".")
    _git(root, "commit", "-q", "-m", "init")
    return root


def test_source_commit_dirty_means_code_differs(checkout):
    head = _git(checkout, "rev-parse", "HEAD").strip()
    assert source_commit(checkout) == head
    # outputs are not code: changed or new files under results/ leave it clean
    (checkout / "results" / "scores" / "a.jsonl").write_text('{"score": 2}\n')
    (checkout / "results" / "scores" / "b.jsonl").write_text('{"score": 3}\n')
    assert source_commit(checkout) == head
    # a code change: "+dirty.<hash of the diff>", the same for the same change
    (checkout / "zcbench" / "core.py").write_text("x = 2\n")
    first = source_commit(checkout)
    assert first.startswith(head + "+dirty.") and len(first) == len(head) + len("+dirty.") + 12
    assert source_commit(checkout) == first
    (checkout / "zcbench" / "core.py").write_text("x = 3\n")
    second = source_commit(checkout)
    assert second.startswith(head + "+dirty.") and second != first
    # back to the commit's code: clean again; an untracked code file is a difference too
    (checkout / "zcbench" / "core.py").write_text("x = 1\n")
    assert source_commit(checkout) == head
    (checkout / "zcbench" / "new_proxy.py").write_text("y = 1\n")
    assert source_commit(checkout).startswith(head + "+dirty.")


def test_source_commit_without_git_is_none(tmp_path):
    assert source_commit(tmp_path) is None
