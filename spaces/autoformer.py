"""AutoFormer vision-transformer search space (tiny / small / base).

Source: M. Chen, H. Peng, J. Fu, H. Ling, "AutoFormer: Searching Transformers for
Visual Recognition", ICCV 2021 (arXiv:2107.00651), code in microsoft/Cream
(``AutoFormer/``). The same space is searched training-free by TF-TAS (Q. Zhou et
al., "Training-free Transformer Architecture Search", CVPR 2022) and ETAS, which
reuse AutoFormer's supernet configs and model code.

Genes (one architecture = one JSON dict)::

    {"embed_dim": 216, "depth": 13,
     "num_heads": [3, 4, ...],        # one per layer, len == depth
     "mlp_ratio": [3.5, 4.0, ...]}    # one per layer, len == depth

Choice sets (AutoFormer Table 1; the supernet-T/S yaml files in microsoft/Cream
hold the same values):

======== ================ ============ =============== ============ =========== ==========
variant  embed_dim        depth        num_heads       mlp_ratio    qkv dim     params
======== ================ ============ =============== ============ =========== ==========
tiny     192, 216, 240    12, 13, 14   3, 4            3.5, 4.0     192, 256    4 - 9 M
small    320, 384, 448    12, 13, 14   5, 6, 7         3.0, 3.5, 4  320 .. 448  14 - 34 M
base     528, 576, 624    14, 15, 16   8, 9, 10        3.0, 3.5, 4  512 .. 640  42 - 75 M
======== ================ ============ =============== ============ =========== ==========

*Q-K-V dimension.* AutoFormer lists the Q-K-V dimension as a searched factor, but
its code (``change_qkv``, used by all published runs) ties it to the head count:
every head has 64 dimensions, so ``qkv_dim = 64 * num_heads`` per layer (tiny:
192/256, small: 320/384/448, base: 512/576/640 -- exactly the Q-K-V rows of
Table 1). It is therefore derived, not a separate gene; ``summary`` reports it.

*Base heads.* Table 1 gives base heads (8, 10, step 1) = {8, 9, 10}, which is also
what the paper's search-space size needs (below); the public ``supernet-B.yaml``
lists only {9, 10}. We follow the paper.

Model (one standalone subnet, not a weight-sharing supernet), matching the
published training flags ``--gp --change_qkv --relative_position``:

* 16x16 patch embedding (conv with bias) of a 224x224 RGB image -> 196 tokens,
  a learned class token in front (197 tokens) and a learned absolute position
  embedding (197 x D);
* ``depth`` pre-norm blocks: x + Attn(LN(x)), then x + MLP(LN(x)); attention has a
  biased qkv projection to 3 * 64 * H, scale 64**-0.5, and AutoFormer's 2-D
  relative position encoding on keys and values (below); MLP is
  Linear(D, int(D * ratio)) -> exact GELU -> Linear(., D);
* final LayerNorm, then ``--gp`` pooling: the mean of the 196 patch tokens (the
  class token is carried through the blocks but not read by the head; option
  ``pool="cls"`` reads it instead), and a Linear(D, num_classes) classifier.

*Relative position encoding* (AutoFormer's ``RelativePosition2D_super``, with
``max_relative_position = 14``): for patch tokens i, j on the 14x14 grid the
row offset and the column offset, each clipped to [-14, 14] and shifted by 15,
index two learned tables (rows and columns, each 30 x 64: 2 * 14 + 2 rows, row
0 reserved for any pair involving the class token); the key encoding
r_k[i, j] = T_row[.] + T_col[.] adds q_i . r_k[i, j] / 8 to the attention
logits, and a second pair of tables r_v adds sum_j p_ij r_v[i, j] to each head's
output. That is 4 * 30 * 64 = 7,680 parameters per layer, independent of H
(head dimension is always 64). ``relative_position=False`` drops them.

Dropout and drop-path are 0 (zero-cost proxies score freshly initialised
networks). Initialisation follows AutoFormer: truncated normal (std 0.02) for
linear weights, class token, position and relative-position tables; zero biases;
LayerNorm (eps 1e-5) weight 1, bias 0; PyTorch's default for the patch conv.

Parameter counting (identical to AutoFormer's ``get_sampled_params_numel``;
``param_count_formula`` below, checked against the built model in the tests)::

    P = (3 * p * p * D + D)                       patch embedding conv
      + D * (N + 2)                               class token + position embedding
      + sum over layers of
          (D * 3Q + 3Q) + (Q * D + D)             qkv, proj          (Q = 64 H)
        + 4 * (2 * 14 + 2) * 64                   relative position tables
        + 2 * 2D                                  two LayerNorms
        + (D * F + F) + (F * D + D)               MLP                (F = int(D r))
      + 2D + (D * C + C)                          final LayerNorm, classifier

with N = (224 / 16)^2 = 196 patches and C = 1000 classes. Checked exactly
against counts printed by AutoFormer's own code in public search logs: two tiny
subnets (6,776,776 and 6,480,712 at C=1000) and three base subnets (64,340,602,
65,029,858 and 64,709,986 at C=10); see tests/test_space_autoformer.py. The
released AutoFormer-T (D=192, 13 layers, some MLP ratios 3.0, i.e. outside the
tiny choice set) counts 5,867,944 (paper: 5.7M).

*Published parameter ranges* (Table 1: 4-9M, 14-34M, 42-75M) are approximate,
not bounds of the choice sets under this count: the true extremes are
5.37-10.52M (tiny), 13.06-34.79M (small) and 39.79-76.88M (base). Uniformly
sampled small and base networks fall inside their ranges (none of 20,000), but
about 29% of tiny networks exceed 9M (median 8.1M).

Search-space size: with per-layer choices c = |heads| * |ratios|, the number of
distinct architectures of a variant is |E| * sum_d c^d (``space_size``); base:
3 * (9^14 + 9^15 + 9^16) = 6.25e15, tiny 1.06e9, small 7.7e13. The paper's
"over 1.7 x 10^16 candidates" summed over the three supernets is reproduced by
counting every depth with all D_max layers' choices, |E| * |D| * c^D_max
(``paper_space_size``): 1.668e16 (base) + 2.06e14 (small) + 2.4e9 (tiny) =
1.69e16 -- same order as the exact count, which it overstates ~2.7x.

Minibatch: the paper's data (ImageNet) is not available offline, so
``make_batch`` uses scikit-learn's bundled handwritten digits (``load_digits``,
1,797 real 8x8 grey images with their true labels 0-9, shipped inside the
scikit-learn wheel), upsampled bilinearly to img_size, copied to three channels
and normalised with the ImageNet mean/std. Labels index the first ten classes of
the 1000-way head. ``seq_len`` is ignored (an image always gives 197 tokens).

No per-architecture ground truth is public (TF-TAS/ETAS only report the
searched winners), so ``load_stored`` returns [] (metric ``top1``, higher is
better); everything else (sampling, mutation, models, batches) works.
"""
from __future__ import annotations

import random
from functools import lru_cache

import torch
import torch.nn.functional as F
from torch import nn

from zcbench.introspect import Tap, tag
from zcbench.registry import register_space
from zcbench.space import Arch, Batch, ModelOutput, Space

HEAD_DIM = 64  # AutoFormer fixes 64 dims per head: qkv_dim = 64 * num_heads
MAX_REL_POS = 14  # --max_relative_position default in AutoFormer / TF-TAS
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# AutoFormer Table 1 (choice sets and the published parameter ranges, in M).
VARIANTS: dict[str, dict] = {
    "tiny": {
        "embed_dim": (192, 216, 240),
        "depth": (12, 13, 14),
        "num_heads": (3, 4),
        "mlp_ratio": (3.5, 4.0),
        "params_m": (4, 9),
    },
    "small": {
        "embed_dim": (320, 384, 448),
        "depth": (12, 13, 14),
        "num_heads": (5, 6, 7),
        "mlp_ratio": (3.0, 3.5, 4.0),
        "params_m": (14, 34),
    },
    "base": {
        "embed_dim": (528, 576, 624),
        "depth": (14, 15, 16),
        "num_heads": (8, 9, 10),
        "mlp_ratio": (3.0, 3.5, 4.0),
        "params_m": (42, 75),
    },
}
GENE_KEYS = ("embed_dim", "depth", "num_heads", "mlp_ratio")


# --------------------------------------------------------------------------
# model
# --------------------------------------------------------------------------
def _trunc_normal(t: torch.Tensor, std: float = 0.02) -> torch.Tensor:
    # timm's / AutoFormer's call: cut-offs at -2 and 2 in absolute units (100 std here).
    return nn.init.trunc_normal_(t, std=std, a=-2.0, b=2.0)


@lru_cache(maxsize=8)
def _rel_index(grid: int, max_rel: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Row- and column-offset indices (N+1, N+1) into the relative tables.

    Patch tokens sit on a ``grid x grid`` raster; offsets are clipped to
    [-max_rel, max_rel] and shifted by max_rel + 1, so they land in
    [1, 2 max_rel + 1]; index 0 marks any pair involving the class token.
    """
    pos = torch.arange(grid * grid, device="cpu")  # never on meta, even inside a device context
    row, col = pos // grid, pos % grid
    out = []
    for coord in (row, col):
        off = (coord[None, :] - coord[:, None]).clamp(-max_rel, max_rel) + max_rel + 1
        out.append(F.pad(off, (1, 0, 1, 0), value=0))
    return out[0], out[1]


class RelativePosition2D(nn.Module):
    """Two learned tables (grid rows, grid columns) summed into a (T, T, Dh) encoding."""

    def __init__(self, head_dim: int, grid: int, max_rel: int = MAX_REL_POS):
        super().__init__()
        self.grid, self.max_rel = grid, max_rel
        self.table_row = nn.Parameter(torch.empty(2 * max_rel + 2, head_dim))
        self.table_col = nn.Parameter(torch.empty(2 * max_rel + 2, head_dim))
        _trunc_normal(self.table_row)
        _trunc_normal(self.table_col)

    def forward(self) -> torch.Tensor:
        ri, ci = _rel_index(self.grid, self.max_rel)
        dev = self.table_row.device
        return self.table_row[ri.to(dev)] + self.table_col[ci.to(dev)]


class Attention(nn.Module):
    def __init__(self, dim: int, num_heads: int, grid: int, relative_position: bool):
        super().__init__()
        self.num_heads = num_heads
        self.qkv_dim = HEAD_DIM * num_heads
        self.scale = HEAD_DIM ** -0.5
        self.qkv = nn.Linear(dim, 3 * self.qkv_dim, bias=True)
        self.proj = nn.Linear(self.qkv_dim, dim, bias=True)
        self.rel_k = RelativePosition2D(HEAD_DIM, grid) if relative_position else None
        self.rel_v = RelativePosition2D(HEAD_DIM, grid) if relative_position else None
        self.attn_probs = Tap("attn_probs")
        self.head_out = Tap("head_out")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, _ = x.shape
        q, k, v = self.qkv(x).reshape(B, T, 3, self.num_heads, HEAD_DIM).permute(2, 0, 3, 1, 4)
        logits = (q @ k.transpose(-2, -1)) * self.scale  # (B, H, T, T)
        if self.rel_k is not None:
            logits = logits + torch.einsum("bhtd,tsd->bhts", q, self.rel_k()) * self.scale
        p = self.attn_probs(logits.softmax(dim=-1))
        out = p @ v  # (B, H, T, Dh)
        if self.rel_v is not None:
            out = out + torch.einsum("bhts,tsd->bhtd", p, self.rel_v())
        out = self.head_out(out)
        return self.proj(out.transpose(1, 2).reshape(B, T, self.qkv_dim))


class MLP(nn.Module):
    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)
        self.act = Tap("ffn_act")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(F.gelu(self.fc1(x))))


class Block(nn.Module):
    """Pre-norm encoder layer: x + Attn(LN(x)); x + MLP(LN(x))."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float, grid: int, relative_position: bool):
        super().__init__()
        self.norm1 = tag(nn.LayerNorm(dim), "norm")
        self.attn = tag(Attention(dim, num_heads, grid, relative_position), "attn")
        self.norm2 = tag(nn.LayerNorm(dim), "norm")
        self.mlp = tag(MLP(dim, int(dim * mlp_ratio)), "ffn")
        self.out = Tap("block_out")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        x = x + self.mlp(self.norm2(x))
        return self.out(x)


class PatchEmbedding(nn.Module):
    """Conv patchify + class token + learned absolute position embedding."""

    def __init__(self, dim: int, img_size: int, patch_size: int, in_chans: int = 3):
        super().__init__()
        self.img_size = img_size
        self.proj = nn.Conv2d(in_chans, dim, kernel_size=patch_size, stride=patch_size)
        n_tokens = (img_size // patch_size) ** 2 + 1
        self.cls_token = nn.Parameter(_trunc_normal(torch.empty(1, 1, dim)))
        self.pos_embed = nn.Parameter(_trunc_normal(torch.empty(1, n_tokens, dim)))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if images.shape[-2:] != (self.img_size, self.img_size):
            raise ValueError(f"autoformer: expected {self.img_size}x{self.img_size} images, got {tuple(images.shape)}")
        x = self.proj(images).flatten(2).transpose(1, 2)  # (B, N, D)
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1)
        return x + self.pos_embed


class AutoFormerViT(nn.Module):
    """One standalone AutoFormer subnet built from its genes (see module docstring)."""

    def __init__(self, genes: dict, num_classes: int = 1000, img_size: int = 224, patch_size: int = 16,
                 relative_position: bool = True, pool: str = "mean"):
        super().__init__()
        if img_size % patch_size:
            raise ValueError(f"autoformer: img_size {img_size} is not a multiple of patch_size {patch_size}")
        if pool not in ("mean", "cls"):
            raise ValueError(f"autoformer: pool must be 'mean' or 'cls', not {pool!r}")
        dim, grid = genes["embed_dim"], img_size // patch_size
        self.pool = pool
        self.embed = tag(PatchEmbedding(dim, img_size, patch_size), "embedding")
        self.embed_tap = Tap("embedding")
        self.blocks = nn.ModuleList(
            tag(Block(dim, h, r, grid, relative_position), "block")
            for h, r in zip(genes["num_heads"], genes["mlp_ratio"])
        )
        self.norm = tag(nn.LayerNorm(dim), "norm")
        self.head = tag(nn.Linear(dim, num_classes), "output")
        for m in self.modules():
            if isinstance(m, nn.Linear):
                _trunc_normal(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, images: torch.Tensor, labels: torch.Tensor | None = None) -> ModelOutput:
        x = self.embed_tap(self.embed(images))
        for blk in self.blocks:
            x = blk(x)
        x = self.norm(x)
        feat = x[:, 1:].mean(dim=1) if self.pool == "mean" else x[:, 0]
        logits = self.head(feat)
        loss = F.cross_entropy(logits, labels) if labels is not None else None
        return ModelOutput(loss=loss, hidden=x, logits=logits)


def param_count_formula(genes: dict, num_classes: int = 1000, img_size: int = 224, patch_size: int = 16,
                        relative_position: bool = True) -> int:
    """AutoFormer's parameter count, written out (see the module docstring)."""
    D = genes["embed_dim"]
    n_patches = (img_size // patch_size) ** 2
    total = 3 * patch_size * patch_size * D + D + D * (n_patches + 2)
    for h, r in zip(genes["num_heads"], genes["mlp_ratio"]):
        Q, Fh = HEAD_DIM * h, int(D * r)
        total += D * 3 * Q + 3 * Q + Q * D + D + 4 * D + D * Fh + Fh + Fh * D + D
        if relative_position:
            total += 4 * (2 * MAX_REL_POS + 2) * HEAD_DIM
    return total + 2 * D + D * num_classes + num_classes


# --------------------------------------------------------------------------
# data: real labelled images bundled with scikit-learn
# --------------------------------------------------------------------------
@lru_cache(maxsize=1)
def _digits() -> tuple[torch.Tensor, torch.Tensor]:
    try:
        from sklearn.datasets import load_digits
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("space autoformer: make_batch needs scikit-learn (its bundled load_digits images); "
                          "pip install scikit-learn") from exc
    d = load_digits()
    images = torch.as_tensor(d.images, dtype=torch.float32) / 16.0  # (1797, 8, 8) in [0, 1]
    return images, torch.as_tensor(d.target, dtype=torch.long)


def digits_batch(batch_size: int, seed: int, img_size: int = 224) -> tuple[torch.Tensor, torch.Tensor, list[int]]:
    """``batch_size`` digits drawn without replacement (seeded), as ImageNet-normalised RGB."""
    images, labels = _digits()
    if not 1 <= batch_size <= len(images):
        raise ValueError(f"autoformer: batch_size must be in [1, {len(images)}], got {batch_size}")
    g = torch.Generator().manual_seed(seed)
    idx = torch.randperm(len(images), generator=g)[:batch_size]
    x = F.interpolate(images[idx, None], size=(img_size, img_size), mode="bilinear", align_corners=False)
    x = x.expand(-1, 3, -1, -1)
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    return ((x - mean) / std).contiguous(), labels[idx], idx.tolist()


# --------------------------------------------------------------------------
# the space
# --------------------------------------------------------------------------
@register_space("autoformer")
class AutoFormerSpace(Space):
    """AutoFormer ViT space; options: ``variant`` (tiny|small|base), ``num_classes``,
    ``img_size``, ``patch_size``, ``relative_position``, ``pool`` (mean|cls)."""

    description = "AutoFormer ViT supernet space (Chen et al., ICCV 2021), as searched by TF-TAS / ETAS"
    modality = "image"
    metric = "top1"
    higher_is_better = True
    metrics = ("top1",)

    def __init__(self, data_dir: str | None = None, target: str | None = None, variant: str = "tiny",
                 num_classes: int = 1000, img_size: int = 224, patch_size: int = 16,
                 relative_position: bool = True, pool: str = "mean", choices: dict | None = None, **cfg):
        """``choices``: a scaled-down sub-space, overriding some of the variant's choice sets,
        e.g. ``{embed_dim: [64, 96], depth: [2, 3, 4]}`` (project-built tables, docs/groundtruth.md)."""
        super().__init__(data_dir=data_dir, target=target, **cfg)
        if variant not in VARIANTS:
            raise ValueError(f"space autoformer: unknown variant {variant!r}; valid: {', '.join(VARIANTS)}")
        if pool not in ("mean", "cls"):
            raise ValueError(f"space autoformer: pool must be 'mean' or 'cls', not {pool!r}")
        if img_size % patch_size:
            raise ValueError(f"space autoformer: img_size {img_size} is not a multiple of patch_size {patch_size}")
        self.variant = variant
        self.choices = {k: VARIANTS[variant][k] for k in GENE_KEYS}
        for k, v in (choices or {}).items():
            if k not in GENE_KEYS:
                raise ValueError(f"space autoformer: unknown choices key {k!r}; valid: {', '.join(GENE_KEYS)}")
            self.choices[k] = tuple(float(x) if k == "mlp_ratio" else int(x) for x in v)
        self.params_range = tuple(v * 10**6 for v in VARIANTS[variant]["params_m"])
        self.num_classes = int(num_classes)
        self.img_size, self.patch_size = int(img_size), int(patch_size)
        self.relative_position, self.pool = bool(relative_position), pool
        self.cfg.update(variant=variant, num_classes=self.num_classes, img_size=self.img_size,
                        patch_size=self.patch_size, relative_position=self.relative_position, pool=pool)
        if choices:
            self.cfg["choices"] = {k: list(v) for k, v in choices.items()}

    # ---- stored benchmark: none is public ---------------------------------
    def load_stored(self) -> list[Arch]:
        return []

    # ---- architectures ----------------------------------------------------
    @staticmethod
    def canonical(genes: dict) -> dict:
        """Genes with canonical types (int sizes, float ratios) so equal networks hash equally."""
        return {
            "embed_dim": int(genes["embed_dim"]),
            "depth": int(genes["depth"]),
            "num_heads": [int(h) for h in genes["num_heads"]],
            "mlp_ratio": [float(r) for r in genes["mlp_ratio"]],
        }

    def make_arch(self, genes: dict) -> Arch:
        self.validate(genes)
        return super().make_arch(self.canonical(genes))

    def layer_choices(self) -> int:
        return len(self.choices["num_heads"]) * len(self.choices["mlp_ratio"])

    def space_size(self) -> int:
        """Number of distinct architectures: |E| * sum_d (|H| |R|)^d."""
        c = self.layer_choices()
        return len(self.choices["embed_dim"]) * sum(c**d for d in self.choices["depth"])

    def paper_space_size(self) -> int:
        """AutoFormer's counting, |E| * |D| * (|H| |R|)^D_max (every depth counted with all layers)."""
        ch = self.choices
        return len(ch["embed_dim"]) * len(ch["depth"]) * self.layer_choices() ** max(ch["depth"])

    def sample(self, rng: random.Random) -> Arch:
        """Uniform over distinct architectures: depth d is drawn with weight (|H||R|)^d,
        then every gene uniformly (AutoFormer's own sampler draws depth uniformly)."""
        ch = self.choices
        c = self.layer_choices()
        depth = rng.choices(ch["depth"], weights=[c**d for d in ch["depth"]])[0]
        genes = {
            "embed_dim": rng.choice(ch["embed_dim"]),
            "depth": depth,
            "num_heads": [rng.choice(ch["num_heads"]) for _ in range(depth)],
            "mlp_ratio": [rng.choice(ch["mlp_ratio"]) for _ in range(depth)],
        }
        return self.make_arch(genes)

    def mutate(self, arch: Arch, rng: random.Random) -> Arch:
        """Change one gene, chosen uniformly among embed_dim, depth and the 2*depth per-layer
        genes, to a different valid value. A depth change truncates the per-layer lists
        (deeper layers dropped) or appends new layers with uniformly drawn heads/ratios, as
        AutoFormer's evolutionary mutation does; existing layers are never altered."""
        g = self.canonical(arch.genes)
        ch = self.choices
        slots = ["embed_dim", "depth"] + [(k, i) for k in ("num_heads", "mlp_ratio") for i in range(g["depth"])]
        slot = rng.choice(slots)

        def other(options, current):
            return rng.choice([o for o in options if o != current])

        if slot == "embed_dim":
            g["embed_dim"] = other(ch["embed_dim"], g["embed_dim"])
        elif slot == "depth":
            new = other(ch["depth"], g["depth"])
            for k in ("num_heads", "mlp_ratio"):
                g[k] = g[k][:new] + [rng.choice(ch[k]) for _ in range(new - g["depth"])]
            g["depth"] = new
        else:
            k, i = slot
            g[k][i] = other(ch[k], g[k][i])
        return self.make_arch(g)

    def validate(self, genes: dict) -> None:
        if not isinstance(genes, dict) or set(genes) != set(GENE_KEYS):
            got = sorted(genes) if isinstance(genes, dict) else type(genes).__name__
            raise ValueError(f"autoformer: genes must have exactly {list(GENE_KEYS)}, got {got}")
        ch = self.choices
        for k in ("embed_dim", "depth"):
            if genes[k] not in ch[k]:
                raise ValueError(f"autoformer/{self.variant}: gene {k}={genes[k]!r} not in {list(ch[k])}")
        for k in ("num_heads", "mlp_ratio"):
            vals = genes[k]
            if not isinstance(vals, (list, tuple)) or len(vals) != genes["depth"]:
                raise ValueError(f"autoformer: gene {k} must be a list of depth={genes['depth']} values, got {vals!r}")
            for i, v in enumerate(vals):
                if isinstance(v, bool) or v not in ch[k]:
                    raise ValueError(f"autoformer/{self.variant}: gene {k}[{i}]={v!r} not in {list(ch[k])}")

    def summary(self, arch: Arch) -> dict:
        g = arch.genes
        D = g["embed_dim"]
        return {
            "n_layer": g["depth"],
            "d_model": D,
            "n_head": list(g["num_heads"]),
            "d_inner": [int(D * r) for r in g["mlp_ratio"]],
            "seq_len": (self.img_size // self.patch_size) ** 2 + 1,
            "qkv_dim": [HEAD_DIM * h for h in g["num_heads"]],
            "head_dim": HEAD_DIM,
            "variant": self.variant,
        }

    # ---- models and data --------------------------------------------------
    def build(self, arch: Arch) -> nn.Module:
        self.validate(arch.genes)
        return AutoFormerViT(arch.genes, num_classes=self.num_classes, img_size=self.img_size,
                             patch_size=self.patch_size, relative_position=self.relative_position, pool=self.pool)

    def make_batch(self, batch_size: int, seq_len: int, seed: int) -> Batch:
        """Seeded real images with real labels (scikit-learn digits); ``seq_len`` is ignored."""
        if self.num_classes < 10:
            raise ValueError(f"space autoformer: the digits batch needs num_classes >= 10, got {self.num_classes}")
        x, y, idx = digits_batch(batch_size, seed, self.img_size)
        info = {"source": "sklearn.datasets.load_digits (8x8, upsampled bilinearly, ImageNet-normalised)",
                "seed": seed, "indices": idx, "img_size": self.img_size,
                "seq_len": (self.img_size // self.patch_size) ** 2 + 1, "seq_len_requested": seq_len}
        return Batch(inputs=x, targets=y, info=info)


__all__ = ["AutoFormerSpace", "AutoFormerViT", "VARIANTS", "param_count_formula", "digits_batch"]
