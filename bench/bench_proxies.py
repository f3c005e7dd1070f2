"""Cost of the proxy catalogue, as multiples of one forward+backward of the same minibatch.

For each space and a seeded sample of its stored architectures this measures

* ``fwd+bwd``   — one ``model(inputs, targets).loss`` forward and ``.backward()`` (median of ``--reps``),
* every proxy alone through ``score_arch`` (its passes + its own arithmetic),
* the standard-backward group together (grad_norm, snip, fisher, plain, synaptic_diversity,
  synaptic_saliency, head_importance, attention/softmax confidence, nwot, activation_distance,
  meco, lpzero, eznas) — target <= 1.5x,
* the whole catalogue through the shared passes, and the catalogue without GraSP — issue 18's
  goals, <= 3x and <= 2x at the papers' minibatches (printed as "goal" lines at the end),

where a proxy set's cost is the time of a ``score_arch`` call minus the time of building the
model and the batch (measured the same way), i.e. the passes and the proxies' arithmetic
only. On CPU the clock is this process's CPU time (``--clock cpu``, default there; use one
thread): on a shared machine wall time mostly measures the neighbours. On CUDA it is wall
time with synchronisation. Every figure is a median of ``--reps`` repetitions. The first
architecture is scored once untimed (warm-up: FlopCounterMode and allocator start-up).
The catalogue is the zero-cost catalogue of issue 4 (``CATALOGUE``); ``--all-registered``
adds every other registered proxy that needs a model.

    python bench/bench_proxies.py --space gpt2 --n-archs 3 --batch-size 16 --seq-len 192
    python bench/bench_proxies.py --space gpt2 flexibert --device cuda
    python bench/bench_proxies.py --space flexibert --proxies zico --compare-multi-batch   # issue 18 before/after

Prints a table per architecture and the mean ratios per space.
"""
from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import zcbench  # noqa: E402
from zcbench.engine import score_arch  # noqa: E402

STANDARD_GROUP = ["grad_norm", "snip", "fisher", "plain", "synaptic_diversity", "synaptic_saliency",
                  "head_importance", "attention_confidence", "softmax_confidence", "nwot", "activation_distance",
                  "meco", "lpzero", "eznas"]
CATALOGUE = ["flops", "grad_norm", "snip", "grasp", "fisher", "plain", "synflow", "logsynflow", "jacob_cov",
             "jacobian_cosine", "nwot", "activation_distance", "synaptic_diversity", "synaptic_saliency", "dss",
             "attention_confidence", "softmax_confidence", "head_importance", "zico", "meco", "eznas", "lpzero"]
SPACE_DEFAULTS = {"gpt2": (16, 192), "transxl": (16, 192), "transxl_homogeneous": (16, 192),
                  "flexibert": (16, 128), "autoformer": (16, 0)}


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


class Clock:
    def __init__(self, kind: str, device: str):
        self.kind, self.device = kind, device

    def now(self) -> float:
        _sync(self.device)
        return time.process_time() if self.kind == "cpu" else time.perf_counter()


def time_setup(space, arch, batch_size, seq_len, device, clock, reps, seed=0) -> float:
    times = []
    for _ in range(reps):
        t0 = clock.now()
        torch.manual_seed(seed)
        space.build(arch).to(device).eval()
        space.make_batch(batch_size, seq_len, seed).to(device)
        times.append(clock.now() - t0)
    return statistics.median(times)


def time_fwd_bwd(space, arch, batch_size, seq_len, device, clock, reps, seed=0) -> float:
    torch.manual_seed(seed)
    model = space.build(arch).to(device).eval()
    batch = space.make_batch(batch_size, seq_len, seed).to(device)
    times = []
    for _ in range(reps + 1):
        model.zero_grad(set_to_none=True)
        t0 = clock.now()
        model(batch.inputs, batch.targets).loss.backward()
        times.append(clock.now() - t0)
    return statistics.median(times[1:])


OPTS = {"zico_factored": False,  # --compare-multi-batch: zico with groups="factored" (both halves from one pass)
        "grasp_hvp": "exact"}  # --compare-grasp-hvp: grasp with hvp="forward_difference"


def _options(n: str) -> dict:
    if n == "zico" and OPTS["zico_factored"]:
        return {"groups": "factored"}
    if n == "grasp" and OPTS["grasp_hvp"] != "exact":
        return {"hvp": OPTS["grasp_hvp"]}
    return {}


def time_set(space, arch, names, batch_size, seq_len, device, clock, reps, setup, seed=0) -> tuple[float, dict]:
    times = []
    stats: dict = {}
    for _ in range(reps):
        proxies = [zcbench.get_proxy(n, **_options(n)) for n in names]
        t0 = clock.now()
        res = score_arch(space, arch, proxies, seed=seed, batch_size=batch_size, seq_len=seq_len, device=device,
                         stats=stats, hvp_chunk=OPTS.get("hvp_chunk"))
        times.append(clock.now() - t0 - setup)
    bad = {n: r.status for n, r in res.items() if r.status not in ("ok", "n/a")}
    if bad:
        print(f"    warning: {bad}", file=sys.stderr)
    return statistics.median(times), dict(stats)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--space", nargs="+", default=["gpt2"])
    ap.add_argument("--n-archs", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=None)
    ap.add_argument("--seq-len", type=int, default=None)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (CPU)")
    ap.add_argument("--proxies", nargs="*", default=None, help="subset to time alone (default: the catalogue)")
    ap.add_argument("--clock", choices=("cpu", "wall"), default=None, help="default: cpu on CPU, wall on CUDA")
    ap.add_argument("--all-registered", action="store_true", help="catalogue = every registered model proxy")
    ap.add_argument("--compare-multi-batch", action="store_true",
                    help="time the catalogue with zico groups=factored (both halves from the standard "
                         "pass) vs its default group passes, repetitions alternating")
    ap.add_argument("--compare-grasp-hvp", action="store_true",
                    help="time the whole catalogue with grasp hvp=forward_difference vs its exact double backward, "
                         "each with zico's group passes and with groups=factored, repetitions alternating")
    ap.add_argument("--hvp-chunk", type=int, default=None,
                    help="run option hvp_chunk=K: GraSP's Hessian-vector product over chunks of K examples")
    args = ap.parse_args(argv)
    OPTS["hvp_chunk"] = args.hvp_chunk
    if args.threads:
        torch.set_num_threads(args.threads)

    catalogue = list(CATALOGUE)
    if args.all_registered:
        catalogue += [n for n in zcbench.list_proxies()
                      if n not in catalogue and not set(zcbench.get_proxy(n).needs) <= {"arch"}]
    alone = args.proxies if args.proxies is not None else catalogue
    clock = Clock(args.clock or ("wall" if args.device.startswith("cuda") else "cpu"), args.device)
    for space_name in args.space:
        space = zcbench.create_space(space_name)
        bs, sl = SPACE_DEFAULTS.get(space_name, (16, 128))
        bs = args.batch_size or bs
        sl = args.seq_len if args.seq_len is not None else sl
        stored = sorted(space.stored(), key=lambda a: a.id)
        rng = random.Random(args.seed)
        archs = rng.sample(stored, min(args.n_archs, len(stored))) if stored else \
            [space.sample(rng) for _ in range(args.n_archs)]
        print(f"== {space_name}: {len(archs)} archs, batch {bs} x seq {sl}, device {args.device}, "
              f"threads {torch.get_num_threads()}, clock {clock.kind}, hvp_chunk {args.hvp_chunk}")
        time_set(space, archs[0], catalogue, bs, sl, args.device, clock, 1, 0.0, args.seed)  # warm-up
        ratios: dict[str, list[float]] = {}
        for arch in archs:
            setup = time_setup(space, arch, bs, sl, args.device, clock, args.reps, args.seed)
            base = time_fwd_bwd(space, arch, bs, sl, args.device, clock, args.reps, args.seed)
            row = {}
            for n in alone:
                row[n] = time_set(space, arch, [n], bs, sl, args.device, clock, args.reps, setup, args.seed)[0] / base
            row["[standard group]"], st = time_set(space, arch, STANDARD_GROUP, bs, sl, args.device, clock, args.reps,
                                                   setup, args.seed)
            row["[standard group]"] /= base
            group_passes = f"{st.get('forward', 0)}F/{st.get('backward', 0)}B"
            no_grasp = [n for n in catalogue if n != "grasp"]
            if args.compare_grasp_hvp:  # four catalogues per repetition, alternating
                got: dict = {}
                for _ in range(args.reps):
                    for hvp in ("forward_difference", "exact"):
                        for fac in (True, False):
                            OPTS["grasp_hvp"], OPTS["zico_factored"] = hvp, fac
                            try:
                                got.setdefault((hvp, fac), []).append(
                                    time_set(space, arch, catalogue, bs, sl, args.device, clock, 1, setup, args.seed))
                            finally:
                                OPTS["grasp_hvp"], OPTS["zico_factored"] = "exact", False
                for (hvp, fac), ts in got.items():
                    row[f"[catalogue, grasp {'fd' if hvp != 'exact' else 'exact'}, zico "
                        f"{'factored' if fac else 'passes'}]"] = statistics.median(t for t, _ in ts) / base
                st = got[("forward_difference", True)][-1][1]
                st_old = got[("exact", False)][-1][1]
                all_passes = (f"{st.get('forward', 0)}F/{st.get('backward', 0)}B with grasp fd + zico factored "
                              f"({st_old.get('forward', 0)}F/{st_old.get('backward', 0)}B exact + passes)")
            elif not args.compare_multi_batch:
                row["[whole catalogue]"], st = time_set(space, arch, catalogue, bs, sl, args.device, clock, args.reps,
                                                        setup, args.seed)
                row["[whole catalogue]"] /= base
                row["[catalogue without grasp]"] = time_set(space, arch, no_grasp, bs, sl, args.device, clock,
                                                            args.reps, setup, args.seed)[0] / base
                all_passes = f"{st.get('forward', 0)}F/{st.get('backward', 0)}B"
            else:  # repetitions alternate between the two paths, so that load changes hit both alike
                got = {True: [], False: []}
                nog = {True: [], False: []}
                for _ in range(args.reps):
                    for flag in (True, False):
                        OPTS["zico_factored"] = flag
                        try:
                            got[flag].append(time_set(space, arch, catalogue, bs, sl, args.device, clock, 1, setup,
                                                      args.seed))
                            nog[flag].append(time_set(space, arch, no_grasp, bs, sl, args.device, clock, 1, setup,
                                                      args.seed)[0])
                        finally:
                            OPTS["zico_factored"] = False
                row["[whole catalogue]"] = statistics.median(t for t, _ in got[True]) / base
                row["[catalogue, group passes]"] = statistics.median(t for t, _ in got[False]) / base
                row["[catalogue without grasp]"] = statistics.median(nog[True]) / base
                row["[without grasp, group passes]"] = statistics.median(nog[False]) / base
                st, st_old = got[True][-1][1], got[False][-1][1]
                all_passes = (f"{st.get('forward', 0)}F/{st.get('backward', 0)}B (with group passes "
                              f"{st_old.get('forward', 0)}F/{st_old.get('backward', 0)}B)")
            print(f"-- {arch.key or arch.id}: fwd+bwd = {base * 1000:.1f} ms, build+batch = {setup * 1000:.1f} ms; "
                  f"standard group {group_passes}, "
                  f"catalogue {all_passes}")
            for n, r in row.items():
                ratios.setdefault(n, []).append(r)
                print(f"   {n:24s} {r:7.2f}x")
        print(f"== {space_name} mean over {len(archs)} archs (x one forward+backward):")
        for n, rs in ratios.items():
            print(f"   {n:24s} {statistics.mean(rs):7.2f}x   (min {min(rs):.2f}, max {max(rs):.2f})")
        if args.compare_grasp_hvp:
            for key in sorted(k for k in ratios if k.startswith("[catalogue, grasp")):
                m = statistics.mean(ratios[key])
                print(f"== goal (issue 18), {space_name} {bs} x {sl}, {key[1:-1]}: whole catalogue {m:.2f}x <= 3x: "
                      f"{'met' if m <= 3.0 else 'not met'}")
            continue
        checks = [("zico groups=factored" if args.compare_multi_batch else "default zico (group passes)",
                   "[whole catalogue]", "[catalogue without grasp]")]
        if args.compare_multi_batch:
            checks.append(("default zico (group passes)", "[catalogue, group passes]",
                           "[without grasp, group passes]"))
        for zico, whole, no_grasp in checks:
            for label, key, goal in (("whole catalogue", whole, 3.0), ("catalogue without grasp", no_grasp, 2.0)):
                m = statistics.mean(ratios[key])
                print(f"== goal (issue 18), {space_name} {bs} x {sl}, {zico}: {label} {m:.2f}x <= {goal:.0f}x: "
                      f"{'met' if m <= goal else 'not met'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
