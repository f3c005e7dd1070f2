"""How the cost of scoring one architecture grows: with parameter count, batch size and sequence length.

    python bench/bench_cost_growth.py                         # gpt2 + flexibert, 8 archs each, sweep on gpt2
    python bench/bench_cost_growth.py --n-archs 4 --sweep-space none
    python bench/bench_cost_growth.py --sweep-space flexibert --sweep-batches 16 32 64 128 --sweep-seqs 128 \\
        --spaces --out /tmp/flexi_sweep.png
    python bench/bench_cost_growth.py --profile gpt2:4x192    # where the time of one arch goes

Every measurement point -- one (architecture, batch size, sequence length) -- runs in a fresh
subprocess with one torch thread (``OMP_NUM_THREADS=1``, ``torch.set_num_threads(1)``), so that

* times are this process's CPU time (``time.process_time``): on a shared machine wall time
  mostly measures the neighbours;
* the peak resident set size (``resource.getrusage(RUSAGE_SELF).ru_maxrss``) is that of one
  architecture alone: interpreter + torch + the space's data + model + every pass.

In each point the worker builds the model, times one ``model(inputs, targets).loss.backward()``
(``fwd+bwd``; the second of two, the first warms up), scores the whole catalogue once on a
tiny batch (warm-up: FlopCounterMode and friends), then once for real through
``score_arch``. The catalogue is every registered proxy (``--proxies`` to choose). Its cost is
the ``score_arch`` CPU time minus the engine's own build+batch time. For the per-pass and
per-proxy split the engine's clock (``zcbench.engine.time.perf_counter``) is replaced by the
process CPU clock in the worker only; a proxy's *own* time is its ``ScoreResult.seconds``
minus the passes it used and the setup (the engine's accounting).

Default sample: ``--n-archs`` stored architectures per space (seeded, stratified over the
parameter-count range), batch = the reproduction batches (GPT-2 4 x 192, FlexiBERT 16 x 128),
and a sweep of one fixed architecture (the sample's median-size GPT-2 net) over batch sizes
{2, 4, 8, 16} at the space's sequence length and sequence lengths {64, 128, 192} at batch 4.
Writes ``docs/img/cost_growth.png`` (log-log) and ``--json`` (all points) and prints ratios,
log-log slopes and a linear extrapolation to every stored architecture of each space.
Default runtime on a 2-core machine: about 5-8 minutes.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import random
import resource
import statistics
import subprocess
import sys
import time
import types
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
REPRO_BATCH = {"gpt2": (4, 192), "transxl": (4, 192), "flexibert": (16, 128), "autoformer": (16, 0)}
DEFAULT_BATCH = {"gpt2": (16, 192), "transxl": (16, 192), "flexibert": (128, 128), "autoformer": (128, 0)}


# ------------------------------------------------------------------------------------------
# worker: one point, in its own process
# ------------------------------------------------------------------------------------------
def _catalogue(names):
    import zcbench

    if names:
        return list(names)
    return [n for n in zcbench.list_proxies() if n != "ntsr"]  # ntsr = rank fusion of stored ntkt+sept


def worker(spec: dict) -> dict:
    import torch

    torch.set_num_threads(1)
    import zcbench
    import zcbench.engine as engine

    # the engine's pass/proxy accounting on the process CPU clock (this process only)
    engine.time = types.SimpleNamespace(perf_counter=time.process_time, time=time.time, monotonic=time.monotonic)
    space = zcbench.create_space(spec["space"])
    arch = space.by_id(spec["arch"])
    bs, sl, seed = spec["batch_size"], spec["seq_len"], spec.get("seed", 0)
    rss_base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    torch.manual_seed(seed)
    model = space.build(arch).eval()
    batch = space.make_batch(bs, sl, seed)
    n_params = sum(p.numel() for p in model.parameters())
    fb = []
    for _ in range(2):
        model.zero_grad(set_to_none=True)
        t0 = time.process_time()
        model(batch.inputs, batch.targets).loss.backward()
        fb.append(time.process_time() - t0)
    del model, batch
    names = _catalogue(spec.get("proxies"))
    engine.score_arch(space, arch, [zcbench.get_proxy(n) for n in names], seed=seed, batch_size=1,
                      seq_len=min(8, sl) if sl else sl)  # warm-up
    t0 = time.process_time()
    st: dict = {}
    res = engine.score_arch(space, arch, [zcbench.get_proxy(n) for n in names], seed=seed, batch_size=bs,
                            seq_len=sl, stats=st, hvp_chunk=spec.get("hvp_chunk"))
    total = time.process_time() - t0
    passes = dict(st.get("pass_seconds", {}))
    setup = st.get("setup_seconds", 0.0)
    own = {}
    for n, r in res.items():
        pneeds = set(zcbench.get_proxy(n).needs)
        used = {engine.pass_of(x) for x in pneeds if x not in ("arch", "weights")}
        over = sum(passes.get(k, 0.0) for k in used) + (setup if pneeds - {"arch"} else 0.0)
        own[n] = max(r.seconds - over, 0.0)
    return dict(spec, params=n_params, fwd_bwd=fb[-1], catalogue=total - setup, setup=setup, passes=passes,
                pass_detail=dict(st.get("seconds", {})), own=own,
                status={n: r.status for n, r in res.items() if r.status != "ok"},
                grasp=res["grasp"].value if "grasp" in res else None,
                rss_base_mb=rss_base / 1024, rss_peak_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


def run_point(spec: dict, timeout: float) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONPATH=str(REPO))
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, __file__, "--worker", json.dumps(spec)], cwd=REPO, env=env,
                         capture_output=True, text=True, timeout=timeout)
    if out.returncode != 0:
        raise RuntimeError(f"point {spec} failed:\n{out.stderr[-3000:]}")
    rec = json.loads(out.stdout.strip().splitlines()[-1])
    rec["wall"] = time.perf_counter() - t0
    return rec


# ------------------------------------------------------------------------------------------
# profile mode
# ------------------------------------------------------------------------------------------
def profile(target: str, arch_index: int, names, rows: int) -> None:
    import torch
    from torch.profiler import ProfilerActivity, profile as tprofile

    torch.set_num_threads(1)
    import zcbench
    import zcbench.engine as engine

    engine.time = types.SimpleNamespace(perf_counter=time.process_time, time=time.time, monotonic=time.monotonic)
    space_name, _, bxs = target.partition(":")
    bs, sl = (int(x) for x in bxs.split("x")) if bxs else REPRO_BATCH[space_name]
    space = zcbench.create_space(space_name)
    stored = sorted(space.stored(), key=lambda a: a.id)
    arch = random.Random(0).sample(stored, arch_index + 1)[arch_index]
    names = _catalogue(names)
    engine.score_arch(space, arch, [zcbench.get_proxy(n) for n in names], batch_size=1, seq_len=min(8, sl) or sl)
    t0 = time.process_time()
    st: dict = {}
    with tprofile(activities=[ProfilerActivity.CPU]) as prof:
        res = engine.score_arch(space, arch, [zcbench.get_proxy(n) for n in names], batch_size=bs, seq_len=sl,
                                stats=st)
    total = time.process_time() - t0
    print(f"== profile {space_name} {arch.id} batch {bs} x {sl}, {len(names)} proxies, 1 thread: "
          f"{total:.2f} s CPU under torch.profiler (profiler overhead included)")
    print(f"   setup {st['setup_seconds']:.2f} s; passes (CPU s): {json.dumps(st.get('seconds', {}))}; "
          f"groups: {json.dumps(st.get('pass_seconds', {}))}")
    setup, passes = st["setup_seconds"], st.get("pass_seconds", {})
    own = {}
    for n, r in res.items():
        pneeds = set(zcbench.get_proxy(n).needs)
        used = {engine.pass_of(x) for x in pneeds if x not in ("arch", "weights")}
        own[n] = r.seconds - sum(passes.get(k, 0.0) for k in used) - (setup if pneeds - {"arch"} else 0.0)
    print("   proxies' own computation (CPU s, beyond the shared passes):")
    for n, s in sorted(own.items(), key=lambda kv: -kv[1])[:10]:
        print(f"     {n:22s} {s:7.2f}")
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=rows))


# ------------------------------------------------------------------------------------------
# driver
# ------------------------------------------------------------------------------------------
def pick_archs(space, n: int, seed: int) -> list:
    """n stored archs spread over the parameter range: sort a seeded sample of 4n by a cheap size
    proxy (the space's summary) and take evenly spaced ones."""
    stored = sorted(space.stored(), key=lambda a: a.id)
    pool = random.Random(seed).sample(stored, min(len(stored), 4 * n))

    def size(a):  # ~ weights of the blocks: 4 d^2 per attention + 2 d d_inner per FFN
        s = space.summary(a) if hasattr(space, "summary") else {}
        d = s.get("d_model") or s.get("embed_dim") or 1
        L = s.get("n_layer") or s.get("depth") or 1
        inner = s.get("d_inner") or [4 * d] * L
        return 4 * d * d * L + 2 * d * sum(inner if isinstance(inner, list) else [inner] * L)

    pool.sort(key=size)
    if len(pool) <= n:
        return pool
    return [pool[round(i * (len(pool) - 1) / (n - 1))] for i in range(n)] if n > 1 else [pool[len(pool) // 2]]


def slope(xs, ys) -> float:
    lx, ly = [math.log(x) for x in xs], [math.log(y) for y in ys]
    mx, my = statistics.mean(lx), statistics.mean(ly)
    den = sum((a - mx) ** 2 for a in lx)
    return sum((a - mx) * (b - my) for a, b in zip(lx, ly)) / den if den else float("nan")


def plot(recs: list[dict], sweep: list[dict], out: Path, n_by_space: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    fig, axs = plt.subplots(2, 2, figsize=(13, 9.5))
    ax = [axs[0, 0], axs[0, 1], axs[1, 0], axs[1, 1]]
    colours = {"gpt2": "tab:blue", "flexibert": "tab:orange", "transxl": "tab:green", "autoformer": "tab:red"}
    for sp in dict.fromkeys(r["space"] for r in recs):
        rs = [r for r in recs if r["space"] == sp]
        x = [r["params"] / 1e6 for r in rs]
        c = colours.get(sp, "k")
        lab = f"{sp} ({rs[0]['batch_size']}x{rs[0]['seq_len']}, n={len(rs)})"
        ax[0].scatter(x, [r["catalogue"] for r in rs], color=c, marker="o", label=f"{lab}: catalogue")
        ax[0].scatter(x, [r["fwd_bwd"] for r in rs], color=c, marker="x", label=f"{lab}: fwd+bwd")
        ax[3].scatter(x, [r["rss_peak_mb"] for r in rs], color=c, marker="o", label=lab)
    ax[0].set(xscale="log", yscale="log", xlabel="parameters (millions)", ylabel="CPU seconds per arch (1 thread)",
              title="time vs parameter count\n" + ", ".join(f"{k} n={v}" for k, v in n_by_space.items()))
    ax[3].set(xscale="log", xlabel="parameters (millions)", ylabel="peak RSS per arch (MiB)",
              title="peak RSS (fresh process per arch)")
    for a in (ax[0], ax[3]):
        a.legend(fontsize=7)
        a.grid(True, which="both", alpha=0.3)
    if sweep:
        sp, arch = sweep[0]["space"], sweep[0]["arch"]
        for k, (key, fixed_key, label) in enumerate((("batch_size", "seq_len", "batch size (examples)"),
                                                     ("seq_len", "batch_size", "sequence length (tokens)"))):
            a = ax[1 + k]
            pts = [r for r in sweep if r.get("axis") == key]
            pts.sort(key=lambda r: r[key])
            if not pts:
                a.set_visible(False)
                continue
            xs = [r[key] for r in pts]
            a.plot(xs, [r["catalogue"] for r in pts], "o-", label="catalogue")
            a.plot(xs, [r["fwd_bwd"] for r in pts], "x--", label="fwd+bwd")
            a.set(xscale="log", yscale="log", xlabel=label, ylabel="CPU seconds (1 thread)",
                  title=f"{sp} {arch} ({pts[0]['params'] / 1e6:.1f}M params), "
                        f"{fixed_key.replace('_', ' ')} {pts[0][fixed_key]}, n={len(pts)}")
            a.set_xticks(xs, [str(v) for v in xs])
            a.legend(fontsize=8)
            a.grid(True, which="both", alpha=0.3)
    plain = FuncFormatter(lambda v, _: f"{v:g}")
    for a in ax:
        for axis in (a.xaxis, a.yaxis):
            axis.set_major_formatter(plain)
            axis.set_minor_formatter(NullFormatter())
    for a in (ax[0], ax[3]):
        a.xaxis.set_major_locator(LogLocator(subs=(1, 2, 5)))
    for a in ax[:3]:
        a.yaxis.set_major_locator(LogLocator(subs=(1, 2, 5)))
    fig.suptitle("zcbench: cost of scoring one architecture (every registered proxy), process CPU time, 1 torch thread")
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--profile", metavar="SPACE[:BxT]", help="profile one arch with the catalogue and exit")
    ap.add_argument("--profile-arch", type=int, default=0, help="index into the seeded sample (profile mode)")
    ap.add_argument("--spaces", nargs="*", default=["gpt2", "flexibert"])
    ap.add_argument("--n-archs", type=int, default=8)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--proxies", nargs="*", default=None, help="default: every registered proxy")
    ap.add_argument("--sweep-space", default="gpt2", help="space of the batch/length sweep ('none': skip)")
    ap.add_argument("--sweep-batches", type=int, nargs="*", default=[2, 4, 8, 16])
    ap.add_argument("--sweep-seqs", type=int, nargs="*", default=[64, 128, 192])
    ap.add_argument("--sweep-batch", type=int, default=4, help="batch size of the sequence-length sweep")
    ap.add_argument("--out", default=str(REPO / "docs" / "img" / "cost_growth.png"))
    ap.add_argument("--json", default=None, help="write every point here")
    ap.add_argument("--timeout", type=float, default=900, help="seconds per point")
    ap.add_argument("--replot", metavar="JSON", help="redraw the figure from a --json file and exit")
    args = ap.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(json.loads(args.worker))))
        return 0
    if args.profile:
        profile(args.profile, args.profile_arch, args.proxies, 20)
        return 0
    if args.replot:
        d = json.loads(Path(args.replot).read_text())
        n_by_space = {}
        for r in d["archs"]:
            n_by_space[r["space"]] = n_by_space.get(r["space"], 0) + 1
        plot(d["archs"], d["sweep"], Path(args.out), n_by_space)
        print(f"wrote {args.out}")
        return 0

    import zcbench

    t_start = time.perf_counter()
    recs, sweep, n_by_space, spaces = [], [], {}, {}
    for sp in args.spaces:
        space = spaces[sp] = zcbench.create_space(sp)
        bs, sl = REPRO_BATCH.get(sp, (16, 128))
        archs = pick_archs(space, args.n_archs, args.seed)
        n_by_space[sp] = len(archs)
        print(f"== {sp}: {len(archs)} archs, batch {bs} x {sl}, 1 thread, CPU time", flush=True)
        for a in archs:
            r = run_point(dict(space=sp, arch=a.id, batch_size=bs, seq_len=sl, seed=args.seed,
                               proxies=args.proxies), args.timeout)
            recs.append(r)
            nt = r["own"].get("ntkt", 0.0)
            print(f"   {a.id:>14s} {r['params'] / 1e6:7.2f}M  fwd+bwd {r['fwd_bwd']:6.2f}s  catalogue "
                  f"{r['catalogue']:7.2f}s ({r['catalogue'] / r['fwd_bwd']:5.1f}x)  ntkt own {nt:5.2f}s  "
                  f"peak RSS {r['rss_peak_mb']:6.0f} MiB (after imports {r['rss_base_mb']:.0f})  "
                  f"[{r['wall']:.0f}s wall]" + (f"  {r['status']}" if r["status"] else ""), flush=True)
    if args.sweep_space != "none":
        sp = args.sweep_space
        space = spaces.get(sp) or zcbench.create_space(sp)
        own = [r for r in recs if r["space"] == sp]
        if own:  # the sample's median-size arch
            arch_id = sorted(own, key=lambda r: r["params"])[len(own) // 2]["arch"]
        else:
            arch_id = pick_archs(space, 1, args.seed)[0].id
        _, sl0 = REPRO_BATCH.get(sp, (16, 128))
        pts = [("batch_size", b, sl0) for b in args.sweep_batches] + \
              [("seq_len", args.sweep_batch, s) for s in args.sweep_seqs]
        print(f"== sweep {sp} {arch_id}: batch {args.sweep_batches} at seq {sl0}; seq {args.sweep_seqs} at batch "
              f"{args.sweep_batch}", flush=True)
        done = {}
        for axis, b, s in pts:
            if (b, s) not in done:
                done[(b, s)] = run_point(dict(space=sp, arch=arch_id, batch_size=b, seq_len=s, seed=args.seed,
                                              proxies=args.proxies), args.timeout)
                r = done[(b, s)]
                print(f"   {b:3d} x {s:4d}: fwd+bwd {r['fwd_bwd']:6.2f}s  catalogue {r['catalogue']:7.2f}s "
                      f"({r['catalogue'] / r['fwd_bwd']:5.1f}x)  ntkt own {r['own'].get('ntkt', 0):5.2f}s  "
                      f"peak RSS {r['rss_peak_mb']:6.0f} MiB", flush=True)
            sweep.append(dict(done[(b, s)], axis=axis))

    print("== summary")
    for sp in n_by_space:
        rs = [r for r in recs if r["space"] == sp]
        cat = [r["catalogue"] for r in rs]
        ratio = [r["catalogue"] / r["fwd_bwd"] for r in rs]
        nt = [r["own"].get("ntkt", 0.0) for r in rs]
        n_all = len(spaces[sp].stored())
        bs, sl = rs[0]["batch_size"], rs[0]["seq_len"]
        params = [r["params"] for r in rs]
        fb = [r["fwd_bwd"] for r in rs]
        print(f"   {sp} {bs}x{sl}: catalogue / fwd+bwd mean {statistics.mean(ratio):.1f}x "
              f"(min {min(ratio):.1f}, max {max(ratio):.1f}); log-log slope vs params: catalogue "
              f"{slope(params, cat):.2f}, fwd+bwd {slope(params, fb):.2f}")
        print(f"      mean CPU s per arch: catalogue {statistics.mean(cat):.2f} (ntkt own {statistics.mean(nt):.2f}), "
              f"fwd+bwd {statistics.mean(fb):.2f}; peak RSS max {max(r['rss_peak_mb'] for r in rs):.0f} MiB")
        print(f"      extrapolation (sample mean x {n_all} stored archs, 1 thread, CPU): catalogue "
              f"{statistics.mean(cat) * n_all / 60:.1f} min, "
              f"without ntkt {(statistics.mean(cat) - statistics.mean(nt)) * n_all / 60:.1f} min")
    for axis in ("batch_size", "seq_len"):
        pts = sorted((r for r in sweep if r["axis"] == axis), key=lambda r: r[axis])
        if len(pts) > 1:
            xs = [r[axis] for r in pts]
            print(f"   sweep vs {axis}: log-log slope catalogue {slope(xs, [r['catalogue'] for r in pts]):.2f}, "
                  f"fwd+bwd {slope(xs, [r['fwd_bwd'] for r in pts]):.2f}; ratio per point "
                  + ", ".join(f"{r[axis]}: {r['catalogue'] / r['fwd_bwd']:.1f}x" for r in pts))
    plot(recs, sweep, Path(args.out), n_by_space)
    print(f"wrote {args.out}; total {time.perf_counter() - t_start:.0f} s wall")
    if args.json:
        Path(args.json).write_text(json.dumps({"archs": recs, "sweep": sweep}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
