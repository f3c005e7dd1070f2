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
  (squared ReLU when ``primer_square``); residual dropout 0.1, attention dropout 0;
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
bias, the ``n_token`` output biases, the untied head projection). Here the
counts are read off the model built on the meta device through the roles of
``zcbench.introspect``: ``embedding`` -> AdaEmb, ``attn`` -> Attn, ``ffn`` ->
FFN, ``norm`` joins nonembedding, ``output`` (softmax-owned) only the total.
Measured: identical to the upstream table for all 200 configurations
(tests/test_space_gpt2.py).

Search space (``sample`` / ``mutate`` / ``validate``):
``n_layer`` in 2..16, ``d_model`` in {64, 128, 256, 512}, per-layer ``n_head``
in {2, 4, 8}, per-layer ``d_inner`` an integer in
``[max(512, int(1.7 d_model)), 2048]``, ``d_embed`` in {128, 256, 512},
``div_val`` in {1, 2, 4}; vocabulary, cut-offs, tying and ``tgt_len`` fixed to
the benchmark's values. Sources: the choices of ``d_model``, ``n_head`` and the
512..2048 ``d_inner`` span are archai's LTS ``Evolution`` defaults
(``d_model_choice=[64, 128, 256, 512]``, ``d_inner_choice=range(512, 2048)``,
``n_head_choice=[2, 4, 8]``, archai ``nlp/nas/evolution.py``); the
``d_inner >= int(1.7 d_model)`` rule is that file's ``satisfy_constraints``;
``div_val`` choices come from archai's ``HfGPT2FlexSearchConfig``
(``[4, 2, 1]``); ``n_layer`` 2..16 and ``d_embed`` {128, 256, 512} are the
ranges the 200 stored configurations span (the random benchmark's own
generator is not public). Every stored configuration lies inside this space
(checked by the tests). ``d_inner >= 2 d_model`` does *not* hold upstream for
GPT-2 (32 of the 200 stored nets have a layer with ``d_model = 512`` and
``d_inner`` in 873..1023), so the 1.7 rule is used. The sampler draws each gene
independently and uniformly (like archai's ``random_sample``), so it is
uniform per gene, not uniform over the set of networks.
"""
from __future__ import annotations

import copy
import math
import random
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from zcbench.data import DataError, read_lts_table
from zcbench.introspect import Tap, index_taps, params_by_role, tag
from zcbench.registry import register_space
from zcbench.space import Arch, Batch, ModelOutput, Space
from zcbench.spaces._adaptive import AdaptiveEmbedding, ProjectedAdaptiveLogSoftmax, clean_cutoffs, init_adaptive

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
GENE_KEYS = ("n_layer", "d_model", "n_head", "d_inner", "d_embed", "div_val") + tuple(FIXED)


def d_inner_floor(d_model: int) -> int:
    """Smallest allowed FFN width for ``d_model``: max(512, int(1.7 d_model)) (archai LTS rule)."""
    return max(D_INNER_MIN, int(1.7 * d_model))


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
    def __init__(self, d_model: int, n_head: int, d_inner: int, primer_square: bool):
        super().__init__()
        self.ln_1 = tag(nn.LayerNorm(d_model, eps=LN_EPS), "norm")
        self.attn = tag(CausalSelfAttention(d_model, n_head, DROPATT, DROPOUT), "attn")
        self.ln_2 = tag(nn.LayerNorm(d_model, eps=LN_EPS), "norm")
        self.mlp = tag(MLP(d_model, d_inner, DROPOUT, primer_square), "ffn")
        self.out = Tap("block_out")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x))
        x = x + self.mlp(self.ln_2(x))
        return self.out(x)


class GPT2Flex(nn.Module):
    """Heterogeneous GPT-2 with adaptive input embedding and adaptive softmax (see module docstring)."""

    def __init__(self, genes: dict):
        super().__init__()
        g = genes
        self.genes = copy.deepcopy(g)
        d_model, n_layer = g["d_model"], g["n_layer"]
        self.n_positions = g["tgt_len"]
        self.wte = tag(AdaptiveEmbedding(g["n_token"], g["d_embed"], d_model, g["cutoffs"], g["div_val"]), "embedding")
        self.wpe = tag(nn.Embedding(self.n_positions, d_model), "embedding")
        self.drop = nn.Dropout(0.0)  # archai's embd_pdrop default
        self.emb_tap = Tap("embedding")
        self.h = nn.ModuleList(
            tag(Block(d_model, g["n_head"][i], g["d_inner"][i], g["primer_square"]), "block") for i in range(n_layer)
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
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0.0, WEIGHT_INIT_STD)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.LayerNorm):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        nn.init.normal_(self.wpe.weight, 0.0, WEIGHT_INIT_STD)
        init_adaptive(self.wte, self.crit, WEIGHT_INIT_STD, PROJ_INIT_STD)
        for blk in self.h:  # GPT-2's scaled init of the residual output projections
            for lin in (blk.attn.c_proj, blk.mlp.c_proj):
                nn.init.normal_(lin.weight, 0.0, WEIGHT_INIT_STD / math.sqrt(2 * n_layer))

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
# Space
# ============================================================================
def genes_from_config(cfg: dict) -> dict:
    """The network-defining genes of an LTS GPT-2 ``model_config.yaml`` (canonical form).

    ``cutoffs`` are stored as archai's effective band ends and ``tie_projs`` cut
    to one entry per band, so equal networks get equal genes (and IDs).
    Settings every stored net shares and our model does not vary are checked.
    """
    for key, want in (("d_head", -1), ("primer_conv", False), ("attn_type", 0), ("pre_lnorm", False),
                      ("weight_init_std", WEIGHT_INIT_STD), ("proj_init_std", PROJ_INIT_STD),
                      ("dropout", DROPOUT), ("dropatt", DROPATT), ("sample_softmax", -1)):
        if key in cfg and cfg[key] != want:
            raise DataError(f"LTS GPT-2 config has {key}={cfg[key]!r}; this space supports only {want!r}")
    n_token = int(cfg["n_token"])
    cutoffs = clean_cutoffs(list(cfg["cutoffs"]), n_token)
    n_layer = int(cfg["n_layer"])
    as_list = lambda v: [int(x) for x in v][:n_layer] if isinstance(v, list) else [int(v)] * n_layer  # noqa: E731
    return {
        "n_layer": n_layer,
        "d_model": int(cfg["d_model"]),
        "n_head": as_list(cfg["n_head"]),
        "d_inner": as_list(cfg["d_inner"]),
        "d_embed": int(cfg["d_model"] if cfg["d_embed"] in (None, -1) else cfg["d_embed"]),
        "div_val": int(cfg["div_val"]),
        "n_token": n_token,
        "cutoffs": cutoffs,
        "tie_weight": bool(cfg["tie_weight"]),
        "tie_projs": [bool(t) for t in cfg["tie_projs"]][: len(cutoffs)],
        "tgt_len": int(cfg["tgt_len"]),
        "primer_square": bool(cfg.get("primer_square", False)),
    }


@register_space("gpt2")
class GPT2Space(Space):
    description = "GPT-2 LTS (Javaheripi et al., NeurIPS 2022): 200 heterogeneous decoders, WikiText-103 perplexity"
    modality = "text"
    metric = "valid_ppl"
    higher_is_better = False
    metrics = ("valid_ppl", "test_ppl")
    table = "random_GPT2_wt103"

    # ---- stored benchmark -------------------------------------------------
    def load_stored(self) -> list[Arch]:
        records = read_lts_table(Path(self.data_dir) / "lts" / self.table)
        out = []
        for r in records:
            genes = genes_from_config(r.model_config)
            self.validate(genes)
            truth = {m: float(r.ppl[m]) for m in self.metrics}
            out.append(Arch(genes=genes, key=r.key, truth=truth, meta={"params": dict(r.params)}))
        return out

    # ---- architectures ----------------------------------------------------
    def validate(self, genes: dict) -> None:
        missing = [k for k in GENE_KEYS if k not in genes]
        if missing:
            raise ValueError(f"gpt2: missing gene(s) {', '.join(missing)}")
        extra = [k for k in genes if k not in GENE_KEYS]
        if extra:
            raise ValueError(f"gpt2: unknown gene(s) {', '.join(extra)}")
        n = genes["n_layer"]
        if n not in N_LAYER:
            raise ValueError(f"gpt2: n_layer={n} outside {N_LAYER[0]}..{N_LAYER[-1]}")
        if genes["d_model"] not in D_MODEL:
            raise ValueError(f"gpt2: d_model={genes['d_model']} not in {D_MODEL}")
        for key in ("n_head", "d_inner"):
            if not isinstance(genes[key], list) or len(genes[key]) != n:
                raise ValueError(f"gpt2: {key} must be a list of n_layer={n} integers")
        if any(h not in N_HEAD for h in genes["n_head"]):
            raise ValueError(f"gpt2: n_head={genes['n_head']} has values outside {N_HEAD}")
        lo = d_inner_floor(genes["d_model"])
        if any(not (lo <= d <= D_INNER_MAX) for d in genes["d_inner"]):
            raise ValueError(f"gpt2: d_inner={genes['d_inner']} has values outside [{lo}, {D_INNER_MAX}] "
                             f"(max(512, int(1.7*d_model)) .. 2048)")
        if genes["d_embed"] not in D_EMBED:
            raise ValueError(f"gpt2: d_embed={genes['d_embed']} not in {D_EMBED}")
        if genes["div_val"] not in DIV_VAL:
            raise ValueError(f"gpt2: div_val={genes['div_val']} not in {DIV_VAL}")
        for key, want in FIXED.items():
            if genes[key] != want:
                raise ValueError(f"gpt2: {key}={genes[key]!r} is fixed to {want!r} in this space")

    def sample(self, rng: random.Random) -> Arch:
        n = rng.choice(N_LAYER)
        d_model = rng.choice(D_MODEL)
        lo = d_inner_floor(d_model)
        genes = {
            "n_layer": n,
            "d_model": d_model,
            "n_head": [rng.choice(N_HEAD) for _ in range(n)],
            "d_inner": [rng.randint(lo, D_INNER_MAX) for _ in range(n)],
            "d_embed": rng.choice(D_EMBED),
            "div_val": rng.choice(DIV_VAL),
            **copy.deepcopy(FIXED),
        }
        self.validate(genes)
        return self.make_arch(genes)

    def mutate(self, arch: Arch, rng: random.Random) -> Arch:
        """Change exactly one gene: ``n_layer``, ``d_model``, ``d_embed``, ``div_val``
        or one layer's ``n_head`` / ``d_inner``. A depth change drops the last
        layers or appends copies of randomly chosen existing layers; a width
        change only picks widths for which every ``d_inner`` stays valid."""
        g = copy.deepcopy(arch.genes)
        key = rng.choice(("n_layer", "d_model", "n_head", "d_inner", "d_embed", "div_val"))
        if key == "n_layer":
            n = rng.choice([v for v in N_LAYER if v != g["n_layer"]])
            while len(g["n_head"]) < n:
                j = rng.randrange(len(g["n_head"]))
                g["n_head"].append(g["n_head"][j])
                g["d_inner"].append(g["d_inner"][j])
            g["n_head"], g["d_inner"], g["n_layer"] = g["n_head"][:n], g["d_inner"][:n], n
        elif key == "d_model":  # only widths that keep every layer's d_inner valid (64..256 always do)
            g["d_model"] = rng.choice([v for v in D_MODEL
                                       if v != g["d_model"] and min(g["d_inner"]) >= d_inner_floor(v)])
        elif key in ("n_head", "d_inner"):
            i = rng.randrange(g["n_layer"])
            if key == "n_head":
                g["n_head"][i] = rng.choice([v for v in N_HEAD if v != g["n_head"][i]])
            else:
                lo = d_inner_floor(g["d_model"])
                g["d_inner"][i] = rng.choice([v for v in range(lo, D_INNER_MAX + 1) if v != g["d_inner"][i]])
        else:
            choices = D_EMBED if key == "d_embed" else DIV_VAL
            g[key] = rng.choice([v for v in choices if v != g[key]])
        self.validate(g)
        return self.make_arch(g)

    def summary(self, arch: Arch) -> dict:
        g = arch.genes
        return {"n_layer": g["n_layer"], "d_model": g["d_model"], "n_head": list(g["n_head"]),
                "d_inner": list(g["d_inner"]), "seq_len": int(self.cfg.get("seq_len", g["tgt_len"]))}

    # ---- models and data --------------------------------------------------
    def build(self, arch: Arch) -> nn.Module:
        self.validate(arch.genes)
        return GPT2Flex(arch.genes)

    def make_batch(self, batch_size: int, seq_len: int, seed: int) -> Batch:
        """``batch_size`` windows of WikiText-2 byte-level BPE (vocabulary capped at
        n_token = 50264), inputs ``w[:, :-1]``, targets ``w[:, 1:]``."""
        from zcbench.text import lm_windows, token_stream

        n_token = FIXED["n_token"]
        stream, prov = token_stream("bpe", n_token, self.data_dir)
        w = lm_windows(stream, batch_size, seq_len, seed)
        info = {**prov, "seed": int(seed), "batch_size": int(batch_size), "seq_len": int(seq_len),
                "vocab_cap": n_token, "space": self.name}
        return Batch(inputs=w[:, :-1].contiguous(), targets=w[:, 1:].contiguous(), info=info)

    def param_counts(self, arch: Arch) -> dict[str, int]:
        """archai's five counts from the model built on the meta device (see module docstring)."""
        with torch.device("meta"):
            model = self.build(arch)
        return lts_counts(params_by_role(model))


def lts_counts(by_role: dict[str, int]) -> dict[str, int]:
    """Map role counts to archai's buckets: embedding -> AdaEmb, attn -> Attn, ffn -> FFN,
    nonembedding = Attn + FFN + norm, total = every distinct parameter."""
    unknown = set(by_role) - {"embedding", "attn", "ffn", "norm", "output", "total"}
    if unknown:
        raise RuntimeError(f"parameters outside the LTS buckets: {sorted(unknown)}")
    attn, ffn, norm = by_role.get("attn", 0), by_role.get("ffn", 0), by_role.get("norm", 0)
    return {"total": by_role["total"], "nonembedding": attn + ffn + norm, "Attn": attn, "FFN": ffn,
            "AdaEmb": by_role.get("embedding", 0)}
