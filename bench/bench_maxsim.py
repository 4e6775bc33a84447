"""MaxSim benchmark: jaxrank native (f32, bf16, int8) and pure JAX vs maxsim-cpu, PyTorch
(PyLate-style einsum), numkong; one core pinned with taskset (headline) and two threads.

    python bench/bench_maxsim.py            # default grid (a few minutes on 2 cores)
    python bench/bench_maxsim.py --full     # Ld in {180,300} x N in {1k,10k} x B in {1,32}
    python bench/bench_maxsim.py --configs 10000:180:32 --native-only   # N:Ld:B, no peers

Prints the machine, the measured f32 sgemm peak and triad bandwidth, the roofline of each
configuration, and Markdown tables (median wall ms, median process CPU ms -- which stays
meaningful on a loaded machine --, GFLOP/s, ratio to the pure-JAX baseline, and the
maximum relative error of the scores against a float64 reference on 100 documents).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _machine

LQ, D = 32, 128
DEFAULT = [(1000, 180, 1), (10000, 180, 1), (1000, 180, 32)]
FULL = [(n, ld, b) for ld in (180, 300) for n in (1000, 10000) for b in (1, 32)]


def _rel_err(got, ref):
    import numpy as np

    got = np.asarray(got, np.float64).reshape(ref.shape)
    return float(np.max(np.abs(got - ref) / np.abs(ref)))


def child(args) -> None:

    threads = args.threads
    peak = _machine.sgemm_peak()
    bw = _machine.triad_bandwidth()
    peak_c, bw_c = _machine.sgemm_peak_cpu(), _machine.triad_bandwidth_cpu()
    print(json.dumps({"kind": "machine", "threads": threads, "sgemm": peak, "triad": bw,
                      "sgemm_cpu": peak_c, "triad_cpu": bw_c}))  # fmt: skip
    configs = FULL if args.full else DEFAULT
    if args.configs:
        configs = [tuple(int(x) for x in c.split(":")) for c in args.configs]
    for n, ld, b in configs:
        rows, flops = run_config(n, ld, b, threads, args.repeats, args.native_only)
        print(json.dumps({"kind": "config", "threads": threads, "n": n, "ld": ld, "b": b,
                          "flops": flops, "rows": rows}))  # fmt: skip
        sys.stdout.flush()


def run_config(n: int, ld: int, b: int, threads: int, repeats: int, native_only: bool = False):
    import jax
    import jax.numpy as jnp
    import ml_dtypes
    import numpy as np

    from jaxrank.quant import maxsim_int8, quantize_int8
    from jaxrank.rerank import maxsim

    rng = np.random.default_rng(0)
    q = rng.standard_normal((b, LQ, D)).astype(np.float32)
    q /= np.linalg.norm(q, axis=-1, keepdims=True)
    docs = rng.standard_normal((n, ld, D)).astype(np.float32)
    docs /= np.linalg.norm(docs, axis=-1, keepdims=True)
    n_ref = min(n, 100)
    ref = np.einsum("bid,njd->bnij", q.astype(np.float64), docs[:n_ref]).max(-1).sum(-1)
    flops = 2.0 * b * n * ld * LQ * D
    jq, jdocs = jnp.asarray(q), jnp.asarray(docs)
    jqb, jdb = jq.astype(jnp.bfloat16), jdocs.astype(jnp.bfloat16)
    codes, scales = quantize_int8(jdocs)
    rows = []

    def add(name, prec, fn, check, repeats=repeats):
        out = fn()
        err = _rel_err(check(out), ref)
        t, cpu = _machine.timeit_cpu(fn, repeats)
        rows.append({"impl": name, "prec": prec, "ms": t * 1e3, "cpu_ms": cpu * 1e3,
                     "gflops": flops / t / 1e9, "err": err})  # fmt: skip

    f32 = jax.jit(lambda q, d: maxsim(q, d, num_threads=threads))
    add("jaxrank native", "f32", lambda: f32(jq, jdocs).block_until_ready(),
        lambda o: np.asarray(o)[:, :n_ref])  # fmt: skip
    add("jaxrank native", "bf16", lambda: f32(jqb, jdb).block_until_ready(),
        lambda o: np.asarray(o)[:, :n_ref])  # fmt: skip
    i8 = jax.jit(lambda q, c, s: maxsim_int8(q, c, s, num_threads=threads))
    add("jaxrank native", "int8", lambda: i8(jq, codes, scales).block_until_ready(),
        lambda o: np.asarray(o)[:, :n_ref])  # fmt: skip
    pure = jax.jit(lambda q, d: maxsim(q, d, impl="jax"))
    add("jaxrank pure JAX (chunked einsum)", "f32", lambda: pure(jq, jdocs).block_until_ready(),
        lambda o: np.asarray(o)[:, :n_ref], repeats=max(1, repeats // 2))  # fmt: skip
    if native_only:
        return rows, flops
    try:
        import maxsim_cpu

        def msc():
            return np.stack([maxsim_cpu.maxsim_scores(qq, docs) for qq in q])

        add("maxsim-cpu", "f32", msc, lambda o: o[:, :n_ref])
    except ImportError as exc:
        rows.append({"impl": "maxsim-cpu", "prec": "f32", "missing": str(exc)})
    try:
        import torch

        torch.set_num_threads(threads)
        tq, td = torch.from_numpy(q), torch.from_numpy(docs)

        def pylate():  # PyLate colbert_scores: einsum, max over doc tokens, sum
            with torch.inference_mode():
                out = []
                step = max(1, (1 << 24) // (b * LQ * ld))
                for s in range(0, n, step):
                    sim = torch.einsum("ash,bth->abst", tq, td[s : s + step])
                    out.append(sim.max(dim=-1).values.sum(dim=-1))
                return torch.cat(out, dim=1).numpy()

        add("PyTorch einsum (PyLate-style)", "f32", pylate, lambda o: o[:, :n_ref],
            repeats=max(1, repeats // 2))  # fmt: skip
    except ImportError as exc:
        rows.append({"impl": "PyTorch", "prec": "f32", "missing": str(exc)})
    try:
        import numkong as nk

        for prec, dt in (("bf16", ml_dtypes.bfloat16), ("f32", np.float32)):
            packed = [nk.maxsim_pack(docs[i].astype(dt)) for i in range(n)]  # index time
            qp = [nk.maxsim_pack(qq.astype(dt)) for qq in q]

            # numkong returns the sum over query tokens of the min angular distance
            # 1 - cos; for unit vectors the MaxSim score is Lq minus that.
            def nkrun(qp=qp, packed=packed):
                return np.array([[LQ - nk.maxsim_packed(p, d) for d in packed] for p in qp])

            add("numkong (approximate)", prec, nkrun, lambda o: o[:, :n_ref])
            del packed
    except ImportError as exc:
        rows.append({"impl": "numkong", "prec": "bf16", "missing": str(exc)})
    return rows, flops


def _roofs(flops, n, ld, sgemm, triad):
    # compute at the sgemm peak (bf16 2x: VDPBF16PS does 2 MACs per lane; int8 4x: VPDPBUSD
    # does 4) vs streaming the documents once from DRAM at the triad bandwidth
    roofs = {}
    for prec, nbytes, speed in (("f32", 4, 1.0), ("bf16", 2, 2.0), ("int8", 1, 4.0)):
        t_c = flops / (sgemm * speed * 1e9)
        t_m = n * ld * D * nbytes / (triad * 1e9)
        roofs[prec] = max(t_c, t_m) * 1e3
    return roofs


def report(results: list[dict]) -> None:
    machines = {r["threads"]: r for r in results if r["kind"] == "machine"}
    for t, m in sorted(machines.items()):
        print(f"- {t} thread(s): sgemm peak {m['sgemm']:.0f} GFLOP/s f32 wall "
              f"({m['sgemm_cpu']:.0f} per CPU second), STREAM triad {m['triad']:.1f} GB/s wall "
              f"({m['triad_cpu']:.1f} per CPU second)")  # fmt: skip
    print()
    for r in results:
        if r["kind"] != "config":
            continue
        m = machines[r["threads"]]
        n, ld, b, flops = r["n"], r["ld"], r["b"], r["flops"]
        roofs = _roofs(flops, n, ld, m["sgemm"], m["triad"])
        roofs_c = _roofs(flops, n, ld, m["sgemm_cpu"], m["triad_cpu"])
        base = next((x for x in r["rows"] if x["impl"].startswith("jaxrank pure")), None)
        print(f"### MaxSim Lq={LQ} D={D} Ld={ld} N={n:,} B={b}, {r['threads']} thread(s)"
              f"{' (taskset -c 0)' if r['threads'] == 1 else ''}")  # fmt: skip
        print(f"Roofline (wall / CPU-time peaks): f32 {roofs['f32']:.1f} / "
              f"{roofs_c['f32']:.1f} ms, "
              f"bf16 {roofs['bf16']:.1f} / {roofs_c['bf16']:.1f} ms, "
              f"int8 {roofs['int8']:.1f} / {roofs_c['int8']:.1f} ms\n")  # fmt: skip
        print("| implementation | precision | median ms | CPU ms | GFLOP/s (CPU) | × pure-JAX "
              "(CPU) | × roofline (CPU) | × pure-JAX (wall) | max rel. error |")  # fmt: skip
        print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
        for x in r["rows"]:
            if "missing" in x:
                print(f"| {x['impl']} | {x['prec']} | MISSING: {x['missing']} | | | | | | |")
                continue
            ratio = base["ms"] / x["ms"] if base else float("nan")
            ratio_c = base["cpu_ms"] / x["cpu_ms"] if base else float("nan")
            roof = x["cpu_ms"] / roofs_c.get(x["prec"], roofs_c["f32"])
            print(f"| {x['impl']} | {x['prec']} | {x['ms']:.1f} | {x['cpu_ms']:.1f} | "
                  f"{flops / x['cpu_ms'] / 1e6:.1f} | {ratio_c:.2f} | {roof:.2f} | "
                  f"{ratio:.2f} | {x['err']:.1e} |")  # fmt: skip
        print()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--full", action="store_true", help="the issue's whole grid (slow)")
    p.add_argument("--threads", type=int, nargs="*", default=[1, 2])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--configs", nargs="*", help="N:Ld:B triples instead of the default grid")
    p.add_argument("--native-only", action="store_true", help="jaxrank rows only (no peers)")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        args.threads = args.threads[0]
        child(args)
        return
    print(_machine.describe())
    extra = ["--repeats", str(args.repeats)] + (["--full"] if args.full else [])
    extra += ["--configs", *args.configs] if args.configs else []
    extra += ["--native-only"] if args.native_only else []
    results = []
    for t in args.threads:
        results += _machine.run_child(__file__, t, extra)
    report(results)


if __name__ == "__main__":
    main()
