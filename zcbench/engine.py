"""Scoring engine: one model per (arch, seed), the fewest passes for all requested proxies.

A proxy declares what it needs (``Proxy.needs``, a subset of ``NEEDS``; the contract and
what each need captures are in :mod:`zcbench.proxy`); the engine builds the model once
under ``torch.manual_seed(seed)``, makes the space's seeded minibatch, runs each pass that
some requested proxy needs, and hands every proxy a ``Context`` holding what was captured.
This module only runs passes; :func:`score_arch` reads top-down:

1. :func:`check_needs` — every need is one the engine can serve;
2. :func:`build_model_and_batch` — the model (seeded) and, if any proxy uses data, the minibatch;
3. :func:`group_by_objective` — one context and one set of passes per gradient objective;
4. :func:`run_passes` — the standard forward/backward of a group (and ZiCo's groups when
   they come from it);
5. in stages, each after the proxies of the one before are scored and the captures no later
   proxy reads are freed (:func:`free_captures`): ZiCo's own group passes
   (:func:`multi_batch_pass`; eval mode), GraSP's H g by chunks with the run option
   ``hvp_chunk`` (:func:`_chunked_hvp`) or by a forward difference for ``hvp_fd``
   (:func:`_fd_hvp`), the synflow pass (once, objective-free);
6. :func:`score_one` — each proxy on its context, its result classified.

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

Counters and timings of a call (passes, forwards, backwards, seconds) are written into the
``stats`` dict a caller passes to :func:`score_arch` (tests and bench/ read them).

Size: over 500 lines since the per-example factors (issue 18): every pass and the one entry
point stay in one core module, read top-down, and the core may not import a helper module.
"""
from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass

import torch
from torch import nn

from zcbench.introspect import Tap
# The contract, re-exported so that ``from zcbench.engine import Proxy`` (older plug-ins) still works.
from zcbench.proxy import (DATA_NEEDS, NEEDS, OBJECTIVES, WEIGHT_LAYER_TYPES, Context, NotApplicable,  # noqa: F401
                           Proxy, ScoreResult, SetProxy, TapRecord, WeightLayer, attention_modules, classify,
                           query_projection, weight_layers)

# Needs served by the standard forward (and its backward when gradients are needed).
STANDARD_NEEDS = frozenset({"forward", "backward", "layer_outputs", "head_mask", "attn_query", "jacobian", "hvp",
                            "flops", "per_example", "layer_stats", "layer_grad_stats"})
GRAD_NEEDS = frozenset({"backward", "layer_outputs", "head_mask", "hvp", "per_example", "layer_grad_stats"})
STAT_NEEDS = frozenset({"layer_stats", "layer_grad_stats"})  # served by the proxies' own layer_stat
# hvp_fd's step: the weights move by this fraction of their norm along g (bench/bench_grasp_finite_difference.py:
# at 1e-5 the largest relative error of GraSP's sum over 10 + 10 stored networks was 4.0e-3 / 1.3e-3, at
# 1e-4 2.1e-2 / 1.7e-2, at 1e-3 up to 0.97; below, float32 round-off of the difference grows)
HVP_FD_EPS = 1e-5
MULTI_BATCH_GROUPS = 2
# ``multi_batch`` from the standard backward's per-example factors, for the proxies that ask for it
# with the option ``groups="factored"`` (zico): one forward+backward instead of one per group.
# The default (``groups="passes"``, every stored run) keeps one forward+backward per group, so a
# stored score neither changes nor depends on which other proxies share the passes: the two paths
# agree in their gradients to float32 round-off, which ZiCo's default ratio (tol=0) amplifies up to
# ~1 % (docs/performance.md). False here switches the factored path off everywhere.
MULTI_BATCH_FROM_STANDARD = True
SYNFLOW_DTYPE = torch.float64
PROJECTION_SEED_OFFSET = 7919  # the random projection u uses seed + this, apart from model init


class PassError(RuntimeError):
    """A shared pass failed; every proxy that needed it is recorded as an error."""


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


def _per_proxy(store: dict, proxies, add, where: str) -> None:
    """``add(proxy, entry)`` for each proxy whose ``store`` entry has not failed, under no_grad; a
    proxy whose ``add`` raises keeps the error in its entry (raised again when the proxy reads its
    statistics), the others go on. Serves ``layer_stats`` and ``attn_query``."""
    with torch.no_grad():
        for p in proxies:
            entry = store[id(p)]
            if isinstance(entry, Exception):
                continue
            try:
                add(p, entry)
            except Exception as exc:  # noqa: BLE001 - reported on that proxy only
                store[id(p)] = PassError(f"{where}: {one_line(exc)}")


def _layer_stats(ctx: Context, proxies: list, wl: WeightLayer, out: torch.Tensor, grad) -> None:
    """Each proxy's ``layer_stat`` of one weight layer into ``ctx.layer_stats`` (read by
    ``ctx.layer_stats_of``); None keeps nothing for that layer."""
    def add(p, got):
        v = p.layer_stat(wl, out, grad)
        if v is not None:
            got[wl.name] = v

    _per_proxy(ctx.layer_stats, proxies, add, f"layer_stat on {wl.name}")


def _query_stats(ctx: Context, proxies: tuple, layer, q: torch.Tensor) -> None:
    """Each proxy's ``query_stat`` of one attention operation's query into ``ctx.query_stats``
    (read by ``ctx.query_of``), in call order."""
    _per_proxy(ctx.query_stats, proxies, lambda p, got: got.append((layer, p.query_stat(layer, q))),
               f"query_stat on block {layer}")


def _standard_pass(ctx: Context, needs: set, tap_kinds: set, tap_grad_kinds: set,
                   stat_proxies: tuple = (), query_proxies: tuple = ()) -> dict[str, str]:
    """One forward of the minibatch and (if needed) one backward, capturing what ``needs`` asks
    for; ``stat_proxies`` (those needing ``layer_stats`` / ``layer_grad_stats``) reduce each
    weight layer's output (and its gradient) as it is produced, ``query_proxies`` (those needing
    ``attn_query``) each attention operation's query."""
    model, batch = ctx.model, ctx.batch
    want_grads = bool(needs & GRAD_NEEDS)
    want_jac = "jacobian" in needs
    want_hvp = "hvp" in needs
    want_layer_io = "layer_outputs" in needs
    want_pe = "per_example" in needs
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
        layer_in: dict[str, torch.Tensor] = {}  # per_example: each weight layer's input
        multi_call: set[str] = set()  # per_example: layers called more than once (not factorable)
        if want_layer_io or want_pe:
            for wl in weight_layers(model):
                def hook(mod, inp, out, _name=wl.name):
                    if _name in layer_out or _name in multi_call:
                        if want_layer_io:
                            raise PassError(f"weight layer {_name} is called more than once per forward; "
                                            "layer_outputs supports single-call layers only")
                        multi_call.add(_name)
                        layer_out.pop(_name, None)
                        layer_in.pop(_name, None)
                        return
                    layer_out[_name] = out
                    if want_pe and inp and torch.is_tensor(inp[0]):
                        layer_in[_name] = inp[0].detach()
                handles.append(wl.module.register_forward_hook(hook))
        fwd_stats = [p for p in stat_proxies if "layer_stats" in p.needs]
        grad_stats = [p for p in stat_proxies if "layer_grad_stats" in p.needs] if want_grads else []
        stat_state = {"armed": False, "seen": set(), "twice": None}
        ctx.layer_stats = {id(p): {} for p in fwd_stats + grad_stats}
        if fwd_stats or grad_stats:
            for wl in weight_layers(model):
                def hook(mod, inp, out, _wl=wl):
                    if _wl.name in stat_state["seen"]:
                        stat_state["twice"] = stat_state["twice"] or _wl.name
                        return
                    stat_state["seen"].add(_wl.name)
                    if not torch.is_tensor(out):
                        return
                    o = out.detach()
                    _layer_stats(ctx, fwd_stats, _wl, o, None)
                    if grad_stats and out.requires_grad:
                        def on_grad(g, _o=[o]):
                            # armed only in the standard backward (not the Jacobian's, not GraSP's
                            # double backward); the output is let go once its gradient is read
                            if not stat_state["armed"] or not _o:
                                return None
                            _layer_stats(ctx, grad_stats, _wl, _o.pop(), g.detach())
                            return None
                        out.register_hook(on_grad)
                handles.append(wl.module.register_forward_hook(hook))
        ctx.query_stats = {id(p): [] for p in query_proxies} if want_query else {}
        if want_query:
            for aname, amod, blk in attention_modules(model):
                lin, fused = query_projection(amod)
                state = {"done": False}
                targets_ = [lin] if lin is not None else [s for s in amod.modules() if isinstance(s, nn.Linear)]
                for sub in targets_:
                    def hook(mod, inp, out, _state=state, _blk=blk, _fused=fused):
                        if _state["done"]:
                            return
                        _state["done"] = True
                        q = out[..., : mod.out_features // 3] if _fused else out
                        _query_stats(ctx, query_proxies, _blk, q.detach())
                    handles.append(sub.register_forward_hook(hook))
        flop_ctx = contextlib.nullcontext()
        counter = None
        if "flops" in needs:
            from torch.utils.flop_counter import FlopCounterMode

            counter = FlopCounterMode(display=False)
            flop_ctx = counter
        with torch.set_grad_enabled(want_grads or want_jac):
            with _Timer(ctx.stats, "forward"), flop_ctx:
                # the Jacobian reads the hidden state only: alone, the forward skips the loss head
                out = model(batch.inputs, None if needs == {"jacobian"} else batch.targets)
            _count(ctx.stats, "forward")
    finally:
        for h in handles:
            h.remove()
    if counter is not None:
        ctx.flops = float(counter.get_total_flops())
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
            errors["jacobian"] = one_line(exc)

    if stat_state["twice"]:
        msg = (f"weight layer {stat_state['twice']} is called more than once per forward; "
               "layer stats support single-call layers only")
        for n in needs & STAT_NEEDS:
            errors[n] = msg
        ctx.layer_stats = {}

    if want_grads:
        try:
            stat_state["armed"] = bool(grad_stats) and not stat_state["twice"]
            try:
                _standard_backward(ctx, out, live, layer_out, tap_grad_kinds, want_hvp, "head_mask" in needs)
            finally:
                stat_state["armed"] = False
            if want_pe:
                B = batch.inputs.shape[0]
                ctx.per_example = PerExampleGrads(
                    {n: (wl.module, layer_in[n], ctx.layer_outputs[n][1]) for wl in weight_layers(model)
                     for n in [wl.name] if n in layer_in and ctx.layer_outputs.get(n, (None, None))[1] is not None},
                    B, ctx.objective)
            if not want_layer_io:
                ctx.layer_outputs = {}
        except Exception as exc:  # noqa: BLE001
            for n in needs & GRAD_NEEDS:
                errors[n] = one_line(exc)
    del out
    return errors


def _chunked_hvp(ctx: Context) -> None:
    """``ctx.hvp`` = H g accumulated over chunks of ``ctx.hvp_chunk`` examples (``g`` = the
    standard backward's weight-layer gradients): per chunk c, one forward, the chunk's gradient
    with ``create_graph=True`` and the double backward of ``<g, grad_c>``, weighted by
    ``|c| / B`` for the mean loss (the mean over the minibatch is the weighted mean of the
    chunks' means when every example carries the same number of loss terms) and 1 for
    ``hidden_sum``. Checked: the weighted chunk gradients add up to ``g`` (relative 1e-3;
    round-off is ~1e-6), else the examples interact or carry unequal terms and the pass fails.
    :func:`score_arch` runs it after the group's other proxies are scored and the captures no
    remaining proxy needs are freed (:func:`free_captures`), so its graph of K examples is the
    only large allocation left."""
    model, batch = ctx.model, ctx.batch
    if ctx.train_mode:
        raise PassError("hvp_chunk needs eval mode (dropout would draw other masks per chunk); use hvp_chunk=null")
    B, K = batch.inputs.shape[0], int(ctx.hvp_chunk)
    wls = [wl for wl in weight_layers(model) if ctx.grad(wl.weight) is not None]
    g = [ctx.grad(wl.weight) for wl in wls]
    hg = [torch.zeros_like(x) for x in g]
    summed = [torch.zeros_like(x) for x in g]
    with _Timer(ctx.stats, "hvp"):
        for lo in range(0, B, K):
            hi = min(B, lo + K)
            w = (hi - lo) / B if ctx.objective == "loss" else 1.0
            tgt = batch.targets[lo:hi] if batch.targets is not None else None
            with torch.enable_grad():
                out = model(batch.inputs[lo:hi], tgt)
                scalar = _objective_scalar(out, ctx.objective)
                gc = torch.autograd.grad(scalar, [wl.weight for wl in wls], allow_unused=True, create_graph=True)
                z = sum((gi * ci).sum() for gi, ci in zip(g, gc) if ci is not None)
                hc = torch.autograd.grad(z, [wl.weight for wl in wls], allow_unused=True) if torch.is_tensor(z) else ()
            _count(ctx.stats, "forward")
            _count(ctx.stats, "backward", 2)
            for acc, s_acc, h, c in zip(hg, summed, hc, gc):
                if h is not None:
                    acc.add_(h.detach(), alpha=w)
                if c is not None:
                    s_acc.add_(c.detach(), alpha=w)
            del out, scalar, gc, z, hc
    for wl, full, s_acc in zip(wls, g, summed):
        if not bool((s_acc - full).norm() <= 1e-3 * full.norm()):
            raise PassError(f"hvp_chunk: the chunks' gradients of {wl.name} do not add up to the minibatch's "
                            "(examples interact or carry unequal loss terms); use hvp_chunk=null")
    ctx.hvp = {wl.name: h for wl, h in zip(wls, hg)}


def _fd_hvp(ctx: Context) -> None:
    """``ctx.hvp_fd`` = H g by a forward difference: ``(grad L(W + h v) - grad L(W)) / h`` per
    weight layer, with ``grad L(W)`` and ``g`` from the standard backward, ``v`` = ``g`` times the
    number of weight layers sharing the tensor (the direction of the exact ``hvp``, whose
    ``<g, grad>`` counts a shared tensor once per layer) and ``h = HVP_FD_EPS * ||W|| / ||v||`` over
    the weight-layer tensors. One plain forward+backward at the shifted weights; the weights are
    copied back bit for bit whatever happens. Eval mode only (dropout would draw other masks)."""
    model, batch = ctx.model, ctx.batch
    if ctx.train_mode:
        raise PassError("hvp_fd (grasp hvp=forward_difference) needs eval mode (dropout would draw other masks "
                        "in the shifted pass); use grasp's default hvp=exact")
    wls = [wl for wl in weight_layers(model) if ctx.grad(wl.weight) is not None]
    tensors: dict[int, torch.Tensor] = {}
    mult: dict[int, int] = {}
    for wl in wls:
        tensors[id(wl.weight)] = wl.weight
        mult[id(wl.weight)] = mult.get(id(wl.weight), 0) + 1
    if not tensors:
        raise PassError("hvp_fd: no weight layer has a gradient")
    vnorm = math.sqrt(sum(float((ctx.grad(w).double() ** 2).sum()) * mult[i] ** 2 for i, w in tensors.items()))
    wnorm = math.sqrt(sum(float((w.detach().double() ** 2).sum()) for w in tensors.values()))
    if not (math.isfinite(vnorm) and vnorm > 0 and math.isfinite(wnorm)):
        raise PassError(f"hvp_fd: no step along g (|g| = {vnorm!r}, |W| = {wnorm!r})")
    h = HVP_FD_EPS * wnorm / vnorm
    saved = {i: w.detach().clone() for i, w in tensors.items()}
    with _Timer(ctx.stats, "hvp"):
        try:
            with torch.no_grad():
                for i, w in tensors.items():
                    w.add_(ctx.grad(w), alpha=h * mult[i])
            with torch.enable_grad():
                out = model(batch.inputs, batch.targets)
                scalar = _objective_scalar(out, ctx.objective)
                shifted = torch.autograd.grad(scalar, list(tensors.values()), allow_unused=True)
            del out, scalar
        finally:
            with torch.no_grad():
                for i, w in tensors.items():
                    w.copy_(saved[i])
        _count(ctx.stats, "forward")
        _count(ctx.stats, "backward")
        by_id = {i: (None if gs is None else (gs - ctx.grad(w)).div_(h))
                 for (i, w), gs in zip(tensors.items(), shifted)}
    ctx.hvp_fd = {wl.name: by_id[id(wl.weight)] for wl in wls}


def release_memory() -> bool:
    """Hand the heap pages freed by the last architecture back to the operating system (glibc's
    ``malloc_trim(0)``; a no-op returning False elsewhere). The CPU tensors of a pass are freed
    to malloc, which keeps most of them mapped: without this, a worker's resident memory stays at
    its largest network's so far, and in a multi-worker sweep that adds to the other workers'
    peaks (docs/performance.md §6). Costs milliseconds; the runner calls it after every network."""
    global _LIBC
    if _LIBC is None:
        try:
            import ctypes

            _LIBC = ctypes.CDLL("libc.so.6")
            _LIBC.malloc_trim.argtypes = [ctypes.c_size_t]
        except (OSError, AttributeError):
            _LIBC = False
    if not _LIBC:
        return False
    _LIBC.malloc_trim(0)
    return True


_LIBC = None  # glibc, once loaded (False where there is none)


def hvp_deferred(ctx: Context, needs: set) -> bool:
    """Whether ``hvp`` is computed by :func:`_chunked_hvp` after the standard pass (run option
    ``hvp_chunk`` smaller than the minibatch) instead of in its backward."""
    return "hvp" in needs and ctx.hvp_chunk is not None and ctx.hvp_chunk < ctx.batch.inputs.shape[0]


def free_captures(ctx: Context, keep: set, keep_taps: set) -> None:
    """Drop what the standard and multi-batch passes captured unless a need in ``keep`` (or a tap
    kind in ``keep_taps``) still reads it; the weight gradients stay (``g`` of the hvp)."""
    if "forward" not in keep:
        ctx.output = None
    ctx.taps = {k: v for k, v in ctx.taps.items() if k in keep_taps}
    for need, field_, empty in (("layer_outputs", "layer_outputs", {}), ("head_mask", "head_mask_grads", []),
                                ("attn_query", "query_stats", {}), ("jacobian", "jacobian", None),
                                ("per_example", "per_example", None), ("multi_batch", "multi_batch_grads", []),
                                ("hvp_fd", "hvp_fd", {})):
        if need not in keep:
            setattr(ctx, field_, empty)
    if not keep & STAT_NEEDS:
        ctx.layer_stats = {}


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
                hm.append((rec.layer, torch.zeros(rec.activation.shape[:2], dtype=rec.activation.dtype,
                                                    device=rec.activation.device)))
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


class PerExampleGrads:
    """Per-example weight-layer gradients in factored form, from the standard forward+backward.

    For a weight layer ``y = W * x`` (``nn.Linear``, ``nn.Conv1d``, ``nn.Conv2d``) called once per
    forward, the standard backward's weight gradient is a sum over the examples of the batch,
    ``dJ/dW = sum_b x_b^T dJ/dy_b`` (for a convolution, ``conv_weight(x_b, dJ/dy_b)``), and in
    eval mode example b's rows of ``dJ/dy`` depend on example b's own objective terms only
    (examples never interact). So the gradient of the objective restricted to any subset S of
    the examples is the same weight-gradient product over S's rows alone: one matmul (or
    ``torch.nn.grad.conv*_weight``) per layer and subset, no extra forward or backward.

    Scale: the objective ``loss`` is the mean over all loss terms; when every example carries
    the same number of terms (all built-in spaces) the mean loss of a subset S has gradient
    ``B / |S|`` times S's share of the batch's. ``hidden_sum`` is a sum: scale 1.

    ``layers``: weight-layer name -> (module, input x, dJ/dy); layers called more than once, or
    whose input was not a tensor, are absent (see :meth:`factorable`).
    """

    def __init__(self, layers: dict, batch_size: int, objective: str):
        self.layers, self.batch_size, self.objective = layers, batch_size, objective

    def scale(self, n: int) -> float:
        return self.batch_size / n if self.objective == "loss" else 1.0

    def weight_grad(self, name: str, lo: int, hi: int) -> torch.Tensor:
        """Gradient w.r.t. layer ``name``'s weight of the objective of examples ``lo:hi`` alone."""
        mod, x, gy = self.layers[name]
        x, gy = x[lo:hi], gy[lo:hi]
        if isinstance(mod, nn.Linear):
            g = gy.reshape(-1, gy.shape[-1]).T @ x.reshape(-1, x.shape[-1])
        elif isinstance(mod, (nn.Conv1d, nn.Conv2d)):
            conv_weight = torch.nn.grad.conv1d_weight if isinstance(mod, nn.Conv1d) else torch.nn.grad.conv2d_weight
            g = conv_weight(x, mod.weight.shape, gy, mod.stride, mod.padding, mod.dilation, mod.groups)
        else:  # pragma: no cover - weight_layers() yields only the types above
            raise PassError(f"per_example: no weight-gradient rule for {type(mod).__name__}")
        return g * self.scale(hi - lo)

    def factorable(self, wl: WeightLayer) -> bool:
        """The layer was called once, through its module, on a batch-first tensor (and, for a
        convolution, zero padding given as numbers): :meth:`weight_grad` applies."""
        mod = wl.module
        if wl.name not in self.layers:
            return False
        _, x, gy = self.layers[wl.name]
        if x.shape[0] != self.batch_size or gy.shape[0] != self.batch_size:  # batch-first tensors only
            return False
        return not (isinstance(mod, (nn.Conv1d, nn.Conv2d))
                    and (isinstance(mod.padding, str) or mod.padding_mode != "zeros"))


def multi_batch_from_per_example(ctx: Context, groups: int = MULTI_BATCH_GROUPS) -> list[dict] | None:
    """ZiCo's per-group gradients (as :func:`_multi_batch_pass` computes them) from
    ``ctx.per_example``, or None when some weight layer is not covered (the engine then runs the
    group passes). Covered: factorable, and the groups' gradients add up to the standard
    backward's (sum_S g_S / scale_S vs dJ/dW, relative 1e-3; round-off is ~1e-6), which fails
    when the weight is also used outside its module (tied weights, functional calls)."""
    pe = ctx.per_example
    B = ctx.batch.inputs.shape[0]
    if pe is None or B < groups:
        return None
    by_id = {id(p): n for n, p in ctx.model.named_parameters()}
    bounds = [round(i * B / groups) for i in range(groups + 1)]
    spans = list(zip(bounds[:-1], bounds[1:]))
    out: list[dict] = [{} for _ in spans]
    for wl in weight_layers(ctx.model):
        full = ctx.weight_grads.get(by_id.get(id(wl.weight)))
        if full is None:
            if wl.name in pe.layers:
                return None
            for o in out:
                o[wl.name] = None
            continue
        if not pe.factorable(wl):
            return None
        gs = [pe.weight_grad(wl.name, lo, hi) for lo, hi in spans]
        whole = sum(g / pe.scale(hi - lo) for g, (lo, hi) in zip(gs, spans))
        if not bool((whole - full).norm() <= 1e-3 * full.norm()):
            return None
        for o, g in zip(out, gs):
            o[wl.name] = g
    return out


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
# Entry point: score_arch, in steps
# ============================================================================
def check_needs(proxies: list[Proxy]) -> None:
    """Reject a proxy that asks for something no pass provides (a bug in the proxy, not bad input)."""
    for p in proxies:
        unknown = set(p.needs) - NEEDS
        if unknown:
            raise ValueError(f"proxy {p.name} needs {sorted(unknown)}, which this engine cannot provide")


def one_line(exc: BaseException) -> str:
    """``Type: message`` of an exception, first line only (at most 500 characters)."""
    msg = f"{type(exc).__name__}: {exc}".strip().splitlines()
    return msg[0][:500] if msg else type(exc).__name__


@dataclass
class Setup:
    """The model and minibatch every pass of one architecture shares (or why they are missing)."""

    model: nn.Module | None = None
    batch: object = None
    error: str | None = None  # "building the model or batch failed: ..."
    seconds: float = 0.0


def build_model_and_batch(space, arch, needs: set, *, seed: int, batch_size: int, seq_len: int, device: str,
                          train_mode: bool) -> Setup:
    """Build the model under ``torch.manual_seed(seed)`` (unless every proxy needs only ``arch``)
    and the seeded minibatch (only when some need uses data)."""
    setup = Setup()
    if not needs - {"arch"}:
        return setup
    if torch.device(device).type == "cuda":
        # every proxy is defined in float32 (synflow float64): no TF32 matmuls/convolutions on the
        # GPU, whose 10-bit mantissa would move scores by ~1e-3 (docs/scaling.md, tests/test_cuda.py)
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    t0 = time.perf_counter()
    try:
        torch.manual_seed(seed)
        setup.model = space.build(arch).to(device)
        setup.model.train(train_mode)
        if needs & DATA_NEEDS:
            setup.batch = space.make_batch(batch_size, seq_len, seed).to(device)
    except Exception as exc:  # noqa: BLE001 - reported on every proxy that needed the model
        setup.error = "building the model or batch failed: " + one_line(exc)
    setup.seconds = time.perf_counter() - t0
    return setup


def resolve_objective(space, proxy: Proxy) -> str:
    """The proxy's ``objective`` option, else the space's ``proxy_objective``, else ``"loss"``."""
    obj = proxy.objective or getattr(space, "proxy_objective", None) or "loss"
    if obj not in OBJECTIVES:
        raise ValueError(f"proxy {proxy.name}: objective must be one of {OBJECTIVES}, got {obj!r}")
    return obj


def group_by_objective(space, proxies: list[Proxy], results: dict) -> list[tuple[str, list[Proxy]]]:
    """``[(objective, proxies)]``, ``loss`` first (that group also serves the objective-free needs).
    A proxy with an invalid objective gets its ``error`` result here."""
    groups: dict[str, list[Proxy]] = {}
    for p in proxies:
        try:
            obj = resolve_objective(space, p)
        except ValueError as exc:
            results[p.name] = ScoreResult(float("nan"), "error", 0.0, str(exc))
            continue
        groups.setdefault(obj, []).append(p)
    return [(o, groups[o]) for o in sorted(groups, key=lambda o: 0 if o == "loss" else 1)]


def _run(ctx: Context, fn, *args) -> str | None:
    """Run a pass; return None or a one-line error message."""
    try:
        fn(ctx, *args)
        return None
    except Exception as exc:  # noqa: BLE001 - reported per proxy
        return one_line(exc)


def run_passes(ctx: Context, members: list[Proxy], *, defer_multi_batch: bool = False) -> tuple[dict, dict]:
    """The standard forward (+ backward) and the multi-batch pass the group's proxies need.
    Returns ``(errors by need, seconds by pass)``. ``defer_multi_batch``: leave ZiCo's own
    group passes (not its groups from the standard pass's per-example factors) to
    :func:`multi_batch_pass`, which :func:`score_arch` runs once the proxies that do not need
    them are scored and their captures freed."""
    needs = set().union(*(set(p.needs) for p in members))
    pass_errors: dict[str, str] = {}
    pass_time: dict[str, float] = {}
    std = needs & STANDARD_NEEDS
    # ZiCo's groups from the standard backward's per-example factors when every proxy that needs
    # them asks for it (option groups="factored"); the standard pass then runs with its backward
    # whatever else the group needs, so the value does not depend on the other proxies.
    mb_users = [p for p in members if "multi_batch" in p.needs]
    mb_from_std = (bool(mb_users) and MULTI_BATCH_FROM_STANDARD and not ctx.train_mode
                   and all((getattr(p, "options", None) or {}).get("groups") == "factored" for p in mb_users))
    if mb_from_std:
        std = std | {"per_example", "backward"}
    if hvp_deferred(ctx, std):  # hvp_chunk: plain backward here, H g by chunks in score_arch
        std = (std - {"hvp"}) | {"backward"}
    if "hvp_fd" in needs:  # its g and grad L(W): the plain standard backward; the shifted pass in score_arch
        std = std | {"backward"}
    if std:
        taps = set().union(*(set(p.taps) for p in members if set(p.needs) & STANDARD_NEEDS))
        tgr = set().union(*(set(p.tap_grads) for p in members if set(p.needs) & STANDARD_NEEDS))
        if tgr:
            std = std | {"backward"}
        t0 = time.perf_counter()
        partial: dict[str, str] = {}
        stat_proxies = tuple(p for p in members if set(p.needs) & STAT_NEEDS)
        query_proxies = tuple(p for p in members if "attn_query" in p.needs)
        err = _run(ctx, lambda c: partial.update(_standard_pass(c, std, taps, tgr, stat_proxies, query_proxies)))
        pass_time["standard"] = time.perf_counter() - t0
        for n in std:  # a failed forward fails every need; a failed backward only its own
            if err or n in partial:
                pass_errors[n] = err or partial[n]
    if "multi_batch" in needs:
        t0 = time.perf_counter()
        err = None
        if mb_from_std and "per_example" not in pass_errors:
            with _Timer(ctx.stats, "multi_batch"):
                ctx.multi_batch_grads = multi_batch_from_per_example(ctx) or []
        if ctx.multi_batch_grads:
            _count(ctx.stats, "multi_batch_from_standard")
        elif not defer_multi_batch:
            err = _run(ctx, _multi_batch_pass)
        if "per_example" not in needs:  # asked for only to serve multi_batch: free the factors
            ctx.per_example = None
        pass_time["multi_batch"] = time.perf_counter() - t0 + (pass_time.get("standard", 0.0)
                                                               if ctx.multi_batch_grads and mb_from_std else 0.0)
        if err:
            pass_errors["multi_batch"] = err
    return pass_errors, pass_time


def multi_batch_pending(ctx: Context, needs: set, pass_errors: dict) -> bool:
    """Whether ``multi_batch`` is needed and was left by ``run_passes(defer_multi_batch=True)``."""
    return "multi_batch" in needs and not ctx.multi_batch_grads and "multi_batch" not in pass_errors


def multi_batch_pass(ctx: Context, pass_errors: dict, pass_time: dict) -> None:
    """ZiCo's own group passes, deferred by :func:`run_passes`; their seconds are added to the
    ``multi_batch`` pass time (with the failed conversion from per-example factors, if any)."""
    t0 = time.perf_counter()
    err = _run(ctx, _multi_batch_pass)
    pass_time["multi_batch"] = pass_time.get("multi_batch", 0.0) + time.perf_counter() - t0
    if err:
        pass_errors["multi_batch"] = err


def pass_of(need: str) -> str:
    """The pass that serves a need (``standard`` for everything the standard forward captures)."""
    if need in STANDARD_NEEDS:
        return "standard"
    return need


def score_one(p: Proxy, ctx: Context, pneeds: set, pass_errors: dict, pass_time: dict, setup: Setup) -> ScoreResult:
    """Score one proxy on its context. Its seconds are its own computation plus the full time
    of every pass (and the model build) it used."""
    used = {pass_of(n) for n in pneeds if n not in ("arch", "weights")}
    overhead = sum(pass_time.get(k, 0.0) for k in used) + (setup.seconds if pneeds - {"arch"} else 0.0)
    if setup.error and pneeds - {"arch"}:
        return ScoreResult(float("nan"), "error", overhead, setup.error)
    for n in sorted(pneeds):
        if n in pass_errors:
            return ScoreResult(float("nan"), "error", overhead, f"pass for '{n}' failed: {pass_errors[n]}")
    t0 = time.perf_counter()
    opts = getattr(p, "options", None)  # the layer set ctx.weight_layers() uses for this proxy (LAYER_SETS)
    ctx.layer_set = opts.get("layers", "zcbench") if getattr(p, "weight_layer_option", False) else "zcbench"
    try:
        with torch.no_grad():
            v = p.score(ctx)
        v = float(v)
        return ScoreResult(v, classify(v), overhead + time.perf_counter() - t0)
    except NotApplicable as exc:
        return ScoreResult(float("nan"), "n/a", overhead + time.perf_counter() - t0, str(exc))
    except Exception as exc:  # noqa: BLE001 - one bad proxy must not kill the others
        return ScoreResult(float("nan"), "error", overhead + time.perf_counter() - t0, one_line(exc))


def score_arch(space, arch, proxies: list[Proxy], *, seed: int = 0, batch_size: int = 16, seq_len: int = 128,
               device: str = "cpu", train_mode: bool = False, stats: dict | None = None,
               hvp_chunk: int | None = None) -> dict[str, ScoreResult]:
    """Score one architecture with every proxy in ``proxies`` through shared passes.

    ``hvp_chunk``: compute the ``hvp`` need (GraSP) over chunks of this many examples after a
    plain standard backward (see ``zcbench.proxy``): bounded memory, one more forward+backward,
    the same value to round-off. None (default): in the standard backward, whole minibatch.

    Returns ``{proxy name: ScoreResult}`` in the order of ``proxies``. When ``stats`` is a
    dict it is filled with this call's counters (``forward``, ``backward``), ``seconds`` per
    pass kind, ``pass_seconds``, ``setup_seconds`` and ``total_seconds``.
    """
    check_needs(proxies)
    t_start = time.perf_counter()
    results: dict[str, ScoreResult] = {}
    run_stats: dict = {}  # shared by every context: pass counters and seconds for the whole call
    all_needs = set().union(*(set(p.needs) for p in proxies)) if proxies else set()
    setup = build_model_and_batch(space, arch, all_needs, seed=seed, batch_size=batch_size, seq_len=seq_len,
                                  device=device, train_mode=train_mode)
    shared_cache: dict = {}
    synflow_done = None  # (captured, error, seconds) of the one synflow pass
    try:
        for obj, members in group_by_objective(space, proxies, results):
            ctx = Context(space=space, arch=arch, seed=seed, batch_size=batch_size, seq_len=seq_len,
                          device=str(device), train_mode=train_mode, stats=run_stats, cache=shared_cache,
                          objective=obj, model=setup.model, batch=setup.batch, hvp_chunk=hvp_chunk)
            ready = setup.error is None and setup.model is not None
            # eval mode: ZiCo's own passes draw nothing, so they may wait (train mode keeps the
            # order in which dropout masks are drawn)
            pass_errors, pass_time = run_passes(ctx, members, defer_multi_batch=not train_mode) if ready else ({}, {})
            run_stats.setdefault("pass_seconds", {}).update(pass_time)

            # Stages, each scored before the next pass runs, with the captures no later proxy
            # reads freed first (free_captures): 0 the standard pass's proxies; 1 ZiCo's own group
            # passes (deferred); 2 GraSP's H g by chunks (hvp_chunk) or by a forward difference
            # (hvp_fd); 3 the synflow pass.
            def deferred(p: Proxy) -> set:
                pn = set(p.needs)
                return ({1} if ready and multi_batch_pending(ctx, pn, pass_errors) else set()) \
                    | ({2} if ready and setup.batch is not None and (hvp_deferred(ctx, pn) or "hvp_fd" in pn)
                       else set()) \
                    | ({3} if "synflow" in pn else set())

            waits = {p.name: deferred(p) for p in members}
            by_stage = {p.name: max(waits[p.name] | {0}) for p in members}
            for k in range(4):
                now = [p for p in members if by_stage[p.name] == k]
                if k > 0 and not any(k in w for w in waits.values()):
                    continue
                if k > 0 and ready:
                    rest = [p for p in members if by_stage[p.name] >= k]
                    free_captures(ctx, set().union(*(set(p.needs) for p in rest)),
                                  set().union(*(set(p.taps) for p in rest)))
                if k == 1:
                    multi_batch_pass(ctx, pass_errors, pass_time)
                    run_stats["pass_seconds"]["multi_batch"] = pass_time["multi_batch"]
                elif k == 2:
                    waiting = set().union(*(set(p.needs) for p in members if 2 in waits[p.name]))
                    if hvp_deferred(ctx, waiting):
                        t0 = time.perf_counter()
                        err = pass_errors.get("backward") or _run(ctx, _chunked_hvp)
                        if err:
                            pass_errors["hvp"] = err
                        pass_time["standard"] = pass_time.get("standard", 0.0) + time.perf_counter() - t0
                        run_stats["pass_seconds"]["standard"] = pass_time["standard"]
                    if "hvp_fd" in waiting:
                        t0 = time.perf_counter()
                        err = pass_errors.get("backward") or _run(ctx, _fd_hvp)
                        if err:
                            pass_errors["hvp_fd"] = err
                        pass_time["hvp_fd"] = time.perf_counter() - t0
                        run_stats["pass_seconds"]["hvp_fd"] = pass_time["hvp_fd"]
                elif k == 3:
                    if synflow_done is None:  # the (objective-free) pass runs once, last
                        t0 = time.perf_counter()
                        err = _run(ctx, _synflow_pass) if ready else None
                        synflow_done = (ctx.synflow, err, time.perf_counter() - t0)
                    ctx.synflow = synflow_done[0]
                    if synflow_done[1]:
                        pass_errors["synflow"] = synflow_done[1]
                    pass_time["synflow"] = synflow_done[2]
                    run_stats["pass_seconds"]["synflow"] = synflow_done[2]
                for p in now:
                    results[p.name] = score_one(p, ctx, set(p.needs), pass_errors, pass_time, setup)
    finally:
        torch.set_grad_enabled(True)
        run_stats["setup_seconds"] = setup.seconds
        run_stats["total_seconds"] = time.perf_counter() - t_start
        if stats is not None:
            stats.clear()
            stats.update(run_stats)
    return {p.name: results[p.name] for p in proxies}
