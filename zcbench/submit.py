"""Submissions: score a proxy under the canonical protocol into one self-describing bundle, and
verify bundles before the leaderboard shows them.

``python -m zcbench submit proxy=<file.py or registered name> [spaces=[gpt2]] [n_archs=K]
[seeds=[0,1,2]] [out=DIR] [data_dir=DIR] [device=cpu]`` runs the canonical protocol of every
space with ground truth (the space's ``conf/space/<name>.yaml`` batch size, sequence length and
options; every stored architecture unless ``n_archs``; seeds 0, 1, 2 unless ``seeds``) and writes
``<out>/<proxy>-<sha12>.json`` (schema :data:`SCHEMA`):

* ``proxy``: name, family, version, citation, the source file's text, its file name and sha256;
* ``zcbench``: version and commit of the code that scored;
* ``protocol``: per space the options, batch size, sequence length, seeds, n_archs, the minibatch
  provenance (corpus, split, tokenizer hash) and the sha256 of every ground-truth file (manifest);
* ``machine``: platform, Python, torch, CPU count, device;
* ``scores``: ``{space: {seed: {arch_id: score or null}}}``; ``created``: UTC time.

:func:`ingest_bundle` (used by ``python -m zcbench leaderboard``) validates the schema and the
provenance (source sha256, ground-truth sha256 against this zcbench's manifest), imports the
bundled source, re-scores a seeded random sample of the bundle's architectures with it, and calls
the submission *verified* only when every re-scored value agrees with the submitted one
(``rtol`` 1e-4). Spearman rho per space is computed from the bundle's scores against the
space's own ground truth. The guide for contributors is docs/submitting.md.
"""
from __future__ import annotations

import datetime as _dt
import hashlib
import inspect
import json
import math
import os
import platform
import random
import sys
import types
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

import zcbench
from zcbench import metrics

SCHEMA = "zcbench-submission/1"
DEFAULT_SEEDS = (0, 1, 2)
RTOL = 1e-4
ATOL = 1e-12
KEYS = ("proxy", "spaces", "n_archs", "seeds", "out", "data_dir", "device")


class SubmitError(RuntimeError):
    """A submission cannot be made (bad proxy file, bad option) or a bundle folder cannot be read."""


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


# ----------------------------------------------------------------------------- proxy source
def _module_name(sha: str) -> str:
    return f"zcbench_submission_{sha[:16]}"


def import_source(text: str, origin: str = "<submission>") -> str:
    """Execute a proxy file's source as its own module (once per content) and return the name of
    the one proxy it registers."""
    from zcbench.registry import list_proxies

    sha = sha256_text(text)
    mod_name = _module_name(sha)
    if mod_name not in sys.modules:
        mod = types.ModuleType(mod_name)
        mod.__file__ = origin
        sys.modules[mod_name] = mod
        try:
            exec(compile(text, origin, "exec"), mod.__dict__)
        except Exception as exc:
            del sys.modules[mod_name]
            raise SubmitError(f"proxy file {origin} failed to import: {type(exc).__name__}: "
                              f"{' '.join(str(exc).split())}") from exc
    names = []
    for name in list_proxies():
        try:
            cls = type(zcbench.get_proxy(name))
        except Exception:
            continue
        if cls.__module__ == mod_name:
            names.append(name)
    if len(names) != 1:
        raise SubmitError(f"proxy file {origin} must register exactly one proxy with @register_proxy; "
                          f"it registers {len(names)}" + (f" ({', '.join(names)})" if names else ""))
    return names[0]


def load_proxy(spec: str) -> tuple[str, str, str]:
    """(proxy name, file name, source text) of a proxy file or a registered proxy name."""
    from zcbench.registry import UnknownNameError

    path = Path(spec).expanduser()
    if spec.endswith(".py") or path.is_file():
        if not path.is_file():
            raise SubmitError(f"proxy file {spec} does not exist")
        text = path.read_text(encoding="utf-8")
        return import_source(text, str(path)), path.name, text
    try:
        p = zcbench.get_proxy(spec)
    except UnknownNameError as exc:
        raise SubmitError(f"{exc} (or pass proxy=<file.py>)") from exc
    src = inspect.getsourcefile(type(p))
    if not src:
        raise SubmitError(f"cannot find the source file of proxy {spec}")
    return spec, Path(src).name, Path(src).read_text(encoding="utf-8")


# ----------------------------------------------------------------------------- protocol
def truth_spaces(data_dir=None, names=None) -> list[str]:
    """Spaces shipped with a conf/space/<name>.yaml (or those of ``names``) whose stored architectures
    carry ground truth."""
    from zcbench.config import default_space_options, space_conf_names

    out = []
    for name in (space_conf_names() if names is None else names):
        try:
            sp = zcbench.create_space(name, data_dir=data_dir, **default_space_options(name))
            stored = sp.stored()
        except Exception:
            continue
        if any(sp.metric in a.truth for a in stored if a.truth):
            out.append(name)
    return out


def space_protocol(name: str) -> dict:
    """Canonical settings of a space: conf/space/<name>.yaml (batch size, sequence length, options)."""
    from zcbench.config import space_conf

    conf = space_conf(name)
    return {"options": conf.get("options") or {}, "batch_size": int(conf.get("batch_size") or 16),
            "seq_len": conf.get("seq_len")}


def _create(name: str, proto: dict, data_dir):
    from zcbench.runner import RunConfig, resolve_seq_len

    space = zcbench.create_space(name, data_dir=data_dir, **proto["options"])
    rc = resolve_seq_len(RunConfig(space=name, proxies=[], seq_len=proto["seq_len"]), space)
    return space, int(rc.seq_len)


def data_files(name: str) -> dict:
    """{path: sha256} of the space's ground-truth files in zcbench's manifest ({} when it has none)."""
    from zcbench import fetch
    from zcbench.errors import DataError

    try:
        info = fetch.table_info(name)
    except DataError:
        return {}
    return {f["path"]: f["sha256"] for f in info["files"]}


def machine() -> dict:
    import torch

    return {"platform": platform.platform(), "python": platform.python_version(), "torch": torch.__version__,
            "cpus": os.cpu_count(), "processor": platform.processor() or platform.machine()}


def _json_score(x) -> float | None:
    return float(x) if x is not None and math.isfinite(float(x)) else None


def submit(proxy: str, *, spaces=None, n_archs: int | None = None, seeds=DEFAULT_SEEDS, out="submissions",
           data_dir=None, device: str = "cpu", echo: bool = True) -> Path:
    """Score ``proxy`` under the canonical protocol and write one bundle; returns its path."""
    from zcbench.provenance import source_commit
    from zcbench.runner import DATA_FREE_NEEDS, RunConfig, run_job

    name, filename, text = load_proxy(proxy)
    p = zcbench.get_proxy(name)
    spaces = list(spaces) if spaces else truth_spaces(data_dir)
    ok = truth_spaces(data_dir, spaces)
    bad = [s for s in spaces if s not in ok]
    if bad or not spaces:
        valid = truth_spaces(data_dir)
        raise SubmitError(f"space(s) without ground truth or unknown: {', '.join(bad)}; valid: {', '.join(valid)}")
    seeds = [int(s) for s in seeds]
    if not seeds or any(s < 0 for s in seeds):
        raise SubmitError("seeds must be a non-empty list of non-negative integers")
    from zcbench.families import proxy_family

    bundle = {"schema": SCHEMA,
              "proxy": {"name": name, "family": proxy_family(name), "version": str(p.version),
                        "citation": getattr(p, "citation", "") or "", "needs": sorted(p.needs),
                        "file": filename, "sha256": sha256_text(text), "source": text},
              "zcbench": {"version": zcbench.__version__, "commit": source_commit()},
              "protocol": {}, "machine": {**machine(), "device": device},
              "scores": {}, "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")}
    for sp in spaces:
        proto = space_protocol(sp)
        space, seq_len = _create(sp, proto, data_dir)
        entry = {**proto, "seq_len": seq_len, "seeds": seeds, "n_archs": n_archs, "metric": space.metric,
                 "higher_is_better": bool(space.higher_is_better), "data_sha256": data_files(space.name),
                 "minibatch": {}}
        bundle["scores"][sp] = {}
        for seed in seeds:
            rc = RunConfig(space=sp, proxies=[name], seed=seed, batch_size=proto["batch_size"], seq_len=seq_len,
                           n_archs=n_archs, device=device, data_dir=data_dir, results_dir=None,
                           space_options=dict(proto["options"]), bootstrap=0, progress=False, echo=False)
            frame = run_job(rc).frame
            bundle["scores"][sp][str(seed)] = {a: _json_score(v) for a, v in frame[name].items()}
            if not set(p.needs) <= DATA_FREE_NEEDS:
                info = space.make_batch(proto["batch_size"], seq_len, seed).info
                entry["minibatch"][str(seed)] = json.loads(json.dumps(info, default=str))
            if echo:
                c = frame.attrs.get("correlations", {}).get(name) or {}
                rho = c.get("spearman_rho", math.nan) if isinstance(c, dict) else math.nan
                print(f"{sp} | {name} | seed {seed} | n={len(frame)} | Spearman rho = {rho:.3f}")
        bundle["protocol"][sp] = entry
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{name}-{bundle['proxy']['sha256'][:12]}.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(bundle, indent=1, sort_keys=False) + "\n", encoding="utf-8")
    tmp.replace(path)
    if echo:
        print(f"wrote the submission bundle {path}")
    return path


# ----------------------------------------------------------------------------- verification
@dataclass
class Submission:
    """One ingested bundle, as the leaderboard shows it."""

    path: str
    name: str
    family: str = "data-free"
    verified: bool = False
    problems: list = field(default_factory=list)
    rho: dict = field(default_factory=dict)  # space -> {"rho", "n", "n_seeds"}
    n_checked: int = 0
    n_scores: int = 0
    zcbench_version: str = ""
    created: str = ""

    def as_dict(self) -> dict:
        return asdict(self)


_REQUIRED = {"schema": str, "proxy": dict, "zcbench": dict, "protocol": dict, "machine": dict, "scores": dict,
             "created": str}
_PROXY_REQUIRED = {"name": str, "version": str, "file": str, "sha256": str, "source": str}


def validate_schema(b) -> list[str]:
    if not isinstance(b, dict):
        return ["not a JSON object"]
    probs = [f"missing or wrong type: {k}" for k, t in _REQUIRED.items() if not isinstance(b.get(k), t)]
    if probs:
        return probs
    if b["schema"] != SCHEMA:
        return [f"schema {b['schema']!r} is not {SCHEMA!r}"]
    probs += [f"missing or wrong type: proxy.{k}" for k, t in _PROXY_REQUIRED.items()
              if not isinstance(b["proxy"].get(k), t)]
    for sp, by_seed in b["scores"].items():
        if sp not in b["protocol"]:
            probs.append(f"scores for {sp} but no protocol entry")
        if not isinstance(by_seed, dict) or not by_seed:
            probs.append(f"scores.{sp} is not a non-empty {{seed: {{arch: score}}}} map")
            continue
        for seed, scores in by_seed.items():
            if not str(seed).isdigit() or not isinstance(scores, dict) or not all(
                    v is None or isinstance(v, (int, float)) for v in scores.values()):
                probs.append(f"scores.{sp}.{seed} is not a {{arch: number or null}} map")
    return probs


def _agree(a, b) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return bool(np.isclose(float(a), float(b), rtol=RTOL, atol=ATOL))


def ingest_bundle(path, *, data_dir=None, sample: int = 3) -> Submission:
    """Validate a bundle, re-score a random sample of its architectures, and compute its rho per space."""
    from zcbench.engine import score_arch

    path = Path(path)
    sub = Submission(path=path.name, name=path.stem)
    try:
        b = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        sub.problems.append(f"unreadable bundle: {' '.join(str(exc).split())}")
        return sub
    sub.problems += validate_schema(b)
    if sub.problems:
        return sub
    pr = b["proxy"]
    sub.name, sub.family = pr["name"], str(pr.get("family") or "data-free")
    sub.zcbench_version, sub.created = str(b["zcbench"].get("version", "")), b["created"]
    sub.n_scores = sum(len(s) for by_seed in b["scores"].values() for s in by_seed.values())
    if sha256_text(pr["source"]) != pr["sha256"]:
        sub.problems.append("the bundled source does not match its recorded sha256")
    for sp, proto in b["protocol"].items():
        if proto.get("data_sha256", {}) != data_files(sp.split("[")[0]):
            sub.problems.append(f"{sp}: the ground-truth files it was scored against differ from this "
                                "zcbench's manifest")
    # rho per space from the bundle's own scores
    for sp, by_seed in b["scores"].items():
        try:
            from zcbench import report as rp

            info = rp.load_space(sp, sp, b["protocol"][sp].get("options") or {}, None, data_dir)
        except Exception as exc:
            sub.problems.append(f"{sp}: cannot load the ground truth ({' '.join(str(exc).split())})")
            continue
        if info.oriented is None:
            sub.problems.append(f"{sp}: no ground truth here ({info.error})")
            continue
        rhos, ns = [], []
        for scores in by_seed.values():
            s = pd.Series({k: (math.nan if v is None else float(v)) for k, v in scores.items()}, dtype=float)
            import warnings

            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                c = metrics.correlate(s, info.oriented, n_resamples=0)
            rhos.append(c.spearman_rho)
            ns.append(c.n)
        sub.rho[sp] = {"rho": float(np.nanmean(rhos)) if any(math.isfinite(r) for r in rhos) else math.nan,
                       "n": int(min(ns)) if ns else 0, "n_seeds": len(rhos)}
    if sub.problems:
        return sub
    # re-score a seeded random sample with the submitted code
    try:
        name = _proxy_for_bundle(pr)
    except SubmitError as exc:
        sub.problems.append(str(exc))
        return sub
    proxy = zcbench.get_proxy(name)
    if str(proxy.version) != pr["version"]:
        sub.problems.append(f"proxy version {proxy.version} of the bundled code differs from the recorded "
                            f"{pr['version']}")
        return sub
    rng = random.Random(pr["sha256"])
    mismatches = []
    for sp, by_seed in sorted(b["scores"].items()):
        proto = b["protocol"][sp]
        try:
            space, seq_len = _create(sp, {"options": proto.get("options") or {},
                                          "seq_len": proto.get("seq_len")}, data_dir)
        except Exception as exc:
            sub.problems.append(f"{sp}: cannot create the space ({' '.join(str(exc).split())})")
            continue
        archs = {a.id: a for a in space.stored()}
        seed = sorted(by_seed, key=int)[0]
        ids = sorted(by_seed[seed])
        unknown = [a for a in ids if a not in archs]
        if unknown:
            sub.problems.append(f"{sp}: {len(unknown)} architecture id(s) not in the space, e.g. {unknown[0]}")
            continue
        for aid in rng.sample(ids, min(sample, len(ids))):
            res = score_arch(space, archs[aid], [proxy], seed=int(seed), batch_size=int(proto["batch_size"]),
                             seq_len=seq_len, device="cpu")[name]
            got = _json_score(res.value)
            sub.n_checked += 1
            if not _agree(got, by_seed[seed][aid]):
                mismatches.append(f"{sp} seed {seed}: re-scored {got} vs submitted {by_seed[seed][aid]}")
    if mismatches:
        sub.problems.append(f"re-scoring disagrees on {len(mismatches)} of {sub.n_checked} sampled "
                            f"architectures ({mismatches[0]})")
    sub.verified = not sub.problems and sub.n_checked > 0
    if not sub.verified and not sub.problems:
        sub.problems.append("nothing could be re-scored")
    return sub


def _proxy_for_bundle(pr: dict) -> str:
    """Register the bundled source (or reuse an identical registered proxy); returns the proxy name."""
    from zcbench.registry import list_proxies

    if pr["name"] in list_proxies():
        cls = type(zcbench.get_proxy(pr["name"]))
        try:
            src = Path(inspect.getsourcefile(cls)).read_text(encoding="utf-8")
        except (TypeError, OSError):
            src = None
        if cls.__module__ == _module_name(pr["sha256"]) or (src is not None and sha256_text(src) == pr["sha256"]):
            return pr["name"]
        raise SubmitError(f"proxy name {pr['name']!r} is taken by a registered proxy with different code; "
                          "rename the submitted proxy")
    name = import_source(pr["source"], f"<submission {pr['file']}>")
    if name != pr["name"]:
        raise SubmitError(f"the bundled source registers {name!r}, the bundle says {pr['name']!r}")
    return name


def ingest_folder(folder, *, data_dir=None, sample: int = 3) -> list[Submission]:
    """Every ``*.json`` bundle in ``folder`` (sorted by name), each validated and verified."""
    folder = Path(folder)
    if not folder.is_dir():
        raise SubmitError(f"submissions folder {folder} does not exist")
    if sample < 1:
        raise SubmitError(f"--verify-sample must be at least 1, got {sample}")
    return [ingest_bundle(p, data_dir=data_dir, sample=sample) for p in sorted(folder.glob("*.json"))]


# ----------------------------------------------------------------------------- command line
def _list(v: str) -> list[str]:
    return [x.strip() for x in v.strip().strip("[]").split(",") if x.strip()]


def main_submit(argv: list[str] | None = None) -> int:
    """``python -m zcbench submit proxy=<file-or-name> [spaces=[..]] [n_archs=K] [seeds=[..]] [out=DIR]``."""
    argv = list(sys.argv[1:] if argv is None else argv)
    opts: dict = {}
    for arg in argv:
        k, sep, v = arg.partition("=")
        if arg in ("-h", "--help"):
            print(main_submit.__doc__.strip() + "\n\n" + __doc__.split("\n\n")[1])
            return 0
        if not sep or k not in KEYS:
            print(f"zcbench submit: error: expected key=value with key one of {', '.join(KEYS)}; got {arg!r}",
                  file=sys.stderr)
            return 2
        opts[k] = v
    if "proxy" not in opts:
        print("zcbench submit: error: proxy=<file.py or registered name> is required", file=sys.stderr)
        return 2
    try:
        n_archs = None if opts.get("n_archs") in (None, "", "null") else int(opts["n_archs"])
        seeds = [int(s) for s in _list(opts["seeds"])] if "seeds" in opts else list(DEFAULT_SEEDS)
    except ValueError as exc:
        print(f"zcbench submit: error: n_archs and seeds must be integers ({exc})", file=sys.stderr)
        return 2
    if n_archs is not None and n_archs < 1:
        print("zcbench submit: error: n_archs must be a positive integer", file=sys.stderr)
        return 2
    try:
        submit(opts["proxy"], spaces=_list(opts["spaces"]) if "spaces" in opts else None, n_archs=n_archs,
               seeds=seeds, out=opts.get("out", "submissions"), data_dir=opts.get("data_dir") or None,
               device=opts.get("device", "cpu"))
    except SubmitError as exc:
        print(f"zcbench submit: error: {exc}", file=sys.stderr)
        return 2
    return 0
