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
