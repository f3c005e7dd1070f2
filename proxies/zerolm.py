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

needs = {"weights"}: one model build at ``torch.manual_seed(seed)``, no data.
"""
from __future__ import annotations

import torch

from zcbench.engine import NotApplicable, Proxy
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
    key = ("zerolm_capacities", capacity, bool(exact_svd))
    if key not in ctx.cache:
        out = []
        for role in ("attn", "ffn"):
            layers = ctx.weight_layers(roles=(role,))
            out.append(sum(matrix_capacity(wl.weight, capacity, exact_svd) for wl in layers))
        if not ctx.weight_layers(roles=("attn", "ffn")):
            raise NotApplicable("the model has no weight layers tagged 'attn' or 'ffn'")
        ctx.cache[key] = (out[0], out[1])
    return ctx.cache[key]


@register_proxy("zerolm")
class ZeroLM(Proxy):
    """alpha * C_attn + (1 - alpha) * C_ffn from weight singular values (data-free)."""

    version = "1"
    needs = frozenset({"weights"})
    citation = "Chen, Ding, Wang, Pedrycz, ZeroLM, arXiv:2503.18646 (2025)"
    defaults = {"alpha": 0.5, "capacity": "mean_sq", "exact_svd": False}

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        a = float(self.options["alpha"])
        if not 0.0 <= a <= 1.0:
            raise ValueError(f"zerolm: alpha={a} must lie in [0, 1]")
        if self.options["capacity"] not in CAPACITIES:
            raise ValueError(f"zerolm: capacity={self.options['capacity']!r}; valid: {', '.join(CAPACITIES)}")
        self.options["alpha"] = a

    def score(self, ctx) -> float:
        c_attn, c_ffn = module_capacities(ctx, self.options["capacity"], self.options["exact_svd"])
        a = self.options["alpha"]
        return a * c_attn + (1.0 - a) * c_ffn
