"""Command line: ``python -m zcbench <command> ...``.

Commands
  run [overrides]            score a space with proxies (Hydra; -m for multirun)
  merge [overrides]          combine shards (shard=i/n runs) of the same run: correlations over all
  list [spaces|proxies]      registered plug-ins
  report [--results-dir R] [--out O] [--formats md,tex,html,csv]   tables and figures from results/
  leaderboard [--results-dir R] [--out O]                          static site from results/
  submit proxy=<file.py|name> [spaces=[..]] [n_archs=K] [seeds=[..]] [out=DIR]   scored bundle for the leaderboard
  search [overrides]         LPZero proxy search (conf/search.yaml; task=search|ablation|transfer|cache)
  etas [overrides]           ETAS regularized-evolution architecture search (conf/etas.yaml)
  groundtruth build [overrides]   train sampled architectures into a new ground-truth table
  predict [space=S] [ks=[5,10]] [n_splits=20]   few-shot predictors from stored proxy scores (docs/predict.md)
  data fetch [table] [--dest DIR] [--base-url URL]   (no table: every table)
  data build-embedded [--data-dir DIR] [--check]       derive the package's embedded tables (docs/data.md)
  data verify [table] [--data-dir DIR]
  data list                  downloadable tables
"""
from __future__ import annotations

import argparse
import re
import sys
import warnings

# Hydra's plug-in launchers register structured configs under the same names as our shipped
# conf/hydra/launcher/*.yaml; the merge is intended, the warning is noise.
warnings.filterwarnings("ignore", message=r"\s*'hydra/launcher/[\w-]+' is validated against ConfigStore schema",
                        category=UserWarning)

USAGE = __doc__


def _fail(msg: str, code: int = 2):
    from zcbench.config import fail

    fail(msg, code)


def conf_dir() -> str:
    """The shipped ``conf/`` folder (:func:`zcbench.config.conf_dir`)."""
    from zcbench.config import conf_dir as _conf_dir

    return _conf_dir()


def _space_choices() -> list[str]:
    from zcbench.config import space_conf_names

    return space_conf_names()


def _prepare_overrides(argv: list[str], allow_none: bool = False) -> list[str]:
    """Check names before Hydra composes (one-line errors) and quote ``prefix:[a,b]`` proxies.
    (Keys and values are checked by ``zcbench.options`` in ``config.hydra_job``.)"""
    from zcbench.registry import UnknownNameError, get_proxy

    out = []
    for arg in argv:
        if re.match(r"^proxy_options\.", arg):
            arg = "++" + arg  # proxy_options is {} by default: new keys need Hydra's force-add
        if re.match(r"^space\.options\.", arg):
            arg = "++" + arg  # space.options is {} too: table_dir, corpus, dropout, subspace, ... (spaces' own options)
        m = re.match(r"^(\+?)(space|proxy|proxies)=(.*)$", arg)
        if not m:
            out.append(arg)
            continue
        key, value = m.group(2), m.group(3)
        if key == "space":
            from zcbench.registry import list_spaces

            with_conf, registered = _space_choices(), list_spaces()
            names = value.split(",")
            for name in names:
                if name not in with_conf and name not in registered:
                    _fail(f"unknown space {name!r}; valid spaces: {', '.join(sorted(set(with_conf) | set(registered)))}")
            if all(n not in with_conf for n in names):
                # A plug-in space without a conf/space/<name>.yaml keeps the default
                # space's batch settings; plug-ins may ship configs via hydra.searchpath.
                arg = f"space.name={value}"
            out.append(arg)
            continue
        # proxy: a name, a [list], a sweep a,b,c, or a parametrised name such as rankfuse:[ntkt,sept]
        # The selection lives in the plain key `proxies`; conf/proxy/<name>.yaml (a folder
        # Hydra would treat as a group) holds each proxy's default options, merged by the runner.
        if re.match(r"^[\w.-]+:\[.*\]$", value):
            names, arg = [value], f"proxies='{value}'"
        else:
            names, arg = [n for n in re.split(r"[\[\],]", value) if n], f"proxies={value}"
        for name in names:
            if name == "none" and allow_none:
                continue
            try:
                get_proxy(name)
            except UnknownNameError as exc:
                _fail(str(exc))
            except Exception:
                pass  # constructible only with options; the run reports it properly
        out.append(arg)
    return out


def _plain(node) -> dict:
    from omegaconf import OmegaConf

    return OmegaConf.to_container(node, resolve=True) if node is not None else {}




def _cmd_run(argv: list[str], mode: str = "run") -> None:
    from omegaconf import ListConfig

    from zcbench.config import hydra_job
    from zcbench.runner import ConfigError, results_overrides, run_help

    if any(a in ("-h", "--help") for a in argv):
        print(run_help())
        return
    try:
        argv = results_overrides(_prepare_overrides(argv))
    except ConfigError as exc:
        _fail(str(exc))
    def entry(cfg) -> None:
        from zcbench.config import proxy_options
        from zcbench.runner import RunConfig, run

        proxy = cfg.proxies
        proxies = list(proxy) if isinstance(proxy, ListConfig) else [str(proxy)]
        rc = RunConfig(
            space=str(cfg.space.name), proxies=[str(p) for p in proxies], seed=cfg.seed,
            batch_size=cfg.batch_size, seq_len=cfg.seq_len, n_archs=cfg.n_archs, target=cfg.target,
            device=str(cfg.device), data_dir=cfg.data_dir, results_dir=str(cfg.results_dir), shard=cfg.shard,
            space_options=_plain(cfg.space.get("options")),
            proxy_options=proxy_options(proxies, _plain(cfg.proxy_options)),
            bootstrap=cfg.bootstrap, progress=bool(cfg.progress),
            replace_summary=bool(cfg.get("replace_summary", False)),
            allow_modified_data=bool(cfg.get("allow_modified_data", False)),
            hvp_chunk=cfg.get("hvp_chunk"),
        )
        run(rc, mode=mode)

    # bad input (ConfigError, UnknownNameError, DataError, a space rejecting target=...): one line, exit 2
    hydra_job("config", entry, argv)


def _cmd_list(argv: list[str]) -> None:
    from zcbench.registry import list_proxies, list_spaces

    what = argv[0] if argv else "all"
    if what not in ("spaces", "proxies", "all"):
        _fail(f"unknown list {what!r}; valid: spaces, proxies")
    if what in ("spaces", "all"):
        print("spaces: " + ", ".join(list_spaces()))
    if what in ("proxies", "all"):
        print("proxies: " + ", ".join(list_proxies()))


def _cmd_data(argv: list[str]) -> None:
    from zcbench import fetch
    from zcbench.data import DataError

    from zcbench.options import one_line_parser

    ap = one_line_parser("python -m zcbench data")  # one-line errors
    sub = ap.add_subparsers(dest="action", required=True)
    f = sub.add_parser("fetch", help="download the pinned upstream files of a table (default: every table) into the data dir")
    f.add_argument("table", nargs="?", default=None, help="one of `python -m zcbench data list` (default: all)")
    f.add_argument("--dest", default=None, help="data dir to fill (default: the cache, or $ZCBENCH_DATA)")
    f.add_argument("--base-url", default=None, help="mirror root serving the data-dir layout")
    v = sub.add_parser("verify", help="check sha256 of local files against the manifest")
    v.add_argument("table", nargs="?", default=None)
    v.add_argument("--data-dir", default=None)
    sub.add_parser("list", help="downloadable tables")
    b = sub.add_parser("build-embedded", help="derive the package's embedded tables (zcbench/tables/) from the "
                                              "verbatim files (docs/data.md)")
    b.add_argument("--data-dir", default=None, help="verbatim data dir (default: $ZCBENCH_DATA, else the cache)")
    b.add_argument("--out", default=None, help="folder to write (default: the package's zcbench/tables/)")
    b.add_argument("--check", action="store_true", help="only compare the shipped files with a fresh derivation")
    args = ap.parse_args(argv)
    try:
        if args.action == "list":
            for t in fetch.list_tables():
                print(t)
        elif args.action == "fetch":
            for t in ([args.table] if args.table else fetch.list_tables()):
                path = fetch.fetch(t, dest=args.dest, base_url=args.base_url)
                print(f"fetched {t} into {path}")
        elif args.action == "build-embedded":
            from zcbench.tables import build

            lines = build(args.data_dir, args.out, check=args.check)
            print("\n".join(lines))
            if args.check and any(not line.endswith(": ok") for line in lines):
                sys.exit(1)
        else:
            tables = [args.table] if args.table else fetch.list_tables()
            bad = False
            for t in tables:
                problems = fetch.verify(t, args.data_dir)
                bad |= bool(problems)
                shown = "; ".join(problems[:3]) + (f"; ... and {len(problems) - 3} more" if len(problems) > 3 else "")
                print(f"{t}: " + ("ok" if not problems else f"{len(problems)} problem(s): {shown}"))
            if bad:
                sys.exit(1)
    except DataError as exc:
        _fail(str(exc))


def _cmd_merge(argv: list[str]) -> None:
    _cmd_run(argv, mode="merge")


def _cmd_report(argv: list[str]) -> None:
    from zcbench.report import main_report

    sys.exit(main_report(argv))


def _cmd_leaderboard(argv: list[str]) -> None:
    from zcbench.leaderboard import main_leaderboard

    sys.exit(main_leaderboard(argv))


def _cmd_submit(argv: list[str]) -> None:
    from zcbench.submit import main_submit

    sys.exit(main_submit(argv))



def _hydra_command(config_name: str, entry, argv: list[str], allow_none: bool = False) -> None:
    """Check the overrides (names, keys, values) and run ``entry(cfg)`` on ``conf/<config_name>.yaml``
    through the one Hydra job wrapper (:func:`zcbench.config.hydra_job`: bad input is one line)."""
    from zcbench.config import hydra_job

    hydra_job(config_name, entry, _prepare_overrides(argv, allow_none=allow_none))


def _cmd_search(argv: list[str]) -> None:
    from zcbench.search.lpzero import main_search

    _hydra_command("search", main_search, argv)


def _cmd_etas(argv: list[str]) -> None:
    from zcbench.search.etas import main_etas

    _hydra_command("etas", main_etas, argv, allow_none=True)


def _cmd_predict(argv: list[str]) -> None:
    from zcbench.predict import main_predict

    sys.exit(main_predict(argv))


def _cmd_groundtruth(argv: list[str]) -> None:
    try:
        from zcbench.groundtruth import main_groundtruth
    except ImportError:
        _fail("groundtruth: not available in this installation")
    main_groundtruth(argv)


COMMANDS = {"run": _cmd_run, "merge": _cmd_merge, "list": _cmd_list, "data": _cmd_data, "report": _cmd_report,
            "leaderboard": _cmd_leaderboard, "search": _cmd_search, "etas": _cmd_etas,
            "groundtruth": _cmd_groundtruth, "predict": _cmd_predict, "submit": _cmd_submit}


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(USAGE)
        return
    cmd, rest = argv[0], argv[1:]
    if cmd not in COMMANDS:
        _fail(f"unknown command {cmd!r}; valid commands: {', '.join(COMMANDS)}")
    COMMANDS[cmd](rest)
