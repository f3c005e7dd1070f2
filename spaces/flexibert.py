"""FlexiBERT / NAS-Bench-BERT: 500 ELECTRA-pretrained, GLUE-fine-tuned small encoders.

Benchmark: A. Serianni and J. Kalita, "Training-free Neural Architecture Search
for RNNs and Transformers", ACL 2023 (arXiv:2306.00288), data and code in
github.com/aaronserianni/training-free-nas (``data/BERT_benchmark.json``,
``search_space.json``). The search space is a reduced FlexiBERT space
(S. Tuli et al., "FlexiBERT: Are current transformer architectures too
homogeneous and rigid?", JAIR 2023); the networks are ELECTRA discriminators
(K. Clark et al., ICLR 2020) with the convolutional operation of ConvBERT
(Z. Jiang et al., NeurIPS 2020).

Genes (``Arch.genes``)::

    {"hidden_size": 128 | 256,
     "encoder_layers": [            # 2 or 4 layers, each chosen independently
        {"operation_type": "SA" | "LT" | "DSC",
         "operation_parameter": "SDP" | "WMA" (SA), "DFT" | "DCT" (LT), 5 | 9 (DSC),
         "num_operation_heads": 2 | 4,
         "feed_forward_dimension": 512 | 1024,
         "num_feed_forward": 1 | 3}, ...]}

Size of the space: one layer has 6 operations (2 per type) x 2 head counts x
2 FFN widths x 2 FFN depths = 48 choices, layers are independent, so
|space| = |hidden| x (48^2 + 48^4) = 2 x (2,304 + 5,308,416) = 10,621,440
(:func:`space_size`), the number the paper publishes.

The network (one reading of the authors' PyTorch port, ``modeling_electra.py``;
every choice below is also in docs/spaces/flexibert.md):

* embeddings: word (30522), position (512) and token-type (2) tables of width
  128, summed, LayerNorm; a linear projection 128 -> hidden when hidden != 128
  (ELECTRA's factorised embedding);
* each layer = operation, then a feed-forward stack, post-LayerNorm residuals
  as in BERT. With ``h`` heads the hidden size is split into ``h`` slices of
  ``d_h = hidden / h``:

  - SA/SDP: BERT self-attention (q, k, v projections, softmax(q k^T / sqrt(d_h)) v
    per head), then output projection, residual, LayerNorm;
  - SA/WMA: as SDP but the query is first multiplied by a learned bias-free
    ``hidden x hidden`` matrix W, scores = (q W) k^T / sqrt(d_h);
  - LT/DFT and LT/DCT: one linear projection, split into heads, then the real
    part of the 2-D discrete Fourier transform (DFT) or the unnormalised 2-D
    DCT-II (DCT) over each head's (sequence x d_h) block. As in the authors'
    PyTorch code there is no output projection, no residual and no LayerNorm
    around an LT operation: its output goes straight into the feed-forward stack;
  - DSC (kernel 5 or 9): ConvBERT's mixed block with head ratio 2: ``h/2``
    (at least 1) ordinary self-attention heads plus as many span-based
    dynamic-convolution heads, all of width ``d_h``. A convolution head
    predicts, at every position, a softmax over a kernel of K positions from
    (separable-conv(key-input) * query) and mixes the K neighbouring rows of
    a separate linear projection. The heads are concatenated (attention heads
    first) and then go through the output projection, residual and LayerNorm.
* feed-forward: ``num_feed_forward`` stacked Linear+GELU layers (hidden -> F,
  then F -> F), then F -> hidden, residual, LayerNorm. F = the layer's
  ``feed_forward_dimension``.

Differences from the upstream code, all deliberate (see the doc page):
``variant="genes"`` (the default) uses the genes' hidden size and FFN widths,
which the authors' PyTorch metric notebook did not pass to its config;
``variant="upstream_pt"`` builds what that notebook built (hidden 256 and FFN
width 1024 for every architecture). The TensorFlow training code differs again
(its LT layers have an output projection; its first FFN layer is 4 x hidden
wide); we do not model it.

Parameter counting (``param_counts``): ``total`` is the authors' released
number, i.e. the parameters of the ELECTRA backbone (embeddings incl. the
30522 x 128 vocabulary table, position/type tables, embedding LayerNorm and
projection, all encoder layers; no generator, discriminator head, classifier
or pooler) built as ``variant="upstream_pt"``. It reproduces 13,330,176 for
architecture 0 and 11,106,199 for architecture 1. The same counts for the
network the genes describe are under ``genes_*``.

Loss: ELECTRA's replaced-token detection. ``make_batch`` corrupts 15% of the
text positions with tokens drawn uniformly from the vocabulary (ELECTRA's
``uniform_generator`` setting); the model's discriminator head (Linear+GELU+Linear
-> 1 logit per token) is trained with per-token binary cross-entropy, mean
over all positions. The upstream metric notebook took gradients of
``sum(last_hidden_state)`` on the bare backbone instead; RTD is the objective
these networks were actually pretrained with, and the one whose encoder was
fine-tuned on GLUE.
"""
from __future__ import annotations

import hashlib
import itertools
import math
import random
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from zcbench.data import DataError, read_nasbench_bert
from zcbench.introspect import Tap, params_by_role, tag
from zcbench.registry import register_space
from zcbench.space import Arch, Batch, ModelOutput, Space

# ---- the search space (search_space.json) ----------------------------------
HIDDEN_SIZES = (128, 256)
NUM_LAYERS = (2, 4)
OPERATIONS = {"SA": ("SDP", "WMA"), "LT": ("DFT", "DCT"), "DSC": (5, 9)}
NUM_HEADS = (2, 4)
FFN_DIMS = (512, 1024)
FFN_DEPTHS = (1, 3)
LAYER_FIELDS = ("operation_type", "operation_parameter", "num_operation_heads",
                "feed_forward_dimension", "num_feed_forward")
PUBLISHED_SPACE_SIZE = 10_621_440

# ---- fixed ELECTRA-small settings (configuration_electra.py defaults) -------
VOCAB_SIZE = 30522
EMBEDDING_SIZE = 128
MAX_POSITIONS = 512
TYPE_VOCAB_SIZE = 2
LAYER_NORM_EPS = 1e-12
INIT_STD = 0.02
CONV_HEAD_RATIO = 2
PAD_ID, CLS_ID, SEP_ID, FIRST_WORD_ID = 0, 101, 102, 104  # BERT vocabulary layout
PRETRAIN_SEQ_LEN = 128  # ELECTRA pretraining max_seq_length

# What the authors' PyTorch notebook built whatever the genes said.
UPSTREAM_PT_HIDDEN = 256
UPSTREAM_PT_FFN = 1024

METRICS = ("glue", "cola", "mnli", "mrpc", "qnli", "qqp", "rte", "sst", "sts")
VARIANTS = ("genes", "upstream_pt")


def layer_choices(search_space: dict | None = None) -> list[dict]:
    """Every distinct encoder layer (48 in the published space)."""
    if search_space is None:
        ops = [(t, p) for t, ps in OPERATIONS.items() for p in ps]
        heads, dims, depths = NUM_HEADS, FFN_DIMS, FFN_DEPTHS
    else:
        el = search_space["encoder_layer"]
        ops = [(t, p) for t in el["operation_type"] for p in el[t]]
        heads, dims, depths = el["num_operation_heads"], el["feed_forward_dimension"], el["num_feed_forward"]
    return [dict(zip(LAYER_FIELDS, (t, p, h, f, n)))
            for (t, p), h, f, n in itertools.product(ops, heads, dims, depths)]


def space_size(search_space: dict | None = None) -> int:
    """Number of architectures: sum over depths L of |hidden| * (layer choices)^L.

    Layers are chosen independently (heterogeneous encoders), each from
    (sum over operation types of its parameter values) x heads x FFN widths x
    FFN depths choices; hidden size is shared by all layers.
    """
    hidden = HIDDEN_SIZES if search_space is None else search_space["hidden_size"]
    depths = NUM_LAYERS if search_space is None else search_space["num_encoder_layers"]
    per_layer = len(layer_choices(search_space))
    return sum(len(hidden) * per_layer ** n for n in depths)


def validate_genes(genes: dict) -> None:
    """Raise ValueError naming the first gene outside the space."""
    if not isinstance(genes, dict) or set(genes) != {"hidden_size", "encoder_layers"}:
        raise ValueError("genes must have exactly the keys hidden_size and encoder_layers")
    if type(genes["hidden_size"]) is not int or genes["hidden_size"] not in HIDDEN_SIZES:
        raise ValueError(f"hidden_size={genes['hidden_size']!r} not in {HIDDEN_SIZES}")
    layers = genes["encoder_layers"]
    if not isinstance(layers, list) or len(layers) not in NUM_LAYERS:
        raise ValueError(f"encoder_layers must be a list of {' or '.join(map(str, NUM_LAYERS))} layers")
    for i, layer in enumerate(layers):
        if not isinstance(layer, dict) or set(layer) != set(LAYER_FIELDS):
            raise ValueError(f"encoder_layers[{i}] must have exactly the keys {', '.join(LAYER_FIELDS)}")
        t, p = layer["operation_type"], layer["operation_parameter"]
        if not isinstance(t, str) or t not in OPERATIONS:
            raise ValueError(f"encoder_layers[{i}].operation_type={t!r} not in {tuple(OPERATIONS)}")
        # exact type check so that 5 and "5" (or True and 1) are never the same gene
        if not any(type(p) is type(v) and p == v for v in OPERATIONS[t]):
            raise ValueError(f"encoder_layers[{i}].operation_parameter={p!r} not valid for {t}: {OPERATIONS[t]}")
        for name, allowed in (("num_operation_heads", NUM_HEADS), ("feed_forward_dimension", FFN_DIMS),
                              ("num_feed_forward", FFN_DEPTHS)):
            v = layer[name]
            if type(v) is not int or v not in allowed:
                raise ValueError(f"encoder_layers[{i}].{name}={v!r} not in {allowed}")


def flat_genes(genes: dict) -> dict:
    """One entry per mutable gene: hidden_size, num_layers, layer<i>.<field>.

    The operation type and its parameter form one gene (``layer<i>.operation``,
    6 values) because the parameter's meaning depends on the type.
    """
    out = {"hidden_size": genes["hidden_size"], "num_layers": len(genes["encoder_layers"])}
    for i, layer in enumerate(genes["encoder_layers"]):
        out[f"layer{i}.operation"] = (layer["operation_type"], layer["operation_parameter"])
        for name in LAYER_FIELDS[2:]:
            out[f"layer{i}.{name}"] = layer[name]
    return out


# ---- model --------------------------------------------------------------------
def _init_normal(w: torch.Tensor) -> None:
    """ELECTRA/BERT init N(0, 0.02); skipped on the meta device (no data there, and slow)."""
    if not w.is_meta:
        nn.init.normal_(w, 0.0, INIT_STD)


def _linear(d_in: int, d_out: int, bias: bool = True) -> nn.Linear:
    m = nn.Linear(d_in, d_out, bias=bias)
    _init_normal(m.weight)
    if bias and not m.bias.is_meta:
        nn.init.zeros_(m.bias)
    return m


def _layer_norm(d: int) -> nn.LayerNorm:
    return tag(nn.LayerNorm(d, eps=LAYER_NORM_EPS), "norm")


def _split_heads(x: torch.Tensor, n_heads: int) -> torch.Tensor:
    b, t, d = x.shape
    return x.view(b, t, n_heads, d // n_heads).transpose(1, 2)  # (B, H, T, Dh)


def _merge_heads(x: torch.Tensor) -> torch.Tensor:
    b, h, t, dh = x.shape
    return x.transpose(1, 2).reshape(b, t, h * dh)


def _dct2_matrix(n: int, like: torch.Tensor) -> torch.Tensor:
    """Unnormalised DCT-II as a matrix: y = C x, C[k, i] = 2 cos(pi k (2i + 1) / (2n))."""
    k = torch.arange(n, dtype=like.dtype, device=like.device)
    return 2.0 * torch.cos(math.pi * k[:, None] * (2.0 * k[None, :] + 1.0) / (2.0 * n))


class Embeddings(nn.Module):
    """ELECTRA embeddings: word + position + token type (width 128), LayerNorm, projection."""

    def __init__(self, hidden: int, dropout: float):
        super().__init__()
        self.tables = tag(nn.Module(), "embedding")
        self.tables.word = nn.Embedding(VOCAB_SIZE, EMBEDDING_SIZE, padding_idx=PAD_ID)
        self.tables.position = nn.Embedding(MAX_POSITIONS, EMBEDDING_SIZE)
        self.tables.token_type = nn.Embedding(TYPE_VOCAB_SIZE, EMBEDDING_SIZE)
        for emb in (self.tables.word, self.tables.position, self.tables.token_type):
            _init_normal(emb.weight)
        if not self.tables.word.weight.is_meta:
            with torch.no_grad():
                self.tables.word.weight[PAD_ID].zero_()
        self.norm = _layer_norm(EMBEDDING_SIZE)
        self.drop = nn.Dropout(dropout)
        # ELECTRA adds the projection only when the widths differ.
        self.project = tag(_linear(EMBEDDING_SIZE, hidden), "embedding") if hidden != EMBEDDING_SIZE else None

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        t = ids.shape[1]
        pos = torch.arange(t, device=ids.device)
        x = self.tables.word(ids) + self.tables.position(pos)[None] + self.tables.token_type(torch.zeros_like(ids))
        x = self.drop(self.norm(x))
        return self.project(x) if self.project is not None else x


class SelfAttention(nn.Module):
    """SA operation: scaled dot-product (SDP) or weighted multiplicative (WMA) attention."""

    def __init__(self, hidden: int, n_heads: int, weighted: bool, dropout: float):
        super().__init__()
        self.n_heads, self.d_head = n_heads, hidden // n_heads
        self.query, self.key, self.value = (_linear(hidden, hidden) for _ in range(3))
        self.weight = _linear(hidden, hidden, bias=False) if weighted else None  # WMA's W
        self.attn_drop = nn.Dropout(dropout)
        self.out = _linear(hidden, hidden)
        self.out_drop = nn.Dropout(dropout)
        self.out_norm = _layer_norm(hidden)
        self.attn_probs = Tap("attn_probs")
        self.head_out = Tap("head_out")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q = self.query(x)
        if self.weight is not None:
            q = self.weight(q)
        q, k, v = (_split_heads(z, self.n_heads) for z in (q, self.key(x), self.value(x)))
        probs = self.attn_probs(torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(self.d_head), dim=-1))
        heads = self.head_out(self.attn_drop(probs) @ v)
        return self.out_norm(self.out_drop(self.out(_merge_heads(heads))) + x)


class LinearTransform(nn.Module):
    """LT operation: projection, then a fixed 2-D DFT (real part) or DCT-II per head.

    The transform runs over each head's (sequence x d_head) block. No output
    projection, residual or LayerNorm (as in the authors' PyTorch code).
    """

    def __init__(self, hidden: int, n_heads: int, kind: str):
        super().__init__()
        self.n_heads, self.kind = n_heads, kind
        self.input = _linear(hidden, hidden)
        self.head_out = Tap("head_out")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = _split_heads(self.input(x), self.n_heads)  # (B, H, T, Dh)
        if self.kind == "DFT":
            y = torch.fft.fft2(h, dim=(-2, -1)).real
        else:
            c_t, c_d = _dct2_matrix(h.shape[-2], h), _dct2_matrix(h.shape[-1], h)
            y = c_t @ h @ c_d.transpose(0, 1)
        return _merge_heads(self.head_out(y))


class SpanConvAttention(nn.Module):
    """DSC operation: ConvBERT mixed attention with span-based dynamic convolution.

    With ``h`` heads and head ratio 2 there are ``h' = max(1, h // 2)`` self-
    attention heads and ``h'`` dynamic-convolution heads, each of width
    ``hidden // h``; their outputs are concatenated (attention heads first).
    A convolution head at position t computes a softmax over K kernel weights
    from ``Linear(sepconv(x) * query(x))`` and returns the weighted sum of rows
    t - (K-1)/2 .. t + (K-1)/2 (zero padded) of ``Linear(x)``.
    """

    def __init__(self, hidden: int, n_heads: int, kernel: int, dropout: float):
        super().__init__()
        self.kernel = kernel
        self.n_attn = max(1, n_heads // CONV_HEAD_RATIO)
        self.d_head = hidden // n_heads
        width = self.n_attn * self.d_head  # hidden / 2 for h in {2, 4}
        self.query, self.key, self.value = (_linear(hidden, width) for _ in range(3))
        # separable convolution over the sequence: depthwise (no bias), pointwise (no bias), bias
        self.key_depthwise = nn.Conv1d(hidden, hidden, kernel, padding=kernel // 2, groups=hidden, bias=False)
        self.key_pointwise = nn.Conv1d(hidden, width, 1, bias=False)
        self.key_bias = nn.Parameter(torch.zeros(width))
        _init_normal(self.key_depthwise.weight)
        _init_normal(self.key_pointwise.weight)
        self.kernel_proj = _linear(width, self.n_attn * kernel)
        self.conv_value = _linear(hidden, width)
        self.attn_drop = nn.Dropout(dropout)
        self.out = _linear(hidden, hidden)
        self.out_drop = nn.Dropout(dropout)
        self.out_norm = _layer_norm(hidden)
        self.attn_probs = Tap("attn_probs")
        self.head_out = Tap("head_out")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, _ = x.shape
        hp, dh, k = self.n_attn, self.d_head, self.kernel
        q_flat = self.query(x)
        # dynamic kernels: (B, T, h', K), softmax over the K span positions
        conv_key = self.key_pointwise(self.key_depthwise(x.transpose(1, 2))).transpose(1, 2) + self.key_bias
        kernels = torch.softmax(self.kernel_proj(conv_key * q_flat).view(b, t, hp, k), dim=-1)
        # the K-row neighbourhood of every position: (B, T, h', Dh, K)
        v_conv = F.pad(self.conv_value(x), (0, 0, (k - 1) // 2, (k - 1) // 2))
        spans = v_conv.unfold(1, k, 1).view(b, t, hp, dh, k)
        conv_heads = (spans * kernels[:, :, :, None, :]).sum(-1).transpose(1, 2)  # (B, h', T, Dh)
        # ordinary self-attention heads
        q, key, v = (_split_heads(z, hp) for z in (q_flat, self.key(x), self.value(x)))
        probs = self.attn_probs(torch.softmax(q @ key.transpose(-1, -2) / math.sqrt(dh), dim=-1))
        attn_heads = self.attn_drop(probs) @ v
        heads = self.head_out(torch.cat([attn_heads, conv_heads], dim=1))  # (B, 2h', T, Dh)
        return self.out_norm(self.out_drop(self.out(_merge_heads(heads))) + x)


class FeedForward(nn.Module):
    """``depth`` stacked Linear+GELU layers (hidden -> F -> ... -> F), then F -> hidden, residual, LayerNorm."""

    def __init__(self, hidden: int, width: int, depth: int, dropout: float):
        super().__init__()
        self.ups = nn.ModuleList([_linear(hidden if i == 0 else width, width) for i in range(depth)])
        self.acts = nn.ModuleList([Tap("ffn_act") for _ in range(depth)])  # one per stacked layer
        self.down = _linear(width, hidden)
        self.drop = nn.Dropout(dropout)
        self.norm = _layer_norm(hidden)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x
        for up, act in zip(self.ups, self.acts):
            h = act(F.gelu(up(h)))
        return self.norm(self.drop(self.down(h)) + x)


class Layer(nn.Module):
    def __init__(self, spec: dict, hidden: int, ffn_width: int, dropout: float):
        super().__init__()
        t, p, n_heads = spec["operation_type"], spec["operation_parameter"], spec["num_operation_heads"]
        if t == "SA":
            op = SelfAttention(hidden, n_heads, weighted=(p == "WMA"), dropout=dropout)
        elif t == "LT":
            op = LinearTransform(hidden, n_heads, kind=p)
        else:
            op = SpanConvAttention(hidden, n_heads, kernel=p, dropout=dropout)
        self.operation = tag(op, "attn")
        self.ffn = tag(FeedForward(hidden, ffn_width, spec["num_feed_forward"], dropout), "ffn")
        self.block_out = Tap("block_out")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block_out(self.ffn(self.operation(x)))


class Backbone(nn.Module):
    """The ELECTRA encoder (what ``param_counts`` counts)."""

    def __init__(self, genes: dict, variant: str = "genes", dropout: float = 0.0):
        super().__init__()
        pinned = variant == "upstream_pt"
        self.hidden = UPSTREAM_PT_HIDDEN if pinned else genes["hidden_size"]
        self.embeddings = Embeddings(self.hidden, dropout)
        self.embedding_tap = Tap("embedding")
        self.layers = nn.ModuleList([
            tag(Layer(spec, self.hidden, UPSTREAM_PT_FFN if pinned else spec["feed_forward_dimension"], dropout),
                "block")
            for spec in genes["encoder_layers"]])

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        x = self.embedding_tap(self.embeddings(ids))
        for layer in self.layers:
            x = layer(x)
        return x


class FlexiBertRTD(nn.Module):
    """Backbone + ELECTRA discriminator head; loss = replaced-token-detection BCE."""

    def __init__(self, genes: dict, variant: str = "genes", dropout: float = 0.0):
        super().__init__()
        if variant not in VARIANTS:
            raise ValueError(f"variant={variant!r}; valid: {', '.join(VARIANTS)}")
        self.backbone = Backbone(genes, variant, dropout)
        d = self.backbone.hidden
        self.head = tag(nn.Sequential(_linear(d, d), nn.GELU(), _linear(d, 1)), "output")

    def forward(self, inputs: torch.Tensor, targets: torch.Tensor | None = None) -> ModelOutput:
        if inputs.shape[1] > MAX_POSITIONS:
            raise ValueError(f"sequence length {inputs.shape[1]} exceeds the {MAX_POSITIONS} position embeddings")
        hidden = self.backbone(inputs)
        logits = self.head(hidden).squeeze(-1)  # (B, T): replaced-token logits
        loss = None
        if targets is not None:
            loss = F.binary_cross_entropy_with_logits(logits, targets.to(logits.dtype))
        return ModelOutput(loss=loss, hidden=hidden, logits=logits)


# ---- the space ------------------------------------------------------------------
def _derived_seed(seed: int, purpose: str) -> int:
    return int.from_bytes(hashlib.sha256(f"{purpose}:{int(seed)}".encode()).digest()[:8], "little") >> 1


@register_space("flexibert")
class FlexiBertSpace(Space):
    """NAS-Bench-BERT (Serianni & Kalita, ACL 2023) on the FlexiBERT operations.

    Options (``options:`` in conf/space/flexibert.yaml):
    ``variant`` ("genes" | "upstream_pt"; see module docstring),
    ``dropout`` (default 0.0: deterministic scoring), ``mask_prob`` (0.15).
    """

    description = "NAS-Bench-BERT: 500 FlexiBERT/ELECTRA-small encoders, GLUE after ELECTRA pretraining"
    modality = "text"
    metric = "glue"
    higher_is_better = True
    metrics = METRICS

    def __init__(self, data_dir: str | None = None, target: str | None = None, **cfg):
        super().__init__(data_dir=data_dir, target=target, **cfg)
        unknown = set(cfg) - {"variant", "dropout", "mask_prob", "corpus"}
        if unknown:
            raise ValueError(f"space flexibert: unknown options {sorted(unknown)}; valid: variant, dropout, mask_prob, "
                             f"corpus")
        self.corpus = cfg.get("corpus")  # minibatch text (zcbench.text.resolve_corpus); None: WikiText-2
        if self.corpus is not None:
            from zcbench.text import resolve_corpus

            resolve_corpus(self.corpus)
        self.variant = cfg.get("variant", "genes")
        if self.variant not in VARIANTS:
            raise ValueError(f"space flexibert: variant={self.variant!r}; valid: {', '.join(VARIANTS)}")
        self.dropout = float(cfg.get("dropout", 0.0))
        self.mask_prob = float(cfg.get("mask_prob", 0.15))
        if not 0.0 < self.mask_prob < 1.0:
            raise ValueError(f"space flexibert: mask_prob={self.mask_prob} must lie in (0, 1)")
        self._n_words: int | None = None
        self._stream = None  # (token ids, provenance), loaded once

    # ---- stored benchmark -------------------------------------------------
    @property
    def table_path(self) -> Path:
        return self.data_dir / "flexibert" / "BERT_benchmark.json"

    def records(self) -> list[tuple[str, dict, dict]]:
        """All 500 upstream records as (key, genes, scores), in file order."""
        from zcbench.embedded import nasbench_rows

        rows = nasbench_rows(self.table_path)  # the embedded copy, only when no data dir is configured
        out = []
        for row in (rows if rows is not None else read_nasbench_bert(self.table_path)):
            try:
                over = row["hparams"]["model_hparam_overrides"]
                genes = {"hidden_size": over["hidden_size"],
                         "encoder_layers": [{f: layer[f] for f in LAYER_FIELDS}
                                            for layer in over["nas_config"]["encoder_layers"]]}
                validate_genes(genes)
                scores = {m: float(row["scores"][m]) for m in METRICS}
            except (KeyError, TypeError, ValueError) as exc:
                raise DataError(f"malformed record {row.get('id')!r} in {self.table_path}: {exc}") from None
            out.append((str(row["id"]), genes, scores))
        return out

    def load_stored(self) -> list[Arch]:
        """One Arch per distinct network (491 of the 500 records).

        Nine networks were trained twice under different ids; they get one
        Arch whose truth is the mean of the runs, with every run's id and
        scores kept in ``meta["runs"]`` (``key`` is the first id).
        """
        by_id: dict[str, Arch] = {}
        for key, genes, scores in self.records():
            a = Arch(genes=genes)
            if a.id not in by_id:
                by_id[a.id] = Arch(genes=genes, id=a.id, key=key, meta={"runs": []})
            by_id[a.id].meta["runs"].append({"key": key, "scores": scores})
        for a in by_id.values():
            runs = a.meta["runs"]
            a.truth = {m: sum(r["scores"][m] for r in runs) / len(runs) for m in METRICS}
            a.meta["keys"] = [r["key"] for r in runs]
        return list(by_id.values())

    def record_truths(self, metric: str | None = None) -> list[tuple[str, float]]:
        """All 500 records: a network trained twice appears twice, each with its own score."""
        if self.gt_table is not None:
            return super().record_truths(metric)
        m = metric or self.metric
        return [(a.id, float(r["scores"][m])) for a in self.stored() for r in a.meta["runs"]]

    def by_id(self, arch_id: str) -> Arch:
        for a in self.stored():
            if a.id == arch_id or arch_id in a.meta.get("keys", ()):
                return a
        raise KeyError(f"space {self.name}: no stored architecture {arch_id!r}")

    # ---- architectures ----------------------------------------------------
    def validate(self, genes: dict) -> None:
        validate_genes(genes)

    @staticmethod
    def _random_layer(rng: random.Random) -> dict:
        return dict(rng.choice(layer_choices()))

    def sample(self, rng: random.Random) -> Arch:
        # uniform over architectures: depth L has weight |hidden| * 48^L
        n = len(layer_choices())
        depth = rng.choices(NUM_LAYERS, weights=[n ** d for d in NUM_LAYERS])[0]
        genes = {"hidden_size": rng.choice(HIDDEN_SIZES),
                 "encoder_layers": [self._random_layer(rng) for _ in range(depth)]}
        return self.make_arch(genes)

    def mutate(self, arch: Arch, rng: random.Random) -> Arch:
        """Change exactly one gene of :func:`flat_genes`.

        ``num_layers`` 4 -> 2 drops the last two layers; 2 -> 4 appends two
        uniformly drawn layers (the kept layers stay unchanged).
        """
        genes = {"hidden_size": arch.genes["hidden_size"],
                 "encoder_layers": [dict(layer) for layer in arch.genes["encoder_layers"]]}
        gene = rng.choice(sorted(flat_genes(genes)))
        layers = genes["encoder_layers"]
        if gene == "hidden_size":
            genes["hidden_size"] = rng.choice([h for h in HIDDEN_SIZES if h != genes["hidden_size"]])
        elif gene == "num_layers":
            new = rng.choice([d for d in NUM_LAYERS if d != len(layers)])
            genes["encoder_layers"] = layers[:new] + [self._random_layer(rng) for _ in range(new - len(layers))]
        else:
            i, field = gene[len("layer"):].split(".", 1)
            layer = layers[int(i)]
            if field == "operation":
                cur = (layer["operation_type"], layer["operation_parameter"])
                ops = [(t, p) for t, ps in OPERATIONS.items() for p in ps if (t, p) != cur]
                layer["operation_type"], layer["operation_parameter"] = rng.choice(ops)
            else:
                allowed = {"num_operation_heads": NUM_HEADS, "feed_forward_dimension": FFN_DIMS,
                           "num_feed_forward": FFN_DEPTHS}[field]
                layer[field] = rng.choice([v for v in allowed if v != layer[field]])
        validate_genes(genes)
        return self.make_arch(genes)

    def summary(self, arch: Arch) -> dict:
        layers = arch.genes["encoder_layers"]
        return {"n_layer": len(layers),
                "d_model": arch.genes["hidden_size"],
                "n_head": [layer["num_operation_heads"] for layer in layers],
                "d_inner": [layer["feed_forward_dimension"] for layer in layers],
                "seq_len": PRETRAIN_SEQ_LEN,
                "d_embed": EMBEDDING_SIZE,
                "n_ffn": [layer["num_feed_forward"] for layer in layers],
                "operations": [f"{layer['operation_type']}:{layer['operation_parameter']}" for layer in layers]}

    @staticmethod
    def size() -> int:
        return space_size()

    # ---- models and data --------------------------------------------------
    def build(self, arch: Arch) -> nn.Module:
        validate_genes(arch.genes)
        return FlexiBertRTD(arch.genes, variant=self.variant, dropout=self.dropout)

    def param_counts(self, arch: Arch) -> dict[str, int]:
        """Backbone parameters, counted on meta-device models.

        ``total``/``nonembedding``/``embedding``/``attn``/``ffn``/``norm``: the
        authors' convention (backbone built as ``upstream_pt``: hidden 256, FFN
        width 1024); ``genes_*``: the same roles for the network the genes
        describe; ``head``: the RTD head that ``build`` adds (never in a total).
        """
        validate_genes(arch.genes)
        out: dict[str, int] = {}
        for variant, prefix in (("upstream_pt", ""), ("genes", "genes_")):
            with torch.device("meta"):
                model = FlexiBertRTD(arch.genes, variant=variant)
            roles = params_by_role(model.backbone)
            for role in ("embedding", "attn", "ffn", "norm"):
                out[prefix + role] = roles.get(role, 0)
            out[prefix + "total"] = roles["total"]
            out[prefix + "nonembedding"] = roles["total"] - roles.get("embedding", 0)
            if roles["total"] != sum(out[prefix + r] for r in ("embedding", "attn", "ffn", "norm")):
                raise AssertionError(f"untagged parameters in the flexibert backbone: {roles}")
            if variant == self.variant:
                out["head"] = params_by_role(model.head)["total"]
        return out

    def _vocab_words(self) -> int:
        if self._n_words is None:
            from zcbench.text import get_tokenizer

            tok, _ = get_tokenizer("wordpiece", VOCAB_SIZE, self.data_dir)
            self._n_words = tok.get_vocab_size()
        return self._n_words

    def make_batch(self, batch_size: int, seq_len: int, seed: int) -> Batch:
        """``[CLS] text [SEP]`` windows of WikiText-2 with ELECTRA-style corruption.

        ``mask_prob`` of the ``seq_len - 2`` text positions of each row (rounded,
        at least one) are replaced by ids drawn uniformly from the tokenizer's
        non-special vocabulary; ``targets`` is 1.0 where the token changed.
        The same seed gives the same batch.
        """
        from zcbench.text import lm_windows, token_stream

        if not 4 <= seq_len <= MAX_POSITIONS:
            raise ValueError(f"seq_len={seq_len} must lie in [4, {MAX_POSITIONS}]")
        if self._stream is None:
            kw = {} if self.corpus is None else {"corpus": self.corpus}
            self._stream = token_stream("wordpiece", VOCAB_SIZE, self.data_dir, **kw)
        stream, prov = self._stream
        n_text = seq_len - 2
        text = lm_windows(stream, batch_size, n_text - 1, seed)  # n_text tokens per row
        clean = torch.cat([torch.full((batch_size, 1), CLS_ID), text, torch.full((batch_size, 1), SEP_ID)], dim=1)
        g = torch.Generator().manual_seed(_derived_seed(seed, "flexibert-rtd"))
        n_corrupt = max(1, round(self.mask_prob * n_text))
        pos = 1 + torch.rand(batch_size, n_text, generator=g).argsort(dim=1)[:, :n_corrupt]
        fake = torch.randint(FIRST_WORD_ID, self._vocab_words(), (batch_size, n_corrupt), generator=g)
        inputs = clean.clone()
        inputs.scatter_(1, pos, fake)
        targets = (inputs != clean).float()
        info = {**prov, "seed": int(seed), "format": "[CLS] window [SEP]",
                "objective": "electra-rtd", "generator": "uniform", "mask_prob": self.mask_prob}
        return Batch(inputs=inputs, targets=targets, info=info)
