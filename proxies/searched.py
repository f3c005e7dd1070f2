"""searched:<name or path> — a proxy found by the LPZero search (``python -m zcbench search``).

``proxy=searched:gpt2_best`` loads ``results/lpzero/proxies/gpt2_best.yaml`` (relative
to ``results_dir`` in the working directory, then to the repository); ``searched:<file>``
loads a YAML/JSON file directly. The file holds an ``expression`` (formula, inputs, ops,
binary; see zcbench/search/lpzero/expr.py) and the ``data`` block of the search, whose
``rows`` / ``cols`` / ``subsample_seed`` fix how each input is sampled.

Scoring compresses the engine's context with exactly the function the search used
(``zcbench.search.lpzero.inputs.extract``) and evaluates the expression on that one
architecture (``evaluate.Evaluator``), so with the search's seed, batch size and
sequence length the proxy reproduces the scores the search saw. Only the passes the
two inputs need are requested (A/H/S: forward with taps, G: backward, J: Jacobian,
W: weights only).

Citation: Dong et al., "LPZero: Language Model Zero-cost Proxy Search from Zero",
Findings of EMNLP 2024 (the search method; the expression itself is ours).
"""
from __future__ import annotations

import hashlib

import numpy as np

from zcbench.proxy import NotApplicable, Proxy
from zcbench.registry import register_proxy_prefix

CITATION = "Dong et al., LPZero: Language Model Zero-cost Proxy Search from Zero, EMNLP Findings 2024 (search)"


class SearchedProxy(Proxy):
    citation = CITATION
    defaults = {}

    def __init__(self, expr, data: dict, name: str, **kwargs):
        from zcbench.search.lpzero.inputs import NEEDS, TAPS

        super().__init__(**kwargs)
        self.expr = expr
        self.data = data
        self.name = name
        # the version changes whenever the expression or the sampling does (store keys)
        ident = f"{expr.formula}|{data.get('rows')}|{data.get('cols')}|{data.get('subsample_seed')}"
        self.version = "1-" + hashlib.sha1(ident.encode()).hexdigest()[:8]
        kinds = set(expr.inputs)
        self.needs = frozenset(set().union(*(NEEDS[k] for k in kinds)))
        self.taps = frozenset(set().union(*(TAPS.get(k, set()) for k in kinds)))

    def score(self, ctx) -> float:
        from zcbench.search.lpzero.evaluate import Evaluator
        from zcbench.search.lpzero.inputs import DEFAULT_COLS, DEFAULT_ROWS, Bank, extract
        from zcbench.search.lpzero.ops import INPUTS

        kinds = set(self.expr.inputs)
        got = extract(ctx, sorted(kinds), int(self.data.get("rows", DEFAULT_ROWS)),
                      int(self.data.get("cols", DEFAULT_COLS)), int(self.data.get("subsample_seed", 0)))
        for k in kinds:
            if got[k][0].shape[0] == 0:
                raise NotApplicable(f"the model has no items for input {k}")
        import torch

        empty = (torch.zeros((0, 1, 1)), torch.zeros(0, dtype=torch.float64))
        per = {ctx.arch.id: {k: got.get(k, empty) for k in INPUTS}}
        s = Evaluator(Bank([ctx.arch.id], per)).scores(self.expr)
        return float(np.asarray(s)[0])


@register_proxy_prefix("searched")
def make_searched(arg: str, **kwargs):
    from zcbench.search.lpzero.cli import resolve_proxy_file
    from zcbench.search.lpzero.expr import load_expr_file

    path = resolve_proxy_file(arg)
    expr, d = load_expr_file(path)
    return SearchedProxy(expr, d.get("data", {}) or {}, name=f"searched:{arg}", **kwargs)
