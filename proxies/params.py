"""Parameter-count baselines: the bar every zero-cost proxy has to clear.

``params``: all trainable parameters of the network, counted once per distinct
tensor (tied weights once), in the benchmark's own convention
(``space.param_counts(arch)["total"]``).

``params_nonembedding``: LTS's "decoder parameters" (Javaheripi et al., NeurIPS
2022, LiteTransformerSearch): everything except the input embedding and output
(softmax) layers — ``space.param_counts(arch)["nonembedding"]``. LTS reports
this as the best training-free predictor of perplexity for GPT-2/Transformer-XL.

Neither needs a model pass: counts come from the space's model built on the
meta device.

Layers counted: none (parameter counts from the space's own convention, no model is built).
"""
from __future__ import annotations

from zcbench.proxy import Proxy
from zcbench.registry import register_proxy


def _counts(ctx) -> dict:
    if "param_counts" not in ctx.cache:
        ctx.cache["param_counts"] = ctx.space.param_counts(ctx.arch)
    return ctx.cache["param_counts"]


@register_proxy("params")
class Params(Proxy):
    """#Params: score = sum of numel(theta) over the distinct trainable tensors theta (higher = predicted better)."""

    needs = frozenset({"arch"})
    citation = "baseline; see Abdelfattah et al., ICLR 2021; Javaheripi et al., NeurIPS 2022"
    layers_counted = "none: parameter counts (the space's convention, meta device)"

    def score(self, ctx) -> float:
        return float(_counts(ctx)["total"])


@register_proxy("params_nonembedding")
class ParamsNonEmbedding(Proxy):
    """Decoder parameters, LTS's proxy: score = #params - #params(input embedding) - #params(output softmax)."""

    needs = frozenset({"arch"})
    citation = "Javaheripi et al., LiteTransformerSearch, NeurIPS 2022"
    layers_counted = "none: parameter counts (the space's convention, meta device)"

    def score(self, ctx) -> float:
        return float(_counts(ctx)["nonembedding"])
