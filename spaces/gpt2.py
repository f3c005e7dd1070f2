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
import random
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from zcbench.data import DataError, read_lts_table
from zcbench.introspect import Tap, index_taps, role_of, tag
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
    def __init__(self, d_model: int, n_head: int, d_inner: int, primer_square: bool, dropout: float):
        super().__init__()
        self.ln_1 = tag(nn.LayerNorm(d_model, eps=LN_EPS), "norm")
        self.attn = tag(CausalSelfAttention(d_model, n_head, DROPATT, dropout), "attn")
        self.ln_2 = tag(nn.LayerNorm(d_model, eps=LN_EPS), "norm")
        self.mlp = tag(MLP(d_model, d_inner, dropout, primer_square), "ffn")
        self.out = Tap("block_out")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x))
        x = x + self.mlp(self.ln_2(x))
        return self.out(x)


class GPT2Flex(nn.Module):
    """Heterogeneous GPT-2 with adaptive input embedding and adaptive softmax (see module docstring)."""

    def __init__(self, genes: dict, dropout: float = DROPOUT):
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
            tag(Block(d_model, g["n_head"][i], g["d_inner"][i], g["primer_square"], dropout), "block") for i in range(n_layer)
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
# Space (shared by the LTS spaces: transxl.py subclasses LTSSpace)
# ============================================================================
def role_subtree_params(model: nn.Module, role: str) -> int:
    """Parameters of every module tagged ``role``, each with its whole subtree (nested
    norms included), distinct tensors once — archai's ``get_params_from_layer``."""
    params = {id(p): p for m in model.modules() if role_of(m) == role for p in m.parameters()}
    return sum(p.numel() for p in params.values())


def lts_counts(model: nn.Module) -> dict[str, int]:
    """archai's LTS buckets read off a built model (see the module docstrings):

    * ``AdaEmb`` — modules tagged ``embedding`` (adaptive embedding; GPT-2's position table);
    * ``Attn`` / ``FFN`` — modules tagged ``attn`` / ``ffn`` with everything inside them;
    * ``nonembedding`` — Attn + FFN + the parameters of every ``nn.LayerNorm``, wherever
      it sits (so a LayerNorm inside an attention module counts twice, as upstream);
    * ``total`` — every distinct parameter tensor once (``sum(p.numel() for p in
      model.parameters())``), softmax-only tensors included.
    """
    attn, ffn = role_subtree_params(model, "attn"), role_subtree_params(model, "ffn")
    norms = sum(p.numel() for m in model.modules() if isinstance(m, nn.LayerNorm) for p in m.parameters())
    return {"total": sum(p.numel() for p in model.parameters()), "nonembedding": attn + ffn + norms,
            "Attn": attn, "FFN": ffn, "AdaEmb": role_subtree_params(model, "embedding")}


class LTSSpace(Space):
    """Stored table, genes, sampling and mutation common to the LTS spaces.

    Subclasses set the table folder, the ranges, the ``d_inner`` floor factor,
    the fixed genes, ``homogeneous`` (one ``n_head`` / ``d_inner`` for all
    layers, stored as scalars) and ``_model``. Genes: ``n_layer``, ``d_model``,
    ``n_head``, ``d_inner`` (lists, or scalars when homogeneous), ``d_embed``,
    ``div_val`` plus the fixed ones (``FIXED``): vocabulary size, archai's
    effective band ends ``cutoffs``, ``tie_weight``, ``tie_projs`` (one entry per
    band), ``primer_square`` and, for GPT-2, ``tgt_len`` (the position table).
    """

    modality = "text"
    metric = "valid_ppl"
    higher_is_better = False
    metrics = ("valid_ppl", "test_ppl")
    table = ""
    homogeneous = False
    N_LAYER: tuple = ()
    D_MODEL: tuple = ()
    N_HEAD: tuple = ()
    D_EMBED: tuple = ()
    DIV_VAL: tuple = ()
    D_INNER_MIN, D_INNER_MAX = 512, 2048
    d_inner_factor = 1.7
    FIXED: dict = {}
    CONSTANT_SETTINGS: tuple = ()  # (key, value) every stored config must have; not genes
    VARIABLE = ("n_layer", "d_model", "n_head", "d_inner", "d_embed", "div_val")

    SUBSPACE_KEYS = ("N_LAYER", "D_MODEL", "N_HEAD", "D_EMBED", "DIV_VAL", "D_INNER_MIN", "D_INNER_MAX",
                     "d_inner_factor", "FIXED")

    def __init__(self, data_dir: str | None = None, target: str | None = None, dropout: float | None = None,
                 subspace: dict | None = None, **cfg):
        """``dropout``: residual/FFN (and, for Transformer-XL, embedding) dropout of the
        built models; default the benchmark's 0.1. Not a gene: it changes no parameter.
        ``subspace``: a scaled-down space (used by project-built ground-truth tables, see
        docs/groundtruth.md): overrides of the ranges ``SUBSPACE_KEYS`` (lists for the choice
        sets) and of the fixed genes (``FIXED: {n_token: 4096, cutoffs: [...], tgt_len: 64}``)."""
        super().__init__(data_dir=data_dir, target=target, **cfg)
        self.dropout = DROPOUT if dropout is None else float(dropout)
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"{self.name}: dropout={dropout} must be in [0, 1)")
        for key, val in (subspace or {}).items():
            if key not in self.SUBSPACE_KEYS:
                raise ValueError(f"{self.name}: unknown subspace key {key!r}; valid: {', '.join(self.SUBSPACE_KEYS)}")
            if key == "FIXED":
                val = {**self.FIXED, **val}
                val["cutoffs"] = clean_cutoffs(list(val["cutoffs"]), int(val["n_token"]))
                val["tie_projs"] = list(val["tie_projs"])[: len(val["cutoffs"])]
            setattr(self, key, tuple(val) if isinstance(val, (list, tuple)) else val)
        if subspace:
            self.cfg["subspace"] = subspace

    def gene_keys(self) -> tuple:
        return self.VARIABLE + tuple(self.FIXED)

    def d_inner_floor(self, d_model: int) -> int:
        """Smallest allowed FFN width: ``max(512, int(factor * d_model))``."""
        return max(self.D_INNER_MIN, int(self.d_inner_factor * d_model))

    def per_layer(self, genes: dict, key: str) -> list[int]:
        v = genes[key]
        return [v] * genes["n_layer"] if self.homogeneous else list(v)

    # ---- stored benchmark -------------------------------------------------
    def genes_from_config(self, cfg: dict) -> dict:
        """The network-defining genes of an LTS ``model_config.yaml`` in canonical form
        (archai's effective ``cutoffs``; ``tie_projs`` one entry per band), so equal
        networks get equal genes and IDs. Constant settings are checked, not stored."""
        for key, want in self.CONSTANT_SETTINGS:
            if key in cfg and cfg[key] != want:
                raise DataError(f"{self.table}: config has {key}={cfg[key]!r}; this space supports only {want!r}")
        n_layer = int(cfg["n_layer"])

        def layers(v):
            if self.homogeneous:
                vals = {int(x) for x in v[:n_layer]} if isinstance(v, list) else {int(v)}
                if len(vals) != 1:
                    raise DataError(f"{self.table}: heterogeneous layers {v} in a homogeneous table")
                return vals.pop()
            return [int(x) for x in v][:n_layer] if isinstance(v, list) else [int(v)] * n_layer

        n_token = int(cfg["n_token"])
        cutoffs = clean_cutoffs(list(cfg["cutoffs"]), n_token)
        genes = {
            "n_layer": n_layer,
            "d_model": int(cfg["d_model"]),
            "n_head": layers(cfg["n_head"]),
            "d_inner": layers(cfg["d_inner"]),
            "d_embed": int(cfg["d_model"] if cfg["d_embed"] in (None, -1) else cfg["d_embed"]),
            "div_val": int(cfg["div_val"]),
            "n_token": n_token,
            "cutoffs": cutoffs,
            "tie_weight": bool(cfg["tie_weight"]),
            "tie_projs": [bool(t) for t in cfg["tie_projs"]][: len(cutoffs)],
            "primer_square": bool(cfg.get("primer_square", False)),
        }
        if "tgt_len" in self.FIXED:
            genes["tgt_len"] = int(cfg["tgt_len"])
        return genes

    def load_stored(self) -> list[Arch]:
        if self.cfg.get("subspace"):
            return []  # the upstream table lies outside a scaled-down space
        folder = Path(self.data_dir) / "lts" / self.table
        from zcbench.data import LTSRecord
        from zcbench.embedded import lts_records  # the embedded copy, only when no data dir is configured

        emb = lts_records(folder)
        records = [LTSRecord(**d) for d in emb] if emb is not None else read_lts_table(folder)
        out = []
        for r in records:
            genes = self.genes_from_config(r.model_config)
            try:
                self.validate(genes)
            except ValueError as exc:
                raise DataError(f"{self.table}/{r.key} is outside the space: {exc}") from None
            # a net whose training left no perplexity (Transformer-XL homogeneous config_6_j4)
            # stays stored with empty truth, so it is counted and visibly left out of correlations
            truth = {m: float(r.ppl[m]) for m in self.metrics if m in r.ppl}
            out.append(Arch(genes=genes, key=r.key, truth=truth, meta={"params": dict(r.params)}))
        return out

    # ---- architectures ----------------------------------------------------
    def validate(self, genes: dict) -> None:
        name = self.name
        keys = self.gene_keys()
        missing = [k for k in keys if k not in genes]
        if missing:
            raise ValueError(f"{name}: missing gene(s) {', '.join(missing)}")
        extra = [k for k in genes if k not in keys]
        if extra:
            raise ValueError(f"{name}: unknown gene(s) {', '.join(extra)}")
        n = genes["n_layer"]
        if n not in self.N_LAYER:
            raise ValueError(f"{name}: n_layer={n} outside {self.N_LAYER[0]}..{self.N_LAYER[-1]}")
        if genes["d_model"] not in self.D_MODEL:
            raise ValueError(f"{name}: d_model={genes['d_model']} not in {self.D_MODEL}")
        for key in ("n_head", "d_inner"):
            v = genes[key]
            if self.homogeneous and not isinstance(v, int):
                raise ValueError(f"{name}: {key} must be one integer (homogeneous layers)")
            if not self.homogeneous and (not isinstance(v, list) or len(v) != n):
                raise ValueError(f"{name}: {key} must be a list of n_layer={n} integers")
        if any(h not in self.N_HEAD for h in self.per_layer(genes, "n_head")):
            raise ValueError(f"{name}: n_head={genes['n_head']} has values outside {self.N_HEAD}")
        lo = self.d_inner_floor(genes["d_model"])
        if any(not (lo <= d <= self.D_INNER_MAX) for d in self.per_layer(genes, "d_inner")):
            raise ValueError(f"{name}: d_inner={genes['d_inner']} has values outside [{lo}, {self.D_INNER_MAX}] "
                             f"(max(512, int({self.d_inner_factor}*d_model)) .. {self.D_INNER_MAX})")
        if genes["d_embed"] not in self.D_EMBED:
            raise ValueError(f"{name}: d_embed={genes['d_embed']} not in {self.D_EMBED}")
        if genes["div_val"] not in self.DIV_VAL:
            raise ValueError(f"{name}: div_val={genes['div_val']} not in {self.DIV_VAL}")
        for key, want in self.FIXED.items():
            if genes[key] != want:
                raise ValueError(f"{name}: {key}={genes[key]!r} is fixed to {want!r} in this space")

    def sample(self, rng: random.Random) -> Arch:
        """Each gene drawn independently and uniformly (per layer when heterogeneous)."""
        n = rng.choice(self.N_LAYER)
        d_model = rng.choice(self.D_MODEL)
        lo = self.d_inner_floor(d_model)
        reps = 1 if self.homogeneous else n
        heads = [rng.choice(self.N_HEAD) for _ in range(reps)]
        inner = [rng.randint(lo, self.D_INNER_MAX) for _ in range(reps)]
        genes = {
            "n_layer": n,
            "d_model": d_model,
            "n_head": heads[0] if self.homogeneous else heads,
            "d_inner": inner[0] if self.homogeneous else inner,
            "d_embed": rng.choice(self.D_EMBED),
            "div_val": rng.choice(self.DIV_VAL),
            **copy.deepcopy(self.FIXED),
        }
        self.validate(genes)
        return self.make_arch(genes)

    def mutate(self, arch: Arch, rng: random.Random) -> Arch:
        """Change exactly one gene: ``n_layer``, ``d_model``, ``d_embed``, ``div_val``
        or one layer's ``n_head`` / ``d_inner`` (the shared value when homogeneous).
        A depth change drops the last layers or appends copies of randomly chosen
        existing layers; a width change only picks widths for which every
        ``d_inner`` stays valid (widths up to 256 always qualify)."""
        g = copy.deepcopy(arch.genes)
        key = rng.choice(self.VARIABLE)
        if key == "n_layer":
            n = rng.choice([v for v in self.N_LAYER if v != g["n_layer"]])
            if not self.homogeneous:
                while len(g["n_head"]) < n:
                    j = rng.randrange(len(g["n_head"]))
                    g["n_head"].append(g["n_head"][j])
                    g["d_inner"].append(g["d_inner"][j])
                g["n_head"], g["d_inner"] = g["n_head"][:n], g["d_inner"][:n]
            g["n_layer"] = n
        elif key == "d_model":
            floor_ok = min(self.per_layer(g, "d_inner"))
            g["d_model"] = rng.choice([v for v in self.D_MODEL
                                       if v != g["d_model"] and floor_ok >= self.d_inner_floor(v)])
        elif key in ("n_head", "d_inner"):
            lo = self.d_inner_floor(g["d_model"])
            choices = self.N_HEAD if key == "n_head" else range(lo, self.D_INNER_MAX + 1)
            if self.homogeneous:
                g[key] = rng.choice([v for v in choices if v != g[key]])
            else:
                i = rng.randrange(g["n_layer"])
                g[key][i] = rng.choice([v for v in choices if v != g[key][i]])
        else:
            choices = self.D_EMBED if key == "d_embed" else self.DIV_VAL
            g[key] = rng.choice([v for v in choices if v != g[key]])
        self.validate(g)
        return self.make_arch(g)

    def summary(self, arch: Arch) -> dict:
        g = arch.genes
        return {"n_layer": g["n_layer"], "d_model": g["d_model"], "n_head": self.per_layer(g, "n_head"),
                "d_inner": self.per_layer(g, "d_inner"), "seq_len": int(self.cfg.get("seq_len", 192))}

    # ---- models and data --------------------------------------------------
    def _model(self, genes: dict) -> nn.Module:
        raise NotImplementedError

    def build(self, arch: Arch) -> nn.Module:
        self.validate(arch.genes)
        genes = dict(arch.genes, n_head=self.per_layer(arch.genes, "n_head"),
                     d_inner=self.per_layer(arch.genes, "d_inner"))
        return self._model(genes)

    def make_batch(self, batch_size: int, seq_len: int, seed: int) -> Batch:
        """``batch_size`` windows of ``seq_len + 1`` WikiText-2 byte-level BPE tokens
        (vocabulary capped at the space's ``n_token``); inputs ``w[:, :-1]``,
        targets ``w[:, 1:]``."""
        from zcbench.text import lm_windows, token_stream

        n_token = self.FIXED["n_token"]
        stream, prov = token_stream("bpe", n_token, self.data_dir)
        w = lm_windows(stream, batch_size, seq_len, seed)
        info = {**prov, "seed": int(seed), "batch_size": int(batch_size), "seq_len": int(seq_len),
                "vocab_cap": n_token, "space": self.name}
        return Batch(inputs=w[:, :-1].contiguous(), targets=w[:, 1:].contiguous(), info=info)

    def param_counts(self, arch: Arch) -> dict[str, int]:
        """archai's five counts (``lts_counts``) from the model built on the meta device."""
        with torch.device("meta"):
            model = self.build(arch)
        return lts_counts(model)


@register_space("gpt2")
class GPT2Space(LTSSpace):
    description = "GPT-2 LTS (Javaheripi et al., NeurIPS 2022): 200 heterogeneous decoders, WikiText-103 perplexity"
    table = "random_GPT2_wt103"
    N_LAYER, D_MODEL, N_HEAD, D_EMBED, DIV_VAL = N_LAYER, D_MODEL, N_HEAD, D_EMBED, DIV_VAL
    d_inner_factor = 1.7
    FIXED = FIXED
    CONSTANT_SETTINGS = (("d_head", -1), ("primer_conv", False), ("attn_type", 0), ("pre_lnorm", False),
                         ("weight_init_std", WEIGHT_INIT_STD), ("proj_init_std", PROJ_INIT_STD),
                         ("dropout", DROPOUT), ("dropatt", DROPATT), ("sample_softmax", -1))

    def _model(self, genes: dict) -> nn.Module:
        return GPT2Flex(genes, dropout=self.dropout)

    def summary(self, arch: Arch) -> dict:
        return {**super().summary(arch), "seq_len": int(self.cfg.get("seq_len", arch.genes["tgt_len"]))}
