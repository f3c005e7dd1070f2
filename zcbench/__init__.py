"""zcbench: zero-cost proxies for Transformer architecture search, benchmarked honestly."""
from __future__ import annotations

import os as _os

__version__ = "0.1.0"

# In a source checkout, the plug-in folders proxies/, spaces/ and conf/ sit beside
# zcbench/; an installed wheel maps them to zcbench.proxies / zcbench.spaces /
# zcbench.conf (see pyproject.toml). Extending __path__ makes the checkout behave
# like the wheel without an install, and only when the checkout markers are there.
_root = _os.path.dirname(_os.path.dirname(_os.path.abspath(__file__)))
if _os.path.isfile(_os.path.join(_root, "pyproject.toml")) and _os.path.isdir(_os.path.join(_root, "proxies")):
    __path__.append(_root)  # type: ignore[name-defined]

from zcbench.registry import (  # noqa: E402
    create_space,
    get_proxy,
    list_proxies,
    list_spaces,
    register_proxy,
    register_space,
)

__all__ = ["create_space", "evaluate", "get_proxy", "list_proxies", "list_spaces", "register_proxy", "register_space",
           "score", "__version__"]


def __getattr__(name: str):
    # zcbench.evaluate / zcbench.score live in zcbench.api (jobs layer), imported on first use so
    # that `import zcbench` stays a core-only import (no import cycle with the runner).
    if name in ("evaluate", "score"):
        from zcbench import api

        return getattr(api, name)
    raise AttributeError(f"module 'zcbench' has no attribute {name!r}")
