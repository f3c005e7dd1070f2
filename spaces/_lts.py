"""LiteTransformerSearch (LTS) tables of any corpus: reader, settings, counting, and the shared space.

LTS (Javaheripi et al., "LiteTransformerSearch: Training-free Neural Architecture
Search for Efficient Language Models", NeurIPS 2022) stores each pool of trained
decoders as one folder (archai ``archai/nlp/nas/saved_logs/<name>``)::

    <table>/config_<i>/j<k>/model_config.yaml   the network and its training settings
    <table>/ppl_summary.yaml                    config_<i>_j<k>: {valid_ppl, test_ppl, ...}
    <table>/params_summary.yaml                 config_<i>_j<k>: {total, nonembedding, Attn, FFN, AdaEmb}

``read_lts_table`` reads any folder in this layout into plain, JSON-serialisable
records (``LTSRecord.as_dict``). ``LTSSpace`` turns every record into an
architecture: each setting the record's ``model_config.yaml`` carries is read,
validated per architecture and used to build the model (``table_settings``);
the space's constants are only the defaults of *sampled* architectures. A
setting the models here cannot build fails with one line naming the file, the
key and the value.

Genes and IDs. An architecture ID hashes its genes, and the genes of the
WikiText-103 tables are pinned by stored results: ``n_layer``, ``d_model``,
``n_head``, ``d_inner``, ``d_embed``, ``div_val`` and the table-wide
``n_token``, ``cutoffs`` (archai's effective band ends), ``tie_weight``,
``tie_projs`` (one entry per band), ``primer_square`` and, for GPT-2,
``tgt_len`` (its position table). Settings that change the untrained network
but were constant in those tables (``dropout``, ``dropatt``,
``weight_init_std``, ``proj_init_std``) enter the genes only where they differ
from the WikiText-103 values (``OPTIONAL_GENES``), so the stored IDs stay and
two tables that differ in them never share an ID. Settings without effect on an
untrained single-segment model (``mem_len``, Transformer-XL's ``tgt_len``) stay
outside the genes; a table's ``tgt_len`` is the default minibatch length
(``default_seq_len``).
"""
from __future__ import annotations

import copy
import os
import re
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn

from zcbench.data import DataError, load_yaml
from zcbench.introspect import role_of
from zcbench.space import Arch, Batch, Space, genes_hash
from zcbench.spaces._adaptive import band_dims, clean_cutoffs


# ============================================================================
# Reader
# ============================================================================
@dataclass
class LTSRecord:
    """One trained network of an LTS table, normalised (plain JSON types only)."""

    key: str  # "config_<i>_j<k>"
    model_config: dict  # model_config.yaml verbatim
    ppl: dict  # valid_ppl, test_ppl, ... (empty when training left none)
    params: dict  # total, nonembedding, Attn, FFN, AdaEmb as integers (empty when absent)

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "LTSRecord":
        return cls(key=str(d["key"]), model_config=dict(d["model_config"]), ppl=dict(d.get("ppl") or {}),
                   params=dict(d.get("params") or {}))


LTS_KEY = re.compile(r"^config_(\d+)_j(\d+)$")


def _int_count(v, where: str):
    f = float(v)
    if not f.is_integer():
        raise DataError(f"malformed parameter count {v!r} in {where}")
    return int(f)


def read_lts_table(folder: str | os.PathLike) -> list[LTSRecord]:
    """Read an LTS results folder: ``config_<i>/j<k>/model_config.yaml`` plus the two summaries.

    Records are the union of the keys of ``params_summary.yaml`` and
    ``ppl_summary.yaml``, sorted by (i, k); each must have a model config. An
    architecture whose training left no perplexity (upstream's Transformer-XL
    homogeneous table lacks ``config_6_j4``) keeps an empty ``ppl`` so callers
    can see it and leave it out of correlations explicitly. Parameter counts
    (floats in the files) become integers.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"missing data file {folder} (LTS table folder); set data_dir=... or ZCBENCH_DATA, or run "
                        f"`python -m zcbench data fetch`")
    ppl = load_yaml(folder / "ppl_summary.yaml")
    params = load_yaml(folder / "params_summary.yaml")
    for name, table in (("ppl_summary.yaml", ppl), ("params_summary.yaml", params)):
        if not isinstance(table, dict):
            raise DataError(f"malformed LTS summary {folder / name}: expected a mapping of config keys")
    records = []
    for key in set(ppl) | set(params):
        m = LTS_KEY.match(str(key))
        if not m:
            raise DataError(f"malformed key {key!r} in {folder}/ppl_summary.yaml or params_summary.yaml")
        path = folder / f"config_{m.group(1)}" / f"j{m.group(2)}" / "model_config.yaml"
        cfg = load_yaml(path)
        if not isinstance(cfg, dict):
            raise DataError(f"malformed model config {path}: expected a mapping")
        p = params.get(key) or {}
        counts = {str(k): _int_count(v, f"{folder / 'params_summary.yaml'} ({key}.{k})") for k, v in p.items()}
        records.append(LTSRecord(key=str(key), model_config=cfg, ppl={str(k): float(v) for k, v in (ppl.get(key) or {}).items()},
                                 params=counts))
    records.sort(key=lambda r: tuple(int(x) for x in LTS_KEY.match(r.key).groups()))
    return records


def config_path(folder: str | os.PathLike, key: str) -> Path:
    """The ``model_config.yaml`` of record ``key`` (for error messages)."""
    m = LTS_KEY.match(key)
    return Path(folder) / f"config_{m.group(1)}" / f"j{m.group(2)}" / "model_config.yaml" if m else Path(folder)


# ============================================================================
# Settings of one model_config.yaml
# ============================================================================
# Settings every LTS model here is built with, and the value the WikiText-103 tables carry.
OPTIONAL_GENES = {"dropout": 0.1, "dropatt": 0.0, "weight_init_std": 0.02, "proj_init_std": 0.01}
# Settings of archai's configs whose other values select code paths not implemented here.
UNSUPPORTED_UNLESS = {"adaptive": True, "d_head": -1, "attn_type": 0, "primer_conv": False, "sample_softmax": -1,
                      "weight_init_type": "normal"}
# Transformer-XL-only code paths (ignored by GPT-2, whose HF model has no such options).
TRANSXL_UNSUPPORTED_UNLESS = {"pre_lnorm": False, "clamp_len": -1, "same_length": False, "ext_len": 0,
                              "primer_square": False}


class SettingError(ValueError):
    """A table setting that cannot be built: ``key``, ``value`` and why."""

    def __init__(self, key: str, value, why: str):
        super().__init__(f"{key}={value!r}: {why}")
        self.key, self.value, self.why = key, value, why


def _pos_int(key, v, lo: int = 1) -> int:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or int(v) != v or int(v) < lo:
        raise SettingError(key, v, f"must be an integer >= {lo}")
    return int(v)


def _flag(key, v) -> bool:
    if not isinstance(v, bool):
        raise SettingError(key, v, "must be true or false")
    return v


def _prob(key, v) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0.0 <= float(v) < 1.0:
        raise SettingError(key, v, "must be a number in [0, 1)")
    return float(v)


def _std(key, v) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not float(v) > 0.0:
        raise SettingError(key, v, "must be a positive number")
    return float(v)


def table_settings(cfg: dict, *, transxl: bool) -> dict:
    """The network-defining settings of one ``model_config.yaml``, validated and normalised.

    Returns ``n_layer``, ``d_model``, ``n_head`` / ``d_inner`` (per-layer lists),
    ``d_embed`` (``-1``/null -> ``d_model``, as archai), ``div_val``, ``n_token``,
    ``cutoffs`` (archai's band ends, ``clean_cutoffs``), ``tie_weight``,
    ``tie_projs`` (one per band), ``primer_square``, ``tgt_len`` and the
    ``OPTIONAL_GENES`` values. Raises ``SettingError`` naming the key and value.
    """
    need = ("n_layer", "d_model", "n_head", "d_inner", "div_val", "n_token")
    for key in need:
        if key not in cfg:
            raise SettingError(key, None, "missing")
    checks = dict(UNSUPPORTED_UNLESS, **(TRANSXL_UNSUPPORTED_UNLESS if transxl else {}))
    for key, want in checks.items():
        if key in cfg and cfg[key] != want:
            raise SettingError(key, cfg[key], f"not supported (only {want!r})")
    n_layer = _pos_int("n_layer", cfg["n_layer"])
    d_model = _pos_int("d_model", cfg["d_model"])

    def per_layer(key):
        v = cfg[key]
        vals = list(v) if isinstance(v, (list, tuple)) else [v]
        if len(vals) == 1:
            vals = vals * n_layer
        if len(vals) < n_layer:
            raise SettingError(key, v, f"needs one value per layer (n_layer={n_layer})")
        return [_pos_int(key, x) for x in vals[:n_layer]]  # archai reads the first n_layer entries

    n_head, d_inner = per_layer("n_head"), per_layer("d_inner")
    for h in n_head:
        if d_model % h:
            raise SettingError("n_head", cfg["n_head"], f"{h} does not divide d_model={d_model}")
    d_embed = cfg.get("d_embed", -1)
    d_embed = d_model if d_embed in (None, -1) else _pos_int("d_embed", d_embed)
    div_val = _pos_int("div_val", cfg["div_val"])
    n_token = _pos_int("n_token", cfg["n_token"], lo=2)
    raw_cut = cfg.get("cutoffs")
    try:
        cutoffs = clean_cutoffs(list(raw_cut) if raw_cut is not None else None, n_token)
    except (ValueError, TypeError) as exc:
        raise SettingError("cutoffs", raw_cut, str(exc)) from None
    if div_val > 1 and min(band_dims(d_embed, div_val, len(cutoffs))) < 1:
        raise SettingError("div_val", div_val, f"d_embed={d_embed} // div_val**{len(cutoffs) - 1} is 0")
    tie_weight = _flag("tie_weight", cfg.get("tie_weight", True))
    raw_tp = cfg.get("tie_projs", [False] + [True] * (len(cutoffs) - 1))
    if not isinstance(raw_tp, (list, tuple)) or len(raw_tp) < len(cutoffs):
        raise SettingError("tie_projs", raw_tp, f"needs one entry per vocabulary band ({len(cutoffs)})")
    tie_projs = [_flag("tie_projs", t) for t in raw_tp[: len(cutoffs)]]
    out = {
        "n_layer": n_layer, "d_model": d_model, "n_head": n_head, "d_inner": d_inner, "d_embed": d_embed,
        "div_val": div_val, "n_token": n_token, "cutoffs": cutoffs, "tie_weight": tie_weight,
        "tie_projs": tie_projs, "primer_square": _flag("primer_square", cfg.get("primer_square", False)),
        "tgt_len": _pos_int("tgt_len", cfg.get("tgt_len", 192)),
        "dropout": _prob("dropout", cfg.get("dropout", OPTIONAL_GENES["dropout"])),
        "dropatt": _prob("dropatt", cfg.get("dropatt", OPTIONAL_GENES["dropatt"])),
        "weight_init_std": _std("weight_init_std", cfg.get("weight_init_std", OPTIONAL_GENES["weight_init_std"])),
        "proj_init_std": _std("proj_init_std", cfg.get("proj_init_std", OPTIONAL_GENES["proj_init_std"])),
    }
    return out


# ============================================================================
# archai's parameter buckets
# ============================================================================
def role_subtree_params(model: nn.Module, role: str) -> int:
    """Parameters of every module tagged ``role``, each with its whole subtree (nested
    norms included), distinct tensors once — archai's ``get_params_from_layer``."""
    params = {id(p): p for m in model.modules() if role_of(m) == role for p in m.parameters()}
    return sum(p.numel() for p in params.values())


def lts_counts(model: nn.Module) -> dict[str, int]:
    """archai's LTS buckets read off a built model (see the spaces' docstrings):

    * ``AdaEmb`` — modules tagged ``embedding`` (adaptive embedding; GPT-2's position table);
    * ``Attn`` / ``FFN`` — modules tagged ``attn`` / ``ffn`` with everything inside them;
    * ``nonembedding`` — Attn + FFN + the parameters of every ``nn.LayerNorm``, wherever
      it sits (so a LayerNorm inside an attention module counts twice, as upstream);
    * ``total`` — every distinct parameter tensor once (``sum(p.numel() for p in
      model.parameters())``), softmax-only tensors included.
    """
    attn, ffn = role_subtree_params(model, "attn"), role_subtree_params(model, "ffn")
    norms = sum(p.numel() for m in model.modules() if isinstance(m, nn.LayerNorm) for p in m.parameters())
    return {"total": sum(p.numel() for p in model.parameters()), "nonembedding": attn + ffn + norms,
            "Attn": attn, "FFN": ffn, "AdaEmb": role_subtree_params(model, "embedding")}


# ============================================================================
# The space
# ============================================================================
class LTSSpace(Space):
    """Stored table, genes, sampling and mutation common to the LTS spaces.

    Subclasses set the table folder name (``table``, under ``<data_dir>/lts``),
    the sampling ranges, the ``d_inner`` floor factor, the sampling defaults of
    the table-wide genes (``FIXED``), ``homogeneous`` (one ``n_head`` / ``d_inner``
    for all layers, stored as scalars), ``transxl`` and ``_model``.

    Options: ``table_dir`` (any folder in the LTS layout, read instead of the
    space's own table; sampling defaults then follow the settings every record
    of that table shares), ``dropout`` (overrides the dropout of every built
    model; by default each architecture's own, 0.1 in the WikiText-103 tables),
    ``subspace`` (a dict of range overrides ``SUBSPACE_KEYS``, or a preset name of
    ``SUBSPACE_PRESETS``; sampling only: no table is attached), ``corpus``
    (the minibatch text, ``zcbench.text.resolve_corpus``).
    """

    modality = "text"
    metric = "valid_ppl"
    higher_is_better = False
    metrics = ("valid_ppl", "test_ppl")
    table = ""
    homogeneous = False
    transxl = False
    N_LAYER: tuple = ()
    D_MODEL: tuple = ()
    N_HEAD: tuple = ()
    D_EMBED: tuple = ()
    DIV_VAL: tuple = ()
    D_INNER_MIN, D_INNER_MAX = 512, 2048
    D_INNER_STEP = 1  # d_inner values are multiples of this (1: any integer)
    d_inner_factor = 1.7
    d_inner_strict = False  # True: d_inner > factor * d_model (else >= int(factor * d_model))
    FIXED: dict = {}
    DEFAULT_TGT_LEN = 192
    VARIABLE = ("n_layer", "d_model", "n_head", "d_inner", "d_embed", "div_val")

    SUBSPACE_KEYS = ("N_LAYER", "D_MODEL", "N_HEAD", "D_EMBED", "DIV_VAL", "D_INNER_MIN", "D_INNER_MAX",
                     "D_INNER_STEP", "d_inner_factor", "d_inner_strict", "FIXED")
    SUBSPACE_PRESETS: dict = {}

    def __init__(self, data_dir: str | None = None, target: str | None = None, dropout: float | None = None,
                 subspace: dict | str | None = None, table_dir: str | None = None, corpus=None, **cfg):
        """``dropout``: residual/FFN (and, for Transformer-XL, embedding) dropout of the
        built models, overriding each architecture's own. Not a gene: it changes no parameter.
        ``subspace``: a scaled-down (or preset) space for sampling (see docs/groundtruth.md,
        docs/spaces/lts.md): overrides of the ranges ``SUBSPACE_KEYS`` (lists for the choice
        sets) and of the fixed genes (``FIXED: {n_token: 4096, cutoffs: [...], tgt_len: 64}``),
        or the name of a preset. ``table_dir``: an LTS-layout folder to load instead of the
        space's own table. ``corpus``: the minibatch text (``zcbench.text``)."""
        super().__init__(data_dir=data_dir, target=target, **cfg)
        self.FIXED = dict(self.FIXED)
        self.dropout_override = None if dropout is None else float(dropout)
        self.dropout = OPTIONAL_GENES["dropout"] if dropout is None else float(dropout)
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"{self.name}: dropout={dropout} must be in [0, 1)")
        if isinstance(subspace, str):
            if subspace not in self.SUBSPACE_PRESETS:
                valid = ", ".join(self.SUBSPACE_PRESETS) or "none"
                raise ValueError(f"{self.name}: unknown subspace {subspace!r}; valid presets: {valid}")
            self.cfg["subspace"] = subspace
            subspace = self.SUBSPACE_PRESETS[subspace]
        elif subspace:
            self.cfg["subspace"] = subspace
        for key, val in (subspace or {}).items():
            if key not in self.SUBSPACE_KEYS:
                raise ValueError(f"{self.name}: unknown subspace key {key!r}; valid: {', '.join(self.SUBSPACE_KEYS)}")
            if key == "FIXED":
                val = {**self.FIXED, **val}
                val["cutoffs"] = clean_cutoffs(list(val["cutoffs"]), int(val["n_token"]))
                val["tie_projs"] = list(val["tie_projs"])[: len(val["cutoffs"])]
            setattr(self, key, tuple(val) if isinstance(val, (list, tuple)) else val)
        self.table_path = None
        if table_dir:
            self.table_path = Path(table_dir).expanduser().resolve()
            self.cfg["table_dir"] = str(table_dir)
        self.corpus = corpus
        if corpus is not None:
            from zcbench.text import resolve_corpus

            resolve_corpus(corpus)  # a malformed spec fails here, before any scoring
            self.cfg["corpus"] = corpus
        self._table_defaults_applied = False

    # ---- genes ------------------------------------------------------------
    def gene_keys(self) -> tuple:
        return self.VARIABLE + tuple(self.FIXED)

    def d_inner_floor(self, d_model: int) -> int:
        """Smallest allowed FFN width: ``max(D_INNER_MIN, int(factor * d_model))`` (one more when
        the rule is strict and the product is whole), rounded up to a multiple of ``D_INNER_STEP``."""
        bound = self.d_inner_factor * d_model
        lo = max(self.D_INNER_MIN, int(bound) + (1 if self.d_inner_strict and float(bound).is_integer() else 0))
        step = int(self.D_INNER_STEP)
        return -(-lo // step) * step

    def d_inner_choices(self, d_model: int) -> range:
        return range(self.d_inner_floor(d_model), self.D_INNER_MAX + 1, int(self.D_INNER_STEP))

    def per_layer(self, genes: dict, key: str) -> list[int]:
        v = genes[key]
        return [v] * genes["n_layer"] if self.homogeneous else list(v)

    def genes_from_settings(self, s: dict) -> dict:
        """Canonical genes of validated table settings (see the module docstring)."""
        n = s["n_layer"]

        def layers(key):
            if not self.homogeneous:
                return list(s[key])
            vals = set(s[key])
            if len(vals) != 1:
                raise SettingError(key, s[key], "heterogeneous layers in a homogeneous table")
            return vals.pop()

        genes = {"n_layer": n, "d_model": s["d_model"], "n_head": layers("n_head"), "d_inner": layers("d_inner"),
                 "d_embed": s["d_embed"], "div_val": s["div_val"], "n_token": s["n_token"], "cutoffs": s["cutoffs"],
                 "tie_weight": s["tie_weight"], "tie_projs": s["tie_projs"], "primer_square": s["primer_square"]}
        if not self.transxl:
            genes["tgt_len"] = s["tgt_len"]
        for key, default in OPTIONAL_GENES.items():
            if s[key] != default:
                genes[key] = s[key]
        return genes

    def genes_from_config(self, cfg: dict) -> dict:
        """The genes of an LTS ``model_config.yaml`` (raises ``SettingError``)."""
        return self.genes_from_settings(table_settings(cfg, transxl=self.transxl))

    # ---- stored benchmark -------------------------------------------------
    def table_folder(self) -> Path:
        return self.table_path if self.table_path is not None else Path(self.data_dir) / "lts" / self.table

    def records(self) -> list[LTSRecord]:
        """The table's normalised records (the hook for other sources of the same records)."""
        if self.table_path is None:
            from zcbench.embedded import lts_records  # the embedded copy, only when no data dir is configured

            emb = lts_records(self.table_folder())
            if emb is not None:
                return [LTSRecord.from_dict(d) for d in emb]
        return read_lts_table(self.table_folder())

    def load_stored(self) -> list[Arch]:
        if self.cfg.get("subspace"):
            return []  # a sampling sub-space has no trained table
        folder = self.table_folder()
        out, settings = [], []
        for r in self.records():
            try:
                s = table_settings(r.model_config, transxl=self.transxl)
                genes = self.genes_from_settings(s)
                self.check_genes(genes)
            except SettingError as exc:
                raise DataError(f"{config_path(folder, r.key)}: {exc}") from None
            except ValueError as exc:
                raise DataError(f"{config_path(folder, r.key)}: cannot build: {exc}") from None
            settings.append(s)
            # a net whose training left no perplexity (Transformer-XL homogeneous config_6_j4)
            # stays stored with empty truth, so it is counted and visibly left out of correlations
            truth = {m: float(r.ppl[m]) for m in self.metrics if m in r.ppl}
            out.append(Arch(genes=genes, key=r.key, truth=truth,
                            meta={"params": dict(r.params), "tgt_len": s["tgt_len"]}))
        if not out:
            raise DataError(f"LTS table {folder} has no records (ppl_summary.yaml / params_summary.yaml are empty)")
        if self.table_path is not None and not self._table_defaults_applied:
            self._apply_table_defaults(settings)
        return out

    def _apply_table_defaults(self, settings: list[dict]) -> None:
        """With ``table_dir``: sampled architectures take every table-wide setting that all
        records share (vocabulary, bands, tying, ``tgt_len``, dropout, ...)."""
        self._table_defaults_applied = True
        shared = {}
        for key in ("n_token", "cutoffs", "tie_weight", "tie_projs", "primer_square", "tgt_len", *OPTIONAL_GENES):
            vals = {repr(s[key]) for s in settings}
            if len(vals) == 1:
                shared[key] = settings[0][key]
        for key in ("n_token", "cutoffs", "tie_weight", "tie_projs", "primer_square", "tgt_len"):
            if key in shared and key in self.FIXED:
                self.FIXED[key] = copy.deepcopy(shared[key])
        for key, default in OPTIONAL_GENES.items():
            if key in shared and shared[key] != default:
                self.FIXED[key] = shared[key]

    def table_tgt_len(self) -> int | None:
        """The smallest ``tgt_len`` of the stored table (None without a table)."""
        lens = [a.meta["tgt_len"] for a in self.stored() if "tgt_len" in a.meta]
        return min(lens) if lens else None

    def default_seq_len(self) -> int:
        """Minibatch length when the run does not set ``seq_len``: the table's ``tgt_len``
        (the length the networks were trained on), else the sampling default."""
        if self.table_path is not None and self.gt_table is None and not self.cfg.get("subspace"):
            t = self.table_tgt_len()  # a table loaded by path: read it
            if t:
                return int(t)
        # the space's own table: its tgt_len is the class default (equal for every record; tested),
        # so resolving the length needs no table read
        return int(self.FIXED.get("tgt_len", self.DEFAULT_TGT_LEN))

    # ---- architectures ----------------------------------------------------
    def check_genes(self, genes: dict) -> None:
        """Raise ValueError naming the gene unless ``genes`` describe a network the model
        code can build (any sizes; the sampling ranges are checked by ``validate``)."""
        name = self.name
        required = self.VARIABLE + ("n_token", "cutoffs", "tie_weight", "tie_projs", "primer_square") \
            + (() if self.transxl else ("tgt_len",))
        missing = [k for k in required if k not in genes]
        if missing:
            raise ValueError(f"{name}: missing gene(s) {', '.join(missing)}")
        extra = [k for k in genes if k not in required and k not in OPTIONAL_GENES]
        if extra:
            raise ValueError(f"{name}: unknown gene(s) {', '.join(extra)}")
        for key, default in OPTIONAL_GENES.items():
            if key in genes and genes[key] == default:
                raise ValueError(f"{name}: {key}={genes[key]!r} is the default; leave it out of the genes")
        n = genes["n_layer"]
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"{name}: n_layer={n!r} must be a positive integer")
        for key in ("n_head", "d_inner"):
            v = genes[key]
            if self.homogeneous and (isinstance(v, bool) or not isinstance(v, int)):
                raise ValueError(f"{name}: {key} must be one integer (homogeneous layers)")
            if not self.homogeneous and (not isinstance(v, list) or len(v) != n):
                raise ValueError(f"{name}: {key} must be a list of n_layer={n} integers")
        d_model = genes["d_model"]
        for key in ("d_model", "d_embed", "div_val", "n_token") + (() if self.transxl else ("tgt_len",)):
            v = genes[key]
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name}: {key}={v!r} must be a positive integer")
        for key in ("n_head", "d_inner"):
            if any(isinstance(x, bool) or not isinstance(x, int) or x < 1 for x in self.per_layer(genes, key)):
                raise ValueError(f"{name}: {key}={genes[key]} must hold positive integers")
        bad = [h for h in self.per_layer(genes, "n_head") if d_model % h]
        if bad:
            raise ValueError(f"{name}: n_head={genes['n_head']} has values that do not divide d_model={d_model}")
        try:
            want = clean_cutoffs(list(genes["cutoffs"]), genes["n_token"])
        except (ValueError, TypeError) as exc:
            raise ValueError(f"{name}: cutoffs={genes['cutoffs']!r}: {exc}") from None
        if list(genes["cutoffs"]) != want:
            raise ValueError(f"{name}: cutoffs={genes['cutoffs']!r} are not band ends for n_token="
                             f"{genes['n_token']} (archai's cleaning gives {want})")
        if not isinstance(genes["tie_projs"], list) or len(genes["tie_projs"]) != len(want) \
                or not all(isinstance(t, bool) for t in genes["tie_projs"]):
            raise ValueError(f"{name}: tie_projs={genes['tie_projs']!r} needs one true/false per band of "
                             f"cutoffs={want} ({len(want)})")
        for key in ("tie_weight", "primer_square"):
            if not isinstance(genes[key], bool):
                raise ValueError(f"{name}: {key}={genes[key]!r} must be true or false")
        if self.transxl and genes["primer_square"]:
            raise ValueError(f"{name}: primer_square is not part of the Transformer-XL LTS spaces")
        if genes["div_val"] > 1 and min(band_dims(genes["d_embed"], genes["div_val"], len(want))) < 1:
            raise ValueError(f"{name}: div_val={genes['div_val']} leaves a band of width 0 for d_embed={genes['d_embed']}")
        for key in ("dropout", "dropatt"):
            if key in genes:
                _prob(key, genes[key])
        for key in ("weight_init_std", "proj_init_std"):
            if key in genes:
                _std(key, genes[key])

    def validate(self, genes: dict) -> None:
        """Inside the space: a stored network (any buildable settings), or one inside the
        sampling ranges with the sampling defaults of the table-wide genes."""
        self.check_genes(genes)
        if self._stored:
            gid = genes_hash(genes)  # hashed once, not once per stored network
            if any(a.id == gid for a in self._stored):
                return
        name = self.name
        extra = [k for k in genes if k not in self.gene_keys()]
        if extra:
            raise ValueError(f"{name}: gene(s) {', '.join(extra)} are not sampled in this space")
        n = genes["n_layer"]
        if n not in self.N_LAYER:
            raise ValueError(f"{name}: n_layer={n} outside {self.N_LAYER[0]}..{self.N_LAYER[-1]}")
        if genes["d_model"] not in self.D_MODEL:
            raise ValueError(f"{name}: d_model={genes['d_model']} not in {self.D_MODEL}")
        if any(h not in self.N_HEAD for h in self.per_layer(genes, "n_head")):
            raise ValueError(f"{name}: n_head={genes['n_head']} has values outside {self.N_HEAD}")
        lo = self.d_inner_floor(genes["d_model"])
        step = int(self.D_INNER_STEP)
        if any(not (lo <= d <= self.D_INNER_MAX) or d % step for d in self.per_layer(genes, "d_inner")):
            rule = f"{'>' if self.d_inner_strict else '>='} {self.d_inner_factor}*d_model"
            raise ValueError(f"{name}: d_inner={genes['d_inner']} has values outside [{lo}, {self.D_INNER_MAX}] "
                             f"(>= {self.D_INNER_MIN}, {rule}" + (f", multiples of {step})" if step > 1 else ")"))
        if genes["d_embed"] not in self.D_EMBED:
            raise ValueError(f"{name}: d_embed={genes['d_embed']} not in {self.D_EMBED}")
        if genes["div_val"] not in self.DIV_VAL:
            raise ValueError(f"{name}: div_val={genes['div_val']} not in {self.DIV_VAL}")
        for key, want in self.FIXED.items():
            if genes.get(key) != want:
                raise ValueError(f"{name}: {key}={genes.get(key)!r} is fixed to {want!r} in this space")

    def _draw_d_inner(self, rng, d_model: int) -> int:
        if int(self.D_INNER_STEP) == 1:  # the original stream: any integer in the span
            return rng.randint(self.d_inner_floor(d_model), self.D_INNER_MAX)
        return rng.choice(self.d_inner_choices(d_model))

    def sample(self, rng) -> Arch:
        """Each gene drawn independently and uniformly (per layer when heterogeneous)."""
        self._ensure_sampling_defaults()
        n = rng.choice(self.N_LAYER)
        d_model = rng.choice(self.D_MODEL)
        reps = 1 if self.homogeneous else n
        heads = [rng.choice(self.N_HEAD) for _ in range(reps)]
        inner = [self._draw_d_inner(rng, d_model) for _ in range(reps)]
        genes = {
            "n_layer": n,
            "d_model": d_model,
            "n_head": heads[0] if self.homogeneous else heads,
            "d_inner": inner[0] if self.homogeneous else inner,
            "d_embed": rng.choice(self.D_EMBED),
            "div_val": rng.choice(self.DIV_VAL),
            **copy.deepcopy(self.FIXED),
        }
        self.validate(genes)
        return self.make_arch(genes)

    def _ensure_sampling_defaults(self) -> None:
        if self.table_path is not None and not self._table_defaults_applied:
            self.stored()

    def mutate(self, arch: Arch, rng) -> Arch:
        """Change exactly one gene: ``n_layer``, ``d_model``, ``d_embed``, ``div_val``
        or one layer's ``n_head`` / ``d_inner`` (the shared value when homogeneous).
        A depth change drops the last layers or appends copies of randomly chosen
        existing layers; a width change only picks widths for which every
        ``d_inner`` stays valid (widths up to 256 always qualify)."""
        while True:
            key = rng.choice(self.VARIABLE)
            if self.mutable(arch.genes, key):  # (always, in the spaces of the LTS tables)
                return self.mutate_gene(arch, rng, key)

    def mutable(self, genes: dict, key: str) -> bool:
        """Whether gene ``key`` has another allowed value (a fixed choice set, e.g. ETAS's
        ``div_val`` 4, or no valid other width is skipped by ``mutate``)."""
        if key == "d_model":
            return bool(self.width_choices(genes))
        sets = {"n_layer": self.N_LAYER, "n_head": self.N_HEAD, "d_embed": self.D_EMBED, "div_val": self.DIV_VAL}
        if key == "d_inner":
            return len(self.d_inner_choices(genes["d_model"])) > 1
        return len(sets[key]) > 1

    def width_choices(self, genes: dict) -> list[int]:
        """Other ``d_model`` values for which every ``d_inner`` of ``genes`` stays valid."""
        floor_ok = min(self.per_layer(genes, "d_inner"))
        return [v for v in self.D_MODEL if v != genes["d_model"] and floor_ok >= self.d_inner_floor(v)]

    def mutate_gene(self, arch: Arch, rng, key: str) -> Arch:
        """Change gene ``key`` of ``arch`` (see ``mutate``)."""
        g = copy.deepcopy(arch.genes)
        if key == "n_layer":
            n = rng.choice([v for v in self.N_LAYER if v != g["n_layer"]])
            if not self.homogeneous:
                while len(g["n_head"]) < n:
                    j = rng.randrange(len(g["n_head"]))
                    g["n_head"].append(g["n_head"][j])
                    g["d_inner"].append(g["d_inner"][j])
                g["n_head"], g["d_inner"] = g["n_head"][:n], g["d_inner"][:n]
            g["n_layer"] = n
        elif key == "d_model":
            g["d_model"] = rng.choice(self.width_choices(g))
        elif key in ("n_head", "d_inner"):
            choices = self.N_HEAD if key == "n_head" else self.d_inner_choices(g["d_model"])
            if self.homogeneous:
                g[key] = rng.choice([v for v in choices if v != g[key]])
            else:
                i = rng.randrange(g["n_layer"])
                g[key][i] = rng.choice([v for v in choices if v != g[key][i]])
        else:
            choices = self.D_EMBED if key == "d_embed" else self.DIV_VAL
            g[key] = rng.choice([v for v in choices if v != g[key]])
        self.validate(g)
        return self.make_arch(g)

    def summary(self, arch: Arch) -> dict:
        g = arch.genes
        return {"n_layer": g["n_layer"], "d_model": g["d_model"], "n_head": self.per_layer(g, "n_head"),
                "d_inner": self.per_layer(g, "d_inner"), "seq_len": int(self.cfg.get("seq_len", 192))}

    # ---- models and data --------------------------------------------------
    def _model(self, genes: dict) -> nn.Module:
        raise NotImplementedError

    def build_settings(self, genes: dict) -> dict:
        """Genes with per-layer lists and every optional setting filled in (the space's
        ``dropout`` option, when given, overrides the architecture's own)."""
        out = dict(genes, n_head=self.per_layer(genes, "n_head"), d_inner=self.per_layer(genes, "d_inner"))
        for key, default in OPTIONAL_GENES.items():
            out.setdefault(key, default)
        if self.dropout_override is not None:
            out["dropout"] = self.dropout_override
        return out

    def build(self, arch: Arch) -> nn.Module:
        self.check_genes(arch.genes)
        return self._model(self.build_settings(arch.genes))

    def vocab_size(self) -> int:
        """Token ids of minibatches stay below this: the sampling default ``n_token``, or the
        smallest ``n_token`` of the table when that is smaller."""
        n = int(self.FIXED["n_token"])
        if self._stored:
            n = min([n] + [int(a.genes["n_token"]) for a in self._stored])
        return n

    def make_batch(self, batch_size: int, seq_len: int, seed: int) -> Batch:
        """``batch_size`` windows of ``seq_len + 1`` byte-level BPE tokens of the minibatch
        corpus (default: WikiText-2 ``valid.txt``, ``zcbench.text``), vocabulary capped at
        ``vocab_size()``; inputs ``w[:, :-1]``, targets ``w[:, 1:]``."""
        from zcbench.text import lm_windows, token_stream

        self._ensure_sampling_defaults()
        n_token = self.vocab_size()
        kw = {} if self.corpus is None else {"corpus": self.corpus}
        stream, prov = token_stream("bpe", n_token, self.data_dir, **kw)
        w = lm_windows(stream, batch_size, seq_len, seed)
        info = {**prov, "seed": int(seed), "batch_size": int(batch_size), "seq_len": int(seq_len),
                "vocab_cap": n_token, "space": self.name}
        return Batch(inputs=w[:, :-1].contiguous(), targets=w[:, 1:].contiguous(), info=info)

    def param_counts(self, arch: Arch) -> dict[str, int]:
        """archai's five counts (``lts_counts``) from the model built on the meta device."""
        with torch.device("meta"):
            model = self.build(arch)
        return lts_counts(model)


__all__ = ["LTSRecord", "LTS_KEY", "read_lts_table", "config_path", "table_settings", "SettingError",
           "OPTIONAL_GENES", "role_subtree_params", "lts_counts", "LTSSpace"]
