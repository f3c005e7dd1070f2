"""ntkt — trace of the empirical NTK of the last block's token-averaged output (ETAS's trainability).

Paper: J. Yang and Y. Liu, "ETAS: Zero-Shot Transformer Architecture Search via Network
Trainability and Expressivity", Findings of ACL 2024 (NTKT: Eqs. 12-13; NTSR = rank
fusion of NTKT and SEPT, Eq. 17). ETAS published on its own GPT-2 table (tau/rho):
NTKT 0.80/0.96.

What the paper defines (Eqs. 11-13, read from the text): z^L_{alpha,t} is the output of the
L-th (last) Transformer block for sequence alpha of the minibatch at token t (d_z^L
entries); the parameters w are {W_V, W^{q,l,h}, W^{k,l,h}, W^{v,l,h}, W^{o,l,h},
W^l_FFN1, W^l_FFN2} — the word-embedding matrix and every block's weight matrices;
Eq. 11 is the 4-index NTK K_{a1,t1,a2,t2} = grad_w z_{a1,t1} grad_w z_{a2,t2}^T; Eq. 12 takes
its mean over token pairs, Kbar_{a1,a2} = (1/T^2) sum_{t1,t2} K_{a1,t1,a2,t2}; and
NTKT = tr Kbar = sum_alpha tr Kbar_{alpha,alpha} (Eq. 13, first two lines).

Definition implemented here (``form="eq12"``, default). For example b let ``h_b`` (T x D)
be the output of the last block (the last ``block_out`` tap; option ``output="hidden"``
takes the model's final hidden state, i.e. after GPT-2's final LayerNorm, instead) and
``m_b = (1/T) sum_t h_{b,t}`` its token average. Since the mean over token pairs of inner
products of gradients is the inner product of the mean gradients,

    tr Kbar_{b,b} = (1/T^2) sum_{t1,t2} sum_d <grad z_{b,t1,d}, grad z_{b,t2,d}>
                  = sum_d || d m_{b,d} / d theta ||^2,

so NTKT = sum_b sum_d ||d m_{b,d}/d theta||^2: exactly Eq. 12's trace (tested against the
full Jacobian by brute force on tiny models, tests/test_ntsr.py).

``form="eq13"``: the third line of Eq. 13 as printed, (1/T^2) sum_b sum_t sum_d
||grad z_{b,t,d}||^2, keeps only the t1 = t2 terms of Eq. 12's double sum; it equals the
trace of Eq. 12 only when the cross-token gradient products vanish, which they do not in
a network with attention (token outputs share parameters). We implement it as an option
(same estimator, the read-out direction drawn over (t, d) instead of d) and default to
Eq. 12, which Theorem 2.2's proof uses (the token-mean output's kernel).

``params``: ``"all"`` (default: every trainable parameter, shared tensors once — biases,
LayerNorm gains, position tables included) or ``"weights"``: only the ``weight`` of
``nn.Linear`` / ``nn.Conv1d`` / ``nn.Conv2d`` / ``nn.Embedding`` modules, the paper's w
(no biases, no normalisation parameters; a learned position table is an ``nn.Embedding``
and is counted — the paper lists only W_V; GPT-2's adaptive embedding's projections count).
The default keeps the stored runs' definition; ``weights`` is the paper's parameter set.

Estimator (option ``exact``):

* ``exact=False`` (default): the output is read out through fixed random directions
  ``u_k ~ N(0, I_D)`` (k = 1..``probes``, seeded by the run seed, the same for every
  architecture of equal D) and the score is ``(1/K) sum_k sum_b ||d <u_k, m_b>/d theta||^2``,
  i.e. the trace of the NTK of the scalar read-out, computed *exactly* from per-example
  gradient norms. Since E_u ||J_b^T u||^2 = tr(J_b J_b^T), it is a K-probe Hutchinson
  estimate of Eq. 12's trace: **unbiased, not exact** (tested: the mean over many probes
  converges to the brute-force trace). For ``form="eq13"`` u_k is drawn over (T, D).
* ``exact=True``: u runs over the D unit vectors (``eq13``: the T*D unit vectors): the
  trace exactly (D, or T*D, backward passes per example; for small models and tests).

Why per-example passes are exact: in eval mode (the engine's default, no dropout) the
examples of a minibatch never interact (LayerNorm is per token, there is no batch norm),
so the gradient of example b's output computed from a batch of one equals its row of the
batched Jacobian. Cost: B forwards of one example plus B*K (or B*D) backward passes,
i.e. about (1 + 2K) minibatch passes; memory: one gradient set at a time. Gradients come
from ``torch.autograd.grad`` (the model's ``.grad`` fields are never touched); squares are
summed in float64.

Remaining deviations: the scalar read-out through u (an estimator of the trace, above);
ETAS's blocks end with a LayerNorm (their Eq. 4), GPT-2's pre-LN blocks do not, so the
"last block's output" is the residual stream before ``ln_f`` (``output="hidden"`` adds it).

Layers counted: every trainable parameter (``params="all"``) or the weight matrices and
embedding tables (``params="weights"``); gradients of the last block's token-mean output.

needs = {"forward"}: the engine's standard forward is not used by this proxy, but asking
for it makes the engine build the seeded minibatch (``ctx.batch``) and makes the results
store key the score by batch size, sequence length and corpus, which it depends on.
"""
from __future__ import annotations

import contextlib
import hashlib

import torch

from zcbench.proxy import NotApplicable, Proxy
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
              params=None, form: str = "eq12") -> float:
    """sum_b sum_k ||d <u_k, mean_t h_b> / d theta||^2 / K (``directions`` = u_k rows), or, with
    ``directions=None``, the exact D-output trace sum_b ||d mean_t h_b / d theta||_F^2.

    ``form="eq13"``: the read-out is over every (token, entry) of h_b (``directions`` rows of
    length T*D) and the result is divided by T^2: (1/T^2) sum_b sum_{t,d} ||d h_{b,t,d}/d theta||^2.

    One forward of a single example and one ``autograd.grad`` per read-out direction; embedding
    tables get sparse gradients for the duration (see :func:`sparse_embedding_grads`)."""
    params = [p for p in (params if params is not None else model.parameters()) if p.requires_grad]
    total = torch.zeros((), dtype=F64, device=params[0].device if params else None)
    T = inputs.shape[1]
    with torch.enable_grad(), sparse_embedding_grads(model, params):
        for b in range(inputs.shape[0]):
            h = last_block_output(model, inputs[b:b + 1], output)  # (1, T, D)
            m = h.mean(dim=1)[0] if form == "eq12" else h[0].reshape(-1)
            dirs = torch.eye(m.shape[0], dtype=m.dtype, device=m.device) if directions is None else directions
            for k in range(dirs.shape[0]):
                y = (m * dirs[k]).sum()
                grads = torch.autograd.grad(y, params, retain_graph=k + 1 < dirs.shape[0], allow_unused=True)
                for g in grads:
                    if g is not None:
                        total += squared_norm(g.detach())
    scale = 1.0 if directions is None else 1.0 / directions.shape[0]
    if form == "eq13":
        scale /= T * T
    return float(total) * scale


PARAM_SETS = ("all", "weights")
FORMS = ("eq12", "eq13")
WEIGHT_MODULES = (torch.nn.Linear, torch.nn.Conv1d, torch.nn.Conv2d, torch.nn.Embedding)


def paper_parameters(model) -> list[torch.Tensor]:
    """ETAS's w: the ``weight`` of every Linear / Conv1d / Conv2d / Embedding module (shared tensors once)."""
    out, seen = [], set()
    for m in model.modules():
        if isinstance(m, WEIGHT_MODULES) and getattr(m, "weight", None) is not None and id(m.weight) not in seen:
            seen.add(id(m.weight))
            out.append(m.weight)
    return out


@register_proxy("ntkt")
class NTKTrace(Proxy):
    """Trace of the token-mean NTK of the last block's output (ETAS Eqs. 11-13)."""

    version = "1"
    needs = frozenset({"forward"})
    citation = "Yang & Liu, ETAS, Findings of ACL 2024 (NTKT, Eqs. 11-13)"
    defaults = {"probes": 1, "exact": False, "output": "block_out", "form": "eq12", "params": "all"}
    added_options = frozenset({"form", "params"})  # at their defaults the stored v1 runs keep their keys
    layers_counted = ("every trainable parameter (params=all, default) or the Linear/Conv/Embedding weights "
                      "(params=weights, ETAS's w)")

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        if int(self.options["probes"]) < 1:
            raise ValueError(f"ntkt: probes={self.options['probes']} must be >= 1")
        if self.options["output"] not in ("block_out", "hidden"):
            raise ValueError(f"ntkt: output={self.options['output']!r}; valid: block_out, hidden")
        if self.options["form"] not in FORMS:
            raise ValueError(f"ntkt: form={self.options['form']!r}; valid: {', '.join(FORMS)}")
        if self.options["params"] not in PARAM_SETS:
            raise ValueError(f"ntkt: params={self.options['params']!r}; valid: {', '.join(PARAM_SETS)}")

    def score(self, ctx) -> float:
        model, batch = ctx.model, ctx.batch
        if batch is None:
            raise NotApplicable("ntkt needs the minibatch")
        form = self.options["form"]
        dirs = None
        if not self.options["exact"]:
            with torch.no_grad():
                h = last_block_output(model, batch.inputs[:1], self.options["output"])
            d_out = h.shape[-1] if form == "eq12" else h.shape[1] * h.shape[2]
            p = next(model.parameters())
            dirs = readout_directions(ctx.seed, d_out, int(self.options["probes"]), p.device, p.dtype)
        params = paper_parameters(model) if self.options["params"] == "weights" else None
        return ntk_trace(model, batch.inputs, dirs, self.options["output"], params, form)
