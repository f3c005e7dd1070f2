"""Configuration (core layer): where things are, shipped defaults, and how a job fails.

* where: :func:`conf_dir` (the Hydra configs), :func:`cache_dir`, :func:`resolve_data_dir`;
* shipped defaults: :func:`default_space_options` (``conf/space/<name>.yaml``),
  :func:`proxy_conf_options` / :func:`proxy_options` (``conf/proxy/<name>.yaml`` merged with
  ``proxy_options.<name>.*`` overrides);
* values: :func:`parse_shard`;
* failing: :func:`fail` (one line, exit 2), :func:`job_fail` (the same inside a Hydra job,
  raising under a multirun launcher) and :func:`hydra_job`, the one wrapper every Hydra
  command (``run``, ``merge``, ``search``, ``etas``, ``groundtruth build``) goes through.

Jobs that compose their own settings (``etas``, ``search``, the report's space labels)
read the shipped files through these functions rather than through the command line.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

import yaml

from zcbench.errors import USER_ERRORS, ConfigError


def cache_dir() -> Path:
    """``$ZCBENCH_CACHE``, else ``$XDG_CACHE_HOME/zcbench``, else ``~/.cache/zcbench``."""
    root = os.environ.get("ZCBENCH_CACHE") or os.path.join(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"),
                                                           "zcbench")
    return Path(root)


def resolve_data_dir(data_dir: str | os.PathLike | None = None) -> Path:
    """The ground-truth data dir: ``data_dir`` if given, else ``$ZCBENCH_DATA``, else ``<cache>/data``."""
    if data_dir:
        return Path(data_dir).expanduser().resolve()
    env = os.environ.get("ZCBENCH_DATA")
    if env:
        return Path(env).expanduser().resolve()
    return cache_dir() / "data"


def conf_dir() -> str:
    """The ``conf/`` folder (``zcbench.conf`` when installed; the checkout's ``conf/`` otherwise)."""
    import zcbench.conf

    return str(Path(zcbench.conf.__file__).parent)


def space_conf_names() -> list[str]:
    """Spaces that ship a ``conf/space/<name>.yaml``."""
    return sorted(p.stem for p in (Path(conf_dir()) / "space").glob("*.yaml"))


def space_conf(name: str) -> dict:
    """The whole ``conf/space/<name>.yaml`` ({} when the space ships none)."""
    path = Path(conf_dir()) / "space" / f"{name}.yaml"
    return (yaml.safe_load(path.read_text()) or {}) if path.exists() else {}


def default_space_options(name: str) -> dict:
    """The ``options:`` of the shipped ``conf/space/<name>.yaml`` (a space's standard configuration)."""
    try:
        return space_conf(name).get("options") or {}
    except Exception:
        return {}


def proxy_conf_options(name: str) -> dict:
    """The ``options:`` of ``conf/proxy/<name>.yaml`` ({} when the proxy ships none), read as
    Hydra reads it (OmegaConf's YAML: ``1e-3`` is a float)."""
    from omegaconf import OmegaConf

    path = Path(conf_dir()) / "proxy" / f"{name}.yaml"
    if not path.exists():
        return {}
    return OmegaConf.to_container(OmegaConf.create(OmegaConf.load(path).get("options") or {}), resolve=True)


def proxy_options(names, overrides: dict) -> dict:
    """Defaults from ``conf/proxy/<name>.yaml`` (``options:``) updated by ``proxy_options.<name>.*``.

    Returns ``{name: options}`` for the proxies that have any; overrides naming a proxy not in
    ``names`` are a :class:`ConfigError`.
    """
    from omegaconf import OmegaConf

    out = {}
    for name in names:
        path = Path(conf_dir()) / "proxy" / f"{name}.yaml"
        base = OmegaConf.load(path).get("options") or {} if path.exists() else {}
        merged = OmegaConf.merge(OmegaConf.create(dict(base)), OmegaConf.create(overrides.get(name, {}) or {}))
        opts = OmegaConf.to_container(merged, resolve=True)
        if opts:
            out[name] = opts
    unknown = set(overrides) - set(names)
    if unknown:
        raise ConfigError(f"proxy_options names proxies not in this run: {', '.join(sorted(unknown))}")
    return out


def fail(msg: str, code: int = 2):
    """Print ``zcbench: error: <msg>`` on stderr and exit (the command line's one-line failure)."""
    print(f"zcbench: error: {msg}", file=sys.stderr)
    sys.exit(code)


def job_fail(msg: str) -> None:
    """Fail a Hydra job: one line and exit 2 in a single run; raise under a launcher (multirun),
    where sys.exit inside a worker (joblib, Ray) would be reported as a crash without the message."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    try:
        multirun = HydraConfig.get().mode == RunMode.MULTIRUN
    except Exception:
        multirun = False
    if multirun:
        raise RuntimeError(f"zcbench: error: {msg}")
    fail(msg)


def parse_shard(shard) -> tuple[int, int] | None:
    """``"i/n"`` -> ``(i, n)`` with ``0 <= i < n``; None/""/"null" -> None; anything else a ConfigError."""
    if shard in (None, "", "null"):
        return None
    try:
        i, n = (int(x) for x in str(shard).split("/"))
    except ValueError:
        raise ConfigError(f"shard must look like i/n (e.g. 0/3), got {shard!r}") from None
    if not (n >= 1 and 0 <= i < n):
        raise ConfigError(f"shard must satisfy 0 <= i < n, got {shard!r}")
    return i, n


def hydra_job(config_name: str, entry, overrides: list[str]) -> None:
    """Compose ``conf/<config_name>.yaml`` with ``overrides`` and call ``entry(cfg)``.

    Bad input (:data:`zcbench.errors.USER_ERRORS`, or any ``ValueError`` such as a space
    rejecting an option) becomes one line and exit status 2 (:func:`job_fail`); a bug still
    shows its traceback. Hydra reads ``sys.argv``, so it is set to the overrides.
    """
    import hydra
    from omegaconf import DictConfig

    from zcbench.options import check_overrides

    try:  # unknown keys (did you mean ...?) and typed values, before Hydra's own hints (zcbench.options)
        check_overrides(list(overrides), config_name)
    except ConfigError as exc:
        fail(str(exc))
    sys.argv = [sys.argv[0]] + list(overrides)

    @hydra.main(config_path=conf_dir(), config_name=config_name, version_base="1.3")
    def task(cfg: DictConfig) -> None:
        try:
            entry(cfg)
        except USER_ERRORS as exc:
            job_fail(str(exc))
        except ValueError as exc:
            job_fail(str(exc).splitlines()[0])

    task()
