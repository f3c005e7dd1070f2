"""Plug-in registries for search spaces and proxies (timm-style).

Built-in plug-ins live in the ``zcbench.spaces`` and ``zcbench.proxies`` packages
(the repository's ``spaces/`` and ``proxies/`` folders); every module there is
imported the first time a registry is queried. Third-party packages register
through the entry-point groups ``zcbench.spaces`` and ``zcbench.proxies``: the
entry point's value is a module (or ``module:object``) that is imported, and its
``@register_space`` / ``@register_proxy`` decorators do the rest.
"""
from __future__ import annotations

import importlib
import pkgutil
import warnings
from importlib import metadata
from typing import Callable

from zcbench.errors import UnknownNameError  # noqa: F401  (raised here; importable from here as before)

SPACE_GROUP = "zcbench.spaces"
PROXY_GROUP = "zcbench.proxies"

_SPACES: dict[str, type] = {}
_PROXIES: dict[str, type] = {}
_PREFIX_FACTORIES: dict[str, Callable] = {}  # e.g. "rankfuse:" -> factory(arg) -> proxy class
_loaded = False




def register_space(name: str | None = None):
    """Class decorator: ``@register_space("gpt2")`` makes ``create_space("gpt2")`` work."""

    def deco(cls):
        key = name or cls.name
        if key in _SPACES and _SPACES[key] is not cls:
            raise ValueError(f"space {key!r} registered twice ({_SPACES[key].__module__}, {cls.__module__})")
        cls.name = key
        _SPACES[key] = cls
        return cls

    return deco


def register_proxy(name: str | None = None):
    """Class decorator for a proxy (see ``zcbench.proxy.Proxy``)."""

    def deco(cls):
        key = name or cls.name
        if key in _PROXIES and _PROXIES[key] is not cls:
            raise ValueError(f"proxy {key!r} registered twice ({_PROXIES[key].__module__}, {cls.__module__})")
        cls.name = key
        _PROXIES[key] = cls
        return cls

    return deco


def register_proxy_prefix(prefix: str):
    """Register a factory for parametrised proxy names such as ``rankfuse:[a,b]``.

    The factory gets the text after ``prefix:`` and returns a proxy instance.
    """

    def deco(fn):
        _PREFIX_FACTORIES[prefix] = fn
        return fn

    return deco


def _import_package_modules(package: str) -> None:
    pkg = importlib.import_module(package)
    for info in pkgutil.iter_modules(pkg.__path__):
        if not info.name.startswith("_"):
            importlib.import_module(f"{package}.{info.name}")


def _load_entry_points(group: str) -> None:
    for ep in metadata.entry_points(group=group):
        try:
            ep.load()
        except Exception as exc:  # a broken third-party plug-in must not break the tool
            warnings.warn(f"zcbench: plug-in entry point {ep.name!r} ({ep.value}) failed to load: {exc}")


def load_plugins(force: bool = False) -> None:
    """Import built-in spaces/proxies and every entry-point plug-in (once)."""
    global _loaded
    if _loaded and not force:
        return
    _loaded = True
    _import_package_modules("zcbench.spaces")
    _import_package_modules("zcbench.proxies")
    _load_entry_points(SPACE_GROUP)
    _load_entry_points(PROXY_GROUP)


def list_spaces() -> list[str]:
    load_plugins()
    return sorted(_SPACES)


def list_proxies() -> list[str]:
    load_plugins()
    return sorted(_PROXIES)


def get_space_class(name: str) -> type:
    load_plugins()
    if name not in _SPACES:
        raise UnknownNameError(f"unknown space {name!r}; valid spaces: {', '.join(sorted(_SPACES))}")
    return _SPACES[name]


def create_space(name: str, **cfg):
    """Instantiate a registered search space, e.g. ``create_space("gpt2", data_dir=...)``."""
    return get_space_class(name)(**cfg)


def get_proxy(name: str, **kwargs):
    """Return a proxy instance by name; ``prefix:arg`` names go to prefix factories."""
    load_plugins()
    if name in _PROXIES:
        return _PROXIES[name](**kwargs)
    if ":" in name:
        prefix, arg = name.split(":", 1)
        if prefix in _PREFIX_FACTORIES:
            return _PREFIX_FACTORIES[prefix](arg, **kwargs)
    valid = sorted(_PROXIES) + [f"{p}:..." for p in sorted(_PREFIX_FACTORIES)]
    raise UnknownNameError(f"unknown proxy {name!r}; valid proxies: {', '.join(valid)}")
