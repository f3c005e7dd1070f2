"""sept — ETAS's expressivity indicator: a log separation-rank bound (Eq. 16 by default).

Paper: J. Yang and Y. Liu, "ETAS: Zero-Shot Transformer Architecture Search via Network
Trainability and Expressivity", Findings of ACL 2024 — SEPT is Eq. 16 (Theorem 2.4, proved
as Eq. 25 in the appendix), building on the separation-rank analysis of self-attention by
Y. Levine, N. Wies, O. Sharir, H. Bata and A. Shashua, "Limits to Depth Efficiencies of
Self-Attention" (NeurIPS 2020). Published numbers: zcbench/published.yaml (ETAS Tables 1, 3).

Default, ``variant="eq16"`` (ETAS Eq. 16)::

    SEPT(f) = log( sum_l d_l ) + log( sum_l G_l ),   G_l = (1 - d_l^(T+1)) / (1 - d_l)
                                                          = sum_{k=0..T} d_l^k

with d_l = d_z^l the width of block l (``space.summary(arch)["d_model"]``, one value per
network in every built-in space, or a per-layer list), T the number of tokens
(``summary["seq_len"]``; option ``seq_len`` overrides it) and l over the L blocks
(``summary["n_layer"]``; every block counts, whatever its token-mixing operation — the
paper's bound is stated for attention blocks; on FlexiBERT's linear-transform and
convolution blocks we apply it unchanged). Natural logarithms.

How it is evaluated (exactly, without overflow: G_l is about d^T, e.g. 1024^193 ~ 10^581,
far beyond float64): each layer's log G_l is computed in closed form,

    log G_l = (T+1) log d + log1p(-d^-(T+1)) - log(d - 1)   for d > 1
            = log(T + 1)                                    for d = 1 (the limit)
            = log1p(-d^(T+1)) - log1p(-d)                   for 0 < d < 1

(``d^-(T+1)`` underflows harmlessly to 0 for large d, T), then
``log sum_l G_l = logsumexp_l(log G_l)`` (``numpy.logaddexp.reduce``), and
``log sum_l d_l`` is an ordinary float64 sum. Every step is within a few ulp of the exact
real number; tests compare against exact rational arithmetic (Python integers) for
d = 2, 1024 and T = 192.

Variant ``variant="rank_recursion"`` (this project's earlier bound, v1; stored runs of
``sept`` v1 are this variant and keep their run key): the smaller of two upper bounds on
log R in the linearised-attention framework of Levine et al.:

1. *Rank recursion (depth)*. rho_l bounds the size of a set of product functions whose
   span contains every entry of every position after layer l; rho_0 = 1; an attention
   layer gives rho_l <= N * rho_{l-1}^e_l + rho_{l-1} (e_l = 3 for query-key-value
   products, e_l = 1 for a layer that mixes tokens linearly, FlexiBERT's ``LT``
   operations). In logs: ``L_l = logaddexp(log N + e_l * L_{l-1}, L_{l-1})``, L_0 = 0.
2. *Width cap*. A polynomial of degree D = prod_l e_l in width-d representations has
   separation rank at most C(D + d, d), evaluated as
   ``sum_{i=1..d} [logaddexp(log D, log i) - log i]``.

   rank_recursion = min(L_L, log C(D + d, d))     (option ``cap=False`` drops the cap)

It was derived before the paper's text was available; it is not ETAS's SEPT. On the 200
LTS GPT-2 networks it ranks with rho 0.787 / tau 0.620 against validation perplexity;
Eq. 16 gives rho 0.957 / tau 0.859 (tests/test_ntsr.py reproduces both pairs).

Run identity: the default (Eq. 16) is version 2 with ``variant`` in its options;
``variant=rank_recursion`` is version 1 with the options v1 had (``cap``, ``seq_len``), so
its run key equals the stored v1 keys (tested) and reruns resume. ``cap`` has no effect on
Eq. 16 and is not part of its identity. The proxy ``sept_rank_recursion`` is the same
variant under its own name, so both bounds get a leaderboard row.

Layers counted: none (data-free formula of the block widths, depth and token count).

needs = {"arch"}: no model is built.
"""
from __future__ import annotations

import math

import numpy as np

from zcbench.proxy import Proxy
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


def log_geometric_sum(d: float, T: int) -> float:
    """log sum_{k=0..T} d^k = log((1 - d^(T+1)) / (1 - d)), exactly and without overflow (d > 0)."""
    d, n = float(d), int(T) + 1
    if d <= 0 or n < 1:
        raise ValueError(f"sept: need a block width d > 0 and T >= 0 tokens, got d={d}, T={T}")
    if d == 1.0:
        return math.log(n)
    if d > 1.0:
        # log(d^n - 1) - log(d - 1) = n log d + log1p(-d^-n) - log(d - 1); d^-n underflows to 0 harmlessly
        return n * math.log(d) + math.log1p(-math.exp(-n * math.log(d))) - math.log(d - 1.0)
    return math.log1p(-math.exp(n * math.log(d))) - math.log1p(-d)


def sept_eq16(widths, seq_len: int) -> float:
    """ETAS Eq. 16: log(sum_l d_l) + log(sum_l (1 - d_l^(T+1)) / (1 - d_l)), the second sum by logsumexp."""
    ds = [float(x) for x in widths]
    if not ds:
        raise ValueError("sept: a network with no blocks has no separation-rank bound")
    logs = np.array([log_geometric_sum(x, seq_len) for x in ds], dtype=np.float64)
    return math.log(sum(ds)) + float(np.logaddexp.reduce(logs))


def block_widths(summary: dict) -> list[float]:
    """d_z^l per block: ``d_model`` (a number, repeated ``n_layer`` times, or a per-layer list)."""
    d = summary["d_model"]
    n = int(summary["n_layer"])
    return [float(x) for x in d] if isinstance(d, (list, tuple)) else [float(d)] * n


VARIANTS = ("eq16", "rank_recursion")
VERSIONS = {"eq16": "2", "rank_recursion": "1"}


@register_proxy("sept")
class SEPT(Proxy):
    """ETAS Eq. 16 (default) or this project's earlier rank-recursion bound (variant=rank_recursion)."""

    version = "2"
    needs = frozenset({"arch"})
    citation = "Yang & Liu, ETAS, Findings of ACL 2024 (SEPT, Eq. 16 / Eq. 25); Levine et al., NeurIPS 2020"
    defaults = {"variant": "eq16", "cap": True, "seq_len": None}
    layers_counted = "none: a formula of block widths, depth and token count (no model is built)"

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        v = self.options["variant"]
        if v not in VARIANTS:
            raise ValueError(f"sept: variant={v!r}; valid: {', '.join(VARIANTS)}")
        self.version = VERSIONS[v]

    @property
    def identity_options(self) -> dict:
        if self.options["variant"] == "rank_recursion":  # exactly v1's options: stored v1 run keys stay valid
            return {"cap": self.options["cap"], "seq_len": self.options["seq_len"]}
        return {"variant": "eq16", "seq_len": self.options["seq_len"]}

    def score(self, ctx) -> float:
        s = ctx.space.summary(ctx.arch)
        n = int(self.options["seq_len"] or s["seq_len"])
        if self.options["variant"] == "eq16":
            return sept_eq16(block_widths(s), n)
        return sept_bound(s["n_layer"], s["d_model"], n, layer_exponents(s), bool(self.options["cap"]))


@register_proxy("sept_rank_recursion")
class SEPTRankRecursion(SEPT):
    """The project's earlier bound as its own leaderboard row (= ``sept variant=rank_recursion``)."""

    defaults = {"cap": True, "seq_len": None}

    def __init__(self, **kwargs):
        Proxy.__init__(self, **kwargs)
        self.options["variant"] = "rank_recursion"
        self.version = VERSIONS["rank_recursion"]

    @property
    def identity_options(self) -> dict:
        return {"cap": self.options["cap"], "seq_len": self.options["seq_len"]}
