"""Scoring engine: one model per (arch, seed), the fewest passes for all requested proxies.

A proxy declares what it needs (``Proxy.needs``, a subset of ``NEEDS``); the
engine builds the model once under ``torch.manual_seed(seed)``, makes the
space's seeded minibatch, runs each pass that some requested proxy needs, and
hands every proxy a ``Context`` holding what was captured.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

import torch

# What a proxy can ask for. "arch" needs no model at all (e.g. parameter counts
# from the space's own counting convention).
NEEDS = frozenset({"arch"})


@dataclass
class ScoreResult:
    value: float  # NaN when not applicable or failed
    status: str  # "ok" | "nan" | "inf" | "n/a" | "error"
    seconds: float
    message: str = ""


class NotApplicable(Exception):
    """Raised by a proxy that is undefined on this model (e.g. no attention maps)."""


class Proxy:
    """Base class of every proxy. Subclasses set ``needs`` and implement ``score``.

    ``score`` returns a float where *higher predicts a better architecture*
    (the runner flips the ground truth's sign, never the proxy's).
    """

    name: str = ""
    version: str = "1"
    needs: frozenset = frozenset()
    citation: str = ""

    def __init__(self, **kwargs):
        self.options = kwargs

    def score(self, ctx: "Context") -> float:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"


@dataclass
class Context:
    space: Any
    arch: Any
    seed: int
    batch_size: int
    seq_len: int
    device: str = "cpu"
    cache: dict = field(default_factory=dict)  # per-arch memo shared by proxies


def classify(value: float) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "nan"
    if math.isinf(value):
        return "inf"
    return "ok"


def score_arch(space, arch, proxies: list[Proxy], *, seed: int = 0, batch_size: int = 16,
               seq_len: int = 128, device: str = "cpu") -> dict[str, ScoreResult]:
    """Score one architecture with every proxy in ``proxies``."""
    for p in proxies:
        unknown = set(p.needs) - NEEDS
        if unknown:
            raise ValueError(f"proxy {p.name} needs {sorted(unknown)}, which this engine cannot provide")
    ctx = Context(space=space, arch=arch, seed=seed, batch_size=batch_size, seq_len=seq_len, device=device)
    results: dict[str, ScoreResult] = {}
    for p in proxies:
        t0 = time.perf_counter()
        try:
            v = float(p.score(ctx))
            results[p.name] = ScoreResult(v, classify(v), time.perf_counter() - t0)
        except NotApplicable as exc:
            results[p.name] = ScoreResult(float("nan"), "n/a", time.perf_counter() - t0, str(exc))
    torch.set_grad_enabled(True)
    return results
