"""Proxy families for the leaderboard's filter: gradient, activation, attention, data-free, searched.

A proxy class may declare ``family = "..."`` itself (that wins); the proxies shipped with zcbench
are mapped in :data:`PROXY_FAMILY`; any other proxy gets the family its ``needs`` imply
(:func:`family_from_needs`). Used by zcbench.leaderboard and zcbench.submit.
"""
from __future__ import annotations

import zcbench

FAMILIES = ("gradient", "activation", "attention", "data-free", "searched")
FAMILY_TEXT = {
    "gradient": "uses gradients of a loss on one minibatch (saliency, Jacobians, NTK)",
    "activation": "uses activations of a forward pass on one minibatch",
    "attention": "uses attention maps or attention heads",
    "data-free": "needs no data: parameter counts, FLOPs, weights, or an all-ones input (synflow)",
    "searched": "a formula found by an automatic proxy search",
}
#: Family of the proxies shipped with zcbench. A proxy class may set ``family = "..."`` itself
#: (that wins); otherwise unknown names fall back to :func:`family_from_needs`.
PROXY_FAMILY = {
    "params": "data-free", "params_nonembedding": "data-free", "flops": "data-free", "sept": "data-free",
    "zerolm": "data-free", "synflow": "data-free", "logsynflow": "data-free", "dss": "data-free",
    "grad_norm": "gradient", "snip": "gradient", "grasp": "gradient", "fisher": "gradient", "plain": "gradient",
    "synaptic_saliency": "gradient", "synaptic_diversity": "gradient", "jacob_cov": "gradient",
    "jacobian_cosine": "gradient", "ntkt": "gradient", "ntsr": "gradient", "zico": "gradient",
    "nwot": "activation", "meco": "activation", "activation_distance": "activation",
    "length_distortion": "activation",
    "attention_confidence": "attention", "attention_confidence_qkv": "attention",
    "softmax_confidence": "attention", "head_importance": "attention",
    "lpzero": "searched", "eznas": "searched",
}
#: Family of parametrised names ``prefix:...`` (registered with ``register_proxy_prefix``).
PREFIX_FAMILY = {"searched": "searched"}
_NEEDS_FAMILY = (("synflow", "data-free"), ("attn_query", "attention"), ("head_mask", "attention"),
                 ("backward", "gradient"), ("hvp", "gradient"), ("hvp_fd", "gradient"), ("jacobian", "gradient"),
                 ("multi_batch", "gradient"), ("layer_outputs", "gradient"), ("layer_grad_stats", "gradient"),
                 ("per_example", "gradient"), ("forward", "activation"), ("layer_stats", "activation"))


def family_from_needs(needs) -> str:
    """The family implied by a proxy's ``needs`` (what the engine must compute for it)."""
    needs = set(needs or ())
    for need, fam in _NEEDS_FAMILY:
        if need in needs:
            return fam
    return "data-free"


def proxy_family(name: str) -> str:
    """Family of a proxy: its class attribute ``family``, else :data:`PROXY_FAMILY`, else its needs."""
    base = name.split("[")[0].split(":")[0]
    if ":" in name and base in PREFIX_FAMILY:
        return PREFIX_FAMILY[base]
    if ":" in name:  # a combination such as rankfuse:[ntkt,sept]: the family of its first member
        members = [m for m in name.split(":", 1)[1].strip("[]").split(",") if m.strip()]
        if members:
            return proxy_family(members[0].strip())
    try:
        p = zcbench.get_proxy(base)
    except Exception:
        p = None
    fam = getattr(type(p), "family", None) if p is not None else None
    if fam in FAMILIES:
        return fam
    if base in PROXY_FAMILY:
        return PROXY_FAMILY[base]
    return family_from_needs(getattr(p, "needs", ())) if p is not None else "data-free"
