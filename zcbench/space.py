"""The search-space API every space implements (see docs/spaces.md).

A space knows (1) its benchmark's stored architectures and their ground truth,
(2) how to build a torch model for any architecture, stored or sampled,
(3) how to sample and mutate architectures inside its constraints, and
(4) how to make a seeded minibatch its models consume.

Architectures are plain JSON-able dicts of *genes* (only what defines the
network; training hyper-parameters stay out). ``arch_id`` hashes the canonical
JSON of the genes, so the same network always has the same ID, whether it came
from the stored table or from the sampler.
"""
from __future__ import annotations

import hashlib
import json
import random
from dataclasses import dataclass, field
from typing import Any, Iterator

import torch
from torch import nn


def canonical_json(genes: dict) -> str:
    return json.dumps(genes, sort_keys=True, separators=(",", ":"))


def genes_hash(genes: dict, n: int = 12) -> str:
    return hashlib.sha1(canonical_json(genes).encode()).hexdigest()[:n]


@dataclass
class Arch:
    """One architecture: its genes, stable ID, and (for stored ones) ground truth."""

    genes: dict
    id: str = ""
    key: str | None = None  # upstream name, e.g. "config_0_j3" or NAS-Bench-BERT id
    truth: dict[str, float] = field(default_factory=dict)  # metric name -> value
    meta: dict[str, Any] = field(default_factory=dict)  # e.g. upstream parameter counts

    def __post_init__(self):
        if not self.id:
            self.id = genes_hash(self.genes)


@dataclass
class Batch:
    """A minibatch. ``inputs``/``targets`` are what ``model(inputs, targets)`` takes."""

    inputs: torch.Tensor
    targets: torch.Tensor | None = None
    info: dict[str, Any] = field(default_factory=dict)  # provenance: source, tokenizer, seed

    def to(self, device) -> "Batch":
        t = self.targets.to(device) if self.targets is not None else None
        return Batch(self.inputs.to(device), t, self.info)


@dataclass
class ModelOutput:
    """What every space's model returns.

    ``loss``: scalar training loss (mean over tokens/examples) when targets are given.
    ``hidden``: output of the last block after any final norm, (B, T, D).
    ``logits``: optional class/token logits when cheap to produce (not for adaptive softmax).
    """

    loss: torch.Tensor | None
    hidden: torch.Tensor
    logits: torch.Tensor | None = None


class Space:
    """Base class. Subclasses set the class attributes and implement the methods."""

    name: str = ""
    description: str = ""
    modality: str = "text"  # "text" or "image"
    metric: str = ""  # default ground-truth column
    higher_is_better: bool = True  # direction of ``metric``
    metrics: tuple[str, ...] = ()  # all available ground-truth columns

    def __init__(self, data_dir: str | None = None, target: str | None = None, **cfg):
        from zcbench.data import resolve_data_dir

        self.data_dir = resolve_data_dir(data_dir)
        self.cfg = cfg
        self.gt_table = None  # a project-built ground-truth table (option ``table``, docs/groundtruth.md)
        if cfg.get("table"):
            from zcbench.data import read_groundtruth_table, resolve_table

            self.gt_table = read_groundtruth_table(resolve_table(cfg["table"]))
            self.metric, self.higher_is_better = self.gt_table.metric, self.gt_table.higher_is_better
            self.metrics = (self.gt_table.metric,)
        if target is not None:
            if self.metrics and target not in self.metrics:
                raise ValueError(f"space {self.name}: unknown target {target!r}; valid: {', '.join(self.metrics)}")
            self.metric = target
        self._stored: list[Arch] | None = None

    # ---- stored benchmark -------------------------------------------------
    def load_stored(self) -> list[Arch]:
        """Read the benchmark's architectures with ground truth (override)."""
        return []

    def stored(self) -> list[Arch]:
        if self._stored is None:
            self._stored = self.table_archs() if self.gt_table is not None else self.load_stored()
        return self._stored

    def table_archs(self) -> list[Arch]:
        """The architectures of the attached ground-truth table; truth = mean over training seeds."""
        from zcbench.data import DataError

        out = []
        for row in self.gt_table.archs:
            try:
                self.validate(row.genes)
            except ValueError as exc:
                raise DataError(f"{self.gt_table.path}: arch {row.arch_id} is outside space {self.name} "
                                f"with the table's options: {exc}") from None
            a = Arch(genes=row.genes, key=row.arch_id, truth={self.metric: row.mean},
                     meta={"seeds": dict(row.seeds), "params": row.params})
            if a.id != row.arch_id:
                raise DataError(f"{self.gt_table.path}: arch_id {row.arch_id} does not hash its genes ({a.id})")
            out.append(a)
        return out

    def __iter__(self) -> Iterator[Arch]:
        return iter(self.stored())

    def __len__(self) -> int:
        return len(self.stored())

    def by_id(self, arch_id: str) -> Arch:
        for a in self.stored():
            if a.id == arch_id or a.key == arch_id:
                return a
        raise KeyError(f"space {self.name}: no stored architecture {arch_id!r}")

    def truth(self, arch: Arch, metric: str | None = None) -> float:
        return float(arch.truth[metric or self.metric])

    def record_truths(self, metric: str | None = None) -> list[tuple[str, float]]:
        """(arch id, ground truth) for every *record* of the benchmark table.

        A benchmark may hold several records of one network (NAS-Bench-BERT lists 9 gene
        sets twice); ``stored()`` merges them into one Arch whose truth is their mean. Papers
        that correlate over the raw table count such a network once per record with each
        record's own value; the report's like-for-like comparison uses this list for them.
        Default: one record per stored architecture.
        """
        m = metric or self.metric
        return [(a.id, float(a.truth[m])) for a in self.stored() if a.truth and m in a.truth]

    # ---- architectures ----------------------------------------------------
    def make_arch(self, genes: dict) -> Arch:
        """Wrap genes as an Arch, attaching ground truth if the network is stored."""
        a = Arch(genes=genes)
        for s in self.stored():
            if s.id == a.id:
                return s
        return a

    def sample(self, rng: random.Random) -> Arch:
        """Draw uniformly from the full space, respecting its constraints."""
        raise NotImplementedError

    def mutate(self, arch: Arch, rng: random.Random) -> Arch:
        """Change exactly one gene, staying valid."""
        raise NotImplementedError

    def validate(self, genes: dict) -> None:
        """Raise ValueError naming the offending gene if ``genes`` is outside the space."""

    def summary(self, arch: Arch) -> dict:
        """Standard description: n_layer, d_model, n_head (list), d_inner (list), seq_len."""
        raise NotImplementedError

    # ---- models and data --------------------------------------------------
    def build(self, arch: Arch) -> nn.Module:
        """A freshly initialised torch model; call under ``torch.manual_seed`` for determinism."""
        raise NotImplementedError

    def make_batch(self, batch_size: int, seq_len: int, seed: int) -> Batch:
        raise NotImplementedError

    def model_params(self, arch: Arch) -> int:
        """Parameters of the model ``build`` returns, counted on the meta device (nothing allocated;
        a tensor shared by several modules counted once)."""
        with torch.device("meta"):
            return sum(p.numel() for p in self.build(arch).parameters())

    def param_counts(self, arch: Arch) -> dict[str, int]:
        """Counts in the benchmark's own convention (``total``, ``nonembedding``, ...)."""
        from zcbench.introspect import params_by_role

        with torch.device("meta"):
            model = self.build(arch)
        by_role = params_by_role(model)
        emb = by_role.get("embedding", 0) + by_role.get("output", 0)
        return {**by_role, "nonembedding": by_role["total"] - emb}
