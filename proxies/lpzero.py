"""lpzero — the zero-cost proxy found by LPZero's symbolic search (Dong et al.).

Published expression (Dong et al., "LPZero: Language Model Zero-cost Proxy Search
from Zero", Findings of EMNLP 2024)::

    phi(theta_H, theta_A) = sum( (1/theta_H)^2 + log(softmax(||theta_A||_F)) )

How we resolve every ambiguity — by reading pprp/LPZero (``runner/eval_searched_bert.py``,
``structures/tree.py``, ``operators/{unary,binary}_ops.py``, ``operators/zc_inputs.py``,
``structures/utils.py``), the code that produced the FlexiBERT result:

* The searched genotype is ``input=['head', 'act'], op=[[15, 3], [8, 13], 0]``, logged as
  ``TREE:(element_wise_revert|element_wise_pow|frobenius_norm|logsoftmax)
  BINARY:(element_wise_sum)``. In that version of ``UNARY_KEYS`` op 15 is
  ``element_wise_revert``, which is ``A * -1`` — a sign flip, not the reciprocal the
  paper's "1/theta_H" suggests. So the H branch is ``(-theta_H)^2 = theta_H^2``.
* ``theta_H`` ("head") is, per encoder layer, the output of the attention operation's
  query projection (``zc_inputs.compute_head`` hooks ``sublayer.query``, else ``key``,
  ``value``, ``input``): a (B, T, D) activation of one forward pass. Here: the engine's
  ``attn_query`` need (the ``query`` linear, the first third of a fused q/k/v projection,
  or the first linear the operation calls — FlexiBERT's linear transforms have
  ``input``).
* ``theta_A`` ("act") is, per layer, the FFN activation after the nonlinearity
  (``intermediate_act_fn`` hook) — our ``ffn_act`` taps.
* ``||theta_A||_F`` is one scalar per layer; ``logsoftmax`` is ``F.log_softmax(x, dim=0)``
  applied to that 0-d tensor, i.e. a softmax over a single element: its log is exactly
  0. The A branch therefore contributes nothing in the reference implementation.
  (Option ``softmax_over="layers"`` takes the other reading — a softmax across the
  layers' norms — for comparison; it is not what produced the published numbers.)
* Each branch is reduced to a float by ``convert_to_float`` (the mean of the tensor),
  the two floats are added per layer (``element_wise_sum``; layers are paired in order
  by ``zip``), and the list is reduced by ``convert_to_float`` again: the **mean over
  layers**, not the sum the paper's Sigma suggests (option ``reduce="sum"``).

So, with the defaults::

    lpzero = mean_l [ mean( (-Q_l)^2 ) + log_softmax(||A_l||_F over one element) ]
           = mean_l mean( Q_l^2 )

where ``Q_l`` is layer l's query projection output on the minibatch. Layers are
paired by block index (upstream: by hook order, identical when every layer has one
attention operation); a block without FFN activations contributes 0 for the A term;
blocks without an attention operation are skipped; a model with none is n/a.

Deviations: one forward in eval mode (upstream: separate forwards in train mode,
dropout 0.1).

Option ``genotype="gpt2"``: the expression that produced LPZero Table 4's GPT-2 row is a
different tree. ``lpzero/predictor/measures/lpzero.py`` (pprp/LPZero 48877572) hard-codes
``input_geno=['weight', 'grad'], op_geno=[[3, 10], [11, 3], 0]`` —
``(element_wise_pow|l1_norm) (softmax|element_wise_pow) BINARY:(element_wise_sum)`` — over
every weight layer but the head::

    lpzero_gpt2 = mean_l [ mean(W_l^2) + mean( softmax(G_l over the fan-in)^2 ) ]

(``l1_norm`` is sum|A| / numel; the softmax runs over dim 0 of HF ``Conv1D``'s (in, out)
weight, i.e. the fan-in; G = dL/dW of the LM loss). Its Spearman rho with -perplexity is
*negative* (-0.98 on the 200 LTS networks, also in the authors' stored score file
``saved_logs/random_GPT2_wt103/lpzero_scores_seed_1111.yaml``); the paper prints its
magnitude. See docs/reproduction.md.

Layers counted: every nn.Linear / nn.Conv1d / nn.Conv2d weight layer except the output
head (W and G inputs); layers=reference: nn.Linear / nn.Conv2d only. Default layer set
``zcbench`` (nn.Linear + nn.Conv1d + nn.Conv2d)
because FlexiBERT's DSC convolutions (nn.Conv1d) are weight layers of those networks and the
stored runs count them; ``layers=reference`` counts nn.Linear + nn.Conv2d only, the layer set
of Abdelfattah et al.'s ``get_layer_metric_array`` and ZiCo's official code (on FlexiBERT DSC
networks this moves ZiCo by 8-10 %; elsewhere both sets are the same layers).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from zcbench.proxy import NotApplicable, Proxy
from zcbench.registry import register_proxy
from zcbench.proxies._common import d, layers_or_na, sum_sq


@register_proxy("lpzero")
class LPZero(Proxy):
    needs = frozenset({"forward", "attn_query"})
    taps = frozenset({"ffn_act"})
    citation = "Dong et al., LPZero: Language Model Zero-cost Proxy Search from Zero, EMNLP Findings 2024"
    weight_layer_option = True
    layers_counted = ("every nn.Linear / nn.Conv1d / nn.Conv2d weight layer except the output head (W and G inputs); "
                      "layers=reference: nn.Linear / nn.Conv2d only")
    defaults = {"softmax_over": "scalar", "reduce": "mean", "genotype": "bert"}
    added_options = frozenset({"genotype"})  # at its default, runs stored before it existed stay valid

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        if self.options["genotype"] not in ("bert", "gpt2"):
            raise ValueError(f"lpzero: genotype must be 'bert' or 'gpt2', got {self.options['genotype']!r}")
        if self.options["genotype"] == "gpt2":
            self.needs, self.taps = frozenset({"backward"}), frozenset()
        if self.options["softmax_over"] not in ("scalar", "layers"):
            raise ValueError("lpzero: softmax_over must be 'scalar' or 'layers'")
        if self.options["reduce"] not in ("mean", "sum"):
            raise ValueError("lpzero: reduce must be 'mean' or 'sum'")

    def query_stat(self, layer, query):
        # mean((-Q)^2), reduced as the forward produces Q: the query is not held (the sign flip squares away)
        return sum_sq(query) / query.numel()

    def score(self, ctx) -> float:
        if self.options["genotype"] == "gpt2":
            return self._gpt2(ctx)
        queries = ctx.query_of(self)
        if not queries:
            raise NotApplicable("the model has no attention operation with a query projection")
        h_terms = [h for _, h in queries]
        blocks = [blk for blk, _ in queries]
        # Frobenius norm of each block's FFN activations (several ffn_act taps: norm of all of them)
        sq = {}
        for rec in ctx.tap_records("ffn_act"):
            sq[rec.layer] = sq.get(rec.layer, 0.0) + sum_sq(rec.activation)
        norms = [sq[b] ** 0.5 if b in sq else None for b in blocks]
        if self.options["softmax_over"] == "scalar":
            a_terms = [float(F.log_softmax(torch.tensor(n, dtype=torch.float64), dim=0)) if n is not None else 0.0
                       for n in norms]
        else:
            present = [i for i, n in enumerate(norms) if n is not None]
            ls = F.log_softmax(torch.tensor([norms[i] for i in present], dtype=torch.float64), dim=0) \
                if present else torch.zeros(0)
            a_terms = [0.0] * len(norms)
            for j, i in enumerate(present):
                a_terms[i] = float(ls[j])
        per_layer = [h + a for h, a in zip(h_terms, a_terms)]
        total = sum(per_layer)
        return total / len(per_layer) if self.options["reduce"] == "mean" else total

    def _gpt2(self, ctx) -> float:
        terms = []
        for wl in layers_or_na(ctx, "weight layers"):
            g = ctx.grad(wl.weight)
            if g is None:
                continue
            w = wl.weight.detach().reshape(wl.weight.shape[0], -1)
            p = F.softmax(d(g).reshape(w.shape), dim=1)  # over the fan-in (Conv1D's dim 0 upstream)
            terms.append(sum_sq(w) / w.numel() + float(p.pow(2).mean()))
        if not terms:
            raise NotApplicable("no weight layer received a gradient")
        return sum(terms) / len(terms)
