"""How proxies see inside any space's model, whatever the architecture.

A space's model marks what proxies need in two ways:

* **Taps** — ``Tap(kind)`` is an identity module placed on a tensor of interest;
  the model calls ``x = self.some_tap(x)``. The engine hooks taps to record the
  tensor (and its gradient) or to replace it (e.g. head masks, synflow inputs).
  Kinds and shapes:

  ========== ============================================ ==========================
  kind       tensor                                        shape
  ========== ============================================ ==========================
  embedding  input representation fed to the first block  (B, T, D)
  attn_probs attention/softmax map per head, rows sum to 1 (B, H, T, T)
  head_out   per-head output before the output projection (B, H, T, Dh)
  ffn_act    FFN hidden activation after the nonlinearity  (B, T, F)
  block_out  output of each block (residual stream)        (B, T, D)
  ========== ============================================ ==========================

  A layer without attention (e.g. FlexiBERT's linear-transform ops) has no
  ``attn_probs`` tap; proxies that need one skip that layer, and a model with
  none at all makes such proxies "not applicable" (score recorded as NaN with
  status ``n/a``). Taps carry ``layer`` (block index) once ``index_taps`` ran.

* **Roles** — ``tag(module, role)`` marks a sub-module as ``attn``, ``ffn``,
  ``embedding`` (input embedding, adaptive or not), ``output`` (output head /
  softmax projections), ``norm`` or ``block``. Parameters are attributed to the
  innermost tagged ancestor; ``params_by_role`` counts them with shared
  (tied) tensors counted once, in the first role that reaches them.
"""
from __future__ import annotations

from collections import defaultdict
from typing import Iterator

import torch
from torch import nn

TAP_KINDS = ("embedding", "attn_probs", "head_out", "ffn_act", "block_out")
ROLES = ("attn", "ffn", "embedding", "output", "norm", "block")


class Tap(nn.Module):
    """Identity module marking a tensor that proxies may observe or replace."""

    def __init__(self, kind: str):
        super().__init__()
        if kind not in TAP_KINDS:
            raise ValueError(f"unknown tap kind {kind!r}; valid: {', '.join(TAP_KINDS)}")
        self.kind = kind
        self.layer: int | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x

    def extra_repr(self) -> str:
        return f"kind={self.kind}, layer={self.layer}"


def tag(module: nn.Module, role: str) -> nn.Module:
    """Mark ``module`` with a role; returns the module so it can wrap assignments."""
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; valid: {', '.join(ROLES)}")
    module.zc_role = role
    return module


def role_of(module: nn.Module) -> str | None:
    return getattr(module, "zc_role", None)


def taps(model: nn.Module, kind: str | None = None) -> list[Tap]:
    """All taps of ``model`` (of one kind if given) in module order."""
    return [m for m in model.modules() if isinstance(m, Tap) and (kind is None or m.kind == kind)]


def blocks(model: nn.Module) -> list[nn.Module]:
    """The model's blocks (modules tagged ``block``) in order."""
    return [m for m in model.modules() if role_of(m) == "block"]


def index_taps(model: nn.Module) -> None:
    """Set ``tap.layer`` to the index of the enclosing block (None outside blocks)."""
    for i, blk in enumerate(blocks(model)):
        for m in blk.modules():
            if isinstance(m, Tap):
                m.layer = i


def named_parameters_by_role(model: nn.Module) -> Iterator[tuple[str, str | None, nn.Parameter]]:
    """Yield ``(name, role, param)`` once per distinct parameter tensor.

    The role is that of the innermost tagged module containing the parameter
    (``block`` counts as untagged for attribution: a block's own norms etc. are
    only ``block``). Shared parameters are reported once, at first occurrence.
    """
    seen: set[int] = set()

    def walk(mod: nn.Module, prefix: str, role: str | None):
        r = role_of(mod)
        if r is not None:
            role = r
        for pname, p in mod.named_parameters(recurse=False):
            if p is None or id(p) in seen:
                continue
            seen.add(id(p))
            yield (f"{prefix}{pname}", role, p)
        for cname, child in mod.named_children():
            yield from walk(child, f"{prefix}{cname}.", role)

    yield from walk(model, "", None)


def params_by_role(model: nn.Module, trainable_only: bool = True) -> dict[str, int]:
    """Parameter counts per role, plus ``total``; untagged parameters count as ``other``."""
    out: dict[str, int] = defaultdict(int)
    for _, role, p in named_parameters_by_role(model):
        if trainable_only and not p.requires_grad:
            continue
        out[role or "other"] += p.numel()
        out["total"] += p.numel()
    return dict(out)


def weight_matrices(model: nn.Module, roles: tuple[str, ...] | None = None):
    """Yield ``(name, role, weight)`` for every ≥2-D weight (linear/conv/embedding)."""
    for name, role, p in named_parameters_by_role(model):
        if p.dim() >= 2 and (roles is None or role in roles):
            yield name, role, p


# ============================================================================
# Automatic roles and taps for models not written for zcbench (``zcbench.score``)
# ============================================================================
# Hugging Face ``transformers`` models (GPT-2, BERT, ELECTRA, ViT, ...) and models built from
# ``torch.nn.MultiheadAttention`` carry no ``Tap``/``tag`` marks. ``auto_roles`` finds the same
# standard roles by structure and hooks taps onto them, so every proxy sees them as it sees a
# space's own model. Detection rules (tested in tests/test_api.py):
#
# * blocks: the largest ``nn.ModuleList`` whose children share one class and contain attention
#   (a module whose class name ends in ``Attention`` or an ``nn.MultiheadAttention``);
# * ``attn``: the outermost attention module of each block; ``ffn``: the block's other children
#   holding weights (HF's ``mlp`` or ``intermediate`` + ``output``); ``norm``: every LayerNorm;
# * ``embedding``: ``nn.Embedding`` modules and modules named ``*Embeddings``, outside the blocks;
#   ``output``: the other weight-holding modules outside the blocks (LM / classifier heads, pooler);
# * taps: ``embedding`` = the hidden states entering the first block; ``block_out`` = each block's
#   output; ``attn_probs`` = the (B, H, T, T) attention map an attention module returns (HF eager
#   attention; ``nn.MultiheadAttention`` is asked for per-head weights); ``head_out`` = the input of
#   the attention module's last linear layer (its output projection) split into heads;
#   ``ffn_act`` = the input of the last linear layer of the block's FFN.
#
# What cannot be found is absent, and proxies needing it report ``n/a`` (the engine's rule).

def _weight_like(m: nn.Module) -> bool:
    return isinstance(m, (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Embedding))


def _is_attention(m: nn.Module) -> bool:
    return isinstance(m, nn.MultiheadAttention) or type(m).__name__.endswith("Attention")


def _has_params(m: nn.Module) -> bool:
    return any(True for _ in m.parameters())


def linearize_conv1d(model: nn.Module) -> int:
    """Replace Hugging Face ``Conv1D`` layers (GPT-2's ``x @ W + b``, W of shape (in, out)) by
    equivalent ``nn.Linear`` layers (W transposed), in place; returns how many were replaced.

    The engine's weight layers are ``nn.Linear``/``nn.Conv1d``/``nn.Conv2d`` (Abdelfattah et al.'s
    convention); after this, GPT-2's projections are weight layers with the usual (out, in) layout.
    The function computed is unchanged.
    """
    n = 0
    for parent in list(model.modules()):
        for cname, child in list(parent.named_children()):
            if type(child).__name__ == "Conv1D" and hasattr(child, "nf") and getattr(child, "weight", None) is not None:
                w = child.weight
                lin = nn.Linear(w.shape[0], w.shape[1], bias=child.bias is not None, device=w.device, dtype=w.dtype)
                with torch.no_grad():
                    lin.weight.copy_(w.t())
                    if child.bias is not None:
                        lin.bias.copy_(child.bias)
                lin.weight.requires_grad_(w.requires_grad)
                setattr(parent, cname, lin)
                n += 1
    return n


def find_blocks(model: nn.Module) -> list[nn.Module]:
    """The repeated blocks: the largest ``nn.ModuleList`` of one class whose children hold attention."""
    best: list[nn.Module] = []
    for m in model.modules():
        if isinstance(m, nn.ModuleList) and len(m) > 0:
            kids = list(m)
            if len({type(k) for k in kids}) == 1 and any(_is_attention(s) for s in kids[0].modules()) \
                    and not _is_attention(kids[0]) and len(kids) > len(best):
                best = kids
    return best


def _num_heads(attn: nn.Module, model: nn.Module) -> int | None:
    for m in attn.modules():
        for name in ("num_heads", "num_attention_heads", "n_head", "n_heads"):
            v = getattr(m, name, None)
            if isinstance(v, int) and v > 0:
                return v
    cfg = getattr(model, "config", None)
    for name in ("num_attention_heads", "n_head", "num_heads"):
        v = getattr(cfg, name, None)
        if isinstance(v, int) and v > 0:
            return v
    return None


class AutoRoles:
    """What ``auto_roles`` found and attached; ``remove()`` detaches every hook."""

    def __init__(self):
        self.taps = nn.ModuleList()
        self.handles: list = []
        self.roles: dict[str, int] = defaultdict(int)  # role -> modules tagged
        self.blocks: list[dict] = []  # per block: n_head, d_inner (None when not found)

    @property
    def found(self) -> dict:
        """``{"roles": {role: modules}, "taps": {kind: taps}}``."""
        kinds: dict[str, int] = defaultdict(int)
        for t in self.taps:
            kinds[t.kind] += 1
        return {"roles": dict(self.roles), "taps": dict(kinds)}

    def tap(self, kind: str, layer: int | None) -> Tap:
        t = Tap(kind)
        t.layer = layer
        self.taps.append(t)
        return t

    def remove(self) -> None:
        for h in self.handles:
            h.remove()
        self.handles = []


def _first_tensor(out):
    if torch.is_tensor(out):
        return out
    if isinstance(out, (tuple, list)) and out and torch.is_tensor(out[0]):
        return out[0]
    return getattr(out, "last_hidden_state", None)


def auto_roles(model: nn.Module) -> AutoRoles:
    """Tag the standard roles of ``model`` and hook taps onto it (see the rules above).

    Modules already tagged (a zcbench space's own model) are left as they are. The taps live in
    ``AutoRoles.taps``; attach that ``ModuleList`` to a module that wraps ``model`` so the engine
    finds them.
    """
    ar = AutoRoles()
    blocks_ = find_blocks(model)
    in_blocks = {id(s) for b in blocks_ for s in b.modules()}
    for m in model.modules():
        if isinstance(m, nn.LayerNorm) and role_of(m) is None:
            tag(m, "norm")
    # outside the blocks: embeddings and output heads, walking down the ancestors of the blocks
    anc = set()
    if blocks_:
        for m in model.modules():
            if any(id(s) == id(blocks_[0]) for s in m.modules()):
                anc.add(id(m))

    def outside(node: nn.Module):
        for child in node.children():
            if id(child) in in_blocks or role_of(child) is not None:
                continue
            if isinstance(child, nn.ModuleList) and any(id(k) in in_blocks for k in child):
                continue
            if id(child) in anc:
                outside(child)
            elif isinstance(child, nn.Embedding) or type(child).__name__.endswith("Embeddings"):
                tag(child, "embedding")
                ar.roles["embedding"] += 1
            elif _has_params(child) and blocks_:
                tag(child, "output")
                ar.roles["output"] += 1

    outside(model)
    if not blocks_:  # a bare attention module, or a model of several: tag attention only
        for m in model.modules():
            if isinstance(m, nn.MultiheadAttention) and role_of(m) is None:
                tag(m, "attn")
                ar.roles["attn"] += 1
                _hook_mha(m, ar, None)
        return ar

    def emb_hook(mod, args, kwargs, _tap=ar.tap("embedding", None)):
        if args and torch.is_tensor(args[0]):
            return (_tap(args[0]),) + tuple(args[1:]), kwargs
        if torch.is_tensor(kwargs.get("hidden_states")):
            return args, {**kwargs, "hidden_states": _tap(kwargs["hidden_states"])}
        return None

    ar.handles.append(blocks_[0].register_forward_pre_hook(emb_hook, with_kwargs=True))
    seen_maps: set[int] = set()
    ar.handles.append(model.register_forward_pre_hook(lambda mod, args: seen_maps.clear()))
    for i, blk in enumerate(blocks_):
        if role_of(blk) is None:
            tag(blk, "block")
        ar.roles["block"] += 1
        attn = None
        for cname, child in blk.named_children():
            if attn is None and _is_attention(child):
                attn = child
                if role_of(child) is None:
                    tag(child, "attn")
                ar.roles["attn"] += 1
            elif _has_params(child) and not isinstance(child, nn.LayerNorm) and role_of(child) is None:
                tag(child, "ffn")
                ar.roles["ffn"] += 1
        ffn_lins = [s for c in blk.children() if role_of(c) == "ffn" for s in c.modules() if isinstance(s, nn.Linear)]
        ar.blocks.append({"n_head": _num_heads(attn, model) if attn is not None else 0,
                          "d_inner": ffn_lins[0].out_features if ffn_lins else None})
        if attn is None:
            continue
        # attention maps: from the innermost attention module that returns one (each tensor once)
        if isinstance(attn, nn.MultiheadAttention):
            _hook_mha(attn, ar, i)
        else:
            t_map = ar.tap("attn_probs", i)

            def map_hook(mod, args, out, _tap=t_map):
                if isinstance(out, tuple):
                    for x in out[1:]:
                        if torch.is_tensor(x) and x.dim() == 4 and x.shape[-1] == x.shape[-2] and id(x) not in seen_maps:
                            seen_maps.add(id(x))
                            _tap(x)
                            return None
                return None

            for s in attn.modules():
                if _is_attention(s):
                    ar.handles.append(s.register_forward_hook(map_hook))
            # per-head outputs: the input of the attention module's last linear layer
            lins = [s for s in attn.modules() if isinstance(s, nn.Linear)]
            heads = _num_heads(attn, model)
            if lins and heads:
                t_head = ar.tap("head_out", i)

                def head_hook(mod, args, _tap=t_head, _h=heads):
                    x = args[0]
                    if x.shape[-1] % _h:
                        return None
                    B, T, D = x.shape[0], x.shape[1], x.shape[-1]
                    y = _tap(x.reshape(B, T, _h, D // _h).transpose(1, 2))
                    return (y.transpose(1, 2).reshape(B, T, D),) + tuple(args[1:])

                ar.handles.append(lins[-1].register_forward_pre_hook(head_hook))
        # FFN activation: the input of the last linear layer of the block's FFN modules
        if ffn_lins:
            t_ffn = ar.tap("ffn_act", i)
            ar.handles.append(ffn_lins[-1].register_forward_pre_hook(
                lambda mod, args, _tap=t_ffn: (_tap(args[0]),) + tuple(args[1:])))

        def out_hook(mod, args, out, _tap=ar.tap("block_out", i)):
            t = _first_tensor(out)
            if t is not None:
                _tap(t)
            return None

        ar.handles.append(blk.register_forward_hook(out_hook))
    return ar


def _hook_mha(m: nn.MultiheadAttention, ar: AutoRoles, layer: int | None) -> None:
    """Ask an ``nn.MultiheadAttention`` for per-head weights and tap them as ``attn_probs``."""
    t = ar.tap("attn_probs", layer)
    asked: list[bool] = []

    def pre(mod, args, kwargs):
        asked.append(bool(kwargs.get("need_weights", True)))
        return args, {**kwargs, "need_weights": True, "average_attn_weights": False}

    def post(mod, args, kwargs, out):
        w = t(out[1])
        return (out[0], w if asked.pop() else None)

    ar.handles.append(m.register_forward_pre_hook(pre, with_kwargs=True))
    ar.handles.append(m.register_forward_hook(post, with_kwargs=True))
