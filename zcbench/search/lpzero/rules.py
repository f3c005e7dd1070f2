"""Rule-based Pruning Strategy (RPS) of LPZero (Dong et al., 2024, Sec. 3.4).

The paper prunes, *before any evaluation*, candidate proxies whose symbolic form is
known to degrade (operations that conflict, undo each other, or hit an invalid domain),
and discards candidates whose scores are invalid. pprp/LPZero keeps only the second
part in code (``is_anomaly``: -1 / 0 / NaN / inf scores, plus an early exit when the
first scores are all equal); the rules below are our explicit rendering of the first
part, each with its reason, applied to consecutive unary operations ``f`` then ``g``
inside a branch and to the pair of branches:

``domain``      ``log``/``sqrt``/``abslog`` right after an operation whose output is
                non-positive (``neg``, ``logsoftmax``): log/sqrt of x <= 0 is clamped,
                so the branch collapses to a constant.
``zero-inverse`` ``invert`` right after an operation that produces exact zeros
                (``relu``, ``sqrt``, ``minmax``): 1/(0 + 1e-9) dominates every score.
``cancel``      pairs that undo each other: ``exp`` then ``log``/``abslog``,
                ``log`` then ``exp``, ``square`` then ``sqrt`` (|x|), ``sqrt`` then
                ``square``, ``invert`` then ``invert``, ``neg`` then ``neg``,
                ``softmax`` then ``log``/``abslog`` (= logsoftmax), ``logsoftmax`` then ``exp``
                (= softmax).
``idempotent``  an operation repeated where the second does nothing (``g(g(x)) = g(x)``):
                ``abs``, ``relu``, ``normalize``, ``minmax``.
``redundant``   ``abs``/``relu`` after an operation whose output is already >= 0.
``reduce-twice`` a second reduction after a reduction (mean/nsum/fro/l1 of one number)
                does nothing but flip a sign at most.
``same-branches`` both branches identical (same input, same operations up to ``id``)
                combined with ``-``: the score is the constant 0.

These never change what a valid candidate computes; they only skip candidates that
would waste an evaluation or win by a degenerate score. Score-level checks (NaN, inf,
constant over the sample) are applied by the search after evaluation.
"""
from __future__ import annotations

from zcbench.search.lpzero.ops import UNARY

REDUCE = {n for n, o in UNARY.items() if o.kind == "reduce"}
NONPOS = {n for n, o in UNARY.items() if o.may_be_nonpositive}
HAS_ZEROS = {n for n, o in UNARY.items() if o.may_be_zero}
POSITIVE = {n for n, o in UNARY.items() if o.positive}

CANCEL = {
    ("exp", "log"), ("exp", "abslog"), ("log", "exp"), ("square", "sqrt"), ("sqrt", "square"),
    ("invert", "invert"), ("neg", "neg"), ("softmax", "log"), ("softmax", "abslog"), ("logsoftmax", "exp"),
}
IDEMPOTENT = {"abs", "relu", "normalize", "minmax"}


def branch_conflicts(ops) -> list[str]:
    """Rules broken by one branch's operation sequence (``id`` is transparent)."""
    seq = [o for o in ops if o != "id"]
    out = []
    for f, g in zip(seq, seq[1:]):
        if g in ("log", "sqrt", "abslog") and f in NONPOS:
            out.append(f"domain: {g} after {f}")
        if g == "invert" and f in HAS_ZEROS:
            out.append(f"zero-inverse: invert after {f}")
        if (f, g) in CANCEL:
            out.append(f"cancel: {g} after {f}")
        if f == g and g in IDEMPOTENT:
            out.append(f"idempotent: {g} twice")
        if g in ("abs", "relu") and f in POSITIVE:
            out.append(f"redundant: {g} after non-negative {f}")
        if f in REDUCE and g in REDUCE and g != "std":
            out.append(f"reduce-twice: {g} after {f}")
    return out


def conflicts(expr) -> list[str]:
    """Every RPS rule the expression breaks (empty list = passes)."""
    out = [f"branch {i + 1}: {c}" for i, ops in enumerate(expr.ops) for c in branch_conflicts(ops)]
    same = expr.inputs[0] == expr.inputs[1] and [o for o in expr.ops[0] if o != "id"] == \
        [o for o in expr.ops[1] if o != "id"]
    if same and expr.binary == "sub":
        out.append("same-branches: x - x = 0")
    return out


def passes(expr) -> bool:
    return not conflicts(expr)
