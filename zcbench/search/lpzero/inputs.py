"""The six LPZero inputs of an architecture, captured once and kept in a compact form.

Capture
    ``CaptureProxy`` is an ordinary engine ``Proxy`` that needs
    ``forward + backward + jacobian`` and the ``ffn_act`` / ``head_out`` /
    ``attn_probs`` / ``block_out`` taps, so ``zcbench.engine.score_arch`` builds the
    model once and runs ONE forward, ONE backward (weight gradients) and ONE extra
    backward for the input Jacobian. Its ``score`` compresses what it needs from the
    ``Context`` into an external dict and returns 0.0.

What each input is (per architecture, a list of *items*)
    ``A``  activations: every ``ffn_act`` tap (B, T, F) -- the FFN activation after the
           nonlinearity, one per FFN (LPZero's ``act``); models without FFN taps fall
           back to the ``block_out`` taps;
    ``H``  attention-head outputs: every ``head_out`` tap (B, heads, T, d_head);
    ``S``  softmax maps: every ``attn_probs`` tap (B, heads, T, T);
    ``J``  the engine's input Jacobian (B, T, D) of a fixed random projection of the
           final hidden state w.r.t. the embedding output (one item);
    ``W``  the weight of every weight layer (``nn.Linear``/``Conv``) except the output
           head, as a matrix (out, fan_in);
    ``G``  the training-loss gradient of those same weights (zeros for a weight the
           loss does not reach).

Compression (the cache's "which layers, what reduction")
    Every item keeps ALL layers but is reduced to a fixed ``R x C`` sample matrix:
    the tensor is viewed as (dim 0, rest); rows are the first ``min(B, rows)`` examples
    for the activation-type inputs (A, H, S, J) and ``rows`` output units drawn without
    replacement for W and G; columns are ``cols`` positions of the flattened rest drawn
    without replacement (with replacement only when the tensor is smaller than that,
    which no built-in space hits). Positions are drawn from a generator seeded by
    ``(subsample_seed, group, item index, shape)`` -- independent of the run seed, and
    the same for W and G of a layer so that ``W ⊙ G`` pairs a weight with its own
    gradient. Each item also keeps ``N_full / n`` (its full size over the sample size),
    used by the Frobenius norm. Default ``rows=16, cols=256``: at most 4096 float32
    numbers (16 KiB) per item; a GPT-2 LTS architecture (~6 blocks, ~40 weight
    layers) takes about 1.5--3 MiB, FlexiBERT ~0.5--1 MiB.

    The searched proxy IS defined on this sample: ``proxies/searched.py`` compresses the
    scoring context with the same function, so a saved expression scores an
    architecture exactly as the search evaluated it.

Disk cache
    ``<zcbench cache dir>/lpzero/<space>/<data key>/<arch id>.pt`` where the data key
    hashes the space, its options, seed, batch size, sequence length, device, rows, cols,
    subsample seed and ``CACHE_VERSION``.
"""
from __future__ import annotations

import hashlib
import json
import os
import sys
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from zcbench.engine import score_arch
from zcbench.proxy import Proxy
from zcbench.search.lpzero.ops import INPUTS

CACHE_VERSION = "1"
DEFAULT_ROWS = 16
DEFAULT_COLS = 256
# which inputs need which engine passes / taps
NEEDS = {"A": {"forward"}, "H": {"forward"}, "S": {"forward"}, "J": {"jacobian"}, "W": {"weights"},
         "G": {"backward"}}
TAPS = {"A": {"ffn_act", "block_out"}, "H": {"head_out"}, "S": {"attn_probs"}}
GROUP = {"A": "act", "H": "head", "S": "attn", "J": "jac", "W": "param", "G": "param"}


def _generator(subsample_seed: int, group: str, index: int, shape) -> torch.Generator:
    tag = f"{subsample_seed}|{group}|{index}|{'x'.join(map(str, shape))}"
    return torch.Generator().manual_seed(zlib.crc32(tag.encode()))


def _pick(n: int, k: int, g: torch.Generator) -> torch.Tensor:
    if n >= k:
        return torch.sort(torch.randperm(n, generator=g)[:k]).values
    return torch.sort(torch.randint(0, n, (k,), generator=g)).values


def compress(t: torch.Tensor, group: str, index: int, rows: int, cols: int, batch_rows: bool,
             subsample_seed: int = 0) -> tuple[torch.Tensor, float]:
    """One tensor -> (R x C float32 sample, N_full / n)."""
    t = t.detach()
    m = t.reshape(t.shape[0], -1) if t.dim() >= 2 else t.reshape(1, -1)
    g = _generator(subsample_seed, group, index, tuple(t.shape))
    if batch_rows:
        r = torch.arange(min(m.shape[0], rows))
    else:
        r = _pick(m.shape[0], rows, g)
    c = _pick(m.shape[1], cols, g)
    sample = m.index_select(0, r.to(m.device)).index_select(1, c.to(m.device))
    sample = sample.to(device="cpu", dtype=torch.float32).contiguous()
    return sample, float(t.numel()) / float(sample.numel())


def extract(ctx, kinds=INPUTS, rows: int = DEFAULT_ROWS, cols: int = DEFAULT_COLS,
            subsample_seed: int = 0) -> dict:
    """Compress the requested inputs from an engine ``Context``.

    Returns ``{kind: (X (L, R, C) float32, scale (L,) float64)}``; L may be 0 (e.g. no
    attention maps in an architecture made only of linear transforms)."""
    out = {}
    for k in kinds:
        items: list[torch.Tensor] = []
        batch_rows = k in ("A", "H", "S", "J")
        if k == "A":
            recs = ctx.tap_records("ffn_act") or ctx.tap_records("block_out")
            items = [r.activation for r in recs]
        elif k == "H":
            items = [r.activation for r in ctx.tap_records("head_out")]
        elif k == "S":
            items = [r.activation for r in ctx.tap_records("attn_probs")]
        elif k == "J":
            items = [ctx.jacobian] if ctx.jacobian is not None else []
        elif k in ("W", "G"):
            for wl in ctx.weight_layers():
                w = wl.weight
                if k == "W":
                    items.append(w.detach())
                else:
                    gr = ctx.grad(w)
                    items.append(gr if gr is not None else torch.zeros_like(w))
        samples, scales = [], []
        for i, t in enumerate(items):
            s, sc = compress(t, GROUP[k], i, rows, cols, batch_rows, subsample_seed)
            samples.append(s)
            scales.append(sc)
        r = min(rows, ctx.batch_size) if batch_rows else rows
        X = torch.stack(samples) if samples else torch.zeros((0, r, cols), dtype=torch.float32)
        out[k] = (X, torch.tensor(scales, dtype=torch.float64))
    return out


class CaptureProxy(Proxy):
    """Stashes the compressed inputs of each scored architecture in ``self.store`` and returns 0.0."""

    name = "lpzero_capture"
    needs = frozenset({"forward", "backward", "jacobian", "weights"})
    taps = frozenset({"ffn_act", "head_out", "attn_probs", "block_out"})
    defaults = {"rows": DEFAULT_ROWS, "cols": DEFAULT_COLS, "subsample_seed": 0}

    def __init__(self, **kw):
        super().__init__(**kw)
        self.store: dict = {}

    def score(self, ctx) -> float:
        self.store[ctx.arch.id] = extract(ctx, INPUTS, self.options["rows"], self.options["cols"],
                                          self.options["subsample_seed"])
        return 0.0


@dataclass
class CacheConfig:
    space: str
    seed: int = 0
    batch_size: int = 8
    seq_len: int = 64
    rows: int = DEFAULT_ROWS
    cols: int = DEFAULT_COLS
    subsample_seed: int = 0
    device: str = "cpu"
    space_options: dict = field(default_factory=dict)

    @property
    def key(self) -> str:
        d = {"space": self.space, "seed": self.seed, "batch_size": self.batch_size, "seq_len": self.seq_len,
             "rows": self.rows, "cols": self.cols, "subsample_seed": self.subsample_seed,
             "device": torch.device(self.device).type, "space_options": self.space_options, "v": CACHE_VERSION}
        return hashlib.sha1(json.dumps(d, sort_keys=True).encode()).hexdigest()[:10]

    def folder(self, root: Path | None = None) -> Path:
        if root is None:
            from zcbench.data import cache_dir

            root = cache_dir() / "lpzero"
        return Path(root) / self.space / self.key


def load_or_capture(space, archs, cc: CacheConfig, root: Path | None = None, log=True) -> dict:
    """{arch id: inputs} for ``archs``, reading the disk cache and capturing what is missing."""
    folder = cc.folder(root)
    folder.mkdir(parents=True, exist_ok=True)
    meta = folder / "meta.json"
    if not meta.exists():
        meta.write_text(json.dumps({**cc.__dict__, "key": cc.key, "version": CACHE_VERSION}, indent=2,
                                   sort_keys=True, default=str))
    out = {}
    todo = []
    for a in archs:
        p = folder / f"{a.id}.pt"
        if p.exists():
            try:
                out[a.id] = torch.load(p, weights_only=True)
                continue
            except Exception:  # noqa: BLE001 - a torn file is captured again
                pass
        todo.append(a)
    if todo:
        cap = CaptureProxy(rows=cc.rows, cols=cc.cols, subsample_seed=cc.subsample_seed)
        t0 = time.perf_counter()
        for i, a in enumerate(todo):
            r = score_arch(space, a, [cap], seed=cc.seed, batch_size=cc.batch_size, seq_len=cc.seq_len,
                           device=cc.device)[cap.name]
            if r.status != "ok" or a.id not in cap.store:
                raise RuntimeError(f"capturing the inputs of {space.name}/{a.id} failed: {r.message}")
            data = cap.store.pop(a.id)
            tmp = folder / f".{a.id}.pt.{os.getpid()}"
            torch.save(data, tmp)
            os.replace(tmp, folder / f"{a.id}.pt")
            out[a.id] = data
            if log:
                el = time.perf_counter() - t0
                print(f"[lpzero cache] {space.name}: captured {i + 1}/{len(todo)} ({el:.0f}s, "
                      f"{el / (i + 1):.1f}s/arch)", file=sys.stderr, flush=True)
    return out


def nbytes(inputs: dict) -> int:
    return sum(X.numel() * X.element_size() + s.numel() * 8 for X, s in inputs.values())


class Bank:
    """The inputs of a list of architectures, stacked per input kind for vectorised evaluation.

    For kind k: ``X[k]`` (N_k, R, C), ``scale[k]`` (N_k,), ``arch[k]`` (N_k,) index of the
    architecture owning each item, ``pos[k]`` (N_k,) item index within it, ``count[k]``
    (n_archs,) items per architecture."""

    def __init__(self, arch_ids: list[str], per_arch: dict):
        self.arch_ids = list(arch_ids)
        self.n = len(self.arch_ids)
        self.X, self.scale, self.arch, self.pos, self.count = {}, {}, {}, {}, {}
        for k in INPUTS:
            xs, ss, ai, pi, cnt = [], [], [], [], []
            for j, a in enumerate(self.arch_ids):
                X, s = per_arch[a][k]
                L = X.shape[0]
                xs.append(X)
                ss.append(s)
                ai.append(np.full(L, j))
                pi.append(np.arange(L))
                cnt.append(L)
            self.X[k] = torch.cat(xs) if xs else torch.zeros(0)
            self.scale[k] = torch.cat(ss) if ss else torch.zeros(0, dtype=torch.float64)
            self.arch[k] = np.concatenate(ai).astype(np.int64) if ai else np.zeros(0, np.int64)
            self.pos[k] = np.concatenate(pi).astype(np.int64) if pi else np.zeros(0, np.int64)
            self.count[k] = np.asarray(cnt, dtype=np.int64)

    @property
    def nbytes(self) -> int:
        return sum(x.numel() * x.element_size() for x in self.X.values())
