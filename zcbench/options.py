"""Typed, validated options for every command (core layer: imports only zcbench.errors and zcbench.conf).

Hydra accepts any value for any key it knows and answers an unknown key with its own
multi-line hint (``use +n_arch=5``, or ``Key 'seed' is not in struct``), and following that
hint silently adds a key nothing reads. The commands therefore check their overrides here,
at the override-parsing step, before Hydra composes anything:

* an unknown key is a one-line :class:`ConfigError` naming the closest valid key
  (``unknown key 'n_arch' for run (did you mean n_archs?)``) -- ``+key`` and ``++key`` too;
* a value of the wrong kind is a one-line error: a boolean must be ``true``/``false``
  (``include_output=maybe`` is refused, never stored as a string), counts are integers
  with their lower bound, ``null`` only where a key allows it;
* a proxy's options (``proxy_options.<name>.<key>=...``, or the keyword arguments of the
  Python API) are checked the same way against the proxy's ``defaults``
  (:func:`check_proxy_options`).

The kinds come from the shipped defaults (``conf/<command>.yaml``: a ``true`` default makes
a boolean key, ``5`` an integer one) refined by :data:`RULES` for keys whose default is
``null`` or an interpolation, or that carry a bound. Counts above the available pool are
checked where the pool is known (the runner prints the cap).

Tested in tests/test_faults.py (``test_options_*``).
"""
from __future__ import annotations

import difflib
from pathlib import Path

from zcbench.errors import ConfigError

# kind names: bool, int, float, str, list, any; "?" suffix = null allowed; (kind, minimum)
RULES: dict[str, dict[str, tuple]] = {
    "*": {
        "seed": ("int", 0), "n_archs": ("int?", 1), "batch_size": ("int", 1), "seq_len": ("int", 1),
        "bootstrap": ("int", 0), "threads": ("int", 1), "target": ("str?",), "data_dir": ("str?",),
        "results_dir": ("str?",), "shard": ("str?",), "table": ("str?",), "device": ("str",), "hvp_chunk": ("int?", 1),
        "progress": ("bool",), "replace_summary": ("bool",), "allow_modified_data": ("bool",),
        "official": ("bool",), "proxies": ("any",), "proxy_options": ("any",), "space": ("any",),
        "recipe": ("any",),
    },
    "search": {"arch_seed": ("int?", 0), "data_seed": ("int", 0), "population": ("int", 1),
               "generations": ("int", 0), "n_unary": ("int", 0), "max_tries": ("int", 1),
               "rows": ("int", 1), "cols": ("int", 1), "out": ("str?",), "name": ("str?",),
               "subsample_seed": ("int", 0), "transfer_proxies": ("list",), "eval_spaces": ("list",),
               "seeds": ("list",)},
    "etas": {"seeds": ("list",), "proxy_seed": ("int", 0), "N0": ("int", 1), "n0": ("int", 1),
             "N_m": ("int", 1), "n_m": ("int", 1), "M": ("int", 0), "patience": ("int", 1),
             "search_dir": ("str?",), "table_dir": ("str?",)},
    "groundtruth": {"seeds": ("list",), "sample_seed": ("int", 0)},
}

def closest(key: str, valid) -> str | None:
    """The valid key most like ``key`` (difflib), or None when nothing is close."""
    valid = sorted(set(valid))
    hit = difflib.get_close_matches(key, valid, n=1, cutoff=0.6)
    if hit:
        return hit[0]
    low = key.lower()
    pref = [v for v in valid if v.lower().startswith(low) or low.startswith(v.lower())]
    return pref[0] if pref else None


def unknown_key(key: str, valid, what: str, noun: str = "key") -> ConfigError:
    """``unknown key 'seed' for etas (did you mean seeds?); valid keys: ...`` as one line."""
    near = closest(key, valid)
    hint = f" (did you mean {near}?)" if near else ""
    return ConfigError(f"unknown {noun} {key!r} for {what}{hint}; valid {noun}s: {', '.join(sorted(set(valid)))}")


def command_keys(config_name: str) -> dict:
    """Top-level keys of ``conf/<config_name>.yaml`` with their default values; config groups of
    its ``defaults:`` list map to None."""
    from omegaconf import OmegaConf

    import zcbench.conf  # (not zcbench.config, which calls this module: no import cycle)

    path = Path(zcbench.conf.__file__).parent / f"{config_name}.yaml"
    cfg = OmegaConf.load(path)
    raw = OmegaConf.to_container(cfg, resolve=False)
    keys = {k: v for k, v in raw.items() if k != "defaults"}
    for entry in raw.get("defaults") or []:
        if isinstance(entry, dict):
            for group in entry:
                if not str(group).startswith("override "):
                    keys.setdefault(str(group), None)
    keys.setdefault("hydra", None)
    if "proxies" in keys:
        keys.setdefault("proxy", None)
    return keys


def _rule(config_name: str, key: str, default):
    rules = {**RULES["*"], **RULES.get(config_name, {})}
    if key in rules:
        return rules[key]
    if isinstance(default, bool):
        return ("bool",)
    if isinstance(default, int):
        return ("int",)
    if isinstance(default, float):
        return ("float",)
    if isinstance(default, list):
        return ("list",)
    if isinstance(default, str) and not default.startswith("${"):
        return ("str",)
    return ("any",)


def check_value(key: str, value, rule: tuple, what: str) -> None:
    """Raise a one-line ConfigError unless ``value`` (as Hydra parsed it) fits ``rule``."""
    kind = rule[0]
    nullable = kind.endswith("?")
    kind = kind.rstrip("?")
    if kind == "any":
        return
    if value is None:
        if nullable:
            return
        raise ConfigError(f"{key} for {what} must not be null")
    ok = {
        "bool": isinstance(value, bool),
        "int": isinstance(value, int) and not isinstance(value, bool),
        "float": isinstance(value, (int, float)) and not isinstance(value, bool),
        "str": isinstance(value, (str, int, float)) and not isinstance(value, bool),
        "list": isinstance(value, list),
    }[kind]
    names = {"bool": "true or false", "int": "an integer", "float": "a number", "str": "a string",
             "list": "a list such as [0,1]"}
    if not ok:
        extra = " or null" if nullable else ""
        raise ConfigError(f"{key} for {what} must be {names[kind]}{extra}, got {value!r}")
    if len(rule) > 1 and kind in ("int", "float") and value < rule[1]:
        raise ConfigError(f"{key} for {what} must be >= {rule[1]}, got {value!r}")


def _values(override):
    """The concrete values of one parsed override (each choice of a sweep)."""
    if not override.is_sweep_override():
        return [override.value()]
    v = override.value()
    if hasattr(v, "list"):  # ChoiceSweep
        return list(v.list)
    if hasattr(v, "start") and hasattr(v, "stop") and isinstance(v.start, int):  # RangeSweep
        return [v.start]
    return []  # interval/glob sweeps: nothing concrete to check here


def check_overrides(argv: list[str], config_name: str, what: str | None = None) -> None:
    """Validate a command's overrides (after the CLI's own rewriting) before Hydra composes.

    ``config_name`` is the job's ``conf/<config_name>.yaml`` (``config`` for run/merge). Raises
    :class:`ConfigError` with one line for an unknown key (with the closest valid key) or a
    value of the wrong kind; Hydra's own grammar errors are left to Hydra.
    """
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    what = what or ("run" if config_name == "config" else config_name)
    keys = command_keys(config_name)
    args = [a for a in argv if not a.startswith("-")]
    try:
        parsed = OverridesParser.create().parse_overrides(args)
    except HydraException:
        return  # malformed override syntax: Hydra reports it
    for o in parsed:
        key = o.key_or_group
        top = key.split(".")[0].split("/")[0]
        if top not in keys:
            raise unknown_key(top, [k for k in keys if k != "hydra"], what)
        if top in ("hydra", "space", "proxy", "proxies", "proxy_options", "recipe") or "." in key or "/" in key:
            continue  # groups and nested keys: checked by their owners (spaces, proxies, Hydra)
        if o.is_delete():
            continue
        rule = _rule(config_name, key, keys[key])
        for v in _values(o):
            check_value(key, v, rule, what)


def check_proxy_options(proxy: str, defaults: dict, given: dict) -> None:
    """Unknown option names (with the closest valid one) and values whose kind differs from the
    default's (a boolean default takes only true/false, an integer one only integers, a float
    one any number) are one-line ConfigErrors. A ``None`` default accepts anything."""
    for key, value in given.items():
        if key not in defaults:
            raise unknown_key(key, list(defaults) or ["(none)"], f"proxy {proxy}", noun="option")
        d = defaults[key]
        if d is None:
            continue
        if isinstance(d, bool):
            rule = ("bool",)
        elif isinstance(d, int):
            rule = ("int?",)
        elif isinstance(d, float):
            rule = ("float?",)
        elif isinstance(d, str):
            rule = ("str?",)
        elif isinstance(d, (list, tuple)):
            rule = ("list",) if not isinstance(value, tuple) else ("any",)
        else:
            rule = ("any",)
        check_value(key, value, rule, f"proxy {proxy}")


def one_line_parser(prog: str, **kw):
    """An ``argparse.ArgumentParser`` for the flag-style commands (``report``, ``leaderboard``,
    ``data``) whose errors are one line, with the closest valid flag for an unknown one:
    ``zcbench report: error: unknown flag --bootstrp (did you mean --bootstrap?)``."""
    import argparse
    import sys

    class _Parser(argparse.ArgumentParser):
        def error(self, message):  # noqa: D401 - argparse's hook
            if message.startswith("unrecognized arguments:"):
                flags = [a for a in message.split(":", 1)[1].split() if a.startswith("-")]
                valid, todo = set(), [self]
                while todo:  # this parser's flags and its sub-commands'
                    ps = todo.pop()
                    for a in ps._actions:
                        valid.update(a.option_strings)
                        todo.extend(getattr(a, "choices", None).values()
                                    if isinstance(a, argparse._SubParsersAction) else [])
                if flags:
                    flag = flags[0].split("=", 1)[0]
                    near = closest(flag, valid)
                    message = f"unknown flag {flag}" + (f" (did you mean {near}?)" if near else "") + \
                        f"; valid flags: {', '.join(sorted(valid))}"
            print(f"{self.prog}: error: {message}", file=sys.stderr)
            sys.exit(2)

    return _Parser(prog=prog, **kw)
