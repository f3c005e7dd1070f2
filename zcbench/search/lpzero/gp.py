"""Genetic programming over LPZero expressions, with the Rule-based Pruning Strategy.

Loop (pprp/LPZero ``evolution_search``; Dong et al., 2024, Sec. 3.3 and Alg. 1):

* initial population: ``population`` random candidates whose scores are valid
  (finite, not constant); with RPS they must also pass the conflict rules;
* each generation (= one iteration of upstream's steady-state loop) ranks the
  population by fitness, draws two parents uniformly from the top
  ``tournament_ratio`` of it (at least two), applies uniform crossover with
  probability ``crossover`` (each gene from either parent with probability 1/2) and
  mutation with probability ``mutation`` (each gene resampled with probability
  ``mutation_gene_prob``), evaluates the offspring and replaces the worst member;
* with RPS (``rps=True``) an offspring that breaks a conflict rule is discarded before
  evaluation and one whose scores are NaN/inf/constant after it; both are regenerated
  until a valid one appears (``max_tries`` per generation). Without RPS every
  offspring enters the population, invalid ones with fitness -1 (upstream's value);
* the shape rules (``ops.shape_ok``) are type rules and always apply, so no candidate
  ever crashes.

``method="random"``: the same initial population, then one fresh random candidate
per generation (no rules, invalid ones score -1); the best so far is reported.

Fitness = Spearman's rho between the candidate's scores and the ground truth (oriented
so that higher is better) on the sampled architectures.
"""
from __future__ import annotations

import math
import random
import time
from dataclasses import dataclass, field

import numpy as np

import zcbench.search.lpzero.rules as rules
from zcbench.search.lpzero.evaluate import Evaluator, spearman, valid_scores
from zcbench.search.lpzero.expr import Expr, random_expr, sample_unary
from zcbench.search.lpzero.ops import BINARY_NAMES, INPUTS

INVALID_FITNESS = -1.0


@dataclass
class SearchConfig:
    population: int = 80
    generations: int = 1000
    tournament_ratio: float = 0.1
    crossover: float = 0.5
    mutation: float = 0.5
    mutation_gene_prob: float = 0.5
    n_unary: int = 2
    rps: bool = True
    method: str = "gp"  # "gp" | "random"
    seed: int = 42
    max_tries: int = 1000
    inputs: tuple = INPUTS


@dataclass
class Result:
    best: Expr
    best_fitness: float
    history: list = field(default_factory=list)  # one dict per generation
    population: list = field(default_factory=list)  # (fitness, formula) at the end
    n_evals: int = 0
    n_rule_rejects: int = 0
    n_score_rejects: int = 0
    seconds: float = 0.0
    init_seconds: float = 0.0


class Fitness:
    """Memoised fitness of expressions on one evaluator and ground truth."""

    def __init__(self, evaluator: Evaluator, truth: np.ndarray):
        self.ev = evaluator
        self.truth = np.asarray(truth, dtype=float)
        self.memo: dict[str, tuple[bool, float]] = {}
        self.n_evals = 0  # distinct expressions evaluated

    def __call__(self, e: Expr) -> tuple[bool, float]:
        r = self.memo.get(e.key)
        if r is None:
            self.n_evals += 1
            s = self.ev.scores(e)
            if valid_scores(s):
                rho = spearman(s, self.truth)
                r = (math.isfinite(rho), rho if math.isfinite(rho) else INVALID_FITNESS)
            else:
                r = (False, INVALID_FITNESS)
            self.memo[e.key] = r
        return r


def crossover(a: Expr, b: Expr, rng: random.Random) -> Expr:
    pick = lambda x, y: x if rng.random() < 0.5 else y  # noqa: E731
    ins = (pick(a.inputs[0], b.inputs[0]), pick(a.inputs[1], b.inputs[1]))
    ops = tuple(tuple(pick(x, y) for x, y in zip(a.ops[i], b.ops[i])) for i in range(2))
    return Expr(ins, ops, pick(a.binary, b.binary))


def mutate(a: Expr, rng: random.Random, p: float = 0.5, inputs=INPUTS) -> Expr:
    ins = tuple(k if rng.random() >= p else rng.choice(inputs) for k in a.inputs)
    ops = tuple(tuple(o if rng.random() >= p else sample_unary(rng) for o in a.ops[i]) for i in range(2))
    binary = a.binary if rng.random() >= p else rng.choice(BINARY_NAMES)
    return Expr(ins, ops, binary)


def search(fitness: Fitness, cfg: SearchConfig, log=None) -> Result:
    rng = random.Random(cfg.seed)
    t_start = time.perf_counter()
    res = Result(best=None, best_fitness=-math.inf)  # type: ignore[arg-type]

    def sample_valid(use_rules: bool, require_valid: bool, max_tries: int):
        for _ in range(max_tries):
            e = random_expr(rng, cfg.n_unary, cfg.inputs)
            if not e.valid_shape:
                continue
            if use_rules and not rules.passes(e):
                res.n_rule_rejects += 1
                continue
            ok, f = fitness(e)
            if require_valid and not ok:
                res.n_score_rejects += 1
                continue
            return e, f
        raise RuntimeError(f"no valid candidate in {max_tries} random draws")

    # initial population (valid scores in every mode, as upstream)
    pop: list[tuple[float, int, Expr]] = []
    stamp = 0
    while len(pop) < cfg.population:
        e, f = sample_valid(cfg.rps and cfg.method == "gp", True, cfg.max_tries * 10)
        pop.append((f, stamp, e))
        stamp += 1
    res.init_seconds = time.perf_counter() - t_start
    k_top = max(2, int(math.ceil(cfg.tournament_ratio * cfg.population)))

    for gen in range(cfg.generations):
        pop.sort(key=lambda t: (-t[0], t[1]))
        if cfg.method == "random":
            e, f = sample_valid(False, False, cfg.max_tries)
            pop.append((f, stamp, e))
        else:
            top = pop[:k_top]
            child = None
            for _ in range(cfg.max_tries):
                p1, p2 = rng.choice(top)[2], rng.choice(top)[2]
                c = p1
                if rng.random() < cfg.crossover:
                    c = crossover(p1, p2, rng)
                if rng.random() < cfg.mutation:
                    c = mutate(c, rng, cfg.mutation_gene_prob, cfg.inputs)
                if not c.valid_shape:
                    continue
                if cfg.rps:
                    if not rules.passes(c):
                        res.n_rule_rejects += 1
                        continue
                    ok, f = fitness(c)
                    if not ok:
                        res.n_score_rejects += 1
                        continue
                else:
                    ok, f = fitness(c)
                child = (f, stamp, c)
                break
            if child is not None:
                pop.append(child)
        stamp += 1
        pop.sort(key=lambda t: (-t[0], t[1]))
        del pop[cfg.population:]  # the worst leaves (random search keeps the best P seen)
        bf, _, be = pop[0]
        res.history.append({"generation": gen, "best_rho": bf, "best": be.formula,
                            "mean_rho": float(np.mean([t[0] for t in pop])), "n_evals": fitness.n_evals,
                            "rule_rejects": res.n_rule_rejects, "score_rejects": res.n_score_rejects,
                            "seconds": time.perf_counter() - t_start})
        if log and (gen % max(1, cfg.generations // 10) == 0 or gen == cfg.generations - 1):
            log(f"gen {gen:5d}  best rho {bf:+.4f}  evals {fitness.n_evals}  {be.formula}")
    pop.sort(key=lambda t: (-t[0], t[1]))
    res.best_fitness, _, res.best = pop[0]
    res.population = [(f, e.formula) for f, _, e in pop]
    res.n_evals = fitness.n_evals
    res.seconds = time.perf_counter() - t_start
    return res
