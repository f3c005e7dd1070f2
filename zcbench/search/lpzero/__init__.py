"""LPZero: genetic-programming search for zero-cost proxies (Dong et al., "LPZero: Language
Model Zero-cost Proxy Search from Zero", Findings of EMNLP 2024).

Modules: ``ops`` (operator set + shape rules), ``expr`` (expressions, formulas, files),
``rules`` (Rule-based Pruning Strategy), ``inputs`` (one shared engine pass per
architecture, compressed and cached on disk), ``evaluate`` (candidate scores without a
network pass, Spearman fitness), ``gp`` (GP / random search), ``cli``
(``main_search(cfg)`` for ``python -m zcbench search``). See docs/lpzero.md.
"""
from zcbench.search.lpzero.expr import Expr, parse, random_expr  # noqa: F401


def main_search(cfg):
    from zcbench.search.lpzero.cli import main_search as _m

    return _m(cfg)
