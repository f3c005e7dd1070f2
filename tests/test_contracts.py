"""Contract tests over the registries (as timm parametrizes over ``list_models()``).

Every registered proxy: a docstring with a formula and a citation, ``conf/proxy/<name>.yaml``
restating exactly the class's ``defaults`` (when the file exists), a finite and
deterministic score on a tiny in-test space, and on a model without attention either a
score or ``n/a`` (the documented rule: a proxy raises ``NotApplicable`` when the model lacks
what it measures), never an error. Every registered space: samples deterministically,
mutates into a different valid architecture, rejects a broken gene naming it, and builds
(on the meta device). And the claim of docs/adding-a-proxy.md: one new file under
``proxies/`` is all it takes for a proxy to run, be configured and appear on the site.
Nothing here lists proxies or spaces by hand.
"""
from __future__ import annotations

import json
import math
import random
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest
import torch
from test_engine import TinySpace, run, tiny_arch

import zcbench
from zcbench.config import conf_dir
from zcbench.proxy import SetProxy

REPO = Path(__file__).resolve().parents[1]
PROXIES = zcbench.list_proxies()
SPACES = zcbench.list_spaces()


class ContractSpace(TinySpace):
    """The engine tests' tiny LM space plus the ``summary`` of the Space contract (for arch-only proxies)."""

    name = "tiny_contract"

    def summary(self, arch):
        g = arch.genes
        return {"n_layer": g["n_layer"], "d_model": g["d_model"], "n_head": [g["n_head"]] * g["n_layer"],
                "d_inner": [g["d_inner"]] * g["n_layer"], "seq_len": 12}


def _doc(proxy) -> str:
    mod = sys.modules.get(type(proxy).__module__)
    return (type(proxy).__doc__ or "") + "\n" + ((mod.__doc__ if mod else "") or "")


# --------------------------------------------------------------------------- proxies
def test_registries_are_populated():
    assert len(PROXIES) >= 20 and len(SPACES) >= 4


@pytest.mark.parametrize("name", PROXIES)
def test_proxy_documents_formula_and_citation(name):
    p = zcbench.get_proxy(name)
    doc = _doc(p)
    assert p.citation.strip(), f"{name}: no citation attribute"
    assert re.search(r"(19|20)\d\d", doc + p.citation), f"{name}: the citation names no year"
    assert re.search(r"[=≈∑Σ∏]", doc), f"{name}: the docstring states no formula"
    assert len(doc) > 200, f"{name}: docstring too short to be the spec"


@pytest.mark.parametrize("name", PROXIES)
def test_proxy_conf_restates_the_class_defaults(name):
    """``conf/proxy/<name>.yaml`` (optional) restates ``defaults``: same values, and every default
    present except options added after scores were stored (``added_options``), which may be absent."""
    from omegaconf import OmegaConf

    path = Path(conf_dir()) / "proxy" / f"{name}.yaml"
    if not path.exists():
        pytest.skip(f"{name} ships no conf file (its class defaults are used as they are)")
    conf = OmegaConf.load(path)
    assert conf.get("name", name) == name
    opts = OmegaConf.to_container(conf.get("options") or OmegaConf.create({}), resolve=True)
    p = zcbench.get_proxy(name)
    defaults = dict(type(p).defaults)
    assert set(opts) <= set(defaults), f"options not in the class: {sorted(set(opts) - set(defaults))}"
    assert {k: v for k, v in opts.items()} == {k: defaults[k] for k in opts}
    missing = set(defaults) - set(opts) - set(p.added_options)
    assert not missing, f"defaults not restated in {path.name}: {sorted(missing)}"


@pytest.mark.parametrize("name", PROXIES)
def test_proxy_runs_deterministically_on_a_tiny_space(name):
    p = zcbench.get_proxy(name)
    if isinstance(p, SetProxy):  # defined on a set: combine the components' scores of a few archs
        scores = pd.DataFrame({c: [3.0, 1.0, 2.0, math.nan] for c in p.components}, index=list("abcd"))
        out = p.combine(scores)
        assert list(out.index) == list("abcd") and math.isnan(out["d"])
        assert out["a"] > out["c"] > out["b"]
        return
    space = ContractSpace()
    a = run(space, tiny_arch(), [name], seed=0)[name]
    b = run(space, tiny_arch(), [name], seed=0)[name]
    assert a.status == "ok" and math.isfinite(a.value), (a.status, a.message)
    assert a.value == b.value


@pytest.mark.parametrize("name", PROXIES)
def test_proxy_without_attention_is_scored_or_not_applicable(name):
    p = zcbench.get_proxy(name)
    if isinstance(p, SetProxy):
        pytest.skip("set-level: no model of its own")
    res = run(ContractSpace(), tiny_arch(attention=False), [name], seed=0)[name]
    assert res.status in ("ok", "n/a"), (res.status, res.message)
    assert res.status == "n/a" or math.isfinite(res.value)


# --------------------------------------------------------------------------- spaces
@pytest.mark.parametrize("name", SPACES)
def test_space_samples_mutates_validates_builds(name, data_dir):
    space = zcbench.create_space(name, data_dir=str(data_dir))
    a = space.sample(random.Random(0))
    assert space.sample(random.Random(0)).id == a.id  # seeded sampling is reproducible
    space.validate(a.genes)
    b = space.mutate(a, random.Random(1))
    assert b.id != a.id and any(a.genes.get(k) != b.genes.get(k) for k in set(a.genes) | set(b.genes))
    space.validate(b.genes)
    gene = sorted(a.genes)[0]
    with pytest.raises(ValueError, match=re.escape(gene)):
        space.validate({**a.genes, gene: "not-a-value"})
    with torch.device("meta"):
        model = space.build(a)
    assert isinstance(model, torch.nn.Module) and sum(p.numel() for p in model.parameters()) > 0
    assert space.param_counts(a)["total"] > 0


# --------------------------------------------------------------------------- one new file
PLUGIN = '''
"""tmp_depth — the number of blocks of the network (a test proxy: one file, nothing else edited).

    score(a) = scale * n_layer(a)

Citation: none needed for a test; written for zcbench's contract tests, 2026.
"""
from zcbench import register_proxy
from zcbench.proxy import Proxy


@register_proxy("tmp_depth")
class TmpDepth(Proxy):
    """score = scale * n_layer."""

    needs = frozenset({"arch"})
    citation = "zcbench contract test, 2026"
    defaults = {"scale": 1.0}

    def score(self, ctx):
        return self.options["scale"] * ctx.space.summary(ctx.arch)["n_layer"]
'''

SCRIPT = '''
import json, sys
from pathlib import Path
import zcbench.proxies
zcbench.proxies.__path__.append(sys.argv[1])  # as if the file were in proxies/
import zcbench
from zcbench.config import proxy_options
from zcbench.leaderboard import main_leaderboard
from zcbench.runner import RunConfig, run

assert "tmp_depth" in zcbench.list_proxies()
opts = proxy_options(["tmp_depth"], {"tmp_depth": {"scale": 2.0}})
res = Path(sys.argv[2])
run(RunConfig(space="gpt2", proxies=["tmp_depth", "params"], n_archs=12, results_dir=str(res),
              proxy_options=opts, bootstrap=0, progress=False))
rc = main_leaderboard(["--results-dir", str(res), "--out", str(res / "site"), "--no-figures", "--bootstrap", "0"])
print(json.dumps({"opts": opts, "rc": rc}))
'''


def test_one_new_proxy_file_runs_is_configured_and_is_on_the_site(tmp_path, data_dir):
    plugin = tmp_path / "plugin"
    plugin.mkdir()
    (plugin / "tmp_depth.py").write_text(textwrap.dedent(PLUGIN))
    results = tmp_path / "results"
    out = subprocess.run([sys.executable, "-c", SCRIPT, str(plugin), str(results)], cwd=REPO, capture_output=True,
                         text=True, timeout=600, env={**__import__("os").environ, "ZCBENCH_DATA": str(data_dir)})
    assert out.returncode == 0, out.stderr[-3000:]
    info = json.loads(out.stdout.strip().splitlines()[-1])
    assert info["opts"] == {"tmp_depth": {"scale": 2.0}} and info["rc"] == 0
    # ran and configured: 12 records, each twice the block count of its architecture
    space = zcbench.create_space("gpt2", data_dir=str(data_dir))
    files = list((results / "scores" / "gpt2" / "tmp_depth").glob("*.jsonl"))
    assert len(files) == 1
    recs = [json.loads(line) for line in files[0].read_text().splitlines()]
    assert len(recs) == 12
    for r in recs:
        assert r["status"] == "ok" and r["score"] == 2.0 * space.summary(space.by_id(r["arch_id"]))["n_layer"]
    # on the site: a row on the overview and its own page
    site = results / "site"
    assert "tmp_depth" in (site / "index.html").read_text()
    assert (site / "proxies" / "tmp_depth.html").exists()
