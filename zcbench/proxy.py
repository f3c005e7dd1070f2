"""The proxy contract: everything a proxy author imports, and nothing else.

A proxy is a class with a ``score(ctx) -> float`` method and a declaration of what it
needs (``needs``, a subset of :data:`NEEDS`); the engine (:mod:`zcbench.engine`) builds the
model once, runs each pass some requested proxy needs, and hands every proxy a
:class:`Context` holding what was captured. A proxy file needs only::

    from zcbench import register_proxy
    from zcbench.proxy import NotApplicable, Proxy

(``docs/adding-a-proxy.md`` walks through one.) Set-level proxies, whose score of an
architecture depends on the set scored (rank fusion), subclass :class:`SetProxy`.

Needs and the passes that serve them (see docs/proxies.md for the full story)
------------------------------------------------------------------------------
``arch``
    nothing is built (e.g. parameter counts read off the meta device).
``weights``
    the model is built; no data, no pass.
``forward``
    one forward of the minibatch; activations of the tap kinds in
    ``Proxy.taps`` are recorded (``ctx.taps[kind]``).
``backward``
    gradients of the objective (the training loss by default, see
    *objectives*) with respect to every trainable parameter
    (``ctx.grad(p)`` / ``ctx.weight_grads``) from ONE ``torch.autograd.grad``
    call on the graph of that same forward.
``layer_outputs``
    output of every weight layer and the objective's gradient with respect to
    it (Fisher); rides the standard forward/backward.
``layer_stats`` / ``layer_grad_stats``
    what the proxy's own ``layer_stat(layer, output, grad)`` reduces each weight
    layer's output to (``grad`` = the objective's gradient with respect to that
    output for ``layer_grad_stats``, which rides the standard backward; None for
    ``layer_stats``, forward only), called as the standard pass produces them;
    only the returned values are kept (``ctx.layer_stats_of(proxy)``: weight-layer
    name -> value, layers called more than once per forward fail the need). The
    same information as ``layer_outputs`` without holding every layer's output and
    gradient until the proxies are scored (FlexiBERT at 128 x 128: 2.3 GiB).
``head_mask``
    the gradient of each example's objective with respect to a per-head gate
    of ones multiplying the ``head_out`` taps (Michel et al., 2019), obtained
    exactly from the ``head_out`` activation and its gradient in the standard
    backward: ``d L_b / d xi_{b,h} = B * sum_{t,d} A[b,h,t,d] * dL/dA[b,h,t,d]``
    (exact when every example carries the same number of loss terms, which
    holds for all built-in spaces).
``attn_query``
    output of the query projection of every attention module (the first
    ``nn.Linear`` the module calls; the first third of it when that layer is
    a fused q/k/v projection); rides the standard forward (LPZero's "head").
    Each proxy's ``query_stat(layer, query)`` is called as the forward
    produces it and only what it returns is kept (``ctx.query_of(proxy)``, in
    call order); the default keeps the (detached) tensor itself, a proxy that
    reads only a statistic returns that, and the query is not held.
``jacobian``
    per-example input Jacobian ``J[b] = d y_b / d e_b`` with respect to the
    ``embedding``-tap representation ``e``, where ``y_b = sum_t <h_{b,t}, u>``
    is a fixed random projection (``u ~ N(0, 1)``, seeded by the run seed) of
    the final hidden state. Examples do not interact, so one extra backward on
    the standard forward's graph gives all of them.
``hvp``
    GraSP's Hessian-gradient product ``H g`` over the weight layers, from a
    double backward through the standard backward (which is then built with
    ``create_graph=True``). With ``hvp_chunk=K`` (run option) the standard
    backward stays plain and ``H g`` is accumulated over chunks of K examples
    instead, ``H g = sum_c (|c| / B) H_c g`` (mean-loss objective; weight 1 for
    ``hidden_sum``): one more forward+backward, the double-backward memory of K
    examples instead of B, the same value to float32 round-off (eval mode only).
``hvp_fd``
    ``H g`` by a forward difference instead (GraSP's opt-in ``hvp=forward_difference``):
    ``(grad L(W + h g) - grad L(W)) / h`` over the weight layers, ``g`` and ``grad L(W)``
    the standard backward's (which then stays plain), ``h = HVP_FD_EPS * ||W|| / ||g||``
    (``zcbench.engine``). One plain forward+backward at the shifted weights, run after the
    standard pass's proxies are scored; the weights are restored bit for bit. An estimator, not
    round-off: relative error up to ~4e-3 of GraSP's sum on stored networks
    (``bench/bench_grasp_finite_difference.py``). Eval mode only.
``multi_batch``
    per-group gradients for ZiCo: the minibatch is split into
    ``MULTI_BATCH_GROUPS`` equal groups; each group's weight-layer gradients of
    its own objective. One forward+backward per group, or, when the standard
    backward runs anyway for another proxy, from its ``per_example`` factors.
``per_example``
    per-example weight-layer gradients in factored form
    (``ctx.per_example``, :class:`zcbench.engine.PerExampleGrads`): each weight
    layer's input and the objective's gradient with respect to its output,
    captured in the standard forward/backward; ``weight_grad(name, lo, hi)`` is
    the gradient of the objective of examples ``lo:hi`` alone (exact when the
    examples do not interact and carry equal numbers of loss terms).
``synflow``
    Tanaka et al.'s data-free pass, run last and without touching the model:
    ``torch.func.functional_call`` with |theta| in float64, input all ones
    (``torch.ones_like`` of one example: token id 1 everywhere for text, an
    all-ones image for vision), objective R = sum of the logits when the model
    returns logits, else ``sum_t <h_t, |u|>`` (a fixed positive projection of
    the hidden state, see docs). Shared by synflow, logsynflow and dss.
``flops``
    ``torch.utils.flop_counter.FlopCounterMode`` around the standard forward.

Objectives
    Gradient passes use ``proxy.options["objective"]`` when set, else the
    space's ``proxy_objective`` attribute, else ``"loss"`` (the model's mean
    training loss). ``"hidden_sum"`` (sum of the final hidden state, what the
    training-free-nas notebook back-propagated on BERT) is available for
    reproduction; proxies with different objectives get separate passes.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import torch
from torch import nn

from zcbench.introspect import role_of

# What a proxy can ask for. "arch" needs no model at all (e.g. parameter counts
# from the space's own counting convention).
NEEDS = frozenset({
    "arch", "weights", "forward", "backward", "layer_outputs", "head_mask", "attn_query",
    "jacobian", "hvp", "hvp_fd", "multi_batch", "synflow", "flops", "per_example", "layer_stats",
    "layer_grad_stats",
})
# Needs that require the minibatch (synflow reads only its shape and dtype, never its values).
DATA_NEEDS = frozenset({"forward", "backward", "layer_outputs", "head_mask", "attn_query", "jacobian", "hvp",
                        "hvp_fd", "multi_batch", "flops", "synflow", "per_example", "layer_stats", "layer_grad_stats"})
# What gradient passes may differentiate (``Proxy.options["objective"]``; see above).
OBJECTIVES = ("loss", "hidden_sum")
# The "layers" of the zero-cost literature (see :func:`weight_layers`).
WEIGHT_LAYER_TYPES = (nn.Linear, nn.Conv1d, nn.Conv2d)
# Layer sets a proxy with ``weight_layer_option`` can count (its option ``layers``):
# "zcbench" = WEIGHT_LAYER_TYPES, the default (stored runs; FlexiBERT's DSC convolutions are
# nn.Conv1d weight layers of the network); "reference" = what Abdelfattah et al.'s
# get_layer_metric_array and ZiCo's official code count: nn.Conv2d and nn.Linear only.
LAYER_SETS = {"zcbench": WEIGHT_LAYER_TYPES, "reference": (nn.Linear, nn.Conv2d)}


@dataclass
class ScoreResult:
    """One proxy's result on one architecture (what the runner stores)."""

    value: float  # NaN when not applicable or failed
    status: str  # "ok" | "nan" | "inf" | "n/a" | "error"
    seconds: float
    message: str = ""


class NotApplicable(Exception):
    """Raised by a proxy that is undefined on this model (e.g. no attention maps)."""


class Proxy:
    """Base class of every proxy. Subclasses set ``needs`` and implement ``score``.

    ``score`` returns a float where *higher predicts a better architecture*
    (the runner flips the ground truth's sign, never the proxy's).

    Class attributes a proxy may set:

    * ``needs`` — subset of ``NEEDS``;
    * ``taps`` — tap kinds whose activations the forward must record;
    * ``tap_grads`` — tap kinds whose gradients the backward must record;
    * ``defaults`` — option names and default values; ``__init__`` rejects
      unknown options and stores the merged dict in ``self.options``;
    * ``added_options`` — options added after scores were stored: at their default
      value they are left out of ``identity_options`` (the run identity), so stored
      runs of the unchanged default computation stay valid and resumable;
    * ``weight_layer_option`` — True for proxies that sum over weight layers: they get the
      option ``layers`` (``zcbench`` default | ``reference``, see ``LAYER_SETS``; an added
      option, so stored runs keep their keys) and ``ctx.weight_layers()`` honours it;
    * ``layers_counted`` — one line saying which layers/parameters the proxy counts (shown
      on the proxy's leaderboard page).

    A proxy that needs ``layer_stats`` or ``layer_grad_stats`` implements ``layer_stat``; one that
    needs ``attn_query`` may override ``query_stat`` (default: keep the query tensor).
    """

    name: str = ""
    version: str = "1"
    needs: frozenset = frozenset()
    taps: frozenset = frozenset()
    tap_grads: frozenset = frozenset()
    citation: str = ""
    defaults: dict = {}
    added_options: frozenset = frozenset()
    weight_layer_option: bool = False
    layers_counted: str = ""

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if cls.__dict__.get("weight_layer_option", False) and "layers" not in cls.defaults:
            cls.defaults = {**cls.defaults, "layers": "zcbench"}
            cls.added_options = frozenset(cls.added_options) | {"layers"}

    def __init__(self, **kwargs):
        if self.weight_layer_option and "layers" in kwargs and kwargs["layers"] not in LAYER_SETS:
            raise ValueError(f"proxy {self.name}: layers={kwargs['layers']!r}; valid: {', '.join(LAYER_SETS)}")
        if self.defaults is not Proxy.defaults:  # unknown names (did you mean ...?) and typed values (zcbench.options)
            from zcbench.options import check_proxy_options

            check_proxy_options(self.name, self.defaults, kwargs)
        self.options = {**self.defaults, **kwargs}

    @property
    def identity_options(self) -> dict:
        """The options that identify a run: all of them, except ``added_options`` left at their default."""
        return {k: v for k, v in self.options.items()
                if not (k in self.added_options and v == self.defaults.get(k))}

    @property
    def objective(self) -> str | None:
        return self.options.get("objective")

    def score(self, ctx: "Context") -> float:
        raise NotImplementedError

    def layer_stat(self, layer: "WeightLayer", output: torch.Tensor, grad: torch.Tensor | None):
        """For ``layer_stats`` / ``layer_grad_stats``: what to keep of one weight layer's output
        (detached) and, for ``layer_grad_stats``, the objective's gradient with respect to it
        (None for ``layer_stats``); return None to keep nothing for that layer. Runs under
        ``torch.no_grad()``."""
        raise NotImplementedError(f"proxy {self.name} needs layer stats but defines no layer_stat")

    def query_stat(self, layer: int | None, query: torch.Tensor):
        """For ``attn_query``: what to keep of one attention operation's query-projection output
        (detached; ``layer`` is its block index), called as the standard forward produces it under
        ``torch.no_grad()``. The default keeps the tensor; a proxy that needs only a statistic of
        it returns that, so that the engine does not hold the tensor through the backward."""
        return query

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"


@dataclass
class TapRecord:
    """One call of a ``Tap``: its tensor (detached) and, when requested, the objective's gradient."""

    kind: str
    layer: int | None
    module: str
    activation: torch.Tensor
    grad: torch.Tensor | None = None


@dataclass
class WeightLayer:
    """A weight layer (``nn.Linear`` / ``nn.Conv1d`` / ``nn.Conv2d``) and the role it plays."""

    name: str
    module: nn.Module
    role: str | None
    block: int | None

    @property
    def weight(self) -> nn.Parameter:
        return self.module.weight




class SetProxy(Proxy):
    """A proxy defined on a *set* of architectures from per-architecture components.

    ``components`` are proxy names; the runner scores each per architecture, then calls
    ``combine`` on the (architectures x components) score table of the scored set. Because
    the result depends on the set, such scores are stored under a key that includes a hash
    of the architecture IDs they were computed on. Example: ``proxies/rankfuse.py``.
    """

    components: tuple[str, ...] = ()
    needs = frozenset()

    def combine(self, scores: pd.DataFrame) -> pd.Series:
        raise NotImplementedError

    def score(self, ctx) -> float:  # pragma: no cover - set proxies have no per-arch score
        raise TypeError(f"{self.name} is defined on a set of architectures; score it through the runner")


@dataclass
class Context:
    """Everything a proxy may read. Fields stay ``None`` unless some proxy asked for them."""

    space: Any
    arch: Any
    seed: int
    batch_size: int
    seq_len: int
    device: str = "cpu"
    cache: dict = field(default_factory=dict)  # per-arch memo shared by proxies
    objective: str = "loss"
    train_mode: bool = False
    layer_set: str = "zcbench"  # the scoring proxy's ``layers`` option (set by the engine per proxy)
    hvp_chunk: int | None = None  # ``hvp`` over chunks of this many examples (None: the whole minibatch)
    # built objects
    model: nn.Module | None = None
    batch: Any = None
    # standard forward
    output: Any = None  # ModelOutput (tensors detached)
    taps: dict = field(default_factory=dict)  # kind -> list[TapRecord], in call order
    flops: float | None = None  # forward FLOPs of the whole minibatch
    # standard backward
    weight_grads: dict = field(default_factory=dict)  # parameter name -> gradient (None if unused)
    layer_outputs: dict = field(default_factory=dict)  # weight-layer name -> (output, d objective/d output)
    layer_stats: dict = field(default_factory=dict)  # id(proxy) -> {weight-layer name: proxy.layer_stat(...)}
    head_mask_grads: list = field(default_factory=list)  # per head_out call: (layer, (B, H) tensor)
    query_stats: dict = field(default_factory=dict)  # id(proxy) -> [(layer, proxy.query_stat(...))], call order
    hvp: dict = field(default_factory=dict)  # weight-layer name -> H g
    hvp_fd: dict = field(default_factory=dict)  # weight-layer name -> H g by a forward difference
    jacobian: torch.Tensor | None = None  # (B, T, D)
    multi_batch_grads: list = field(default_factory=list)  # per group: weight-layer name -> gradient
    per_example: Any = None  # engine.PerExampleGrads: per-example weight-layer gradient factors
    synflow: dict = field(default_factory=dict)  # "weights"/"grads": weight-layer name -> tensor, "R": float
    stats: dict = field(default_factory=dict)  # pass counters and timings (tests, bench)
    _param_names: dict = field(default_factory=dict)  # id(param) -> canonical name

    # ---- helpers for proxies ---------------------------------------------------
    def grad(self, param: torch.Tensor) -> torch.Tensor | None:
        """The objective's gradient for ``param`` (None when the parameter did not take part)."""
        return self.weight_grads.get(self._param_names.get(id(param)))

    def weight_layers(self, roles: tuple[str, ...] | None = None, include_output: bool = False,
                      layer_set: str | None = None) -> list[WeightLayer]:
        """Weight layers of the model in module order (see ``weight_layers``), restricted to the
        types of ``LAYER_SETS[layer_set]`` (default: the scoring proxy's ``layers`` option)."""
        key = ("weight_layers",)
        if key not in self.cache:
            self.cache[key] = weight_layers(self.model)
        layers = self.cache[key]
        types = LAYER_SETS[layer_set or self.layer_set]
        if types is not WEIGHT_LAYER_TYPES:
            layers = [w for w in layers if isinstance(w.module, types)]
        if not include_output:
            layers = [w for w in layers if w.role != "output"]
        if roles is not None:
            layers = [w for w in layers if w.role in roles]
        return layers

    def layer_stats_of(self, proxy: Proxy) -> dict:
        """``proxy.layer_stat`` of every weight layer it kept something for (``layer_stats`` /
        ``layer_grad_stats``), by weight-layer name."""
        return _own_stats(self.layer_stats, proxy, {})

    def query_of(self, proxy: Proxy) -> list:
        """``attn_query``: ``[(layer, proxy.query_stat(layer, query))]`` per attention operation, in
        call order (the query tensors themselves unless the proxy overrides ``query_stat``)."""
        return _own_stats(self.query_stats, proxy, [])

    def tap_records(self, kind: str) -> list[TapRecord]:
        return self.taps.get(kind, [])


def _own_stats(store: dict, proxy: Proxy, empty):
    """A proxy's entry of ``Context.layer_stats`` / ``query_stats``; the error its own
    ``layer_stat`` / ``query_stat`` raised during the pass is raised here."""
    got = store.get(id(proxy), empty)
    if isinstance(got, Exception):
        raise got
    return got


def classify(value: float) -> str:
    """Status of a proxy's float: ``ok``, ``nan`` or ``inf``."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "nan"
    if math.isinf(value):
        return "inf"
    return "ok"


# --------------------------------------------------------------------------- model introspection
# Shared by the engine's passes and by proxies (``ctx.weight_layers()``).
def walk_roles(model: nn.Module):
    """Yield ``(name, module, role, block_index)``: role = innermost tagged ancestor-or-self
    (``block`` does not count as a role here, as in ``introspect``)."""
    block_ids = {}
    for m in model.modules():
        if role_of(m) == "block":
            block_ids[id(m)] = len(block_ids)

    seen: set[int] = set()

    def rec(mod, prefix, role, blk):
        r = role_of(mod)
        if r is not None and r != "block":
            role = r
        if id(mod) in block_ids:
            blk = block_ids[id(mod)]
        if id(mod) in seen:
            return
        seen.add(id(mod))
        yield prefix.rstrip("."), mod, role, blk
        for cname, child in mod.named_children():
            yield from rec(child, f"{prefix}{cname}.", role, blk)

    yield from rec(model, "", None, None)


def weight_layers(model: nn.Module) -> list[WeightLayer]:
    """Every ``nn.Linear`` / ``nn.Conv1d`` / ``nn.Conv2d`` module once, in module order,
    with its role and block index. These are the "layers" of Abdelfattah et al.'s
    zero-cost code (``get_layer_metric_array``), which LPZero used unchanged."""
    return [WeightLayer(n, m, r, b) for n, m, r, b in walk_roles(model) if isinstance(m, WEIGHT_LAYER_TYPES)]


def attention_modules(model: nn.Module) -> list[tuple[str, nn.Module, int | None]]:
    """Outermost modules tagged ``attn`` (one per attention operation)."""
    out = []
    for name, m, role, blk in walk_roles(model):
        if role_of(m) == "attn" and not any(name.startswith(o + ".") for o, _, _ in out):
            out.append((name, m, blk))
    return out


FUSED_QKV_NAMES = ("c_attn", "qkv", "qkv_net", "in_proj")


def query_projection(attn: nn.Module) -> tuple[nn.Module | None, bool]:
    """The query projection of an attention module: ``(linear, fused)``.

    An ``nn.Linear`` attribute named ``query`` / ``q_proj`` / ``q`` is the query;
    one named like a fused projection (``FUSED_QKV_NAMES``) holds q, k, v in
    thirds, q first; otherwise ``(None, False)`` and the first ``nn.Linear`` the
    module calls is taken (e.g. FlexiBERT's linear-transform ``input``).
    """
    for name in ("query", "q_proj", "q"):
        m = getattr(attn, name, None)
        if isinstance(m, nn.Linear):
            return m, False
    for name in FUSED_QKV_NAMES:
        m = getattr(attn, name, None)
        if isinstance(m, nn.Linear) and m.out_features % 3 == 0:
            return m, True
    return None, False
