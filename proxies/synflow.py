"""synflow — synaptic flow of the linearised network, data-free.

Formula (Tanaka et al., "Pruning neural networks without any data by iteratively
conserving synaptic flow", NeurIPS 2020; as a proxy: Abdelfattah et al., ICLR 2021;
for LTS/GPT-2 as in LPZero's ``synflow.py``, inherited from archai)::

    R       = output of the network with |theta| and an all-ones input
    synflow = sum_l sum_ij | W_l,ij * dR/dW_l,ij |        (W_l = |theta| of layer l)

The shared ``synflow`` pass (see the engine) replaces every parameter by its absolute
value in float64 (LPZero: ``state_dict`` abs + ``net.double()``), feeds one example of
ones (``torch.ones_like``: token id 1 at every position for text, as LPZero's
``torch.ones(...).long()`` batch of size 1; an all-ones image for vision), and takes
``R`` = sum of the logits when the model returns them, otherwise a fixed positive
projection of the final hidden state, ``R = sum_t <h_t, |u|>``.

Deviations, all forced by the model contract and documented in docs/proxies.md:
LPZero's GPT-2 code also overwrote the word embedding with ones (keeping the
positions); we keep the network's own |embedding| of token 1. The adaptive-softmax
GPT-2/Transformer-XL models return no logits (LPZero summed the head cluster's
logits); the positive projection stands in for them. The sum of a LayerNorm output
cannot be used: with gamma=1 it is constant, so its gradient vanishes.

Layers counted: every nn.Linear / nn.Conv1d / nn.Conv2d weight layer except the output
head (include_output=True adds it); layers=reference: nn.Linear / nn.Conv2d only. Default
layer set ``zcbench`` (nn.Linear + nn.Conv1d + nn.Conv2d)
because FlexiBERT's DSC convolutions (nn.Conv1d) are weight layers of those networks and the
stored runs count them; ``layers=reference`` counts nn.Linear + nn.Conv2d only, the layer set
of Abdelfattah et al.'s ``get_layer_metric_array`` and ZiCo's official code (on FlexiBERT DSC
networks this moves ZiCo by 8-10 %; elsewhere both sets are the same layers).
"""
from __future__ import annotations

from zcbench.proxy import Proxy
from zcbench.registry import register_proxy
from zcbench.proxies._common import d, layers_or_na


@register_proxy("synflow")
class Synflow(Proxy):
    needs = frozenset({"synflow"})
    citation = "Tanaka et al., SynFlow, NeurIPS 2020; Abdelfattah et al., ICLR 2021"
    weight_layer_option = True
    layers_counted = ("every nn.Linear / nn.Conv1d / nn.Conv2d weight layer except the output head "
                      "(include_output=True adds it); layers=reference: nn.Linear / nn.Conv2d only")
    defaults = {"include_output": False}

    def score(self, ctx) -> float:
        total = 0.0
        for wl in layers_or_na(ctx, "weight layers", include_output=self.options["include_output"]):
            w, g = ctx.synflow["weights"].get(wl.name), ctx.synflow["grads"].get(wl.name)
            if w is not None and g is not None:
                total += float((d(w) * d(g)).abs().sum())
        return total
