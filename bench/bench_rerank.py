"""Benchmark: MMR / DPP selection and Ward token pooling, side by side with references.

* MMR and DPP selecting 10 of 1,000 candidates (D = 384) per query, compiled, kernel
  construction included, against numpy implementations of the same greedy algorithms
  (the issue's bound: under 10 ms per query).
* Token pooling (pool_factor 2, protected_tokens 1) of 300-token documents (D = 128)
  against the PyLate recipe on SciPy (``linkage(1 - E E^T, "ward")`` + ``fcluster``),
  with the number of documents whose pooled vectors agree; jaxrank's native host
  nearest-neighbour chain and its pure-JAX loop side by side.

Run: ``python bench/bench_rerank.py [--one-core]``.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import fmt_s, machine, table, timeit


def mmr_numpy(rel, emb, k, lam):
    unit = emb / np.linalg.norm(emb, axis=1, keepdims=True)
    max_sim = np.full(len(rel), -np.inf)
    taken = np.zeros(len(rel), bool)
    out = []
    for t in range(k):
        score = lam * rel - (1 - lam) * (max_sim if t else 0.0)
        score[taken] = -np.inf
        i = int(np.argmax(score))
        out.append(i)
        taken[i] = True
        max_sim = np.maximum(max_sim, unit @ unit[i])
    return out


def dpp_numpy(rel, emb, k, theta):
    unit = emb / np.linalg.norm(emb, axis=1, keepdims=True)
    q = np.exp(theta / (2 * (1 - theta)) * (rel - rel.max()))
    d2 = q * q
    c = np.zeros((k, len(rel)))
    taken = np.zeros(len(rel), bool)
    out = []
    for t in range(k):
        gain = np.where(taken, -np.inf, d2)
        j = int(np.argmax(gain))
        e = (q[j] * q * (unit @ unit[j]) - c[:t].T @ c[:t, j]) / np.sqrt(gain[j])
        c[t] = e
        d2 = d2 - e * e
        taken[j] = True
        out.append(j)
    return out


def pylate_pool(doc, pool_factor, protected=1):
    from scipy.cluster import hierarchy

    body = doc[protected:]
    k = max(len(body) // pool_factor, 1)
    labels = hierarchy.fcluster(
        hierarchy.linkage(1 - body @ body.T, method="ward"), t=k, criterion="maxclust"
    )
    return labels


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--one-core", action="store_true", help="pin the process to CPU 0")
    ap.add_argument("--docs", type=int, default=32, help="documents to pool")
    args = ap.parse_args()
    if args.one_core:
        os.sched_setaffinity(0, {0})
    import jax.numpy as jnp

    from jaxrank.rerank import dpp, mmr, pool_tokens

    print(f"Machine: {machine()}\n")
    rng = np.random.default_rng(0)
    rel = rng.random(1000).astype(np.float32)
    emb = rng.normal(size=(1000, 384)).astype(np.float32)
    rel_j, emb_j = jnp.asarray(rel), jnp.asarray(emb)
    rows = []
    for name, fn, ref, kw, refkw in (
        ("MMR (λ=0.5)", mmr, mmr_numpy, {"lambda_": 0.5}, (0.5,)),
        ("DPP (θ=0.7)", dpp, dpp_numpy, {"theta": 0.7}, (0.7,)),
    ):
        ours = timeit(lambda fn=fn, kw=kw: fn(rel_j, emb_j, k=10, **kw)[0], repeat=20)
        theirs = timeit(lambda ref=ref, refkw=refkw: ref(rel, emb, 10, *refkw), repeat=20)
        same = fn(rel_j, emb_j, k=10, **kw)[0].tolist() == ref(rel, emb, 10, *refkw)
        rows.append([name, fmt_s(ours), fmt_s(theirs), f"{theirs / ours:.2f}×", str(same)])
    print("### Selecting 10 of 1,000 candidates, D = 384, one query\n")
    print(table(["method", "jaxrank (jit)", "numpy greedy", "speed-up", "same picks"], rows))

    docs = rng.normal(size=(args.docs, 300, 128)).astype(np.float32)
    docs /= np.linalg.norm(docs, axis=-1, keepdims=True)
    docs_j = jnp.asarray(docs)
    theirs = timeit(lambda: [pylate_pool(d, 2) for d in docs], repeat=3)
    labels = [pylate_pool(docs[b], 2) for b in range(args.docs)]
    rows = []
    for label, impl in (
        ("jaxrank pool_tokens, native NN-chain (host callback)", "native"),
        ("jaxrank pool_tokens, pure-JAX O(n^3) loop (jit, vmapped)", "jax"),
    ):
        ours = timeit(lambda impl=impl: pool_tokens(docs_j, pool_factor=2, impl=impl)[0], repeat=3)
        pooled, mask = pool_tokens(docs_j, pool_factor=2, impl=impl)
        agree = 0
        for b in range(args.docs):
            lab, body = labels[b], docs[b, 1:]
            want = np.stack([body[lab == c].mean(0) for c in np.unique(lab)])
            got = np.asarray(pooled[b])[np.asarray(mask[b])][:-1]  # drop the protected token
            if len(got) == len(want):  # same set of cluster means, to float32 rounding
                dist = ((got[:, None, :] - want[None, :, :]) ** 2).sum(-1)
                match = dist.argmin(1)
                agree += bool(dist.min(1).max() < 1e-10 and len(set(match)) == len(want))
        rows.append(
            [label, fmt_s(ours / args.docs), f"{theirs / ours:.2f}×", f"{agree}/{args.docs}"]
        )
    rows.append(["PyLate recipe on SciPy (linkage ward + fcluster)", fmt_s(theirs / args.docs),
                 "1.00×", "reference"])  # fmt: skip
    print(f"\n### Ward token pooling, {args.docs} documents × 300 tokens, D = 128, pool factor 2\n")
    print(table(["implementation", "time per document", "vs SciPy", "identical pooled docs"], rows))


if __name__ == "__main__":
    main()
