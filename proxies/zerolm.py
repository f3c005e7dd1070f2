"""zerolm — data-free module capacity from singular values, balanced between Attention and FFN.

Paper: Z.-S. Chen, H.-W. Ding, X.-J. Wang, W. Pedrycz, "ZeroLM: Data-Free Transformer
Architecture Search for Language Models", arXiv:2503.18646 (2025). Published on
FlexiBERT: Spearman rho ~ 0.76, Kendall tau ~ 0.53.

What the paper states (abstract / summaries we could read): the network is split into
functionally distinct sub-modules, Attention and FFN; each sub-module's *capacity* is a
simple statistic of the singular values of its weight matrices (SVD of the weights at
initialisation, no data, no gradient); the two capacities are combined with a balance
parameter alpha, which is set either by *benchmark sampling* (a few labelled
architectures) or by a *heuristic correlation* strategy (no ground truth).

What we implement::

    cap(W)   = (1 / r) * sum_i sigma_i(W)^2,   r = min(m, n)         (capacity="mean_sq")
             = ||W||_F^2 / min(m, n)
    C_attn   = sum of cap(W) over the weight layers whose role is ``attn``
    C_ffn    = sum of cap(W) over the weight layers whose role is ``ffn``
    zerolm   = alpha * C_attn + (1 - alpha) * C_ffn                    (alpha in [0, 1])

* Weight layers are the engine's ``ctx.weight_layers(roles=...)`` (every ``nn.Linear`` /
  ``nn.Conv1d`` / ``nn.Conv2d`` once; a conv kernel is flattened to (out, fan_in)).
  A fused q/k/v projection (GPT-2's ``c_attn``, Transformer-XL's ``qkv_net``) is one
  matrix; FlexiBERT's linear-transform and span-convolution operations are tagged
  ``attn`` and count as the Attention sub-module of their layer.
* ``capacity`` options: ``mean_sq`` (default, above), ``nuclear`` (sum_i sigma_i),
  ``spectral`` (sigma_max), ``log_sum`` (sum_i log(1 + sigma_i)). Singular values come
  from ``torch.linalg.svdvals`` in float64. For ``mean_sq`` the SVD is not needed:
  sum_i sigma_i^2 = ||W||_F^2 exactly, so by default (``exact_svd=False``) the
  Frobenius norm is used (tests check the identity on real weights).
* The balance is convex, alpha * C_attn + (1 - alpha) * C_ffn. A form
  ``C_ffn + a * C_attn`` (a >= 0) ranks identically with a = alpha / (1 - alpha).

Where the paper is ambiguous or unavailable to us — documented, not guessed silently:

* The exact capacity formula and its normalisation could not be read from any stored
  copy of the paper (only abstracts / summaries). ``mean_sq`` follows a public
  re-implementation that describes ZeroLM's per-matrix quantity as
  ``||W||_F^2 / min(m, n)`` (mean squared singular value); ``nuclear`` is the other
  natural "sum of singular values" reading. At initialisation every space here draws
  weights with a fixed standard deviation, so every capacity is (up to sampling noise)
  a function of the matrix shapes: the proxy is in effect architectural.
* That re-implementation split the q/k/v projection into per-head matrices; we use the
  modules as the spaces define them (fused where fused).
* alpha: the registered default is 0.5 (equal balance); set it per space
  (``proxy_options.zerolm.alpha=0.3``) or fit it with ``zcbench.search.zerolm_alpha``,
  which implements both strategies (see that module for the heuristic's definition).

Ablations of ZeroLM's figures that apply to a data-free proxy (the captions are all we can
read): Fig. 5's FFN-only / Attn-only / Both are option ``blocks=ffn|attn|both`` (default both)
and the named variants ``zerolm_ffn`` / ``zerolm_attn`` (own leaderboard rows); Fig. 3's
"Log Complexity" is read as sum_W log ||W||_F over the same matrices (proxy ``zerolm_logc``;
the figure's text gives no formula). ``python -m zcbench.search.zerolm_ablation`` tabulates all
of them beside #params from the results store (results/zerolm/ablation.md).
Fig. 4 (input data sensitivity) does not apply: the proxy reads no data.

Layers counted: every ``nn.Linear`` / ``nn.Conv1d`` / ``nn.Conv2d`` whose role is ``attn`` or
``ffn`` (embeddings, normalisation and the output head never enter). Conv1d counts here (the
engine's weight-layer set, the default ``layers=zcbench``): FlexiBERT's DSC convolutions are
part of its token-mixing (attention) sub-module, which is the paper's split;
``layers=reference`` drops nn.Conv1d (Abdelfattah et al.'s layer set).

needs = {"weights"}: one model build at ``torch.manual_seed(seed)``, no data.
"""
from __future__ import annotations

import torch

from zcbench.proxy import NotApplicable, Proxy
from zcbench.registry import register_proxy
from zcbench.proxies._common import as_matrix, d

CAPACITIES = ("mean_sq", "nuclear", "spectral", "log_sum")


def matrix_capacity(w: torch.Tensor, capacity: str = "mean_sq", exact_svd: bool = False) -> float:
    """Capacity of one weight matrix (conv kernels flattened per output channel)."""
    m = d(as_matrix(w))
    if capacity == "mean_sq" and not exact_svd:
        return float((m * m).sum()) / min(m.shape)
    s = torch.linalg.svdvals(m)
    if capacity == "mean_sq":
        return float((s * s).sum()) / min(m.shape)
    if capacity == "nuclear":
        return float(s.sum())
    if capacity == "spectral":
        return float(s.max())
    if capacity == "log_sum":
        return float(torch.log1p(s).sum())
    raise ValueError(f"zerolm: capacity={capacity!r}; valid: {', '.join(CAPACITIES)}")


def module_capacities(ctx, capacity: str = "mean_sq", exact_svd: bool = False) -> tuple[float, float]:
    """(C_attn, C_ffn) of the context's model, memoised in ``ctx.cache`` (shared by proxies)."""
    key = ("zerolm_capacities", capacity, bool(exact_svd), ctx.layer_set)
    if key not in ctx.cache:
        out = []
        for role in ("attn", "ffn"):
            layers = ctx.weight_layers(roles=(role,))
            out.append(sum(matrix_capacity(wl.weight, capacity, exact_svd) for wl in layers))
        if not ctx.weight_layers(roles=("attn", "ffn")):
            raise NotApplicable("the model has no weight layers tagged 'attn' or 'ffn'")
        ctx.cache[key] = (out[0], out[1])
    return ctx.cache[key]


BLOCKS = ("both", "attn", "ffn")


def log_complexity(ctx) -> float:
    """Our reading of ZeroLM Fig. 3's "Log Complexity": sum over the attn/ffn weight matrices of log ||W||_F
    (the log of the product of their Frobenius norms, a norm-based complexity measure); proxy ``zerolm_logc``."""
    layers = ctx.weight_layers(roles=("attn", "ffn"))
    if not layers:
        raise NotApplicable("the model has no weight layers tagged 'attn' or 'ffn'")
    return float(sum(torch.log(torch.linalg.vector_norm(d(as_matrix(wl.weight)))) for wl in layers))


@register_proxy("zerolm")
class ZeroLM(Proxy):
    """alpha * C_attn + (1 - alpha) * C_ffn from weight singular values (data-free)."""

    version = "1"
    needs = frozenset({"weights"})
    citation = "Chen, Ding, Wang, Pedrycz, ZeroLM, arXiv:2503.18646 (2025)"
    defaults = {"alpha": 0.5, "capacity": "mean_sq", "exact_svd": False, "blocks": "both"}
    added_options = frozenset({"blocks"})  # at "both" the stored v1 runs keep their keys
    weight_layer_option = True  # option layers=zcbench|reference (an added option too)
    layers_counted = ("the weight matrices tagged attn and ffn (every Linear / Conv1d / Conv2d of a block's "
                      "attention or feed-forward part; embeddings, norms and the output head excluded)")

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        a = float(self.options["alpha"])
        if not 0.0 <= a <= 1.0:
            raise ValueError(f"zerolm: alpha={a} must lie in [0, 1]")
        if self.options["capacity"] not in CAPACITIES:
            raise ValueError(f"zerolm: capacity={self.options['capacity']!r}; valid: {', '.join(CAPACITIES)}")
        if self.options["blocks"] not in BLOCKS:
            raise ValueError(f"zerolm: blocks={self.options['blocks']!r}; valid: {', '.join(BLOCKS)}")
        self.options["alpha"] = a

    def score(self, ctx) -> float:
        c_attn, c_ffn = module_capacities(ctx, self.options["capacity"], self.options["exact_svd"])
        blocks = self.options["blocks"]
        if blocks == "attn":  # ZeroLM Fig. 5's "Attn-only"
            return c_attn
        if blocks == "ffn":  # "FFN-only"
            return c_ffn
        a = self.options["alpha"]
        return a * c_attn + (1.0 - a) * c_ffn


class _ZeroLMBlocks(ZeroLM):
    """A named variant with ``blocks`` fixed (its own leaderboard row; same numbers as ``zerolm blocks=...``)."""

    BLOCKS = "both"
    defaults = {"capacity": "mean_sq", "exact_svd": False, "layers": "zcbench"}
    added_options = frozenset({"layers"})

    def __init__(self, **kwargs):
        Proxy.__init__(self, **kwargs)
        if self.options["capacity"] not in CAPACITIES:
            raise ValueError(f"{self.name}: capacity={self.options['capacity']!r}; valid: {', '.join(CAPACITIES)}")
        self.options.update(alpha=0.5, blocks=self.BLOCKS)

    @property
    def identity_options(self) -> dict:
        out = {k: self.options[k] for k in ("capacity", "exact_svd")}
        return out if self.options.get("layers", "zcbench") == "zcbench" else {**out, "layers": self.options["layers"]}


@register_proxy("zerolm_attn")
class ZeroLMAttn(_ZeroLMBlocks):
    """ZeroLM's Attn-only ablation (Fig. 5): C_attn alone."""

    BLOCKS = "attn"
    layers_counted = "the weight matrices tagged attn (a block's attention / token-mixing part)"


@register_proxy("zerolm_ffn")
class ZeroLMFFN(_ZeroLMBlocks):
    """ZeroLM's FFN-only ablation (Fig. 5): C_ffn alone."""

    BLOCKS = "ffn"
    layers_counted = "the weight matrices tagged ffn (a block's feed-forward part)"


@register_proxy("zerolm_logc")
class ZeroLMLogComplexity(Proxy):
    """ZeroLM Fig. 3's "Log Complexity" as we read it: sum of log ||W||_F over attn/ffn weight matrices."""

    version = "1"
    needs = frozenset({"weights"})
    citation = "Chen, Ding, Wang, Pedrycz, ZeroLM, arXiv:2503.18646 (2025), Fig. 3 (our reading)"
    layers_counted = "the weight matrices tagged attn and ffn (as zerolm)"

    def score(self, ctx) -> float:
        return log_complexity(ctx)
