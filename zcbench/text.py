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
"""
from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

import torch

from zcbench.data import DataError, cache_dir, resolve_data_dir

TEXT_FILES = ("valid.txt", "test.txt")
BERT_SPECIALS = {"[PAD]": 0, "[UNK]": 100, "[CLS]": 101, "[SEP]": 102, "[MASK]": 103}


def _text_dir(data_dir, corpus: str = "wikitext-2") -> Path:
    d = resolve_data_dir(data_dir) / "text" / corpus
    if not d.exists() and not data_dir:
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


def get_tokenizer(kind: str, vocab_size: int, data_dir=None, corpus: str = "wikitext-2"):
    """Train (once, then load from cache) a ``tokenizers.Tokenizer``."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

    tdir = _text_dir(data_dir, corpus)
    files = [str(tdir / f) for f in TEXT_FILES]
    key = f"{kind}-{vocab_size}-{corpus}-{_sha(files)}"
    path = cache_dir() / "tokenizers" / f"{key}.json"
    if path.exists():
        return Tokenizer.from_file(str(path)), key
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


def token_stream(kind: str, vocab_size: int, data_dir=None, split: str = "valid", corpus: str = "wikitext-2"):
    """All tokens of one split as a 1-D LongTensor, plus a provenance dict."""
    tok, key = get_tokenizer(kind, vocab_size, data_dir, corpus)
    path = cache_dir() / "tokens" / f"{key}-{split}.pt"
    if path.exists():
        ids = torch.load(path)
    else:
        tdir = _text_dir(data_dir, corpus)
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
    return ids, {"corpus": corpus, "split": split, "tokenizer": key}


def lm_windows(stream: torch.Tensor, batch_size: int, seq_len: int, seed: int) -> torch.Tensor:
    """``batch_size`` windows of ``seq_len + 1`` tokens at seeded random offsets."""
    if stream.numel() < seq_len + 2:
        raise ValueError(f"seq_len={seq_len} is longer than the token stream ({stream.numel()})")
    g = torch.Generator().manual_seed(int(seed))
    starts = torch.randint(0, stream.numel() - seq_len - 1, (batch_size,), generator=g)
    return torch.stack([stream[s: s + seq_len + 1] for s in starts.tolist()])
