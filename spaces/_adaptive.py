"""Adaptive input embedding and projected adaptive log-softmax (shared by the LTS spaces).

Both LTS backbones (GPT-2 "flex" and Transformer-XL, Javaheripi et al., NeurIPS
2022, code in microsoft/archai) read and write tokens through the adaptive
input representation of Baevski & Auli (ICLR 2019) and the adaptive softmax of
Grave et al. (ICML 2017), in the "projected" variant of NVIDIA's Transformer-XL
code that archai reuses. This module re-implements the two layers with the same
parameter shapes and sharing, written from the description of that code:

Vocabulary bands
    ``clean_cutoffs(cutoffs, n_token)`` turns the configured cut-offs into band
    ends with archai's rule (``AdaptiveEmbedding.clean_cutoffs`` in
    microsoft/archai ``archai/nlp/models/model_utils/adaptive_embedding.py``):
    the first entry is always kept; the following ones are read left to right
    (each must exceed the one before) and the list is cut *before* the first
    one larger than ``n_token`` — that entry and all after it are dropped; a
    first entry above ``n_token`` becomes ``n_token``; ``n_token`` is appended
    when the last end is smaller. So the LTS GPT-2 WikiText-103 configs'
    ``[19997, 39997, 199997, 50264]`` (n_token 50264) give the bands
    ``[0, 19997) [19997, 39997) [39997, 50264)``, the Transformer-XL configs'
    ``[19997, 39997, 199997, 267736]`` give four bands, and the GPT-2 LM1B
    configs' ``[59997, 99997, 639997, 50264]`` give one band ``[0, 50264)``
    (no adaptive softmax clusters).

Adaptive embedding (``AdaptiveEmbedding``)
    ``div_val == 1``: one table ``n_token x d_embed`` plus, when
    ``d_embed != d_proj``, one projection ``d_proj x d_embed``.
    ``div_val > 1``: band ``i`` has a table ``(r_i - l_i) x d_embed // div_val**i``
    and always a projection ``d_proj x d_embed // div_val**i``.
    The output is multiplied by ``sqrt(d_proj)``.

Projected adaptive log-softmax (``ProjectedAdaptiveLogSoftmax``)
    Head = the first band plus one logit per tail cluster (``cluster_weight``
    ``n_clusters x d_embed``, ``cluster_bias`` ``n_clusters``). Output weights are
    the embedding tables when ``tie_weight`` (archai always ties in LTS), else own
    tables of the same shapes. Output biases are own parameters: one
    ``n_token`` vector (``div_val == 1``, sliced per band) or one per band. A
    band whose ``tie_projs`` entry is true reuses the embedding's projection for
    that band (the only one when ``div_val == 1``); an untied band owns a
    ``d_proj x d_emb_i`` projection, except that with ``div_val == 1`` and
    ``d_embed == d_proj`` no projection exists at all.

Parameter attribution (see the spaces' ``param_counts``): the embedding tables
and embedding projections belong to the embedding (archai's ``AdaEmb`` bucket,
which counts the ``AdaptiveEmbedding`` module); everything the softmax owns
(cluster weight/bias, output biases, untied projections, untied tables) is
counted only in the total. Tied tensors are owned by the embedding and are not
registered again under the softmax, so ``model.parameters()`` sees them once,
as ``sum(p.numel() for p in model.parameters())`` in archai does.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def clean_cutoffs(cutoffs: list[int] | None, n_token: int) -> list[int]:
    """Band end indices as archai computes them (see module docstring)."""
    cut = [int(c) for c in cutoffs] if cutoffs else [n_token]
    out = [cut[0]]
    for c in cut[1:]:
        if c <= out[-1]:
            raise ValueError(f"cutoffs must increase until the first entry above n_token: {cutoffs}")
        if c > n_token:  # archai trims the list here: this entry and all after it are dropped
            break
        out.append(c)
    if out[-1] > n_token:  # only the first entry can still exceed n_token
        out[-1] = n_token
    if out[-1] < n_token:
        out.append(n_token)
    if out[0] <= 0 or any(b <= a for a, b in zip(out, out[1:])):
        raise ValueError(f"cutoffs {cutoffs} give empty bands for n_token={n_token}")
    return out


def band_dims(d_embed: int, div_val: int, n_bands: int) -> list[int]:
    """Embedding width of each band: ``d_embed // div_val**i`` (all ``d_embed`` when div_val is 1)."""
    if div_val == 1:
        return [d_embed] * n_bands
    return [d_embed // (div_val ** i) for i in range(n_bands)]


class AdaptiveEmbedding(nn.Module):
    """Token ids -> ``(..., d_proj)`` through per-band tables and projections, times ``sqrt(d_proj)``."""

    def __init__(self, n_token: int, d_embed: int, d_proj: int, cutoffs: list[int], div_val: int = 1):
        super().__init__()
        self.n_token, self.d_embed, self.d_proj, self.div_val = n_token, d_embed, d_proj, div_val
        self.cutoffs = clean_cutoffs(cutoffs, n_token)
        self.bounds = [0] + self.cutoffs
        self.scale = math.sqrt(d_proj)
        self.emb_layers = nn.ModuleList()
        self.emb_projs = nn.ParameterList()
        if div_val == 1:
            self.emb_layers.append(nn.Embedding(n_token, d_embed))
            if d_proj != d_embed:
                self.emb_projs.append(nn.Parameter(torch.empty(d_proj, d_embed)))
        else:
            for i, d in enumerate(band_dims(d_embed, div_val, len(self.cutoffs))):
                if d < 1:
                    raise ValueError(f"d_embed={d_embed} // div_val**{i} is 0")
                self.emb_layers.append(nn.Embedding(self.bounds[i + 1] - self.bounds[i], d))
                self.emb_projs.append(nn.Parameter(torch.empty(d_proj, d)))

    def proj_for_band(self, i: int) -> torch.Tensor | None:
        """The embedding projection the softmax shares for band ``i`` (archai's rule)."""
        if len(self.emb_projs) == 0:
            return None
        return self.emb_projs[0] if len(self.emb_projs) == 1 else self.emb_projs[i]

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        if self.div_val == 1:
            out = self.emb_layers[0](ids)
            if len(self.emb_projs):
                out = F.linear(out, self.emb_projs[0])
            return out * self.scale
        flat = ids.reshape(-1)
        out = flat.new_zeros((flat.numel(), self.d_proj), dtype=self.emb_projs[0].dtype)
        for i, (lo, hi) in enumerate(zip(self.bounds[:-1], self.bounds[1:])):
            idx = ((flat >= lo) & (flat < hi)).nonzero(as_tuple=True)[0]
            if idx.numel() == 0:
                continue
            emb = F.linear(self.emb_layers[i](flat[idx] - lo), self.emb_projs[i])
            out = out.index_copy(0, idx, emb.to(out.dtype))
        return out.view(*ids.shape, self.d_proj) * self.scale


class ProjectedAdaptiveLogSoftmax(nn.Module):
    """Adaptive softmax over bands; ``forward(hidden, target)`` returns the per-token NLL.

    ``embedding`` is the model's :class:`AdaptiveEmbedding`; with ``tie_weight``
    its tables serve as output weights and tied bands reuse its projections.
    The embedding is referenced, not registered, so shared tensors keep a single
    owner (the embedding) in ``named_parameters``.
    """

    def __init__(self, n_token: int, d_embed: int, d_proj: int, cutoffs: list[int], div_val: int,
                 tie_projs: list[bool], embedding: AdaptiveEmbedding | None, tie_weight: bool = True):
        super().__init__()
        self.n_token, self.d_embed, self.d_proj, self.div_val = n_token, d_embed, d_proj, div_val
        self.cutoffs = clean_cutoffs(cutoffs, n_token)
        self.bounds = [0] + self.cutoffs
        self.n_clusters = len(self.cutoffs) - 1
        tie_projs = list(tie_projs)[: len(self.cutoffs)]
        if len(tie_projs) != len(self.cutoffs):
            raise ValueError(f"tie_projs needs {len(self.cutoffs)} entries, got {len(tie_projs)}")
        self.tie_projs = tie_projs
        if (tie_weight or any(tie_projs)) and embedding is None:
            raise ValueError("tied weights or projections need the model's AdaptiveEmbedding")
        self._emb = [embedding]  # a list: not registered as a child module
        self.tie_weight = tie_weight
        dims = band_dims(d_embed, div_val, len(self.cutoffs))

        if self.n_clusters > 0:
            self.cluster_weight = nn.Parameter(torch.empty(self.n_clusters, d_embed))
            self.cluster_bias = nn.Parameter(torch.empty(self.n_clusters))
        self.out_biases = nn.ParameterList()
        self.out_weights = nn.ParameterList()  # only when not tied
        # own projections, keyed by band index (string keys for ParameterDict)
        self.out_projs = nn.ParameterDict()
        if div_val == 1:
            self.out_biases.append(nn.Parameter(torch.empty(n_token)))
            if not tie_weight:
                self.out_weights.append(nn.Parameter(torch.empty(n_token, d_embed)))
            if d_proj != d_embed:
                for i, tied in enumerate(tie_projs):
                    if not tied:
                        self.out_projs[str(i)] = nn.Parameter(torch.empty(d_proj, d_embed))
        else:
            for i, d in enumerate(dims):
                self.out_biases.append(nn.Parameter(torch.empty(self.bounds[i + 1] - self.bounds[i])))
                if not tie_weight:
                    self.out_weights.append(nn.Parameter(torch.empty(self.bounds[i + 1] - self.bounds[i], d)))
                if not tie_projs[i]:
                    self.out_projs[str(i)] = nn.Parameter(torch.empty(d_proj, d))

    # ---- per-band pieces ---------------------------------------------------
    def _proj(self, i: int) -> torch.Tensor | None:
        if self.tie_projs[i]:
            return self._emb[0].proj_for_band(i)
        return self.out_projs[str(i)] if str(i) in self.out_projs else None

    def _weight_bias(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        lo, hi = self.bounds[i], self.bounds[i + 1]
        if self.div_val == 1:
            w = self._emb[0].emb_layers[0].weight if self.tie_weight else self.out_weights[0]
            return w[lo:hi], self.out_biases[0][lo:hi]
        w = self._emb[0].emb_layers[i].weight if self.tie_weight else self.out_weights[i]
        return w, self.out_biases[i]

    @staticmethod
    def _logits(h: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, proj: torch.Tensor | None):
        if proj is not None:
            h = h @ proj  # (N, d_proj) @ (d_proj, d_emb_i)
        return F.linear(h, weight, bias)

    def forward(self, hidden: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """``hidden`` (N, d_proj), ``target`` (N,) -> NLL per token (N,), in input order."""
        w0, b0 = self._weight_bias(0)
        if self.n_clusters > 0:
            w0 = torch.cat([w0, self.cluster_weight], 0)
            b0 = torch.cat([b0, self.cluster_bias], 0)
        head_logprob = F.log_softmax(self._logits(hidden, w0, b0, self._proj(0)), dim=-1)
        nll = hidden.new_zeros(target.shape, dtype=head_logprob.dtype)
        c0 = self.cutoffs[0]
        for i, (lo, hi) in enumerate(zip(self.bounds[:-1], self.bounds[1:])):
            idx = ((target >= lo) & (target < hi)).nonzero(as_tuple=True)[0]
            if idx.numel() == 0:
                continue
            t = target[idx] - lo
            if i == 0:
                lp = head_logprob[idx].gather(1, t[:, None]).squeeze(1)
            else:
                w, b = self._weight_bias(i)
                tail = F.log_softmax(self._logits(hidden[idx], w, b, self._proj(i)), dim=-1)
                lp = head_logprob[idx, c0 + i - 1] + tail.gather(1, t[:, None]).squeeze(1)
            nll = nll.index_copy(0, idx, -lp)
        return nll


def init_adaptive(emb: AdaptiveEmbedding, crit: ProjectedAdaptiveLogSoftmax, weight_std: float,
                  proj_std: float) -> None:
    """archai's initialisation of the two layers: tables/cluster weights N(0, weight_std),
    projections N(0, proj_std), biases zero."""
    with torch.no_grad():
        for layer in emb.emb_layers:
            nn.init.normal_(layer.weight, 0.0, weight_std)
        for p in emb.emb_projs:
            nn.init.normal_(p, 0.0, proj_std)
        if crit.n_clusters > 0:
            nn.init.normal_(crit.cluster_weight, 0.0, weight_std)
            nn.init.zeros_(crit.cluster_bias)
        for p in crit.out_biases:
            nn.init.zeros_(p)
        for p in crit.out_weights:
            nn.init.normal_(p, 0.0, weight_std)
        for p in crit.out_projs.values():
            nn.init.normal_(p, 0.0, proj_std)
