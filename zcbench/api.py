"""The Python entry points: ``zcbench.evaluate`` (a benchmark space) and ``zcbench.score`` (any model).

``evaluate`` is the ``run`` job of the command line (``zcbench.runner.run_job``) with the same
defaults (batch size, sequence length and space options from ``conf/space/<space>.yaml``, proxy
options from ``conf/proxy/<proxy>.yaml``), returning a DataFrame instead of printing; scores stay
in memory unless ``results_dir`` is given (then they are stored and resumable, as on the command
line). ``score`` runs the same shared-pass engine (``zcbench.engine.score_arch``) on a
``torch.nn.Module`` the caller built, finding its standard roles with
``zcbench.introspect.auto_roles``. docs/quickstart.md shows both.
"""
from __future__ import annotations

import copy
from typing import Callable, Iterable

import pandas as pd
import torch
from torch import nn

from zcbench.runner import ConfigError, RunConfig, coerce_proxy, proxy_label, run_job
from zcbench.space import Arch, Batch, ModelOutput, Space

# RunConfig fields ``evaluate`` takes as keyword options (the others are its named arguments).
EVALUATE_OPTIONS = ("batch_size", "seq_len", "target", "device", "data_dir", "shard", "space_options",
                    "proxy_options", "bootstrap", "progress", "hvp_chunk")


def evaluate(space: str, proxies, *, seed: int = 0, n_archs: int | None = None,
             results_dir: str | None = None, **options) -> pd.DataFrame:
    """Score ``n_archs`` architectures of ``space`` (all stored ones when None) with ``proxies``.

    ``proxies``: a name, a list of names (``zcbench.list_proxies()``), ``Proxy`` classes or
    instances, or plain functions ``fn(ctx) -> float`` (see ``zcbench.runner.FunctionProxy``),
    none of which need registering. ``options``: any of ``EVALUATE_OPTIONS`` (as on the command
    line, ``python -m zcbench run --help``).

    Returns one row per architecture (index: arch ID): ``key`` (upstream name), one column of
    scores per proxy (NaN where a proxy gave none: see ``attrs["status_counts"]``), and the
    ground-truth columns, raw (``attrs["metric"]`` is the target, ``attrs["higher_is_better"]``
    its direction). ``attrs["correlations"]`` maps each proxy to Kendall's tau-b, Spearman's rho
    (bootstrap CIs) and top-k overlap against the oriented target, as the command line prints.
    """
    unknown = sorted(set(options) - set(EVALUATE_OPTIONS))
    if unknown:
        raise ConfigError(f"evaluate: unknown option(s) {', '.join(unknown)}; valid: {', '.join(EVALUATE_OPTIONS)}")
    proxies = [proxies] if isinstance(proxies, str) or callable(proxies) else list(proxies)
    from zcbench.config import proxy_conf_options, space_conf

    conf = space_conf(space) if isinstance(space, str) else {}
    space_options = {**(conf.get("options") or {}), **(options.pop("space_options", None) or {})}
    user_popts = dict(options.pop("proxy_options", None) or {})
    names = [proxy_label(p) for p in proxies]
    stray = sorted(set(user_popts) - set(names))
    if stray:
        raise ConfigError(f"proxy_options names proxies not in this run: {', '.join(stray)}")
    proxy_options = {}
    for p, name in zip(proxies, names):
        base = proxy_conf_options(name) if isinstance(p, str) else {}
        merged = {**base, **(user_popts.get(name) or {})}
        if merged:
            proxy_options[name] = merged
    kw = dict(batch_size=conf.get("batch_size", 16), seq_len=conf.get("seq_len", 128), progress=False)
    kw.update(options)
    rc = RunConfig(space=space, proxies=proxies, seed=seed, n_archs=n_archs,
                   results_dir=str(results_dir) if results_dir is not None else None,
                   space_options=space_options, proxy_options=proxy_options, echo=False, **kw)
    return run_job(rc).frame


# ============================================================================
# zcbench.score: proxies on any torch.nn.Module
# ============================================================================
class _Wrapped(nn.Module):
    """``model(inputs, targets) -> ModelOutput`` around a caller's module (the engine's contract)."""

    def __init__(self, model: nn.Module, input_key: str | None, loss: Callable | None, taps: nn.ModuleList):
        super().__init__()
        self.inner = model
        self.zc_taps = taps
        self.input_key = input_key
        self.loss_fn = loss
        self.hf = hasattr(model, "config") and type(model).__module__.startswith("transformers.")

    def forward(self, inputs, targets=None) -> ModelOutput:
        kwargs = {}
        if self.hf:
            kwargs.update(output_hidden_states=True, output_attentions=True, return_dict=True)
            if targets is not None and self.loss_fn is None:
                kwargs["labels"] = targets
        out = self.inner(**{self.input_key: inputs}, **kwargs) if self.input_key else self.inner(inputs, **kwargs)
        loss = None
        if self.loss_fn is not None:
            if targets is not None or self._loss_without_targets:
                loss = self.loss_fn(out, targets)
        else:
            loss = getattr(out, "loss", None)
        hidden, logits = _hidden_and_logits(out)
        return ModelOutput(loss=loss, hidden=hidden, logits=logits)

    _loss_without_targets = False


def _hidden_and_logits(out):
    if torch.is_tensor(out):
        return out, out
    hs = getattr(out, "hidden_states", None)
    hidden = getattr(out, "last_hidden_state", None)
    if hidden is None and hs:
        hidden = hs[-1]
    logits = getattr(out, "logits", None)
    if hidden is None and isinstance(out, (tuple, list)) and out and torch.is_tensor(out[0]):
        hidden = out[0]
    if hidden is None:
        hidden = logits
    if hidden is None:
        raise TypeError(f"cannot find a hidden state or logits in the model's output ({type(out).__name__})")
    return hidden, logits


class _ModelSpace(Space):
    """A one-architecture 'space' around a caller's model and batch, for ``score_arch``."""

    name = "model"
    metric = ""

    def __init__(self, wrapped: _Wrapped, batch: Batch, roles=None):
        self.roles = roles
        self.data_dir = None
        self.cfg = {}
        self.gt_table = None
        self._stored = []
        self.wrapped = wrapped
        self.batch = batch

    def build(self, arch):
        return self.wrapped

    def make_batch(self, batch_size, seq_len, seed):
        return self.batch

    def param_counts(self, arch) -> dict:
        from zcbench.introspect import params_by_role

        by_role = params_by_role(self.wrapped)
        emb = by_role.get("embedding", 0) + by_role.get("output", 0)
        return {**by_role, "nonembedding": by_role["total"] - emb}

    def summary(self, arch) -> dict:
        """The standard description (n_layer, d_model, n_head, d_inner, seq_len) from the detected blocks."""
        from zcbench.proxy import NotApplicable

        blocks = self.roles.blocks if self.roles is not None else []
        cfg = getattr(self.wrapped.inner, "config", None)
        d_model = next((getattr(cfg, k) for k in ("hidden_size", "n_embd", "d_model")
                        if isinstance(getattr(cfg, k, None), int)), None)
        if not blocks or d_model is None or any(b["d_inner"] is None or not b["n_head"] for b in blocks):
            raise NotApplicable("the model's summary (n_layer, d_model, n_head, d_inner) was not found: "
                                "a Hugging Face config with hidden_size and blocks with attention and an FFN are needed")
        x = self.batch.inputs
        return {"n_layer": len(blocks), "d_model": int(d_model), "n_head": [b["n_head"] for b in blocks],
                "d_inner": [b["d_inner"] for b in blocks], "seq_len": int(x.shape[1]) if x.dim() > 1 else 1}


INPUT_KEYS = ("input_ids", "pixel_values", "inputs_embeds", "x")


def _as_batch(batch) -> tuple[Batch, str | None]:
    if isinstance(batch, Batch):
        return batch, None
    if torch.is_tensor(batch):
        return Batch(batch, None, {"source": "zcbench.score"}), None
    if isinstance(batch, dict):
        keys = [k for k in INPUT_KEYS if k in batch]
        extra = sorted(set(batch) - set(keys) - {"labels", "attention_mask"})
        if len(keys) != 1 or extra:
            raise ConfigError(f"score: a dict batch holds one of {', '.join(INPUT_KEYS)}, optionally labels "
                              f"(and an all-ones attention_mask); got keys {', '.join(sorted(batch))}")
        mask = batch.get("attention_mask")
        if mask is not None and not bool((mask == 1).all()):
            raise ConfigError("score: a padded attention_mask is not supported (the engine splits and reshapes "
                              "the batch); pass equal-length examples without padding")
        return Batch(batch[keys[0]], batch.get("labels"), {"source": "zcbench.score"}), keys[0]
    raise ConfigError(f"score: batch must be a tensor, a dict of tensors or a zcbench Batch; got {type(batch).__name__}")


def score(model: nn.Module, batch, proxies: Iterable | str | Callable, *, loss: Callable | None = None,
          seed: int = 0, device: str | None = None, train_mode: bool = False,
          hvp_chunk: int | None = None) -> pd.Series:
    """Score ``model`` on one minibatch with ``proxies`` through the engine's shared passes.

    ``model``: any ``torch.nn.Module``; it is deep-copied first, so the caller's model is never
    modified (Hugging Face ``Conv1D`` layers become ``nn.Linear`` in the copy; roles and taps are
    attached to the copy, see ``zcbench.introspect.auto_roles``).
    ``batch``: a tensor (the model's first argument), a dict with one of ``INPUT_KEYS`` and
    optionally ``labels``, or a ``zcbench.space.Batch``.
    ``loss``: ``loss(output, targets) -> scalar`` for gradient proxies; default: the model's own
    ``output.loss`` (Hugging Face models compute it from ``labels``; for a causal LM given no
    labels, the inputs are used as labels, as in language-model training).
    ``hvp_chunk``: GraSP's Hessian-vector product over chunks of this many examples (bounded
    memory, one more forward+backward, same value to round-off; ``zcbench.engine.score_arch``).
    Returns a Series (proxy name -> score; NaN when the proxy could not score) whose
    ``attrs["status"]`` / ``attrs["message"]`` say why (``n/a`` when the model lacks a role the
    proxy needs, e.g. attention maps) and ``attrs["roles"]`` lists what was found.
    """
    from zcbench.engine import score_arch
    from zcbench.introspect import auto_roles, linearize_conv1d

    if not isinstance(model, nn.Module):
        raise ConfigError(f"score: model must be a torch.nn.Module, got {type(model).__name__}")
    proxies = [proxies] if isinstance(proxies, str) or callable(proxies) else list(proxies)
    plist = [coerce_proxy(p) for p in proxies]
    b, key = _as_batch(batch)
    m = copy.deepcopy(model)
    hf = hasattr(m, "config") and type(m).__module__.startswith("transformers.")
    if hf:
        _eager_attention(m)
        if b.targets is None and loss is None and _is_causal_lm(m):
            b = Batch(b.inputs, b.inputs, b.info)
    linearize_conv1d(m)
    roles = auto_roles(m)
    wrapped = _Wrapped(m, key, loss, roles.taps)
    if loss is not None and b.targets is None:
        wrapped._loss_without_targets = True
    dev = device or (next(m.parameters()).device.type if any(True for _ in m.parameters()) else "cpu")
    space = _ModelSpace(wrapped, b, roles)
    try:
        res = score_arch(space, Arch(genes={"model": type(model).__name__}), plist, seed=seed,
                         batch_size=int(b.inputs.shape[0]), seq_len=int(b.inputs.shape[1]) if b.inputs.dim() > 1 else 1,
                         device=dev, train_mode=train_mode, hvp_chunk=hvp_chunk)
    finally:
        roles.remove()
    s = pd.Series({n: r.value for n, r in res.items()}, dtype=float)
    s.attrs["status"] = {n: r.status for n, r in res.items()}
    s.attrs["message"] = {n: r.message for n, r in res.items() if r.message}
    s.attrs["roles"] = roles.found
    return s


def _eager_attention(m: nn.Module) -> None:
    """Ask a Hugging Face model for eager attention: only it returns the attention maps."""
    setter = getattr(m, "set_attn_implementation", None)
    try:
        if callable(setter):
            setter("eager")
            return
    except Exception:  # noqa: BLE001 - older transformers: set the config field instead
        pass
    cfg = getattr(m, "config", None)
    if cfg is not None and hasattr(cfg, "_attn_implementation"):
        cfg._attn_implementation = "eager"


def _is_causal_lm(m: nn.Module) -> bool:
    name = type(m).__name__
    return name.endswith("LMHeadModel") or name.endswith("ForCausalLM")


__all__ = ["evaluate", "score", "EVALUATE_OPTIONS"]
