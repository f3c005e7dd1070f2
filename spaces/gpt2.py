"""GPT-2 LTS search space: heterogeneous GPT-2 decoders with adaptive input/softmax.

Benchmark: LiteTransformerSearch (Javaheripi et al., "LiteTransformerSearch:
Training-free Neural Architecture Search for Efficient Language Models",
NeurIPS 2022), table ``random_GPT2_wt103``: 200 randomly sampled decoders
trained on WikiText-103, with ``valid_ppl`` / ``test_ppl`` (lower is better)
and archai's parameter counts. The data are read verbatim from
``<data_dir>/lts/random_GPT2_wt103`` (upstream: microsoft/archai
``archai/nlp/nas/saved_logs``, mirrored in pprp/LPZero ``saved_logs``).

Model (``GPT2Flex``) — archai's ``hf_gpt2_flex`` (HuggingFace GPT-2 with
per-layer ``n_head`` / ``d_inner`` and NVIDIA's adaptive embedding/softmax),
re-written here in one file:

* input: adaptive embedding (``_adaptive.AdaptiveEmbedding``, scaled by
  ``sqrt(d_model)``) + learned positions ``wpe`` (``tgt_len x d_model``; archai
  maps ``tgt_len`` to GPT-2's ``n_positions``), embedding dropout 0;
* ``n_layer`` pre-LN blocks: ``x + attn(ln_1(x))`` then ``x + mlp(ln_2(x))``;
  attention has a fused ``d_model -> 3 d_model`` projection with bias,
  ``n_head[i]`` heads of ``d_model // n_head[i]``, causal softmax scaled by
  ``1/sqrt(d_head)``, output projection ``d_model -> d_model`` with bias; the
  MLP is ``d_model -> d_inner[i] -> d_model`` with biases and GPT-2's tanh-GELU
  (squared ReLU when ``primer_square``); residual dropout 0.1 (space option
  ``dropout``), attention dropout 0;
* final LayerNorm ``ln_f`` (eps 1e-5 everywhere), then the projected adaptive
  log-softmax tied to the input embedding (``tie_weight``, ``tie_projs``).
  ``forward`` returns the mean NLL of the targets (no full-vocabulary logits).

Initialisation (HF GPT-2 ``_init_weights`` as archai extends it): linear and
embedding weights N(0, 0.02) (``weight_init_std``), biases 0, LayerNorm 1/0,
adaptive projections N(0, 0.01) (``proj_init_std``), cluster weights
N(0, 0.02), and the two residual output projections (``attn.c_proj``,
``mlp.c_proj``) N(0, 0.02 / sqrt(2 n_layer)). Seeded by the caller.

Parameter counting (``param_counts``) — archai's ``HfGPT2Flex.get_params`` as
used to write ``params_summary.yaml`` (archai ``analyze_results.py
--analyze_params``):
``AdaEmb`` = parameters of the ``AdaptiveEmbedding`` module + the position
table (``n_positions * d_model``); ``Attn`` / ``FFN`` = all parameters of the
attention / MLP modules (weights and biases); ``nonembedding`` = Attn + FFN +
every LayerNorm (two per block and ``ln_f``); ``total`` =
``sum(p.numel() for p in model.parameters())`` — distinct tensors, so tied
tables/projections once, plus what only the softmax owns (cluster weight and
bias, the ``n_token`` output biases, the untied head projection). Here
``lts_counts`` reads the same buckets off the model built on the meta device:
modules tagged ``embedding`` (``wte``, ``wpe``) -> AdaEmb, ``attn`` -> Attn,
``ffn`` -> FFN (each with its whole subtree), plus every ``nn.LayerNorm`` for
nonembedding, and all distinct parameters for the total. Measured: identical
to the upstream table for all 200 configurations (tests/test_space_gpt2.py).

Search space (``sample`` / ``mutate`` / ``validate``):
``n_layer`` in 2..16, ``d_model`` in {64, 128, 256, 512}, per-layer ``n_head``
in {2, 4, 8}, per-layer ``d_inner`` an integer in
``[max(512, int(1.7 d_model)), 2048]``, ``d_embed`` in {128, 256, 512},
``div_val`` in {1, 2, 4}; vocabulary, cut-offs, tying and ``tgt_len`` fixed to
the benchmark's values. Sources: the ``d_model`` and ``n_head`` choices and
the 512..2048 ``d_inner`` span are archai's LTS ``Evolution`` defaults
(``d_model_choice=[64, 128, 256, 512]``, ``n_head_choice=[2, 4, 8]``,
``d_inner_choice=range(512, 2048, 50)``; archai ``nlp/nas/evolution.py``);
every integer in the span is allowed because the stored nets use arbitrary
integers (e.g. 1071); the ``d_inner >= int(1.7 d_model)`` rule is that file's
``satisfy_constraints``; ``div_val`` choices come from archai's
``HfGPT2FlexSearchConfig`` (``[4, 2, 1]``); ``n_layer`` 2..16 and ``d_embed``
{128, 256, 512} are the ranges the 200 stored configurations span (the random
benchmark's own generator is not public). Every stored configuration lies
inside this space (checked on load and by the tests). ``d_inner >= 2 d_model``
does *not* hold upstream for GPT-2 (32 of the 200 stored nets have a layer with
``d_model = 512`` and ``d_inner`` in 873..1023), so the 1.7 rule is used. The
sampler draws each gene
independently and uniformly (like archai's ``random_sample``), so it is
uniform per gene, not uniform over the set of networks.
"""
from __future__ import annotations

import copy
import math

import torch
import torch.nn.functional as F
from torch import nn

from zcbench.introspect import Tap, index_taps, tag
from zcbench.registry import register_space
from zcbench.space import Arch, ModelOutput, genes_hash
from zcbench.spaces._lts import LTSSpace, lts_counts, role_subtree_params  # noqa: F401 (re-exported)
from zcbench.spaces._adaptive import AdaptiveEmbedding, ProjectedAdaptiveLogSoftmax, init_adaptive

# ---- constants of the benchmark (identical in all 200 stored configs; checked on load) ----
WEIGHT_INIT_STD = 0.02
PROJ_INIT_STD = 0.01
DROPOUT = 0.1
DROPATT = 0.0
LN_EPS = 1e-5

# ---- search-space ranges (see module docstring for sources) ----
N_LAYER = tuple(range(2, 17))
D_MODEL = (64, 128, 256, 512)
N_HEAD = (2, 4, 8)
D_INNER_MIN, D_INNER_MAX = 512, 2048
D_EMBED = (128, 256, 512)
DIV_VAL = (1, 2, 4)
FIXED = {  # genes the benchmark never varies
    "n_token": 50264,
    "cutoffs": [19997, 39997, 50264],
    "tie_weight": True,
    "tie_projs": [False, True, True],
    "tgt_len": 192,
    "primer_square": False,
}


# ============================================================================
# Model
# ============================================================================
class CausalSelfAttention(nn.Module):
    def __init__(self, d_model: int, n_head: int, dropatt: float, dropout: float):
        super().__init__()
        if d_model % n_head:
            raise ValueError(f"d_model={d_model} is not divisible by n_head={n_head}")
        self.n_head, self.d_head = n_head, d_model // n_head
        self.c_attn = nn.Linear(d_model, 3 * d_model)
        self.c_proj = nn.Linear(d_model, d_model)
        self.attn_drop = nn.Dropout(dropatt)
        self.resid_drop = nn.Dropout(dropout)
        self.attn_probs = Tap("attn_probs")
        self.head_out = Tap("head_out")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, D = x.shape
        q, k, v = self.c_attn(x).split(D, dim=-1)
        q, k, v = (t.view(B, T, self.n_head, self.d_head).transpose(1, 2) for t in (q, k, v))
        scores = (q @ k.transpose(-1, -2)) / math.sqrt(self.d_head)
        causal = torch.ones(T, T, dtype=torch.bool, device=x.device).tril()
        scores = scores.masked_fill(~causal, torch.finfo(scores.dtype).min)
        probs = self.attn_probs(F.softmax(scores, dim=-1))
        heads = self.head_out(self.attn_drop(probs) @ v)  # (B, H, T, Dh)
        out = heads.transpose(1, 2).reshape(B, T, D)
        return self.resid_drop(self.c_proj(out))


class MLP(nn.Module):
    def __init__(self, d_model: int, d_inner: int, dropout: float, primer_square: bool):
        super().__init__()
        self.c_fc = nn.Linear(d_model, d_inner)
        self.c_proj = nn.Linear(d_inner, d_model)
        self.primer_square = primer_square
        self.act = Tap("ffn_act")
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.c_fc(x)
        h = F.relu(h) ** 2 if self.primer_square else F.gelu(h, approximate="tanh")
        return self.drop(self.c_proj(self.act(h)))


class Block(nn.Module):
    def __init__(self, d_model: int, n_head: int, d_inner: int, primer_square: bool, dropout: float,
                 dropatt: float = DROPATT):
        super().__init__()
        self.ln_1 = tag(nn.LayerNorm(d_model, eps=LN_EPS), "norm")
        self.attn = tag(CausalSelfAttention(d_model, n_head, dropatt, dropout), "attn")
        self.ln_2 = tag(nn.LayerNorm(d_model, eps=LN_EPS), "norm")
        self.mlp = tag(MLP(d_model, d_inner, dropout, primer_square), "ffn")
        self.out = Tap("block_out")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x))
        x = x + self.mlp(self.ln_2(x))
        return self.out(x)


class GPT2Flex(nn.Module):
    """Heterogeneous GPT-2 with adaptive input embedding and adaptive softmax (see module docstring)."""

    def __init__(self, genes: dict, dropout: float | None = None):
        """``genes``: per-layer lists; ``dropout`` / ``dropatt`` / ``weight_init_std`` /
        ``proj_init_std`` default to the WikiText-103 tables' values when absent;
        ``dropout`` (argument) overrides the genes' value."""
        super().__init__()
        g = genes
        self.genes = copy.deepcopy(g)
        dropout = g.get("dropout", DROPOUT) if dropout is None else dropout
        self.weight_init_std = float(g.get("weight_init_std", WEIGHT_INIT_STD))
        self.proj_init_std = float(g.get("proj_init_std", PROJ_INIT_STD))
        d_model, n_layer = g["d_model"], g["n_layer"]
        self.n_positions = g["tgt_len"]
        self.wte = tag(AdaptiveEmbedding(g["n_token"], g["d_embed"], d_model, g["cutoffs"], g["div_val"]), "embedding")
        self.wpe = tag(nn.Embedding(self.n_positions, d_model), "embedding")
        self.drop = nn.Dropout(0.0)  # archai's embd_pdrop default
        self.emb_tap = Tap("embedding")
        self.h = nn.ModuleList(
            tag(Block(d_model, g["n_head"][i], g["d_inner"][i], g["primer_square"], dropout, g.get("dropatt", DROPATT)),
                "block") for i in range(n_layer)
        )
        self.ln_f = tag(nn.LayerNorm(d_model, eps=LN_EPS), "norm")
        self.crit = tag(ProjectedAdaptiveLogSoftmax(g["n_token"], g["d_embed"], d_model, g["cutoffs"], g["div_val"],
                                                    g["tie_projs"], self.wte, g["tie_weight"]), "output")
        index_taps(self)
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self) -> None:
        if self.ln_f.weight.is_meta:  # shapes only (parameter counting): nothing to initialise
            return
        n_layer = len(self.h)
        std = self.weight_init_std
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0.0, std)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.LayerNorm):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        nn.init.normal_(self.wpe.weight, 0.0, std)
        init_adaptive(self.wte, self.crit, std, self.proj_init_std)
        for blk in self.h:  # GPT-2's scaled init of the residual output projections
            for lin in (blk.attn.c_proj, blk.mlp.c_proj):
                nn.init.normal_(lin.weight, 0.0, std / math.sqrt(2 * n_layer))

    def forward(self, inputs: torch.Tensor, targets: torch.Tensor | None = None) -> ModelOutput:
        B, T = inputs.shape
        if T > self.n_positions:
            raise ValueError(f"sequence length {T} exceeds the model's {self.n_positions} positions")
        pos = torch.arange(T, device=inputs.device)
        x = self.emb_tap(self.drop(self.wte(inputs) + self.wpe(pos)[None]))
        for blk in self.h:
            x = blk(x)
        hidden = self.ln_f(x)
        loss = None
        if targets is not None:
            loss = self.crit(hidden.reshape(-1, hidden.size(-1)), targets.reshape(-1)).mean()
        return ModelOutput(loss=loss, hidden=hidden)


# ============================================================================
# Spaces (the LTS table reader, genes and sampling: spaces/_lts.py)
# ============================================================================
# ETAS (Yang & Liu, Findings of ACL 2024, Section 3.2 / Appendix 3.2): its own GPT-2 space for
# sampling. n_layer 2..16, n_head {2, 4, 8}, d_model 128..1024 step 64, d_inner 256..4096 step
# 64 with d_inner > 2 d_model, d_embed {128, 256, 512}, adaptive input factor fixed to k = 4
# (div_val 4). Vocabulary, bands, tying and tgt_len: the WikiText-103 table's. No trained
# table of it is public (ETAS's 500 networks per corpus are not released).
ETAS_SUBSPACE = {
    "N_LAYER": list(range(2, 17)),
    "D_MODEL": list(range(128, 1025, 64)),
    "N_HEAD": [2, 4, 8],
    "D_INNER_MIN": 256,
    "D_INNER_MAX": 4096,
    "D_INNER_STEP": 64,
    "d_inner_factor": 2.0,
    "d_inner_strict": True,
    "D_EMBED": [128, 256, 512],
    "DIV_VAL": [4],
}


@register_space("gpt2")
class GPT2Space(LTSSpace):
    description = "GPT-2 LTS (Javaheripi et al., NeurIPS 2022): 200 heterogeneous decoders, WikiText-103 perplexity"
    table = "random_GPT2_wt103"
    N_LAYER, D_MODEL, N_HEAD, D_EMBED, DIV_VAL = N_LAYER, D_MODEL, N_HEAD, D_EMBED, DIV_VAL
    d_inner_factor = 1.7
    FIXED = FIXED
    SUBSPACE_PRESETS = {"etas": ETAS_SUBSPACE}
    counting = "hf_gpt2_flex"  # archai model whose get_params wrote the table's params_summary.yaml

    def _model(self, genes: dict) -> nn.Module:
        return GPT2Flex(genes)

    def summary(self, arch: Arch) -> dict:
        return {**super().summary(arch), "seq_len": int(self.cfg.get("seq_len", arch.genes["tgt_len"]))}

    def param_counts(self, arch: Arch) -> dict[str, int]:
        """archai's five counts of the table's convention (``counting``): ``hf_gpt2_flex`` reads
        them off the GPT-2 model built on the meta device (``lts_counts``); ``mem_transformer``
        counts the same configuration as archai's ``MemTransformerLM`` (see ``GPT2LM1BSpace``)."""
        if self.counting == "hf_gpt2_flex":
            return super().param_counts(arch)
        from zcbench.spaces.transxl import MemTransformerLM

        self.check_genes(arch.genes)
        genes = {k: v for k, v in self.build_settings(arch.genes).items() if k != "tgt_len"}
        genes["primer_square"] = False  # MemTransformerLM's counts do not depend on the activation
        with torch.device("meta"):
            model = MemTransformerLM(genes)
        return lts_counts(model)


LM1B_FIXED = {  # the LM1B table's table-wide settings (identical in all 200 configs)
    "n_token": 50264,
    "cutoffs": [50264],  # archai's cleaning of [59997, 99997, 639997, 50264]: one band
    "tie_weight": True,
    "tie_projs": [False],
    "tgt_len": 32,
    "primer_square": False,
}


@register_space("gpt2_lm1b")
class GPT2LM1BSpace(GPT2Space):
    """GPT-2 LTS on One Billion Word: the LM1B table's own settings, counted as archai counted it.

    Networks: the same GPT-2 model as ``gpt2`` built from each config (one vocabulary band,
    untied output projection, ``d_embed = d_model``, 32 positions). Parameter counts: the
    table's ``params_summary.yaml`` equals, for all 200 configs, archai's
    ``MemTransformerLM.get_params`` of the same configuration (Transformer-XL attention with
    ``r_net`` and its LayerNorm inside, no position table, no final LayerNorm), which is what
    archai's ``gather_results.py --analyze_params`` computes with its default ``--model_type
    mem_transformer``: a counting quirk (evidence: docs/spaces/lts.md). ``param_counts``
    reproduces it so ``params`` / ``params_nonembedding`` rank like the published table.
    """

    description = ("GPT-2 LTS on One Billion Word (Javaheripi et al., NeurIPS 2022): 200 heterogeneous decoders, "
                   "LM1B perplexity")
    table = "random_GPT2_lm1b"
    D_MODEL = (128, 256, 512)
    D_EMBED = (128, 256, 512)
    FIXED = LM1B_FIXED
    counting = "mem_transformer"
    SUBSPACE_PRESETS = {}

    def validate(self, genes: dict) -> None:
        super().validate(genes)
        if "d_embed" in genes and genes["d_embed"] != genes["d_model"] and not (
                self._stored and any(a.id == genes_hash(genes) for a in self._stored)):
            raise ValueError(f"{self.name}: d_embed={genes['d_embed']} must equal d_model={genes['d_model']} "
                             f"(the LM1B configs set d_embed -1)")

    def sample(self, rng) -> Arch:
        """As ``gpt2``'s sampler, with ``d_embed = d_model`` (the table's rule)."""
        n = rng.choice(self.N_LAYER)
        d_model = rng.choice(self.D_MODEL)
        heads = [rng.choice(self.N_HEAD) for _ in range(n)]
        inner = [self._draw_d_inner(rng, d_model) for _ in range(n)]
        genes = {"n_layer": n, "d_model": d_model, "n_head": heads, "d_inner": inner, "d_embed": d_model,
                 "div_val": rng.choice(self.DIV_VAL), **copy.deepcopy(self.FIXED)}
        self.validate(genes)
        return self.make_arch(genes)

    def mutate(self, arch: Arch, rng) -> Arch:
        """As ``gpt2``'s, keeping ``d_embed = d_model``: a ``d_model`` change moves both, and
        ``d_embed`` is not mutated on its own."""
        keys = [k for k in self.VARIABLE if k != "d_embed" and self.mutable(arch.genes, k)]
        key = rng.choice(keys)
        if key != "d_model":
            return self.mutate_gene(arch, rng, key)
        g = copy.deepcopy(arch.genes)
        g["d_model"] = g["d_embed"] = rng.choice(self.width_choices(g))
        self.validate(g)
        return self.make_arch(g)
