"""eznas — EZNAS-A, the zero-cost program discovered by Akhauri et al.

Formula (Akhauri, Munoz, Jain & Iyer, "EZNAS: Evolving Zero-Cost Proxies For Neural
Architecture Scoring", NeurIPS 2022; the published program, as implemented in
LPZero's/PicoNAS's ``eznas-a``)::

    for every weight layer l with gradient G_l = dL/dW_l:
        s_l = || sigmoid( log|det( sign(G_l) )| ) ||_F
    eznas = mean_l s_l

``log|det|`` is taken over the last two dimensions (EZNAS scored convolutions, where
these are the k x k kernels), so it is defined only where they form a square matrix:
on Transformers only the square projections (e.g. GPT-2's attention output
projection, d x d) qualify, the other layers are skipped, and a model with none is
n/a. Expect a near-degenerate proxy on Transformers: the log-determinant of a random
d x d sign matrix is of order d log d, so the sigmoid saturates at 1 for every
non-singular layer (0.5 for a singular one). That is a finding about the proxy,
reproduced faithfully, not a bug. Real minibatch and loss (EZNAS's "T3 gradient on
data"); eval mode.

Variant ``variant="lpzero"`` is the program LPZero actually ran on FlexiBERT
(pprp/LPZero ``lpzero/predictor/measures/eznas.py`` at aef14eeb, the number behind LPZero
Table 3's "EZNAS"), which differs from the published one in three ways::

    S_l   = sign(G_l)                 over the attention operations' input projections only
                                       (q/k/v, WMA weight, LT input, span-conv kernel/value;
                                       no output projection, FFN or embedding)
    s_l   = sigmoid( log|det( S_l S_l^T )| )     (an out x out Gram: non-square layers count)
    eznas = sum_l s_l                            (a sum, not a mean)

Each term is ~1 when ``sign(G_l)`` has full row rank and 0 when it is rank-deficient, so
this variant is close to a count of attention projections — which is why it correlates
with FlexiBERT's GLUE scores (depth) while the published mean does not.

Variant ``variant="lpzero_gpt2"`` is the same file's GPT-2 branch (behind LPZero Table 4):
every weight layer except the output head, and — because HF's ``Conv1D`` stores weights
as (in, out) — the Gram is over the fan-in, ``sign(G)^T sign(G)`` in ``nn.Linear``
layout; summed over layers. A layer with fan-in larger than its fan-out (GPT-2's second
FFN layer) has a singular Gram and contributes 0, so the score is ~3 x n_layer.

Layers counted: the weight layers (GPT-2 program) or the attention input projections (BERT
program); layers=reference drops nn.Conv1d. Default layer set ``zcbench`` (nn.Linear +
nn.Conv1d + nn.Conv2d)
because FlexiBERT's DSC convolutions (nn.Conv1d) are weight layers of those networks and the
stored runs count them; ``layers=reference`` counts nn.Linear + nn.Conv2d only, the layer set
of Abdelfattah et al.'s ``get_layer_metric_array`` and ZiCo's official code (on FlexiBERT DSC
networks this moves ZiCo by 8-10 %; elsewhere both sets are the same layers).
"""
from __future__ import annotations

import torch

from zcbench.proxy import NotApplicable, Proxy
from zcbench.registry import register_proxy
from zcbench.proxies._common import attention_input_layers, d, layers_or_na


@register_proxy("eznas")
class EZNAS(Proxy):
    needs = frozenset({"backward"})
    citation = "Akhauri et al., EZNAS, NeurIPS 2022"
    weight_layer_option = True
    layers_counted = ("the weight layers (GPT-2 program) or the attention input projections (BERT program); "
                      "layers=reference drops nn.Conv1d")
    defaults = {"objective": None, "include_output": False, "variant": "published"}
    added_options = frozenset({"variant"})  # at its default, runs stored before it existed stay valid

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        if self.options["variant"] not in ("published", "lpzero", "lpzero_gpt2"):
            raise ValueError("eznas: variant must be 'published', 'lpzero' or 'lpzero_gpt2', "
                             f"got {self.options['variant']!r}")

    def score(self, ctx) -> float:
        if self.options["variant"] != "published":
            return self._lpzero(ctx)
        vals = []
        for wl in layers_or_na(ctx, "weight layers", include_output=self.options["include_output"]):
            g = ctx.grad(wl.weight)
            if g is None or g.dim() < 2 or g.shape[-1] != g.shape[-2]:
                continue
            logabsdet = torch.linalg.slogdet(torch.sign(d(g))).logabsdet
            vals.append(float(torch.linalg.vector_norm(torch.sigmoid(logabsdet))))
        if not vals:
            raise NotApplicable("no weight layer has square trailing dimensions")
        return sum(vals) / len(vals)

    def _lpzero(self, ctx) -> float:
        gpt2 = self.options["variant"] == "lpzero_gpt2"
        layers = layers_or_na(ctx, "weight layers") if gpt2 else attention_input_layers(ctx)
        if not layers:
            raise NotApplicable("the model has no attention input projection")
        total = 0.0
        for wl in layers:
            g = ctx.grad(wl.weight)
            if g is None:
                continue
            sg = torch.sign(d(g)).reshape(g.shape[0], -1)
            gram = sg.T @ sg if gpt2 else sg @ sg.T  # fan-in Gram (Conv1D layout upstream) / fan-out Gram
            total += float(torch.sigmoid(torch.linalg.slogdet(gram).logabsdet))
        return total
