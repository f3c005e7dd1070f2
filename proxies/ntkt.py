"""ntkt — trace of the empirical NTK of the last block's token-averaged output (ETAS's trainability).

Paper: J. Yang and Y. Liu, "ETAS: Zero-Shot Transformer Architecture Search via Network
Trainability and Expressivity", Findings of ACL 2024 (NTKT: Eqs. 12-13; NTSR = rank
fusion of NTKT and SEPT, Eq. 17). ETAS published on its own GPT-2 table (tau/rho):
NTKT 0.80/0.96.

Definition implemented here. For example b of the minibatch let ``h_b`` (T x D) be the
output of the last block (the last ``block_out`` tap; option ``output="hidden"`` takes
the model's final hidden state instead) and ``m_b = (1/T) sum_t h_{b,t}`` its token
average. With ``J_b = d m_b / d theta`` (D x P, theta = every trainable parameter,
shared tensors once) the empirical NTK over the minibatch has diagonal blocks
``J_b J_b^T`` and its trace is

    NTKT = sum_b tr(J_b J_b^T) = sum_b sum_d || d m_{b,d} / d theta ||^2 .

Estimator (option ``exact``):

* ``exact=False`` (default): the output is read out through fixed random directions
  ``u_k ~ N(0, I_D)`` (k = 1..``probes``, seeded by the run seed, the same for every
  architecture of equal D) and the score is ``(1/K) sum_k sum_b ||d <u_k, m_b>/d theta||^2``,
  i.e. the trace of the NTK of the scalar read-out, computed *exactly* from per-example
  gradient norms. Since E_u ||J_b^T u||^2 = tr(J_b J_b^T), it is also a K-probe
  Hutchinson estimate of the D-output trace above (unbiased, not exact).
* ``exact=True``: u runs over the D unit vectors: the D-output trace exactly (D backward
  passes per example; for small models and tests).

Why per-example passes are exact: in eval mode (the engine's default, no dropout) the
examples of a minibatch never interact (LayerNorm is per token, there is no batch norm),
so the gradient of example b's output computed from a batch of one equals its row of the
batched Jacobian. Cost: B forwards of one example plus B*K (or B*D) backward passes,
i.e. about (1 + 2K) minibatch passes; memory: one gradient set at a time. Gradients come
from ``torch.autograd.grad`` (the model's ``.grad`` fields are never touched); squares are
summed in float64.

Deviations and open points: ETAS's Eqs. 12-13 could not be read from any stored copy of
the paper (abstract only); "token-averaged" is read as averaging the output over tokens
before the NTK is formed (the kernel of the token-averaged output). The scalar read-out
through u is our choice (the same device the engine's ``jacobian`` need uses), and the
final LayerNorm of GPT-2 is not part of the "last block" (``output="hidden"`` includes it).

needs = {"forward"}: the engine's standard forward is not used by this proxy, but asking
for it makes the engine build the seeded minibatch (``ctx.batch``) and makes the results
store key the score by batch size, sequence length and corpus, which it depends on.
"""
from __future__ import annotations

import contextlib
import hashlib

import torch

from zcbench.engine import NotApplicable, Proxy
from zcbench.introspect import Tap
from zcbench.registry import register_proxy

F64 = torch.float64


def readout_directions(seed: int, dim: int, probes: int, device, dtype) -> torch.Tensor:
    """``probes`` fixed N(0, I) directions of length ``dim`` for run ``seed`` (rows)."""
    s = int.from_bytes(hashlib.sha256(f"ntkt:{int(seed)}".encode()).digest()[:8], "little") >> 1
    g = torch.Generator().manual_seed(s)
    return torch.randn(probes, dim, generator=g, dtype=F64).to(device=device, dtype=dtype)


def last_block_output(model, inputs: torch.Tensor, output: str = "block_out") -> torch.Tensor:
    """Forward ``inputs`` and return the last ``block_out`` tap's tensor (or the final hidden state)."""
    if output == "hidden":
        return model(inputs, None).hidden
    captured = {}
    taps = [m for m in model.modules() if isinstance(m, Tap) and m.kind == "block_out"]
    if not taps:
        raise NotApplicable("the model has no 'block_out' taps (use output=hidden)")

    def hook(mod, inp, out):
        captured["h"] = out  # every call overwrites: the last call is the last block's output

    handles = [t.register_forward_hook(hook) for t in taps]
    try:
        model(inputs, None)
    finally:
        for h in handles:
            h.remove()
    return captured["h"]


@contextlib.contextmanager
def sparse_embedding_grads(model, params):
    """Let every ``nn.Embedding`` whose table is in ``params`` return a sparse gradient (restored on exit).

    A table's gradient for one example is non-zero only in the rows of that example's tokens;
    the dense gradient (zero-filled table-sized tensor, then a scan of every entry for the norm)
    made the embeddings the largest non-network cost of the per-example passes. The sparse
    gradient holds the same rows (duplicates summed on ``coalesce``), so the squared norm is
    the same number up to float summation order.
    """
    ids = {id(p) for p in params}
    changed = [m for m in model.modules()
               if isinstance(m, torch.nn.Embedding) and not m.sparse and id(m.weight) in ids]
    for m in changed:
        m.sparse = True
    try:
        yield
    finally:
        for m in changed:
            m.sparse = False


def squared_norm(g: torch.Tensor) -> torch.Tensor:
    """||g||^2 accumulated in float64 (squares rounded in g's dtype: <= 1 ulp relative each, all positive)."""
    if g.is_sparse:
        g = g.coalesce().values()
    if g.dtype == F64:
        return torch.sum(g * g)
    return torch.sum(g * g, dtype=F64)


def ntk_trace(model, inputs: torch.Tensor, directions: torch.Tensor | None, output: str = "block_out",
              params=None) -> float:
    """sum_b sum_k ||d <u_k, mean_t h_b> / d theta||^2 / K (``directions`` = u_k rows), or, with
    ``directions=None``, the exact D-output trace sum_b ||d mean_t h_b / d theta||_F^2.

    One forward of a single example and one ``autograd.grad`` per read-out direction; embedding
    tables get sparse gradients for the duration (see :func:`sparse_embedding_grads`)."""
    params = [p for p in (params if params is not None else model.parameters()) if p.requires_grad]
    total = torch.zeros((), dtype=F64, device=params[0].device if params else None)
    with torch.enable_grad(), sparse_embedding_grads(model, params):
        for b in range(inputs.shape[0]):
            h = last_block_output(model, inputs[b:b + 1], output)  # (1, T, D)
            m = h.mean(dim=1)[0]
            dirs = torch.eye(m.shape[0], dtype=m.dtype, device=m.device) if directions is None else directions
            for k in range(dirs.shape[0]):
                y = (m * dirs[k]).sum()
                grads = torch.autograd.grad(y, params, retain_graph=k + 1 < dirs.shape[0], allow_unused=True)
                for g in grads:
                    if g is not None:
                        total += squared_norm(g.detach())
    scale = 1.0 if directions is None else 1.0 / directions.shape[0]
    return float(total) * scale


@register_proxy("ntkt")
class NTKTrace(Proxy):
    """Trace of the empirical NTK of the last block's token-averaged output."""

    version = "1"
    needs = frozenset({"forward"})
    citation = "Yang & Liu, ETAS, Findings of ACL 2024 (NTKT, Eqs. 12-13)"
    defaults = {"probes": 1, "exact": False, "output": "block_out"}

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        if int(self.options["probes"]) < 1:
            raise ValueError(f"ntkt: probes={self.options['probes']} must be >= 1")
        if self.options["output"] not in ("block_out", "hidden"):
            raise ValueError(f"ntkt: output={self.options['output']!r}; valid: block_out, hidden")

    def score(self, ctx) -> float:
        model, batch = ctx.model, ctx.batch
        if batch is None:
            raise NotApplicable("ntkt needs the minibatch")
        dirs = None
        if not self.options["exact"]:
            with torch.no_grad():
                d_out = last_block_output(model, batch.inputs[:1], self.options["output"]).shape[-1]
            p = next(model.parameters())
            dirs = readout_directions(ctx.seed, d_out, int(self.options["probes"]), p.device, p.dtype)
        return ntk_trace(model, batch.inputs, dirs, self.options["output"])
