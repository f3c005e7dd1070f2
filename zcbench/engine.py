"""Scoring engine: one model per (arch, seed), the fewest passes for all requested proxies.

A proxy declares what it needs (``Proxy.needs``, a subset of ``NEEDS``); the
engine builds the model once under ``torch.manual_seed(seed)``, makes the
space's seeded minibatch, runs each pass that some requested proxy needs, and
hands every proxy a ``Context`` holding what was captured.

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
``jacobian``
    per-example input Jacobian ``J[b] = d y_b / d e_b`` with respect to the
    ``embedding``-tap representation ``e``, where ``y_b = sum_t <h_{b,t}, u>``
    is a fixed random projection (``u ~ N(0, 1)``, seeded by the run seed) of
    the final hidden state. Examples do not interact, so one extra backward on
    the standard forward's graph gives all of them.
``hvp``
    GraSP's Hessian-gradient product ``H g`` over the weight layers, from a
    double backward through the standard backward (which is then built with
    ``create_graph=True``).
``multi_batch``
    per-group gradients for ZiCo: the minibatch is split into
    ``MULTI_BATCH_GROUPS`` equal groups, one forward+backward each.
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

Mode
    Models are scored in ``eval()`` mode (dropout off) unless
    ``train_mode=True``: scores are then a function of the network and the
    data only, not of a dropout mask. Upstream zero-cost code called
    ``net.train()``; with the LTS/ELECTRA dropout of 0.1 this is a deliberate,
    documented deviation.

Results
    A proxy's float goes through ``classify``: ``ok`` / ``nan`` / ``inf`` as
    produced; ``NotApplicable`` -> ``n/a``; any other exception -> ``error``
    with a one-line message (other proxies are unaffected). A pass that fails
    marks every proxy that needed it ``error``. ``ScoreResult.seconds`` is the
    proxy's own computation plus the full time of every pass it used.
"""
from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from zcbench.introspect import Tap, role_of

# What a proxy can ask for. "arch" needs no model at all (e.g. parameter counts
# from the space's own counting convention).
NEEDS = frozenset({
    "arch", "weights", "forward", "backward", "layer_outputs", "head_mask", "attn_query",
    "jacobian", "hvp", "multi_batch", "synflow", "flops",
})
# Needs that require the minibatch (synflow reads only its shape and dtype, never its values).
DATA_NEEDS = frozenset({"forward", "backward", "layer_outputs", "head_mask", "attn_query", "jacobian", "hvp",
                        "multi_batch", "flops", "synflow"})
# Needs served by the standard forward (and its backward when gradients are needed).
STANDARD_NEEDS = frozenset({"forward", "backward", "layer_outputs", "head_mask", "attn_query", "jacobian", "hvp",
                            "flops"})
GRAD_NEEDS = frozenset({"backward", "layer_outputs", "head_mask", "hvp"})
OBJECTIVES = ("loss", "hidden_sum")
MULTI_BATCH_GROUPS = 2
WEIGHT_LAYER_TYPES = (nn.Linear, nn.Conv1d, nn.Conv2d)
SYNFLOW_DTYPE = torch.float64
PROJECTION_SEED_OFFSET = 7919  # the random projection u uses seed + this, apart from model init


@dataclass
class ScoreResult:
    value: float  # NaN when not applicable or failed
    status: str  # "ok" | "nan" | "inf" | "n/a" | "error"
    seconds: float
    message: str = ""


class NotApplicable(Exception):
    """Raised by a proxy that is undefined on this model (e.g. no attention maps)."""


class PassError(RuntimeError):
    """A shared pass failed; every proxy that needed it is recorded as an error."""


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
      runs of the unchanged default computation stay valid and resumable.
    """

    name: str = ""
    version: str = "1"
    needs: frozenset = frozenset()
    taps: frozenset = frozenset()
    tap_grads: frozenset = frozenset()
    citation: str = ""
    defaults: dict = {}
    added_options: frozenset = frozenset()

    def __init__(self, **kwargs):
        unknown = set(kwargs) - set(self.defaults)
        if unknown and self.defaults is not Proxy.defaults:
            raise ValueError(f"proxy {self.name}: unknown option(s) {sorted(unknown)}; "
                             f"valid: {', '.join(sorted(self.defaults)) or 'none'}")
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
    head_mask_grads: list = field(default_factory=list)  # per head_out call: (layer, (B, H) tensor)
    query: list = field(default_factory=list)  # per attention module: (layer, query output tensor)
    hvp: dict = field(default_factory=dict)  # weight-layer name -> H g
    jacobian: torch.Tensor | None = None  # (B, T, D)
    multi_batch_grads: list = field(default_factory=list)  # per group: weight-layer name -> gradient
    synflow: dict = field(default_factory=dict)  # "weights"/"grads": weight-layer name -> tensor, "R": float
    stats: dict = field(default_factory=dict)  # pass counters and timings (tests, bench)
    _param_names: dict = field(default_factory=dict)  # id(param) -> canonical name

    # ---- helpers for proxies ---------------------------------------------------
    def grad(self, param: torch.Tensor) -> torch.Tensor | None:
        """The objective's gradient for ``param`` (None when the parameter did not take part)."""
        return self.weight_grads.get(self._param_names.get(id(param)))

    def weight_layers(self, roles: tuple[str, ...] | None = None, include_output: bool = False) -> list[WeightLayer]:
        """Weight layers of the model in module order (see ``weight_layers``)."""
        key = ("weight_layers",)
        if key not in self.cache:
            self.cache[key] = weight_layers(self.model)
        layers = self.cache[key]
        if not include_output:
            layers = [w for w in layers if w.role != "output"]
        if roles is not None:
            layers = [w for w in layers if w.role in roles]
        return layers

    def tap_records(self, kind: str) -> list[TapRecord]:
        return self.taps.get(kind, [])


def classify(value: float) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "nan"
    if math.isinf(value):
        return "inf"
    return "ok"


# ============================================================================
# Model introspection shared by the passes and the proxies
# ============================================================================
def _walk_roles(model: nn.Module):
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
    return [WeightLayer(n, m, r, b) for n, m, r, b in _walk_roles(model) if isinstance(m, WEIGHT_LAYER_TYPES)]


def attention_modules(model: nn.Module) -> list[tuple[str, nn.Module, int | None]]:
    """Outermost modules tagged ``attn`` (one per attention operation)."""
    out = []
    for name, m, role, blk in _walk_roles(model):
        if role_of(m) == "attn" and not any(name.startswith(o + ".") for o, _, _ in out):
            out.append((name, m, blk))
    return out


FUSED_QKV_NAMES = ("c_attn", "qkv", "qkv_net", "in_proj")


def _query_projection(attn: nn.Module) -> tuple[nn.Module | None, bool]:
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


# ============================================================================
# Passes
# ============================================================================
class _Timer:
    def __init__(self, stats: dict, key: str):
        self.stats, self.key = stats, key

    def __enter__(self):
        self.t0 = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.stats.setdefault("seconds", {})
        self.stats["seconds"][self.key] = self.stats["seconds"].get(self.key, 0.0) + time.perf_counter() - self.t0
        return False


def _count(stats: dict, key: str, n: int = 1) -> None:
    stats[key] = stats.get(key, 0) + n


def _projection(seed: int, dim: int, device, dtype) -> torch.Tensor:
    g = torch.Generator().manual_seed(int(seed) + PROJECTION_SEED_OFFSET)
    return torch.randn(dim, generator=g, dtype=torch.float64).to(device=device, dtype=dtype)


def _objective_scalar(out, objective: str) -> torch.Tensor:
    if objective == "loss":
        if out.loss is None:
            raise PassError("the model returned no loss (make_batch gave no targets)")
        return out.loss
    if objective == "hidden_sum":
        return out.hidden.sum()
    raise PassError(f"unknown objective {objective!r}; valid: {', '.join(OBJECTIVES)}")


def _standard_pass(ctx: Context, needs: set, tap_kinds: set, tap_grad_kinds: set) -> dict[str, str]:
    """One forward of the minibatch and (if needed) one backward, capturing what ``needs`` asks for."""
    model, batch = ctx.model, ctx.batch
    want_grads = bool(needs & GRAD_NEEDS)
    want_jac = "jacobian" in needs
    want_hvp = "hvp" in needs
    want_layer_io = "layer_outputs" in needs
    want_query = "attn_query" in needs
    if "head_mask" in needs:
        tap_kinds = tap_kinds | {"head_out"}
        tap_grad_kinds = tap_grad_kinds | {"head_out"}
    if want_jac:
        tap_kinds = tap_kinds | {"embedding"}
    live: dict[str, list] = {k: [] for k in tap_kinds}  # kind -> [(layer, module name, tensor)]
    handles = []
    names = {id(m): n for n, m in model.named_modules()}
    try:
        for m in model.modules():
            if isinstance(m, Tap) and m.kind in tap_kinds:
                def hook(mod, inp, out, _kind=m.kind):
                    live[_kind].append((mod.layer, names.get(id(mod), ""), out))
                handles.append(m.register_forward_hook(hook))
        layer_out: dict[str, torch.Tensor] = {}
        if want_layer_io:
            for wl in weight_layers(model):
                def hook(mod, inp, out, _name=wl.name):
                    if _name in layer_out:
                        raise PassError(f"weight layer {_name} is called more than once per forward; "
                                        "layer_outputs supports single-call layers only")
                    layer_out[_name] = out
                handles.append(wl.module.register_forward_hook(hook))
        queries: list = []
        if want_query:
            for aname, amod, blk in attention_modules(model):
                lin, fused = _query_projection(amod)
                state = {"done": False}
                targets_ = [lin] if lin is not None else [s for s in amod.modules() if isinstance(s, nn.Linear)]
                for sub in targets_:
                    def hook(mod, inp, out, _state=state, _blk=blk, _fused=fused):
                        if _state["done"]:
                            return
                        _state["done"] = True
                        q = out[..., : mod.out_features // 3] if _fused else out
                        queries.append((_blk, q.detach()))
                    handles.append(sub.register_forward_hook(hook))
        flop_ctx = contextlib.nullcontext()
        counter = None
        if "flops" in needs:
            from torch.utils.flop_counter import FlopCounterMode

            counter = FlopCounterMode(display=False)
            flop_ctx = counter
        with torch.set_grad_enabled(want_grads or want_jac):
            with _Timer(ctx.stats, "forward"), flop_ctx:
                out = model(batch.inputs, batch.targets)
            _count(ctx.stats, "forward")
    finally:
        for h in handles:
            h.remove()
    if counter is not None:
        ctx.flops = float(counter.get_total_flops())
    ctx.query = queries
    ctx.output = type(out)(**{k: (v.detach() if torch.is_tensor(v) else v) for k, v in vars(out).items()})
    ctx.taps = {k: [TapRecord(k, layer, mname, t.detach()) for layer, mname, t in recs] for k, recs in live.items()}
    errors: dict[str, str] = {}

    if want_jac:
        try:
            emb = live["embedding"]
            if not emb:
                raise PassError("the model has no 'embedding' tap")
            e = emb[0][2]
            if not e.requires_grad:
                raise PassError("the embedding tap tensor does not require grad")
            u = _projection(ctx.seed, out.hidden.shape[-1], out.hidden.device, out.hidden.dtype)
            y = (out.hidden * u).sum()
            with _Timer(ctx.stats, "jacobian"):
                (jac,) = torch.autograd.grad(y, e, retain_graph=want_grads)
            _count(ctx.stats, "backward")
            ctx.jacobian = jac.detach()
        except Exception as exc:  # noqa: BLE001 - reported on the proxies that need it
            errors["jacobian"] = _one_line(exc)

    if want_grads:
        try:
            _standard_backward(ctx, out, live, layer_out, tap_grad_kinds, want_hvp, "head_mask" in needs)
        except Exception as exc:  # noqa: BLE001
            for n in needs & GRAD_NEEDS:
                errors[n] = _one_line(exc)
    del out
    return errors


def _standard_backward(ctx: Context, out, live: dict, layer_out: dict, tap_grad_kinds: set, want_hvp: bool,
                       want_head_mask: bool) -> None:
    model, batch = ctx.model, ctx.batch
    grad_taps = [(k, i) for k in sorted(tap_grad_kinds) for i in range(len(live.get(k, [])))]
    scalar = _objective_scalar(out, ctx.objective)
    pnames, params = [], []
    for n, p in model.named_parameters():
        if p.requires_grad:
            pnames.append(n)
            params.append(p)
    ctx._param_names = {id(p): n for n, p in zip(pnames, params)}
    lo_names = list(layer_out)
    inputs = params + [live[k][i][2] for k, i in grad_taps] + [layer_out[n] for n in lo_names]
    with _Timer(ctx.stats, "backward"):
        grads = torch.autograd.grad(scalar, inputs, allow_unused=True, create_graph=want_hvp)
    _count(ctx.stats, "backward")
    gp = grads[: len(params)]
    gt = grads[len(params): len(params) + len(grad_taps)]
    gl = grads[len(params) + len(grad_taps):]
    if want_hvp:
        with _Timer(ctx.stats, "hvp"):
            by_id = {id(p): g for p, g in zip(params, gp)}
            wls = [wl for wl in weight_layers(model) if by_id.get(id(wl.weight)) is not None]
            z = sum((by_id[id(wl.weight)].detach() * by_id[id(wl.weight)]).sum() for wl in wls)
            hg = torch.autograd.grad(z, [wl.weight for wl in wls], allow_unused=True) if wls else []
        _count(ctx.stats, "backward")
        ctx.hvp = {wl.name: (h.detach() if h is not None else None) for wl, h in zip(wls, hg)}
    ctx.weight_grads = {n: (g.detach() if g is not None else None) for n, g in zip(pnames, gp)}
    for (k, i), g in zip(grad_taps, gt):
        ctx.taps[k][i].grad = g.detach() if g is not None else None
    ctx.layer_outputs = {n: (layer_out[n].detach(), g.detach() if g is not None else None)
                         for n, g in zip(lo_names, gl)}
    if want_head_mask:
        B = batch.inputs.shape[0]
        hm = []
        for rec in ctx.taps.get("head_out", []):
            if rec.grad is None:
                hm.append((rec.layer, torch.zeros(rec.activation.shape[:2], dtype=rec.activation.dtype)))
            else:
                hm.append((rec.layer, B * (rec.activation * rec.grad).sum(dim=(2, 3))))
        ctx.head_mask_grads = hm


def _multi_batch_pass(ctx: Context) -> None:
    """ZiCo: one forward+backward per group of ``B / MULTI_BATCH_GROUPS`` examples."""
    model, batch = ctx.model, ctx.batch
    B = batch.inputs.shape[0]
    k = MULTI_BATCH_GROUPS
    if B < k:
        raise PassError(f"multi_batch needs batch_size >= {k}, got {B}")
    wls = weight_layers(model)
    bounds = [round(i * B / k) for i in range(k + 1)]
    groups = []
    for lo, hi in zip(bounds[:-1], bounds[1:]):
        tgt = batch.targets[lo:hi] if batch.targets is not None else None
        with torch.enable_grad():
            with _Timer(ctx.stats, "multi_batch"):
                out = model(batch.inputs[lo:hi], tgt)
                scalar = _objective_scalar(out, ctx.objective)
                grads = torch.autograd.grad(scalar, [wl.weight for wl in wls], allow_unused=True)
        _count(ctx.stats, "forward")
        _count(ctx.stats, "backward")
        groups.append({wl.name: (g.detach() if g is not None else None) for wl, g in zip(wls, grads)})
    ctx.multi_batch_grads = groups


def _synflow_pass(ctx: Context) -> None:
    """Data-free synflow pass on |theta| in float64; the model itself is never modified."""
    from torch.func import functional_call

    model, batch = ctx.model, ctx.batch
    params = {n: p for n, p in model.named_parameters()}
    absd = {n: p.detach().abs().to(SYNFLOW_DTYPE).requires_grad_(True) for n, p in params.items()}
    bufs = {n: (b.detach().to(SYNFLOW_DTYPE) if b.is_floating_point() else b) for n, b in model.named_buffers()}
    x = torch.ones_like(batch.inputs[:1])
    if x.is_floating_point():
        x = x.to(SYNFLOW_DTYPE)
    with torch.enable_grad(), _Timer(ctx.stats, "synflow"):
        out = functional_call(model, {**absd, **bufs}, (x, None))
        if out.logits is not None:
            R = out.logits.sum()
        else:
            u = _projection(ctx.seed, out.hidden.shape[-1], out.hidden.device, out.hidden.dtype).abs()
            R = (out.hidden * u).sum()
        names = list(absd)
        grads = torch.autograd.grad(R, [absd[n] for n in names], allow_unused=True)
    _count(ctx.stats, "forward")
    _count(ctx.stats, "backward")
    by_name = dict(zip(names, grads))
    pid = {id(p): n for n, p in params.items()}
    w, g = {}, {}
    for wl in weight_layers(model):
        n = pid.get(id(wl.weight))
        if n is None:
            continue
        w[wl.name] = absd[n].detach()
        g[wl.name] = by_name[n].detach() if by_name[n] is not None else None
    ctx.synflow = {"weights": w, "grads": g, "R": float(R.detach())}


# ============================================================================
# Entry point
# ============================================================================
def _resolve_objective(space, proxy: Proxy) -> str:
    obj = proxy.objective or getattr(space, "proxy_objective", None) or "loss"
    if obj not in OBJECTIVES:
        raise ValueError(f"proxy {proxy.name}: objective must be one of {OBJECTIVES}, got {obj!r}")
    return obj


def _run(ctx: Context, fn, *args) -> str | None:
    """Run a pass; return None or a one-line error message."""
    try:
        fn(ctx, *args)
        return None
    except Exception as exc:  # noqa: BLE001 - reported per proxy
        return _one_line(exc)


def _one_line(exc: BaseException) -> str:
    msg = f"{type(exc).__name__}: {exc}".strip().splitlines()
    return msg[0][:500] if msg else type(exc).__name__


def score_arch(space, arch, proxies: list[Proxy], *, seed: int = 0, batch_size: int = 16,
               seq_len: int = 128, device: str = "cpu", train_mode: bool = False) -> dict[str, ScoreResult]:
    """Score one architecture with every proxy in ``proxies`` through shared passes."""
    for p in proxies:
        unknown = set(p.needs) - NEEDS
        if unknown:
            raise ValueError(f"proxy {p.name} needs {sorted(unknown)}, which this engine cannot provide")
    t_start = time.perf_counter()
    results: dict[str, ScoreResult] = {}
    run_stats: dict = {}  # shared by every context: pass counters and seconds for the whole call
    base = dict(space=space, arch=arch, seed=seed, batch_size=batch_size, seq_len=seq_len, device=str(device),
                train_mode=train_mode, stats=run_stats)
    shared_cache: dict = {}
    all_needs = set().union(*(set(p.needs) for p in proxies)) if proxies else set()

    model = batch = None
    setup_error = None
    setup_seconds = 0.0
    if all_needs - {"arch"}:
        t0 = time.perf_counter()
        try:
            torch.manual_seed(seed)
            model = space.build(arch).to(device)
            model.train(train_mode)
            if all_needs & DATA_NEEDS:
                batch = space.make_batch(batch_size, seq_len, seed).to(device)
        except Exception as exc:  # noqa: BLE001
            setup_error = "building the model or batch failed: " + _one_line(exc)
        setup_seconds = time.perf_counter() - t0

    # group proxies by objective; one context (and one set of passes) per group
    groups: dict[str, list[Proxy]] = {}
    for p in proxies:
        try:
            obj = _resolve_objective(space, p)
        except ValueError as exc:
            results[p.name] = ScoreResult(float("nan"), "error", 0.0, str(exc))
            continue
        groups.setdefault(obj, []).append(p)
    # the first group also serves every need that does not depend on the objective
    order = sorted(groups, key=lambda o: 0 if o == "loss" else 1)
    synflow_ctx_data = None
    try:
        for obj in order:
            members = groups[obj]
            ctx = Context(**base, cache=shared_cache, objective=obj, model=model, batch=batch)
            needs = set().union(*(set(p.needs) for p in members))
            pass_errors: dict[str, str] = {}
            pass_time: dict[str, float] = {}
            if setup_error is None and model is not None:
                std = needs & STANDARD_NEEDS
                if std:
                    taps = set().union(*(set(p.taps) for p in members if set(p.needs) & STANDARD_NEEDS))
                    tgr = set().union(*(set(p.tap_grads) for p in members if set(p.needs) & STANDARD_NEEDS))
                    if tgr:
                        std = std | {"backward"}
                    t0 = time.perf_counter()
                    partial: dict[str, str] = {}
                    err = _run(ctx, lambda c: partial.update(_standard_pass(c, std, taps, tgr)))
                    pass_time["standard"] = time.perf_counter() - t0
                    for n in std:  # a failed forward fails every need; a failed backward only its own
                        if err or n in partial:
                            pass_errors[n] = err or partial[n]
                if "multi_batch" in needs:
                    t0 = time.perf_counter()
                    err = _run(ctx, _multi_batch_pass)
                    pass_time["multi_batch"] = time.perf_counter() - t0
                    if err:
                        pass_errors["multi_batch"] = err
            run_stats.setdefault("pass_seconds", {}).update(pass_time)
            for p in members:
                pneeds = set(p.needs)
                if "synflow" in pneeds:
                    continue  # scored after the synflow pass, below
                results[p.name] = _score_one(p, ctx, pneeds, pass_errors, pass_time, setup_error, setup_seconds)
            # synflow-type proxies: run the (objective-free) pass once, last
            syn = [p for p in members if "synflow" in p.needs]
            if syn:
                if synflow_ctx_data is None:
                    t0 = time.perf_counter()
                    err = None
                    if setup_error is None and model is not None:
                        err = _run(ctx, _synflow_pass)
                    synflow_ctx_data = (ctx.synflow, err, time.perf_counter() - t0)
                ctx.synflow = synflow_ctx_data[0]
                if synflow_ctx_data[1]:
                    pass_errors["synflow"] = synflow_ctx_data[1]
                pass_time["synflow"] = synflow_ctx_data[2]
                run_stats.setdefault("pass_seconds", {})["synflow"] = synflow_ctx_data[2]
                for p in syn:
                    results[p.name] = _score_one(p, ctx, set(p.needs), pass_errors, pass_time, setup_error,
                                                 setup_seconds)
    finally:
        torch.set_grad_enabled(True)
        run_stats["setup_seconds"] = setup_seconds
        run_stats["total_seconds"] = time.perf_counter() - t_start
        score_arch.last_stats = run_stats  # for tests and the bench
    return {p.name: results[p.name] for p in proxies}


score_arch.last_stats = {}


def _pass_of(need: str) -> str:
    if need in STANDARD_NEEDS:
        return "standard"
    return need


def _score_one(p: Proxy, ctx: Context, pneeds: set, pass_errors: dict, pass_time: dict, setup_error,
               setup_seconds: float) -> ScoreResult:
    used = {_pass_of(n) for n in pneeds if n not in ("arch", "weights")}
    overhead = sum(pass_time.get(k, 0.0) for k in used) + (setup_seconds if pneeds - {"arch"} else 0.0)
    if setup_error and pneeds - {"arch"}:
        return ScoreResult(float("nan"), "error", overhead, setup_error)
    for n in sorted(pneeds):
        if n in pass_errors:
            return ScoreResult(float("nan"), "error", overhead, f"pass for '{n}' failed: {pass_errors[n]}")
    t0 = time.perf_counter()
    try:
        with torch.no_grad():
            v = p.score(ctx)
        v = float(v)
        return ScoreResult(v, classify(v), overhead + time.perf_counter() - t0)
    except NotApplicable as exc:
        return ScoreResult(float("nan"), "n/a", overhead + time.perf_counter() - t0, str(exc))
    except Exception as exc:  # noqa: BLE001 - one bad proxy must not kill the others
        return ScoreResult(float("nan"), "error", overhead + time.perf_counter() - t0, _one_line(exc))
