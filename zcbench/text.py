"""Real-text minibatches for language spaces.

Scheme (documented in docs/data.md): the WikiText-2 files under
``<data_dir>/text/wikitext-2`` (``valid.txt`` and ``test.txt``, verbatim) train
a tokenizer with the ``tokenizers`` library once per (kind, vocabulary size):

* ``bpe`` — byte-level BPE (GPT-2's scheme), vocabulary capped at the space's
  ``n_token`` (50264 for GPT-2 LTS; the 2 MB corpus yields fewer merges, so ids
  stay below the cap — the upstream models used GPT-2's 50257-token BPE);
* ``wordpiece`` — lower-cased WordPiece (BERT/ELECTRA's scheme) capped at the
  space's vocabulary (30522 for FlexiBERT), with [PAD] [UNK] [CLS] [SEP] [MASK]
  at ids 0, 100, 101, 102, 103 as in BERT's vocabulary.

The trained tokenizer and the tokenized split are cached under the zcbench
cache directory, keyed by the sha256 of the text files, so every run and every
process sees the same ids. A batch is ``batch_size`` windows of ``seq_len + 1``
consecutive tokens at offsets drawn from ``torch.Generator().manual_seed(seed)``:
the same seed gives the identical batch.

Minibatch corpus (``corpus``, a text space option; ``resolve_corpus``):

* ``wikitext-2`` (default) or any other folder name under ``<data_dir>/text/`` holding
  ``valid.txt`` and ``test.txt``;
* a path to such a folder (``{files: <dir>}`` or a string with a ``/``);
* a Hugging Face ``datasets`` corpus, loaded through ``datasets`` when the machine is
  online: ``wikitext-103-raw-v1``, ``lm1b``, ``openwebtext`` (the corpora of the LTS,
  LPZero and ETAS papers), or ``{hf: <name>, config: ..., split: ..., field: text}``;
* a dataset saved with ``datasets``' ``save_to_disk``: ``{disk: <dir>}``.

A ``datasets`` corpus is streamed and its first ``max_chars`` characters (default
2,500,000, about WikiText-2's valid + test) of the mapped splits are written once to
``<cache>/corpora/<label>-<hash>/valid.txt`` / ``test.txt``; from there it is tokenized
like the local files. The provenance (``corpus`` label, dataset name/config/split and
fingerprint) enters the batch info, hence the run's data config. The default corpus
yields exactly the provenance it always had, so stored run keys do not change.
"""
from __future__ import annotations

import hashlib
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch

from zcbench.data import DataError, cache_dir, resolve_data_dir

TEXT_FILES = ("valid.txt", "test.txt")
BERT_SPECIALS = {"[PAD]": 0, "[UNK]": 100, "[CLS]": 101, "[SEP]": 102, "[MASK]": 103}


DEFAULT_CORPUS = "wikitext-2"
DEFAULT_MAX_CHARS = 2_500_000
# name -> (datasets path, config, {our split: dataset split}, text field)
HF_CORPORA = {
    "wikitext-103-raw-v1": ("wikitext", "wikitext-103-raw-v1", {"valid": "validation", "test": "test"}, "text"),
    "wikitext-2-raw-v1": ("wikitext", "wikitext-2-raw-v1", {"valid": "validation", "test": "test"}, "text"),
    "lm1b": ("lm1b", None, {"valid": "test", "test": "test"}, "text"),  # LM1B has no validation split
    "openwebtext": ("openwebtext", None, {"valid": "train", "test": "train"}, "text"),  # train only
}


@dataclass(frozen=True)
class Corpus:
    """A resolved minibatch corpus (see the module docstring)."""

    kind: str  # "local" (folder under <data_dir>/text), "files" (a folder), "hf", "disk"
    label: str  # the provenance name; the default's is "wikitext-2"
    path: str | None = None
    dataset: str | None = None
    config: str | None = None
    splits: tuple = (("test", "test"), ("valid", "validation"))
    field: str = "text"
    max_chars: int = DEFAULT_MAX_CHARS

    def source(self) -> dict:
        """Provenance of a non-default corpus (empty for a folder under <data_dir>/text)."""
        if self.kind == "local":
            return {}
        out = {"kind": self.kind}
        if self.path:
            out["path"] = self.path
        if self.dataset:
            out.update(dataset=self.dataset, config=self.config)
        if self.kind in ("hf", "disk"):
            out.update(splits=dict(self.splits), field=self.field, max_chars=self.max_chars)
        return out


def _safe(label: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", label).strip("_") or "corpus"


def resolve_corpus(spec=None) -> Corpus:
    """Parse a corpus spec (string or mapping; module docstring); raises ValueError in one line."""
    valid = (f"valid: {DEFAULT_CORPUS} (or another folder under <data_dir>/text), a folder path, "
             f"{', '.join(HF_CORPORA)}, {{hf: <name>}}, {{disk: <saved dataset>}}")
    if spec is None or spec == "":
        return Corpus("local", DEFAULT_CORPUS)
    if isinstance(spec, Corpus):
        return spec
    if isinstance(spec, str):
        if spec in HF_CORPORA:
            spec = {"hf": spec}
        elif spec.startswith("hf:"):
            spec = {"hf": spec[3:]}
        elif spec.startswith("disk:"):
            spec = {"disk": spec[5:]}
        elif "/" in spec or spec.startswith((".", "~")):
            spec = {"files": spec}
        elif re.fullmatch(r"[A-Za-z0-9._-]+", spec):
            return Corpus("local", spec)
        else:
            raise ValueError(f"corpus {spec!r} is not a corpus spec; {valid}")
    if not isinstance(spec, dict):
        raise ValueError(f"corpus must be a string or a mapping, got {type(spec).__name__}; {valid}")
    spec = dict(spec)
    kinds = [k for k in ("files", "hf", "disk") if k in spec]
    if len(kinds) != 1:
        raise ValueError(f"corpus {spec!r} needs exactly one of files, hf, disk; {valid}")
    kind = kinds[0]
    allowed = {kind, "config", "split", "splits", "field", "max_chars", "label"}
    extra = sorted(set(spec) - allowed)
    if extra:
        raise ValueError(f"corpus: unknown key(s) {', '.join(extra)}; valid: {', '.join(sorted(allowed))}")
    max_chars = spec.get("max_chars", DEFAULT_MAX_CHARS)
    if isinstance(max_chars, bool) or not isinstance(max_chars, int) or max_chars < 1000:
        raise ValueError(f"corpus: max_chars={max_chars!r} must be an integer >= 1000")
    if kind == "files":
        path = str(Path(str(spec["files"])).expanduser().resolve())
        return Corpus("files", spec.get("label") or f"files:{path}", path=path)
    default_splits = {"valid": "validation", "test": "test"}
    if kind == "hf":
        name = str(spec["hf"])
        dataset, config, splits, field = HF_CORPORA.get(name, (name, None, default_splits, "text"))
        if ":" in name and name not in HF_CORPORA:  # hf:<dataset>:<config>
            dataset, config = name.split(":", 1)
        config = spec.get("config", config)
    else:
        path = str(Path(str(spec["disk"])).expanduser().resolve())
        splits, field = default_splits, "text"
    if "split" in spec:  # one split for both
        splits = {"valid": str(spec["split"]), "test": str(spec["split"])}
    splits = dict(spec.get("splits") or splits)
    if set(splits) != {"valid", "test"}:
        raise ValueError(f"corpus: splits must map valid and test to dataset splits, got {splits}")
    field = str(spec.get("field", field))
    if kind == "hf":
        label = spec.get("label") or ("hf:" + name if name in HF_CORPORA or config is None else f"hf:{dataset}:{config}")
        return Corpus("hf", label, dataset=dataset, config=config, splits=tuple(sorted(splits.items())),
                      field=field, max_chars=max_chars)
    return Corpus("disk", spec.get("label") or f"disk:{Path(path).name}", path=path,
                  splits=tuple(sorted(splits.items())), field=field, max_chars=max_chars)


def _hf_split(c: Corpus, split: str):
    """One split of a ``datasets`` corpus (streamed when remote) and its fingerprint."""
    try:
        import datasets
    except ImportError:
        raise DataError(f"corpus {c.label} needs the `datasets` package (pip install datasets)") from None
    try:
        if c.kind == "disk":
            ds = datasets.load_from_disk(c.path)
            if isinstance(ds, datasets.DatasetDict):
                if split not in ds:
                    raise DataError(f"corpus {c.label}: no split {split!r} in {c.path}; valid: {', '.join(ds)}")
                ds = ds[split]
            return ds, getattr(ds, "_fingerprint", None)
        return datasets.load_dataset(c.dataset, c.config, split=split, streaming=True), None
    except DataError:
        raise
    except Exception as exc:  # offline, unknown name, ...: one line
        where = c.path if c.kind == "disk" else c.dataset + (f"/{c.config}" if c.config else "")
        raise DataError(f"corpus {c.label}: cannot load {where} split {split!r} through `datasets` "
                        f"({type(exc).__name__}: {' '.join(str(exc).split())[:200]}); offline machines can use "
                        f"a local folder or a dataset saved with save_to_disk ({{disk: <dir>}})") from None


def materialise(c: Corpus) -> tuple[Path, dict]:
    """For ``datasets`` corpora: write the first ``max_chars`` characters of each mapped split to
    ``<cache>/corpora/<label>-<hash>/{valid,test}.txt`` once (atomically); returns the folder
    and the source provenance (with the dataset fingerprints when known)."""
    import json

    source = c.source()
    key = hashlib.sha256(json.dumps(source, sort_keys=True).encode()).hexdigest()[:10]
    folder = cache_dir() / "corpora" / f"{_safe(c.label)}-{key}"
    meta_path = folder / "source.json"
    if meta_path.exists():
        return folder, json.loads(meta_path.read_text())
    fingerprints = {}
    for ours, theirs in dict(c.splits).items():
        ds, fp = _hf_split(c, theirs)
        fingerprints[ours] = fp
        parts, n = [], 0
        for row in ds:
            if not isinstance(row, dict) or c.field not in row:
                raise DataError(f"corpus {c.label}: split {theirs!r} has no text field {c.field!r}")
            line = " ".join(str(row[c.field]).split())  # one document or sentence per line
            if not line:
                continue
            parts.append(line)
            n += len(line) + 1
            if n >= c.max_chars:
                break
        if not parts:
            raise DataError(f"corpus {c.label}: split {theirs!r} holds no text")
        _atomic_write_bytes(folder / f"{ours}.txt", ("\n".join(parts) + "\n").encode("utf-8"))
    if any(fingerprints.values()):
        source["fingerprints"] = fingerprints
    _atomic_write_bytes(meta_path, json.dumps(source, sort_keys=True).encode())
    return folder, source


def corpus_dir(data_dir, corpus=None) -> tuple[Path, Corpus, dict]:
    """The folder holding the corpus' ``valid.txt`` / ``test.txt``, the resolved corpus, its source."""
    try:
        c = resolve_corpus(corpus)
    except ValueError as exc:
        raise DataError(str(exc)) from None
    if c.kind == "local":
        return _text_dir(data_dir, c.label), c, {}
    if c.kind == "files":
        d = Path(c.path)
        for f in TEXT_FILES:
            if not (d / f).exists():
                raise DataError(f"corpus {c.label}: missing text file {d / f} (a corpus folder holds "
                                f"{' and '.join(TEXT_FILES)})")
        return d, c, c.source()
    folder, source = materialise(c)
    return folder, c, source


def _text_dir(data_dir, corpus: str = "wikitext-2") -> Path:
    d = resolve_data_dir(data_dir) / "text" / corpus
    if not d.exists():
        from zcbench.embedded import text_dir  # the embedded copy, only when no data dir is configured

        d = text_dir(d) or d
    for f in TEXT_FILES:
        if not (d / f).exists():
            raise DataError(f"missing text file {d / f}; set data_dir=... or ZCBENCH_DATA, or run `python -m zcbench data fetch text`")
    return d


def _sha(paths) -> str:
    h = hashlib.sha256()
    for p in paths:
        h.update(Path(p).read_bytes())
    return h.hexdigest()[:16]


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".")
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


# Per-process memo of loaded tokenizers and token streams (issue 18: built once per process, not
# once per architecture). Keyed by the files' identity (path, size, mtime), so a changed file on
# disk is read again; the values are never mutated by callers (lm_windows copies its windows).
_MEMO: dict = {}


def _stat_key(paths) -> tuple:
    out = []
    for p in paths:
        st = os.stat(p)
        out.append((str(p), st.st_size, st.st_mtime_ns))
    return tuple(out)


def get_tokenizer(kind: str, vocab_size: int, data_dir=None, corpus="wikitext-2"):
    """Train (once, then load from cache) a ``tokenizers.Tokenizer`` on the corpus' two files."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

    tdir, c, _ = corpus_dir(data_dir, corpus)
    files = [str(tdir / f) for f in TEXT_FILES]
    memo_key = ("tok", kind, vocab_size, c.label, str(cache_dir()), _stat_key(files))
    if memo_key in _MEMO:
        return _MEMO[memo_key]
    key = f"{kind}-{vocab_size}-{c.label if c.kind == 'local' else _safe(c.label)}-{_sha(files)}"
    path = cache_dir() / "tokenizers" / f"{key}.json"
    if path.exists():
        _MEMO[memo_key] = (Tokenizer.from_file(str(path)), key)
        return _MEMO[memo_key]
    if kind == "bpe":
        tok = Tokenizer(models.BPE())
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(vocab_size=vocab_size, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                      show_progress=False)
        tok.train(files, trainer)
    elif kind == "wordpiece":
        # BERT's reserved ids: [PAD]=0, [unused*]=1..99, [UNK]=100, [CLS]=101, [SEP]=102, [MASK]=103
        specials = ["[PAD]"] + [f"[unused{i}]" for i in range(99)] + ["[UNK]", "[CLS]", "[SEP]", "[MASK]"]
        tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
        tok.normalizer = normalizers.BertNormalizer(lowercase=True)
        tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
        tok.decoder = decoders.WordPiece()
        trainer = trainers.WordPieceTrainer(vocab_size=vocab_size, special_tokens=specials, show_progress=False)
        tok.train(files, trainer)
        for name, idx in BERT_SPECIALS.items():
            assert tok.token_to_id(name) == idx, (name, tok.token_to_id(name))
    else:
        raise ValueError(f"unknown tokenizer kind {kind!r}; valid: bpe, wordpiece")
    if tok.get_vocab_size() > vocab_size:
        raise RuntimeError(f"tokenizer vocabulary {tok.get_vocab_size()} exceeds the space's {vocab_size}")
    _atomic_write_bytes(path, tok.to_str().encode())
    return tok, key


def token_stream(kind: str, vocab_size: int, data_dir=None, split: str = "valid", corpus="wikitext-2"):
    """All tokens of one split as a 1-D LongTensor, plus a provenance dict (``corpus`` label,
    ``split``, ``tokenizer`` key and, for a non-default corpus, its ``source``)."""
    tok, key = get_tokenizer(kind, vocab_size, data_dir, corpus)
    tdir, c, source = corpus_dir(data_dir, corpus)
    path = cache_dir() / "tokens" / f"{key}-{split}.pt"
    memo_key = ("ids", str(path), _stat_key([path]) if path.exists() else None)
    if memo_key in _MEMO:
        ids = _MEMO[memo_key]
    elif path.exists():
        ids = torch.load(path, weights_only=True)  # a cache file is data, never code (docs/reliability.md)
        _MEMO[memo_key] = ids
    else:
        if not (tdir / f"{split}.txt").exists():
            raise DataError(f"missing text split {tdir / (split + '.txt')}; valid splits: valid, test")
        lines = [ln for ln in (tdir / f"{split}.txt").read_text(encoding="utf-8").splitlines() if ln.strip()]
        # One document-ordered stream; a newline between lines as in the raw file.
        enc = tok.encode_batch([ln + "\n" for ln in lines])
        ids = torch.tensor([i for e in enc for i in e.ids], dtype=torch.long)
        import io

        buf = io.BytesIO()
        torch.save(ids, buf)
        _atomic_write_bytes(path, buf.getvalue())
    prov = {"corpus": c.label, "split": split, "tokenizer": key}
    if source:
        prov["source"] = source
    return ids, prov


def lm_windows(stream: torch.Tensor, batch_size: int, seq_len: int, seed: int) -> torch.Tensor:
    """``batch_size`` windows of ``seq_len + 1`` tokens at seeded random offsets."""
    if stream.numel() < seq_len + 2:
        raise ValueError(f"seq_len={seq_len} is longer than the token stream ({stream.numel()})")
    g = torch.Generator().manual_seed(int(seed))
    starts = torch.randint(0, stream.numel() - seq_len - 1, (batch_size,), generator=g)
    return torch.stack([stream[s: s + seq_len + 1] for s in starts.tolist()])
