"""LPZero's operator set, with explicit shape rules.

Source of the set: Dong et al., "LPZero: Language Model Zero-cost Proxy Search from
Zero" (Findings of EMNLP 2024), Table 2, resolved against the ``UNARY_KEYS`` /
``BINARY_KEYS`` of pprp/LPZero (``lpzero/operators/{unary,binary}_ops.py``, commit
c432106): 20 unary operations and 4 binary ones. Every operation is re-implemented
here (no upstream code), vectorised over a *stack* of items.

Values
------
An input (see ``inputs.py``) is, per architecture, a list of *items* (one per layer,
head operation, weight matrix, ...), each a fixed-shape ``R x C`` sample matrix. A
branch value is therefore one of two shape classes:

``matrix``
    a stack ``(N, R, C)`` -- every item still a matrix (rows = the tensor's dim 0,
    i.e. the examples of the minibatch, or a weight's output units);
``scalar``
    a vector ``(N,)`` -- one number per item, after a reducing operation.

(The operator set has no vector-producing operation: every reduction is a full
reduction and softmax/log-softmax keep the shape, so a "vector" class never arises.)

Operation kinds and shape rules
-------------------------------
``elem``    element-wise; matrix -> matrix, scalar -> scalar.
``item``    needs at least two elements per item (z-score, min-max, softmax over
            rows, log-softmax over rows); matrix -> matrix; **not allowed on a
            scalar** (it would be NaN or a constant).
``reduce``  full reduction of each item to one number; matrix -> scalar. ``std`` is not
            allowed on a scalar (NaN); ``fro``/``nsum``/``l1``/``mean`` of a scalar are
            ``|x|``/``x``/``|x|``/``x``.

Binary operations combine the two branches item by item (see ``evaluate.py``):
``add`` (+), ``sub`` (-), ``mul`` (x) act on each item's number (a matrix branch is
first averaged over its item, as upstream's ``convert_to_float``); ``had`` (⊙) is the
element-wise product of two *aligned* matrix items averaged over the item, allowed only
when both branches read the same input or the pair {W, G} (same layers, same sampled
positions); with a scalar on either side it equals ``mul``.

Numerical conventions follow upstream: ``log`` maps x <= 0 to 0 (upstream sets such
entries to 1 before the log), ``abslog`` maps 0 to 0, ``sqrt`` maps x <= 0 to 0,
``invert`` is ``1 / (x + 1e-9)``, ``normalize`` is a z-score with NaN -> 0,
``minmax`` divides by ``max - min + 1e-9``, softmax/log-softmax run over dim 0 of the
item (upstream ``dim=0``), ``std`` is the unbiased standard deviation.

``fro`` (Frobenius norm) is the one size-dependent reduction: an item holds a sample of
``n`` of the tensor's ``N_full`` entries, so ``fro`` returns
``sqrt(N_full / n * sum(x^2))`` -- the norm a full-size tensor with the sample's
statistics would have. Means, l1 (upstream divides by numel) and std are size-free.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

EPS = 1e-9


@dataclass(frozen=True)
class UnaryOp:
    name: str  # identifier used in formulas and files
    kind: str  # "elem" | "item" | "reduce"
    fn_matrix: Callable  # (X (N,R,C), scale (N,)) -> (N,R,C) or (N,)
    fn_scalar: Callable | None  # (v (N,)) -> (N,), None = not allowed on a scalar
    upstream: str  # upstream key
    positive: bool = False  # output is always >= 0
    may_be_zero: bool = False  # output can contain exact zeros for ordinary inputs
    may_be_nonpositive: bool = False  # output is <= 0 everywhere (or most) for ordinary inputs


def _log(x):
    return torch.log(torch.where(x > 0, x, torch.ones_like(x)))


def _abslog(x):
    return torch.log(torch.where(x == 0, torch.ones_like(x), x.abs()))


def _sqrt(x):
    return torch.sqrt(torch.clamp(x, min=0))


def _invert(x):
    return 1.0 / (x + EPS)


def _normalize(X, scale=None):
    m = X.mean(dim=(1, 2), keepdim=True)
    s = X.std(dim=(1, 2), keepdim=True)
    return torch.nan_to_num((X - m) / s, nan=0.0)


def _minmax(X, scale=None):
    lo = X.amin(dim=(1, 2), keepdim=True)
    hi = X.amax(dim=(1, 2), keepdim=True)
    return (X - lo) / (hi - lo + EPS)


def _fro(X, scale):
    return torch.sqrt((X.double() ** 2).sum(dim=(1, 2)) * scale)


def _mean(X, scale=None):
    return X.double().mean(dim=(1, 2))


def _l1(X, scale=None):
    return X.double().abs().mean(dim=(1, 2))


def _std(X, scale=None):
    return X.double().std(dim=(1, 2))


def _e(f):
    """An element-wise function used for both shape classes."""
    return (lambda X, scale=None: f(X)), f


_U = [
    # name, kind, matrix fn, scalar fn, upstream key, flags
    ("log", "elem", *_e(_log), "element_wise_log", {}),
    ("abslog", "elem", *_e(_abslog), "element_wise_abslog", {}),
    ("abs", "elem", *_e(torch.abs), "element_wise_abs", {"positive": True}),
    ("square", "elem", *_e(torch.square), "element_wise_pow", {"positive": True}),
    ("exp", "elem", *_e(torch.exp), "element_wise_exp", {"positive": True}),
    ("normalize", "item", _normalize, None, "normalize", {}),
    ("relu", "elem", *_e(torch.relu), "element_wise_relu", {"positive": True, "may_be_zero": True}),
    ("invert", "elem", *_e(_invert), "element_wise_invert", {}),
    ("fro", "reduce", _fro, torch.abs, "frobenius_norm", {"positive": True}),
    ("nsum", "reduce", _mean, (lambda v: v), "element_wise_normalized_sum", {}),
    ("l1", "reduce", _l1, torch.abs, "l1_norm", {"positive": True}),
    ("softmax", "item", (lambda X, scale=None: torch.softmax(X, dim=1)), None, "softmax", {"positive": True}),
    ("sigmoid", "elem", *_e(torch.sigmoid), "sigmoid", {"positive": True}),
    ("logsoftmax", "item", (lambda X, scale=None: torch.log_softmax(X, dim=1)), None, "logsoftmax",
     {"may_be_nonpositive": True}),
    ("sqrt", "elem", *_e(_sqrt), "element_wise_sqrt", {"positive": True, "may_be_zero": True}),
    ("neg", "elem", *_e(torch.neg), "element_wise_revert", {"may_be_nonpositive": True}),
    ("minmax", "item", _minmax, None, "min_max_normalize", {"positive": True, "may_be_zero": True}),
    ("mean", "reduce", _mean, (lambda v: v), "to_mean_scalar", {}),
    ("std", "reduce", _std, None, "to_std_scalar", {"positive": True}),
    ("id", "elem", *_e(lambda x: x), "no_op", {}),
]

UNARY: dict[str, UnaryOp] = {}
for _name, _kind, _fm, _fs, _up, _flags in _U:
    UNARY[_name] = UnaryOp(_name, _kind, _fm, _fs, _up, **_flags)
UNARY_NAMES: tuple[str, ...] = tuple(UNARY)
# Upstream samples ``no_op`` with twice the weight of any other unary operation.
UNARY_WEIGHTS: tuple[float, ...] = tuple(0.2 if n == "id" else 0.1 for n in UNARY_NAMES)

BINARY: dict[str, str] = {"add": "+", "sub": "-", "mul": "*", "had": "⊙"}
BINARY_NAMES: tuple[str, ...] = tuple(BINARY)
BINARY_UPSTREAM = {"add": "element_wise_sum", "sub": "element_wise_difference", "mul": "element_wise_product",
                   "had": "matrix_multiplication"}
SYMBOL_TO_BINARY = {v: k for k, v in BINARY.items()} | {".*": "had", "x": "mul", "×": "mul", "−": "sub"}

# Inputs (paper's theta): A activations, J Jacobian, G gradients, H attention-head outputs,
# W weights, S softmax (attention) maps.
INPUTS: tuple[str, ...] = ("A", "J", "G", "H", "W", "S")
# Inputs whose items line up one to one (same layers, same sampled positions).
ALIGNED = {frozenset({"W", "G"})}


def branch_shape(ops) -> str | None:
    """Shape class after applying ``ops`` to a matrix input; None when a rule is broken."""
    shape = "matrix"
    for name in ops:
        op = UNARY[name]
        if shape == "scalar" and op.fn_scalar is None:
            return None
        if op.kind == "reduce":
            shape = "scalar"
    return shape


def aligned(k1: str, k2: str) -> bool:
    return k1 == k2 or frozenset({k1, k2}) in ALIGNED


def shape_ok(inputs, ops, binary: str) -> bool:
    """Explicit shape rules: every unary op fits its operand, and ``had`` gets aligned operands."""
    s1, s2 = branch_shape(ops[0]), branch_shape(ops[1])
    if s1 is None or s2 is None:
        return False
    if binary == "had" and s1 == "matrix" and s2 == "matrix" and not aligned(*inputs):
        return False
    return True


def apply_branch(X: torch.Tensor, scale: torch.Tensor, ops) -> tuple[str, torch.Tensor]:
    """Apply ``ops`` to a stack ``X`` (N, R, C); return (shape class, value)."""
    shape, v = "matrix", X
    for name in ops:
        op = UNARY[name]
        if shape == "matrix":
            v = op.fn_matrix(v, scale)
            if op.kind == "reduce":
                shape = "scalar"
        else:
            if op.fn_scalar is None:
                raise ValueError(f"operation {name} is not defined on a scalar")
            v = op.fn_scalar(v)
    return shape, v
