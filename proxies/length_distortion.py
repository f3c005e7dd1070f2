"""length_distortion — how much a network stretches a circle in its input space (As-ViT's expressivity).

Paper: W. Chen, W. Huang, X. Du, X. Song, Z. Wang and D. Zhou, "Auto-scaling Vision
Transformers without Training", ICLR 2022 (Sec. 3: the network's expressivity measured by
the length distortion of a 1-D input manifold, after Hanin & Rolnick / Poole et al.'s
trajectory-length analysis). ETAS (Yang & Liu, Findings of ACL 2024) compares against it
as "LD" in its Tables 1 and 3 (zcbench/published.yaml).

Definition implemented here. A circle of unit radius is drawn through the network's input
space,

    x(theta) = U [cos theta, sin theta]^T,   theta in [0, 2 pi),

with U a fixed random orthonormal pair of directions (QR of a Gaussian matrix drawn from
the run seed). Let f(x) be the token average of the last block's output (the last
``block_out`` tap, before any final normalisation — the pooled "feature" As-ViT reads).
The length distortion is the ratio of the output curve's length to the input curve's
length (2 pi):

    LD = (1 / 2 pi) * integral_0^{2 pi} || d f(x(theta)) / d theta ||_2 d theta
       ~= (1 / n) * sum_{i=0..n-1} || J_f(x(theta_i)) x'(theta_i) ||_2,   theta_i = 2 pi i / n

(the periodic trapezoid rule, ``points`` = n). Each derivative is computed exactly by
forward-mode automatic differentiation (``torch.autograd.forward_ad``: the tangent
x'(theta) = U [-sin theta, cos theta]^T is pushed through the network with the input), one
forward per chunk of points; no finite differences.

The input space: pixels for image spaces (the minibatch is a float tensor: the curve lives
in C x H x W, as in As-ViT); for text spaces the tokens are discrete, so the curve lives in
the representation at the ``embedding`` tap (token + position embeddings, T x d, T = the
run's sequence length) — the token ids fed alongside are the minibatch's first example and
only shape the computation (their embedding is replaced by the curve point).

Settings and deviations from As-ViT's code (VITA-Group/AsViT, ``lib/procedures/teg.py``;
read, not copied):

* normalisation layers are switched to the identity while LD is measured (as As-ViT's
  ``switch_norm('id')``); option ``norm="keep"`` keeps them;
* As-ViT sums ||df/dtheta|| over 500 points of ``linspace(0, 2 pi, 500)`` (0 and 2 pi
  both), i.e. n times our mean on a grid with one point doubled: the same ranking at fixed
  n up to that one point; we report the mean (the length ratio) on the periodic grid;
* As-ViT averages 3 re-initialisations with its own init (truncated normal, std 0.02);
  we use the space's own initialisation and one init per seed (the leaderboard's seeds
  average);
* ``points`` default 8 (As-ViT: 500): the trapezoid rule on a smooth periodic integrand
  converges geometrically; on real GPT-2 and FlexiBERT networks 8 and 100 points agree to
  ~2e-6 relative (tests/test_length_distortion.py checks <= 1e-4);
* the model is in eval mode (dropout off), as everywhere in zcbench.

Layers counted: none individually — a function of the whole network's forward map (every
layer between the input, or the embedding tap, and the last block's output).

needs = {"forward"}: the engine's standard forward is not used, but asking for it builds the
seeded minibatch (for shapes and the image/text decision) and keys the stored score by
batch, sequence length and corpus.
"""
from __future__ import annotations

import contextlib
import hashlib
import math

import torch
import torch.autograd.forward_ad as fwAD
from torch import nn

from zcbench.proxy import NotApplicable, Proxy
from zcbench.introspect import Tap
from zcbench.registry import register_proxy

F64 = torch.float64


def circle_frame(seed: int, dim: int, device, dtype) -> torch.Tensor:
    """A fixed random orthonormal pair U (dim x 2) for run ``seed``."""
    s = int.from_bytes(hashlib.sha256(f"length_distortion:{int(seed)}".encode()).digest()[:8], "little") >> 1
    g = torch.Generator().manual_seed(s)
    q, _ = torch.linalg.qr(torch.randn(dim, 2, generator=g, dtype=F64))
    return q.to(device=device, dtype=dtype)


def circle(frame: torch.Tensor, thetas: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Points x(theta) and tangents x'(theta), each (len(thetas), dim)."""
    cs = torch.stack([torch.cos(thetas), torch.sin(thetas)])  # (2, n)
    dcs = torch.stack([-torch.sin(thetas), torch.cos(thetas)])
    return (frame @ cs.to(frame.dtype)).T, (frame @ dcs.to(frame.dtype)).T


@contextlib.contextmanager
def identity_norms(model: nn.Module, enabled: bool = True):
    """Make every LayerNorm / GroupNorm / BatchNorm return its input while active (As-ViT's switch_norm('id'))."""
    handles = []
    if enabled:
        norm_types = (nn.LayerNorm, nn.GroupNorm, nn.modules.batchnorm._BatchNorm)
        for m in model.modules():
            if isinstance(m, norm_types):
                handles.append(m.register_forward_hook(lambda mod, inp, out: inp[0]))
    try:
        yield
    finally:
        for h in handles:
            h.remove()


def _pooled_last_block(model, inputs, replace=None) -> torch.Tensor:
    """Token mean of the last ``block_out`` tap; ``replace`` substitutes the ``embedding`` tap's output."""
    captured, handles = {}, []
    blocks = [m for m in model.modules() if isinstance(m, Tap) and m.kind == "block_out"]
    if not blocks:
        raise NotApplicable("the model has no 'block_out' taps")
    for t in blocks:
        handles.append(t.register_forward_hook(lambda mod, inp, out: captured.__setitem__("h", out)))
    if replace is not None:
        emb = [m for m in model.modules() if isinstance(m, Tap) and m.kind == "embedding"]
        if not emb:
            raise NotApplicable("text model without an 'embedding' tap: no continuous input space")
        handles.append(emb[0].register_forward_hook(lambda mod, inp, out: replace))
    try:
        model(inputs, None)
    finally:
        for h in handles:
            h.remove()
    h = captured["h"]
    return h.mean(dim=1) if h.dim() == 3 else h.reshape(h.shape[0], -1)


def length_distortion(model, example: torch.Tensor, seed: int, points: int = 8, chunk: int = 8,
                      norm: str = "identity") -> float:
    """(1/n) sum_i ||d f(x(theta_i))/d theta||, f = token-mean of the last block; see the module docstring.

    ``example`` is one input of the minibatch (batch dimension 1): a float image (curve in pixel
    space) or token ids (curve at the embedding tap)."""
    p = next(model.parameters())
    image = example.is_floating_point()
    if image:
        shape = tuple(example.shape[1:])
    else:
        with torch.no_grad():
            emb = {}
            taps = [m for m in model.modules() if isinstance(m, Tap) and m.kind == "embedding"]
            if not taps:
                raise NotApplicable("text model without an 'embedding' tap: no continuous input space")
            h = taps[0].register_forward_hook(lambda mod, inp, out: emb.__setitem__("e", out))
            try:
                model(example, None)
            finally:
                h.remove()
            shape = tuple(emb["e"].shape[1:])
    dim = math.prod(shape)
    frame = circle_frame(seed, dim, p.device, p.dtype)
    thetas = torch.arange(points, dtype=F64, device=p.device) * (2 * math.pi / points)
    total = torch.zeros((), dtype=F64, device=p.device)
    with torch.no_grad(), identity_norms(model, norm == "identity"):
        for lo in range(0, points, chunk):
            x, dx = circle(frame, thetas[lo:lo + chunk])
            n = x.shape[0]
            with fwAD.dual_level():
                dual = fwAD.make_dual(x.reshape(n, *shape), dx.reshape(n, *shape))
                if image:
                    out = _pooled_last_block(model, dual)
                else:
                    out = _pooled_last_block(model, example.expand(n, *example.shape[1:]), replace=dual)
                tangent = fwAD.unpack_dual(out).tangent
            if tangent is None:  # the output does not depend on the input at all
                continue
            total += torch.linalg.vector_norm(tangent.to(F64), dim=1).sum()
    return float(total) / points


@register_proxy("length_distortion")
class LengthDistortion(Proxy):
    """Length of the image of a unit circle through the network / its own length (As-ViT, ICLR 2022)."""

    version = "1"
    needs = frozenset({"forward"})
    citation = "Chen, Huang, Du, Song, Wang, Zhou, Auto-scaling Vision Transformers without Training, ICLR 2022"
    defaults = {"points": 8, "chunk": 8, "norm": "identity"}
    layers_counted = "none individually: the whole forward map from the input (or embedding tap) to the last block"

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        if int(self.options["points"]) < 3:
            raise ValueError(f"length_distortion: points={self.options['points']} must be >= 3")
        if int(self.options["chunk"]) < 1:
            raise ValueError(f"length_distortion: chunk={self.options['chunk']} must be >= 1")
        if self.options["norm"] not in ("identity", "keep"):
            raise ValueError(f"length_distortion: norm={self.options['norm']!r}; valid: identity, keep")

    @property
    def identity_options(self) -> dict:
        return {k: v for k, v in self.options.items() if k != "chunk"}  # chunking changes only float round-off

    def score(self, ctx) -> float:
        if ctx.batch is None:
            raise NotApplicable("length_distortion needs the minibatch's shapes")
        return length_distortion(ctx.model, ctx.batch.inputs[:1], ctx.seed, int(self.options["points"]),
                                 int(self.options["chunk"]), self.options["norm"])
