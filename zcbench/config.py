"""Shipped configuration (core layer): where ``conf/`` is, proxy option defaults, space defaults.

``conf/`` holds the Hydra configs (``config.yaml``, ``space/<name>.yaml``,
``proxy/<name>.yaml``, the job configs). Jobs that compose their own settings (``etas``,
``search``, the report's space labels) read the same files through these functions.
"""
from __future__ import annotations

import sys
from pathlib import Path

import yaml

from zcbench.errors import ConfigError


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
