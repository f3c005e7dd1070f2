"""length_distortion (As-ViT, ICLR 2022): by value on tiny models, and on real spaces."""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from zcbench.engine import score_arch
from zcbench.introspect import Tap, tag
from zcbench.registry import create_space, get_proxy
from zcbench.space import ModelOutput


class TinyVision(nn.Module):
    """Image (1, 4, 4) -> 4 tokens of 4 pixels -> linear (+ optional tanh) -> block_out; a LayerNorm after."""

    def __init__(self, nonlinear: bool):
        super().__init__()
        self.proj = tag(nn.Linear(4, 3), "attn")
        self.nonlinear = nonlinear
        self.out = Tap("block_out")
        self.norm = nn.LayerNorm(3)

    def tokens(self, images):
        return images.reshape(images.shape[0], 4, 4)

    def forward(self, images, targets=None):
        h = self.proj(self.tokens(images))
        if self.nonlinear:
            h = torch.tanh(2.0 * h)
        h = self.out(h)
        return ModelOutput(loss=None, hidden=self.norm(h))


def _frame(seed, dim):
    from zcbench.proxies.length_distortion import circle_frame

    U = circle_frame(seed, dim, "cpu", torch.float64)
    assert torch.allclose(U.T @ U, torch.eye(2, dtype=torch.float64), atol=1e-12)  # orthonormal pair
    return U


def test_linear_network_by_hand():
    """f(x) = mean_t (W x_t + b): df/dtheta = A U x'(theta) with A the token-mean of W; LD = mean_i ||A U x'_i||."""
    from zcbench.proxies.length_distortion import length_distortion

    torch.manual_seed(0)
    model = TinyVision(nonlinear=False).double().eval()
    example = torch.zeros(1, 1, 4, 4, dtype=torch.float64)
    U = _frame(3, 16)
    W = model.proj.weight.detach()  # (3, 4)
    A = torch.cat([W / 4] * 4, dim=1)  # (3, 16): x flattened token by token
    n = 8
    want = 0.0
    for i in range(n):
        th = 2 * math.pi * i / n
        tangent = U @ torch.tensor([-math.sin(th), math.cos(th)], dtype=torch.float64)
        want += float(torch.linalg.vector_norm(A @ tangent))
    want /= n
    assert length_distortion(model, example, 3, points=n, chunk=3) == pytest.approx(want, rel=1e-12)


def test_nonlinear_network_against_finite_differences_and_curve_length():
    """tanh network: forward-mode derivatives = central differences; LD = (output curve length) / 2 pi."""
    from zcbench.proxies.length_distortion import length_distortion

    torch.manual_seed(1)
    model = TinyVision(nonlinear=True).double().eval()
    example = torch.zeros(1, 1, 4, 4, dtype=torch.float64)
    U = _frame(5, 16)

    def f(th):
        x = (U @ torch.tensor([math.cos(th), math.sin(th)], dtype=torch.float64)).reshape(1, 1, 4, 4)
        with torch.no_grad():
            return torch.tanh(2.0 * model.proj(model.tokens(x))).mean(dim=1)[0]

    n, eps = 12, 1e-6
    fd = sum(float(torch.linalg.vector_norm((f(2 * math.pi * i / n + eps) - f(2 * math.pi * i / n - eps)) / (2 * eps)))
             for i in range(n)) / n
    got = length_distortion(model, example, 5, points=n, chunk=5)
    assert got == pytest.approx(fd, rel=1e-7)
    # the polygon through many output points has (almost) the curve's length: LD is a length ratio
    m = 4000
    pts = torch.stack([f(2 * math.pi * i / m) for i in range(m + 1)])
    polygon = float(torch.linalg.vector_norm(pts[1:] - pts[:-1], dim=1).sum())
    assert length_distortion(model, example, 5, points=64) == pytest.approx(polygon / (2 * math.pi), rel=1e-5)
    # norm layers after the last block do not enter; norm="keep" vs "identity" is the same here
    assert length_distortion(model, example, 5, points=n, norm="keep") == pytest.approx(got, rel=1e-12)


@pytest.mark.parametrize("space_name,seq_len", [("gpt2", 32), ("flexibert", 32)])
def test_on_real_spaces_points_converge_and_engine_is_deterministic(space_name, seq_len, data_dir):
    from zcbench.proxies.length_distortion import length_distortion

    space = create_space(space_name, data_dir=data_dir)
    arch = sorted(space.stored(), key=lambda a: a.id)[0]
    r1 = score_arch(space, arch, [get_proxy("length_distortion")], seed=0, batch_size=2, seq_len=seq_len)
    r2 = score_arch(space, arch, [get_proxy("length_distortion")], seed=0, batch_size=2, seq_len=seq_len)
    v = r1["length_distortion"]
    assert v.status == "ok" and v.value > 0 and v.value == r2["length_distortion"].value
    torch.manual_seed(0)
    model = space.build(arch).eval()
    ex = space.make_batch(2, seq_len, 0).inputs[:1]
    many = length_distortion(model, ex, 0, points=100, chunk=25)
    assert length_distortion(model, ex, 0) == pytest.approx(many, rel=1e-4)  # the default 8 points
    assert all(p.grad is None for p in model.parameters())
    # the norm hooks are removed afterwards: a plain forward is unchanged
    with torch.no_grad():
        h1 = model(ex, None).hidden
        length_distortion(model, ex, 0, points=4)
        h2 = model(ex, None).hidden
    assert torch.equal(h1, h2)


def test_options_are_checked():
    with pytest.raises(ValueError, match="valid: identity, keep"):
        get_proxy("length_distortion", norm="batch")
    with pytest.raises(ValueError, match="points"):
        get_proxy("length_distortion", points=2)
    assert "chunk" not in get_proxy("length_distortion", chunk=4).identity_options
