"""sept — log of a separation-rank upper bound of the network (ETAS's expressivity term).

Paper: J. Yang and Y. Liu, "ETAS: Zero-Shot Transformer Architecture Search via Network
Trainability and Expressivity", Findings of ACL 2024 (SEPT: Eq. 16), which builds on the
separation-rank analysis of self-attention by Y. Levine, N. Wies, O. Sharir, H. Bata and
A. Shashua, "Limits to Depth Efficiencies of Self-Attention" (NeurIPS 2020,
arXiv:2006.12467). ETAS published on its own GPT-2 table (tau/rho): SEPT 0.78/0.94.

Separation rank of a function of N tokens w.r.t. a balanced split of the positions into
A and B: the least R with f = sum_{r<=R} g_r(x_A) h_r(x_B). As in Levine et al., an
attention layer is analysed in its linearised form (query-key products without the
softmax, FFNs and normalisation not counted). We evaluate, in log space (so nothing
overflows for any depth or width), the smaller of two upper bounds on log R:

1. *Rank recursion (depth)*. Let rho_l bound the size of a set of product functions
   whose span contains every entry of every position after layer l. A token's embedding
   depends on one token, rho_0 = 1. An attention layer's output entry at position i is a
   residual plus sum over positions j (N of them), heads and head dimensions of
   q_i k_j v_j — products of three functions from the previous span, so
   rho_l <= N * rho_{l-1}^e_l + rho_{l-1}, with e_l = 3 (heads and head dimensions share
   the same products and add nothing). A layer that mixes tokens linearly (FlexiBERT's
   fixed DFT/DCT transforms) has e_l = 1. In logs:
   ``L_l = logaddexp(log N + e_l * L_{l-1}, L_{l-1})``, L_0 = 0.
2. *Width cap (Levine et al.)*. The output is a polynomial of degree D = prod_l e_l
   (3^L for L attention layers) in width-d representations; its separation rank is at
   most the number of monomials of degree <= D in d variables, C(D + d, d), evaluated as
   ``sum_{i=1..d} [logaddexp(log D, log i) - log i]`` (stable for astronomically large D).
   This reproduces Levine et al.'s two regimes: about 3^L log d for depths below
   log_3 d (depth-efficient) and about L d log 3 above it (depth-inefficient).

    sept = min(L_L, log C(D + d, d))          (option ``cap=False`` drops the cap)

Per-layer quantities come from ``space.summary(arch)``: ``n_layer``, ``d_model`` (= d),
``seq_len`` (= N; option ``seq_len`` overrides it) and, when present, ``operations``
(layers whose operation starts with ``LT`` mix tokens linearly, e = 1; self-attention
``SA`` and ConvBERT's mixed ``DSC`` count as attention, e = 3). Per-layer ``n_head`` and
``d_inner`` do not enter (see rule 1; the FFN is outside the analysis).

Deviation / open point: ETAS's Eq. 16 itself could not be read from any stored copy of the
paper (abstract only); the bound above is our derivation in the framework it cites, and
states every step. NTSR fuses ranks, so any monotone transform of the bound (we return the
natural log of the separation-rank bound) gives the same NTSR. Both bounds are
non-decreasing in depth, width and sequence length, so sept is too (tested).

needs = {"arch"}: no model is built.
"""
from __future__ import annotations

import math

import numpy as np

from zcbench.engine import Proxy
from zcbench.registry import register_proxy

LOG3 = math.log(3.0)
_CHUNK = 1_000_000


def log_binom_plus(log_n: float, k: int) -> float:
    """log C(n + k, k) for n = exp(log_n) (any size) and integer k >= 0, without overflow."""
    if k <= 0:
        return 0.0
    total = 0.0
    for lo in range(1, k + 1, _CHUNK):
        i = np.arange(lo, min(k, lo + _CHUNK - 1) + 1, dtype=np.float64)
        li = np.log(i)
        total += float(np.sum(np.logaddexp(log_n, li) - li))
    return total


def layer_exponents(summary: dict) -> list[int]:
    """Degree multiplier e_l per layer: 3 for attention-like token mixing, 1 for linear mixing."""
    ops = summary.get("operations")
    n = int(summary["n_layer"])
    if not ops:
        return [3] * n
    return [1 if str(op).upper().startswith("LT") else 3 for op in ops]


def log_rank_recursion(exponents, seq_len: int) -> float:
    """L_L of rule 1 (may be +inf for very deep networks; that is fine under the min)."""
    log_n = math.log(seq_len)
    L = 0.0
    with np.errstate(over="ignore", invalid="ignore"):
        for e in exponents:
            L = float(np.logaddexp(log_n + e * L, L))  # e * L overflows to inf, never raises
    return L


def log_width_cap(exponents, d_model: int) -> float:
    """log C(D + d, d) with log D = sum_l log e_l (rule 2)."""
    log_degree = sum(math.log(e) for e in exponents)
    return log_binom_plus(log_degree, int(d_model))


def sept_bound(n_layer: int, d_model: int, seq_len: int, exponents=None, cap: bool = True) -> float:
    exps = list(exponents) if exponents is not None else [3] * int(n_layer)
    rec = log_rank_recursion(exps, int(seq_len))
    return min(rec, log_width_cap(exps, d_model)) if cap else rec


@register_proxy("sept")
class SEPT(Proxy):
    """log of a separation-rank upper bound from depth, width and sequence length."""

    version = "1"
    needs = frozenset({"arch"})
    citation = "Yang & Liu, ETAS, Findings of ACL 2024 (SEPT, Eq. 16); Levine et al., NeurIPS 2020"
    defaults = {"cap": True, "seq_len": None}

    def score(self, ctx) -> float:
        s = ctx.space.summary(ctx.arch)
        n = int(self.options["seq_len"] or s["seq_len"])
        return sept_bound(s["n_layer"], s["d_model"], n, layer_exponents(s), bool(self.options["cap"]))
