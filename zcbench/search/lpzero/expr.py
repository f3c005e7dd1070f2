"""A candidate proxy: two branches, each an input followed by unary operations, and one
binary operation (LPZero's "tree" structure; Dong et al., 2024, Sec. 3 and Fig. 2).

Formula syntax (``Expr.formula`` prints it, ``parse`` reads it back)::

    sqrt(log(A)) + fro(W)
    id(square(G)) ⊙ abs(W)        # '⊙' may also be written '.*'

A branch is ``op(op(...(INPUT)))`` with the first-applied operation innermost; the
binary symbol is one of ``+ - * ⊙`` with a space on each side. The score of an
architecture is the mean, over paired items (layers), of the binary operation applied
to the two branches' per-item values (see ``evaluate.py``).
"""
from __future__ import annotations

import json
import random
import re
from dataclasses import dataclass
from pathlib import Path

from zcbench.search.lpzero.ops import (BINARY, BINARY_NAMES, INPUTS, SYMBOL_TO_BINARY, UNARY, UNARY_NAMES,
                                       UNARY_WEIGHTS, shape_ok)


@dataclass(frozen=True)
class Expr:
    inputs: tuple[str, str]
    ops: tuple[tuple[str, ...], tuple[str, ...]]
    binary: str

    def __post_init__(self):
        if len(self.inputs) != 2 or any(k not in INPUTS for k in self.inputs):
            raise ValueError(f"inputs must be two of {INPUTS}, got {self.inputs}")
        for br in self.ops:
            for o in br:
                if o not in UNARY:
                    raise ValueError(f"unknown unary operation {o!r}; valid: {', '.join(UNARY_NAMES)}")
        if self.binary not in BINARY:
            raise ValueError(f"unknown binary operation {self.binary!r}; valid: {', '.join(BINARY_NAMES)}")

    # ---- text -------------------------------------------------------------------
    @staticmethod
    def branch_formula(k: str, ops) -> str:
        s = k
        for o in ops:
            s = f"{o}({s})"
        return s

    @property
    def formula(self) -> str:
        a = self.branch_formula(self.inputs[0], self.ops[0])
        b = self.branch_formula(self.inputs[1], self.ops[1])
        return f"{a} {BINARY[self.binary]} {b}"

    def __str__(self) -> str:
        return self.formula

    @property
    def key(self) -> str:
        return self.formula

    @property
    def valid_shape(self) -> bool:
        return shape_ok(self.inputs, self.ops, self.binary)

    # ---- files ------------------------------------------------------------------
    def to_dict(self) -> dict:
        return {"formula": self.formula, "inputs": list(self.inputs), "ops": [list(o) for o in self.ops],
                "binary": self.binary}

    @classmethod
    def from_dict(cls, d: dict) -> "Expr":
        if "inputs" in d and "ops" in d and "binary" in d:
            e = cls(tuple(d["inputs"]), (tuple(d["ops"][0]), tuple(d["ops"][1])), d["binary"])
            if "formula" in d and parse(d["formula"]) != e:
                raise ValueError(f"formula {d['formula']!r} disagrees with inputs/ops/binary {e.formula!r}")
            return e
        if "formula" in d:
            return parse(d["formula"])
        raise ValueError("an expression needs 'formula' or 'inputs'/'ops'/'binary'")


_BRANCH = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*\((.*)\)\s*$", re.S)


def _parse_branch(s: str) -> tuple[str, tuple[str, ...]]:
    s = s.strip()
    ops = []
    while True:
        m = _BRANCH.match(s)
        if not m:
            break
        ops.append(m.group(1))
        s = m.group(2).strip()
    if s not in INPUTS:
        raise ValueError(f"branch must end in one of the inputs {INPUTS}, got {s!r}")
    return s, tuple(reversed(ops))


def parse(text: str) -> Expr:
    """Read a formula printed by ``Expr.formula`` (also accepts '.*' for '⊙', 'x' for '*')."""
    depth, cut = 0, None
    for i, ch in enumerate(text):
        depth += ch == "("
        depth -= ch == ")"
        if depth == 0 and ch == " ":
            # the binary symbol sits between two spaces at depth 0
            j = text.find(" ", i + 1)
            if j > i + 1 and text[i + 1:j] in SYMBOL_TO_BINARY:
                cut = (i, j, SYMBOL_TO_BINARY[text[i + 1:j]])
                break
    if cut is None:
        raise ValueError(f"no binary operation ' + ', ' - ', ' * ' or ' ⊙ ' at top level in {text!r}")
    i, j, binary = cut
    k1, o1 = _parse_branch(text[:i])
    k2, o2 = _parse_branch(text[j + 1:])
    return Expr((k1, k2), (o1, o2), binary)


# ---- random candidates ----------------------------------------------------------------
def sample_unary(rng: random.Random) -> str:
    return rng.choices(UNARY_NAMES, weights=UNARY_WEIGHTS, k=1)[0]


def random_expr(rng: random.Random, n_unary: int = 2, inputs=INPUTS) -> Expr:
    """Upstream's sampler: inputs uniform, unary ops weighted (no-op twice as likely), binary uniform."""
    ks = (rng.choice(inputs), rng.choice(inputs))
    ops = (tuple(sample_unary(rng) for _ in range(n_unary)), tuple(sample_unary(rng) for _ in range(n_unary)))
    return Expr(ks, ops, rng.choice(BINARY_NAMES))


def load_expr_file(path) -> tuple[Expr, dict]:
    """An expression file (YAML or JSON) -> (Expr, the whole mapping)."""
    path = Path(path)
    text = path.read_text()
    if path.suffix == ".json":
        d = json.loads(text)
    else:
        import yaml

        d = yaml.safe_load(text)
    if isinstance(d, str):
        d = {"formula": d}
    return Expr.from_dict(d.get("expression", d)), d
