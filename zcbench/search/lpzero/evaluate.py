"""Evaluate a candidate on cached inputs (no network pass) and its fitness.

Score of one architecture (upstream ``TreeStructure.forward_tree`` semantics):

1. each branch applies its unary operations to every item of its input;
2. each item becomes one number: the value itself after a reduction, else the mean of
   the item (upstream ``convert_to_float``);
3. items of the two branches are paired in order (upstream ``zip``: the shorter list
   decides); a branch with a single item (J) is paired with every item of the other
   (our deviation: upstream would pair it with the first only);
4. the binary operation combines each pair (``had`` multiplies aligned matrices
   element-wise and averages the product instead);
5. the score is the mean over pairs. An architecture without items for an input
   (e.g. no attention maps) gets NaN.
"""
from __future__ import annotations

import math

import numpy as np
import torch
from scipy import stats

from zcbench.search.lpzero.inputs import Bank
from zcbench.search.lpzero.ops import apply_branch


class Evaluator:
    """Scores expressions on a ``Bank``; memoises each branch's per-item numbers."""

    def __init__(self, bank: Bank, memo_limit: int = 20000):
        self.bank = bank
        self.memo: dict = {}
        self.memo_limit = memo_limit
        self.n_branch_evals = 0

    def _branch_items(self, k: str, ops) -> np.ndarray:
        key = (k, tuple(ops))
        v = self.memo.get(key)
        if v is None:
            self.n_branch_evals += 1
            X = self.bank.X[k]
            if X.shape[0] == 0:
                v = np.zeros(0)
            else:
                with torch.no_grad():
                    shape, val = apply_branch(X, self.bank.scale[k], ops)
                    if shape == "matrix":
                        val = val.double().mean(dim=(1, 2))
                v = val.double().numpy()
            if len(self.memo) < self.memo_limit:
                self.memo[key] = v
        return v

    def _dense(self, k: str, v: np.ndarray) -> np.ndarray:
        b = self.bank
        L = int(b.count[k].max()) if b.n and len(b.count[k]) else 0
        out = np.full((b.n, max(L, 1)), np.nan)
        if len(v):
            out[b.arch[k], b.pos[k]] = v
        return out

    def scores(self, expr) -> np.ndarray:
        """Per-architecture scores (float64, NaN where undefined)."""
        (k1, k2), (o1, o2), binary = expr.inputs, expr.ops, expr.binary
        b = self.bank
        with np.errstate(all="ignore"):
            if binary == "had":
                from zcbench.search.lpzero.ops import branch_shape

                if branch_shape(o1) == "matrix" and branch_shape(o2) == "matrix":
                    if b.X[k1].shape != b.X[k2].shape or not np.array_equal(b.arch[k1], b.arch[k2]):
                        return np.full(b.n, np.nan)
                    with torch.no_grad():
                        _, v1 = apply_branch(b.X[k1], b.scale[k1], o1)
                        _, v2 = apply_branch(b.X[k2], b.scale[k2], o2)
                        prod = (v1.double() * v2.double()).mean(dim=(1, 2)).numpy()
                    d = self._dense(k1, prod)
                    cnt = b.count[k1]
                    s = np.nansum(d, axis=1) / np.where(cnt > 0, cnt, 1)
                    s[cnt == 0] = np.nan
                    return s
                binary = "mul"
            a = self._dense(k1, self._branch_items(k1, o1))
            c = self._dense(k2, self._branch_items(k2, o2))
            la, lc = b.count[k1], b.count[k2]
            L = max(a.shape[1], c.shape[1])
            a = _widen(a, la, L)
            c = _widen(c, lc, L)
            # pairs per arch: broadcast a single-item side, else truncate to the shorter
            k = np.where((la == 1) | (lc == 1), np.maximum(la, lc), np.minimum(la, lc))
            k[(la == 0) | (lc == 0)] = 0
            if binary == "add":
                g = a + c
            elif binary == "sub":
                g = a - c
            else:
                g = a * c
            mask = np.arange(L)[None, :] < k[:, None]
            g = np.where(mask, g, 0.0)
            s = g.sum(axis=1) / np.where(k > 0, k, 1)
            s[k == 0] = np.nan
            return s


def _widen(d: np.ndarray, count: np.ndarray, L: int) -> np.ndarray:
    """Pad to L columns; a one-item architecture repeats its item across all columns."""
    if d.shape[1] < L:
        d = np.concatenate([d, np.full((d.shape[0], L - d.shape[1]), np.nan)], axis=1)
    one = count == 1
    if one.any():
        d[one] = d[one, :1]
    return d


def valid_scores(s: np.ndarray) -> bool:
    """RPS score check: all finite and not constant (upstream ``is_anomaly`` + ``all_same``)."""
    return bool(np.all(np.isfinite(s)) and np.ptp(s) > 0 and np.ptp(s) > 1e-12 * max(1.0, np.abs(s).max()))


def spearman(scores: np.ndarray, truth: np.ndarray) -> float:
    """Spearman's rho (ties averaged), the same number ``zcbench.metrics.correlate`` reports."""
    rs = stats.rankdata(scores)
    rt = stats.rankdata(truth)
    rs = rs - rs.mean()
    rt = rt - rt.mean()
    den = math.sqrt(float((rs * rs).sum() * (rt * rt).sum()))
    return float((rs * rt).sum() / den) if den > 0 else float("nan")
