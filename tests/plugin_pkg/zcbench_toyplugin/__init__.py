"""An out-of-tree zcbench plug-in, discovered only through its entry points.

It is never imported by zcbench's own code: the dist-info folder beside it
declares ``zcbench.proxies`` and ``zcbench.spaces`` entry points, exactly as an
installed third-party package would.
"""
import random

import torch
from torch import nn

from zcbench import register_proxy, register_space
from zcbench.proxy import Proxy
from zcbench.space import Arch, Batch, ModelOutput, Space


@register_proxy("toy_depth")
class ToyDepth(Proxy):
    needs = frozenset({"arch"})

    def score(self, ctx):
        return float(ctx.arch.genes["depth"])


@register_space("toy_mlp")
class ToyMLP(Space):
    metric = "acc"
    metrics = ("acc",)
    higher_is_better = True

    def load_stored(self):
        return [Arch(genes={"depth": d, "width": 8}, key=str(d), truth={"acc": float(d)}) for d in range(1, 6)]

    def sample(self, rng: random.Random):
        return self.make_arch({"depth": rng.randint(1, 5), "width": 8})

    def build(self, arch):
        layers = [nn.Linear(4, 4) for _ in range(arch.genes["depth"])]

        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.body = nn.Sequential(*layers)

            def forward(self, x, y=None):
                h = self.body(x)
                loss = None if y is None else ((h - y) ** 2).mean()
                return ModelOutput(loss=loss, hidden=h)

        return Net()

    def make_batch(self, batch_size, seq_len, seed):
        g = torch.Generator().manual_seed(seed)
        return Batch(torch.randn(batch_size, 4, generator=g), torch.randn(batch_size, 4, generator=g), {"toy": True})
