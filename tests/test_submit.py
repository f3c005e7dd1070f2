"""Submissions end to end (issue #20): a toy proxy file -> ``submit`` bundle -> ``leaderboard`` ingests it.

The toy proxy is data-free (sum of squared weights at initialisation), scored on 6 GPT-2
architectures with one seed, so the whole file stays well under a minute. Checked: the bundle
describes itself (source + sha256, data sha256 = manifest, seeds, machine, zcbench version); an
untouched bundle is verified by re-scoring with the bundled code; a bundle whose scores were edited,
or whose source no longer matches its sha256, is shown as not verified; the site marks both.
"""
from __future__ import annotations

import json
import re
import shutil

import pytest

import zcbench
from zcbench import fetch, leaderboard, submit
from zcbench.runner import RunConfig, run

TOY = '''"""toy_weight_sq — sum of squared weights at initialisation (a toy for tests/test_submit.py)."""
from zcbench import register_proxy
from zcbench.proxy import Proxy


@register_proxy()
class ToyWeightSq(Proxy):
    """Sum over all parameters of the squared weights (data-free)."""

    name = "toy_weight_sq"
    needs = frozenset({"weights"})
    family = "data-free"
    citation = "zcbench tests"

    def score(self, ctx):
        return float(sum(float((p.detach().double() ** 2).sum()) for p in ctx.model.parameters()))
'''


@pytest.fixture(scope="module", autouse=True)
def _registry_restored():
    """The toy proxy a submission registers stays in this module: the proxies registered before it are
    restored afterwards, so tests that walk the catalogue do not meet it, whatever the test order."""
    from zcbench import registry

    zcbench.list_proxies()  # discovery done before the snapshot
    before = dict(registry._PROXIES)
    yield
    registry._PROXIES.clear()
    registry._PROXIES.update(before)


@pytest.fixture(scope="module")
def bundle(tmp_path_factory, data_dir):
    import torch

    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("submit")
    src = root / "toy_weight_sq.py"
    src.write_text(TOY)
    path = submit.submit(str(src), spaces=["gpt2"], n_archs=6, seeds=[0], out=root / "out", data_dir=str(data_dir),
                         echo=False)
    return root, path


def test_bundle_is_self_describing(bundle):
    _, path = bundle
    b = json.loads(path.read_text())
    assert b["schema"] == submit.SCHEMA and not submit.validate_schema(b)
    assert b["proxy"]["name"] == "toy_weight_sq" and b["proxy"]["source"] == TOY
    assert b["proxy"]["sha256"] == submit.sha256_text(TOY) and b["proxy"]["family"] == "data-free"
    assert b["zcbench"]["version"] and "commit" in b["zcbench"]
    assert {"platform", "python", "torch", "cpus", "device"} <= set(b["machine"])
    proto = b["protocol"]["gpt2"]
    assert proto["seeds"] == [0] and proto["n_archs"] == 6 and proto["batch_size"] == 16 and proto["seq_len"] == 192
    manifest = {f["path"]: f["sha256"] for f in fetch.table_info("gpt2")["files"]}
    assert proto["data_sha256"] == manifest
    scores = b["scores"]["gpt2"]["0"]
    assert len(scores) == 6 and all(isinstance(v, float) and v > 0 for v in scores.values())


def test_verified_tampered_and_broken_bundles(bundle, data_dir, tmp_path):
    root, path = bundle
    folder = tmp_path / "subs"
    folder.mkdir()
    shutil.copy(path, folder / "a-ok.json")
    b = json.loads(path.read_text())
    edited = json.loads(json.dumps(b))
    for aid in edited["scores"]["gpt2"]["0"]:
        edited["scores"]["gpt2"]["0"][aid] *= 1.01  # scores edited by 1%
    (folder / "b-tampered.json").write_text(json.dumps(edited))
    code = json.loads(json.dumps(b))
    code["proxy"]["source"] += "\n# edited after scoring\n"
    (folder / "c-source.json").write_text(json.dumps(code))
    (folder / "d-broken.json").write_text("{")
    subs = {s.path: s for s in submit.ingest_folder(folder, data_dir=str(data_dir), sample=6)}
    ok, tampered, source, broken = subs["a-ok.json"], subs["b-tampered.json"], subs["c-source.json"], subs["d-broken.json"]
    assert ok.verified and not ok.problems and ok.n_checked == 6 and ok.n_scores == 6
    assert ok.rho["gpt2"]["n"] == 6 and -1 <= ok.rho["gpt2"]["rho"] <= 1
    assert not tampered.verified and "re-scoring disagrees on 6 of 6" in tampered.problems[0]
    assert not source.verified and any("sha256" in p for p in source.problems)
    assert not broken.verified and broken.problems[0].startswith("unreadable bundle")
    # one edited score among many is still caught when it is sampled
    one = json.loads(json.dumps(b))
    aid = sorted(one["scores"]["gpt2"]["0"])[0]
    one["scores"]["gpt2"]["0"][aid] = one["scores"]["gpt2"]["0"][aid] * 2
    (tmp_path / "one.json").write_text(json.dumps(one))
    s = submit.ingest_bundle(tmp_path / "one.json", data_dir=str(data_dir), sample=6)
    assert not s.verified and "1 of 6" in s.problems[0]


def test_leaderboard_shows_verified_and_unverified_rows(bundle, data_dir, tmp_path):
    root, path = bundle
    results = tmp_path / "results"
    run(RunConfig(space="gpt2", proxies=["params"], seed=0, n_archs=6, data_dir=str(data_dir),
                  results_dir=str(results), bootstrap=0, progress=False))
    subs = results / "submissions"
    subs.mkdir()
    shutil.copy(path, subs / "toy-ok.json")
    b = json.loads(path.read_text())
    b["proxy"]["name"] = b["proxy"]["name"]  # same code, edited scores
    for aid in b["scores"]["gpt2"]["0"]:
        b["scores"]["gpt2"]["0"][aid] += 1.0
    (subs / "toy-tampered.json").write_text(json.dumps(b))
    rc = leaderboard.main_leaderboard(["--results-dir", str(results), "--out", str(tmp_path / "site"),
                                       "--data-dir", str(data_dir), "--no-figures", "--bootstrap", "0",
                                       "--verify-sample", "2"])
    assert rc == 0
    index = (tmp_path / "site" / "index.html").read_text()
    rows = re.findall(r'<tr class="(verified|unverified)" data-proxy="toy_weight_sq"', index)
    assert sorted(rows) == ["unverified", "verified"]
    assert "not verified" in index and "re-scoring disagrees" in index
    saved = json.loads((tmp_path / "site" / "data" / "submissions.json").read_text())
    assert sorted(s["verified"] for s in saved) == [False, True]


def test_submit_errors_are_one_line(bundle, capsys, tmp_path):
    root, _ = bundle
    assert submit.main_submit(["proxy=x.py", "bogus=1"]) == 2
    assert "key one of proxy, spaces" in capsys.readouterr().err
    assert submit.main_submit(["spaces=[gpt2]"]) == 2
    assert "proxy=" in capsys.readouterr().err
    assert submit.main_submit([f"proxy={tmp_path / 'missing.py'}"]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert submit.main_submit(["proxy=no_such_proxy"]) == 2
    assert "no_such_proxy" in capsys.readouterr().err
    assert submit.main_submit([f"proxy={root / 'toy_weight_sq.py'}", "spaces=[autoformer]", "n_archs=2"]) == 2
    err = capsys.readouterr().err
    assert "without ground truth" in err and "gpt2" in err
    empty = tmp_path / "empty.py"
    empty.write_text("x = 1\n")
    assert submit.main_submit([f"proxy={empty}"]) == 2
    assert "exactly one proxy" in capsys.readouterr().err


def test_every_registered_proxy_has_a_family():
    from zcbench import families
    from zcbench.registry import list_proxies

    names = list_proxies()
    stale = set(families.PROXY_FAMILY) - set(names)
    assert not stale, f"PROXY_FAMILY names proxies that are not registered: {sorted(stale)}"
    for name in names:
        assert families.proxy_family(name) in families.FAMILIES, name
    assert families.family_from_needs({"backward"}) == "gradient"
    assert families.family_from_needs({"forward"}) == "activation"
    assert families.family_from_needs({"arch"}) == "data-free"
