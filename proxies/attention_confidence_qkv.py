"""attention_confidence_qkv — "head confidence" exactly as the training-free-nas code computes it.

Formula (Serianni & Kalita, "Training-free Neural Architecture Search for RNNs and
Transformers", ACL 2023, after Voita et al., ACL 2019; their ``attention_confidence``
applied to the hooked "head outputs", the code LPZero's ``eval_rank_bert.py`` ran for its
Table 3 "Attention Confidence")::

    conf_m = mean_{b, d} max_t P_m[b, t, d]
    score  = sum_m conf_m

over every input projection ``m`` of every attention operation — the modules the upstream
code hooks by name: ``query``, ``key``, ``value`` (self-attention and span-conv attention),
``input`` (linear transforms), ``weight`` (WMA's mixing matrix) — with ``P_m`` the
projection's output (batch x tokens x features) on the real minibatch, max over the token
axis. A fused q/k/v projection (GPT-2's ``c_attn``, Transformer-XL's ``qkv_net``, ViT's
``qkv``) counts as its three equal parts. Attention output projections, relative-position
projections and the other linear layers of an operation are not input projections and are
left out, as upstream. n/a when the model has no such projection.

Measured (docs/reproduction.md): on FlexiBERT with the authors' networks
(``variant=upstream_pt``) this gives Kendall tau 0.477 / Pearson r 0.667 over the 500
records, the published 0.475 / 0.666; zcbench's ``attention_confidence`` (the same
statistic on the heads' outputs) gives 0.19 / 0.24 there.

Deviation: the projection outputs are read in the engine's standard forward (``layer_stats``:
reduced as they are produced, nothing held; eval mode, no dropout); upstream ran the bare
backbone in train mode.

Layers counted: the nn.Linear layers tagged attn (their outputs).
"""
from __future__ import annotations

import torch

from zcbench.proxy import NotApplicable, Proxy
from zcbench.registry import register_proxy
from zcbench.proxies._common import d

PROJECTIONS = ("query", "key", "value", "input", "weight")  # the upstream hook names
FUSED_QKV = ("c_attn", "qkv_net", "qkv")  # one Linear holding q, k and v side by side


@register_proxy("attention_confidence_qkv")
class AttentionConfidenceQKV(Proxy):
    needs = frozenset({"layer_stats"})
    citation = "Serianni & Kalita, ACL 2023 (training-free-nas head confidence); Voita et al., ACL 2019"
    layers_counted = "the nn.Linear layers tagged attn (their outputs)"
    defaults = {}

    def layer_stat(self, layer, out, grad):
        """mean_{b,d} max_t of each projection part, reduced as the forward produces the output."""
        leaf = layer.name.rsplit(".", 1)[-1]
        if layer.role != "attn" or (leaf not in PROJECTIONS and leaf not in FUSED_QKV):
            return None
        if out.dim() != 3:  # (batch, tokens, features) in every built-in space
            return None
        parts = out.chunk(3, dim=-1) if leaf in FUSED_QKV else (out,)
        return [float(torch.mean(d(p).amax(dim=1))) for p in parts]

    def score(self, ctx) -> float:
        total, found = 0.0, False
        stats = ctx.layer_stats_of(self)
        for wl in ctx.weight_layers(roles=("attn",)):
            confs = stats.get(wl.name)
            if confs is None:
                continue
            found = True
            for c in confs:
                total += c
        if not found:
            raise NotApplicable("the model has no attention input projection (query/key/value/input/weight or fused qkv)")
        return total
