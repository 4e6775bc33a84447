"""TPU readiness: every public jitted array operation exports for ("cpu", "cuda", "tpu").

The test walks ``__all__`` of every subpackage. Each public function must be either in
``CASES`` (a builder of ``(function, example arguments)`` at small shapes, exported
with :func:`jax.export.export` for the three platforms) or in ``HOST`` (with the reason
it is not a device operation). A new public function that is in neither fails
``test_every_public_function_is_classified``, so nothing joins the library with a
host callback or a CPU-only path unnoticed: ``jax.export`` refuses host callbacks and
unknown custom calls, and lowering for cuda/tpu fails on a CPU-only primitive.

Graphs that may contain the native CPU kernels are exported with
``jaxrank._native.export_disabled_checks()`` (their custom calls are stable only for
the same jaxrank build); the cuda/tpu branches of ``platform_dependent`` are pure JAX.
Only lowering is checked here (running the exported CPU module is left to the
subpackages' own tests, to keep this test fast).
"""

from __future__ import annotations

import importlib
import inspect

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxrank import _native

PLATFORMS = ("cpu", "cuda", "tpu")
SUBPACKAGES = (
    "io",
    "eval",
    "metrics",
    "losses",
    "nn",
    "soft",
    "fusion",
    "retrieve",
    "rerank",
    "quant",
    "topk",
    "config",
    "plot",
)

# ----------------------------------------------------------------- example arguments
R = np.random.default_rng(0)
S = jnp.asarray(R.normal(size=(2, 8)), jnp.float32)  # scores [Q, n]
Y = jnp.asarray(R.integers(0, 3, size=(2, 8)), jnp.float32)  # graded labels
W = jnp.asarray(np.arange(8) < np.array([[6], [8]]))  # where
T = jnp.asarray(R.normal(size=(2, 8)), jnp.float32)  # teacher scores
X1 = S[0]  # [n]
EMB = jnp.asarray(R.normal(size=(2, 8, 4)), jnp.float32)
QV = jnp.asarray(R.normal(size=(3, 8)), jnp.float32)  # single-vector queries [Q, D]
CORPUS = jnp.asarray(R.normal(size=(16, 8)), jnp.float32)  # [N, D]
QTOK = jnp.asarray(R.normal(size=(2, 3, 8)), jnp.float32)  # [B, Lq, D]
DTOK = jnp.asarray(R.normal(size=(5, 4, 8)), jnp.float32)  # [N, Ld, D]
KEY = jax.random.key(0)


def _metric(name, **kw):
    def build():
        fn = getattr(importlib.import_module("jaxrank.metrics"), name)
        return (lambda s, y, w: fn(s, y, w, **kw)), (S, Y, W)

    return build


def _loss(name, args=(S, Y, W), **kw):
    def build():
        fn = getattr(importlib.import_module("jaxrank.losses"), name)
        return (lambda *a: fn(*a, **kw)), args

    return build


def _soft(name, *extra, args=(S,), **kw):
    def build():
        fn = getattr(importlib.import_module("jaxrank.soft"), name)
        return (lambda *a: fn(*a, *extra, **kw)), args

    return build


def _fuse_arrays():
    from jaxrank.fusion import fuse_arrays

    ids = jnp.asarray(R.integers(0, 6, size=(2, 2, 4)), jnp.int32)  # [Q, M, K]
    scores = jnp.asarray(R.normal(size=(2, 2, 4)), jnp.float32)
    where = jnp.ones((2, 2, 4), bool)
    return (lambda i, s, w: fuse_arrays(i, s, w, method="rrf", k=4)), (ids, scores, where)


def _pq(fn):
    from jaxrank import retrieve

    pq = retrieve.train_pq(CORPUS, 2, key=KEY, n_bits=2, iters=2)
    codes = retrieve.pq_encode(pq, CORPUS)
    if fn == "pq_search":
        return (lambda q, c: retrieve.pq_search(q, pq, c, 3)), (QV, codes)
    if fn == "pq_encode":
        return (lambda x: retrieve.pq_encode(pq, x)), (CORPUS,)
    return (lambda c: retrieve.pq_decode(pq, c)), (codes,)


def _ivf_search():
    from jaxrank.retrieve import build_ivf, ivf_search

    index = build_ivf(CORPUS, 2, key=KEY, iters=2)
    return (lambda q: ivf_search(index, q, 3, nprobe=1)), (QV,)


def _one_device_mesh():
    return jax.sharding.Mesh(np.array(jax.devices()[:1]), ("data",))


def _sharded_search():
    from jaxrank.retrieve import sharded_search

    mesh = _one_device_mesh()
    return (lambda q, c: sharded_search(q, c, 3, mesh=mesh, axis="data")), (QV, CORPUS)


def _merge_across():
    from jaxrank.topk import merge_across

    mesh = _one_device_mesh()
    P = jax.sharding.PartitionSpec

    def f(v, i, ok):
        local = lambda v, i, ok: merge_across(v, i, ok, k=3, axis_name="data")  # noqa: E731
        return jax.shard_map(local, mesh=mesh, in_specs=P(), out_specs=P(), check_vma=False)(
            v, i, ok
        )

    return f, (S, jnp.zeros((2, 8), jnp.int32), W)


def _scan_top_k():
    from jaxrank.topk import scan_top_k

    chunks = {"x": CORPUS.reshape(4, 4, 8), "offset": jnp.arange(4, dtype=jnp.int32) * 4}

    def f(q, chunks):
        score = lambda c: (q @ c["x"].T, jnp.ones((q.shape[0], 4), bool))  # noqa: E731
        return scan_top_k(score, chunks, 3, (q.shape[0],))

    return f, (QV, chunks)


def _evaluate_arrays():
    from jaxrank.eval import build_arrays, evaluate_arrays
    from jaxrank.io import Qrels, Run

    qrels = Qrels.from_dict({"q1": {"a": 1, "b": 2}, "q2": {"c": 1}})
    run = Run.from_dict({"q1": {"a": 0.3, "b": 0.2, "x": 0.9}, "q2": {"c": 0.1, "y": 0.5}})
    arrays = build_arrays(qrels, run)
    return (lambda a: evaluate_arrays(a)), (arrays,)


def _searcher_scoring():
    """The jitted core of ``Searcher.search`` (BM25 over partitioned postings).

    Its arguments are captured from a real search on a 3-document index.
    """
    from jaxrank.retrieve import _search, build_index, searcher

    captured = {}
    original = _search._search_jit

    def record(*args, **kwargs):
        captured["args"], captured["kwargs"] = args, kwargs
        return original(*args, **kwargs)

    _search._search_jit = record
    try:
        idx = build_index(["cats chase mice", "dogs chase cats", "birds sing"], stemmer=None)
        # impl="jax": the jitted scoring graph (what GPU/TPU run); the native CPU path is
        # a host-side kernel call outside any graph
        searcher(idx, "lucene", impl="jax").search(["cats chase"], k=2)
    finally:
        _search._search_jit = original
    kw = captured["kwargs"]
    return (lambda *a: original(*a, **kw)), captured["args"]


def _train_step():
    import optax
    from flax import nnx

    from jaxrank.losses import softmax_loss
    from jaxrank.nn import MLPScorer, train_step

    model = MLPScorer(4, hidden=(8,), rngs=nnx.Rngs(0))
    opt = nnx.Optimizer(model, optax.adam(1e-3), wrt=nnx.Param)
    graphdef, state = nnx.split((model, opt))
    x = jnp.ones((2, 8, 4), jnp.float32)

    def f(state, x, y, w):
        m, o = nnx.merge(graphdef, state)
        loss = train_step(m, o, x, y, w, loss_fn=lambda s, y, *, where: softmax_loss(s, y, where))
        return loss, nnx.state((m, o))

    return f, (state, x, Y, W)


def _t12n(name):
    """A metric turned into a loss by ``jaxrank.losses.<name>`` (ndcg; gumbel wraps ApproxNDCG)."""
    losses = importlib.import_module("jaxrank.losses")
    ndcg = importlib.import_module("jaxrank.metrics").ndcg
    if name == "gumbel_t12n":
        fn = losses.gumbel_t12n(losses.approx_ndcg_loss, samples=2)
        return lambda s, y, w: fn(s, y, w, key=jax.random.PRNGKey(0))
    fn = getattr(losses, name)(ndcg)
    return lambda s, y, w: fn(s, y, w)


def _q(name, *args, **kw):
    def build():
        fn = getattr(importlib.import_module("jaxrank.quant"), name)
        return (lambda *a: fn(*a, **kw)), args

    return build


_CODES = jnp.asarray(R.integers(-127, 128, size=(5, 16)), jnp.int8)
_TOKCODES = jnp.asarray(R.integers(-127, 128, size=(5, 4, 16)), jnp.int8)
_BITS = jnp.asarray(R.integers(0, 256, size=(5, 2)), jnp.uint8)

CASES = {
    # metrics: (scores, labels, where) -> [Q]
    **{
        f"metrics.{n}": _metric(n)
        for n in (
            "average_precision",
            "bpref",
            "dcg",
            "eleven_point_precision",
            "err",
            "f_measure",
            "interpolated_precision",
            "ndcg",
            "ordered_pair_accuracy",
            "precision",
            "r_precision",
            "rbp",
            "rbp_residual",
            "recall",
            "reciprocal_rank",
            "success",
        )
    },
    "metrics.ndcg@3": _metric("ndcg", k=3),
    "metrics.has_relevant": lambda: (
        lambda y, w: importlib.import_module("jaxrank.metrics").has_relevant(y, w),
        (Y, W),
    ),
    "metrics.mean": lambda: (importlib.import_module("jaxrank.metrics").mean, (S[:, 0], W[:, 0])),
    "metrics.ranks": lambda: (importlib.import_module("jaxrank.metrics").ranks, (S, W)),
    # losses
    **{
        f"losses.{n}": _loss(n)
        for n in (
            "approx_mrr_loss",
            "approx_ndcg_loss",
            "dcg2_lambdaweight",
            "dcg_lambdaweight",
            "labeldiff_lambdaweight",
            "listmle_loss",
            "mse_loss",
            "neural_ndcg_loss",
            "plackett_luce_loss",
            "soft_rank_ndcg_loss",
            "soft_spearman_loss",
            "ndcg_lambdaweight",
            "pairwise_hinge_loss",
            "pairwise_logistic_loss",
            "pairwise_mse_loss",
            "pairwise_qr_loss",
            "pairwise_soft_zero_one_loss",
            "poly1_softmax_loss",
            "precision_lambdaweight",
            "sigmoid_cross_entropy_loss",
            "softmax_loss",
            "unique_softmax_loss",
        )
    },
    "losses.approx_ranks": _loss("approx_ranks", args=(S, W)),
    "losses.pairwise_loss": _loss("pairwise_loss", pair_loss_fn=lambda ds, dy: jax.nn.relu(-ds)),
    "losses.kl_distillation_loss": _loss("kl_distillation_loss", args=(S, T, W)),
    "losses.margin_mse_loss": _loss("margin_mse_loss", args=(S, T, W)),
    "losses.infonce_loss": _loss("infonce_loss", args=(QV, QV)),
    "losses.approx_t12n": lambda: (_t12n("approx_t12n"), (S, Y, W)),
    "losses.bound_t12n": lambda: (_t12n("bound_t12n"), (S, Y, W)),
    "losses.gumbel_t12n": lambda: (_t12n("gumbel_t12n"), (S, Y, W)),
    # soft
    **{
        f"soft.{n}": _soft(n)
        for n in (
            "hard_permutation",
            "hard_rank",
            "hard_sort",
            "isotonic_l2",
            "neuralsort",
            "sinkhorn_rank",
            "sinkhorn_sort",
            "soft_rank",
            "soft_sort",
            "softsort",
            "sorting_network_permutation",
            "sorting_network_sort",
        )
    },
    "soft.soft_rank[kl]": _soft("soft_rank", regularization="kl"),
    "soft.hard_topk": _soft("hard_topk", 3),
    "soft.soft_topk": _soft("soft_topk", 3),
    "soft.isotonic_kl": _soft("isotonic_kl", args=(S, T)),
    "soft.permutahedron_projection": _soft("permutahedron_projection", args=(S, -jnp.sort(T))),
    "soft.soft_spearman": _soft("soft_spearman", args=(S, Y)),
    "soft.tie_averaged_rank": _soft("tie_averaged_rank", args=(Y, W)),
    # fusion
    "fusion.fuse_arrays": _fuse_arrays,
    "fusion.normalize": lambda: (
        lambda s, w: importlib.import_module("jaxrank.fusion").normalize(s, w, method="zmuv"),
        (S, W),
    ),
    "fusion.approx_ndcg": lambda: (
        importlib.import_module("jaxrank.fusion").approx_ndcg,
        (S, Y, W, jnp.ones((2,), jnp.float32)),
    ),
    # retrieve
    "retrieve.exact_search": lambda: (
        lambda q, c: importlib.import_module("jaxrank.retrieve").exact_search(q, c, 3),
        (QV, CORPUS),
    ),
    "retrieve.two_stage_search": lambda: (
        lambda q, c, s1: importlib.import_module("jaxrank.retrieve").two_stage_search(
            q, c, s1, 3, candidates=6
        ),
        (QV, CORPUS, CORPUS),
    ),
    "retrieve.rescore": lambda: (
        lambda q, c, cand: importlib.import_module("jaxrank.retrieve").rescore(q, c, cand, 3),
        (QV, CORPUS, jnp.asarray(R.integers(0, 16, size=(3, 6)), jnp.int32)),
    ),
    "retrieve.kmeans": lambda: (
        lambda x, key: importlib.import_module("jaxrank.retrieve").kmeans(x, 3, key=key, iters=2),
        (CORPUS, KEY),
    ),
    "retrieve.kmeans_plusplus": lambda: (
        lambda x, key: importlib.import_module("jaxrank.retrieve").kmeans_plusplus(x, 3, key),
        (CORPUS, KEY),
    ),
    "retrieve.ivf_search": _ivf_search,
    "retrieve.pq_search": lambda: _pq("pq_search"),
    "retrieve.pq_encode": lambda: _pq("pq_encode"),
    "retrieve.pq_decode": lambda: _pq("pq_decode"),
    "retrieve.sharded_search": _sharded_search,
    "retrieve.Searcher.search (jitted scoring)": _searcher_scoring,
    # rerank
    "rerank.maxsim": lambda: (importlib.import_module("jaxrank.rerank").maxsim, (QTOK, DTOK)),
    "rerank.maxsim_alignment": lambda: (
        importlib.import_module("jaxrank.rerank").maxsim_alignment,
        (QTOK[0], DTOK[0]),
    ),
    "rerank.mmr": lambda: (
        lambda r, e: importlib.import_module("jaxrank.rerank").mmr(r, e, k=3),
        (S, EMB),
    ),
    "rerank.dpp": lambda: (
        lambda r, e: importlib.import_module("jaxrank.rerank").dpp(r, e, k=3),
        (S, EMB),
    ),
    "rerank.pool_tokens": lambda: (
        lambda d: importlib.import_module("jaxrank.rerank").pool_tokens(d, pool_factor=2),
        (DTOK,),
    ),
    "rerank.ward_clusters": lambda: (
        importlib.import_module("jaxrank.rerank").ward_clusters,
        (DTOK[0], jnp.ones((4,), bool), jnp.int32(2)),
    ),
    # quant
    "quant.quantize_int8": _q("quantize_int8", CORPUS),
    "quant.dequantize_int8": _q("dequantize_int8", _CODES, jnp.ones((5,), jnp.float32)),
    "quant.int8_dot": _q("int8_dot", _CODES[:2], _CODES),
    "quant.int8_scores": _q("int8_scores", QV[:, :8].repeat(2, 1), _CODES, jnp.ones((5,))),
    "quant.maxsim_int8": _q(
        "maxsim_int8", QTOK.repeat(2, -1), _TOKCODES, jnp.ones((5, 4), jnp.float32)
    ),
    "quant.binary_quantize": _q("binary_quantize", CORPUS),
    "quant.hamming_distance": _q("hamming_distance", _BITS[:2], _BITS),
    # topk
    "topk.top_k": lambda: (
        lambda s, w: importlib.import_module("jaxrank.topk").top_k(s, 3, where=w),
        (S, W),
    ),
    "topk.merge": lambda: (
        lambda *a: importlib.import_module("jaxrank.topk").merge(*a, k=3),
        (S, jnp.zeros((2, 8), jnp.int32), W, T, jnp.ones((2, 8), jnp.int32), W),
    ),
    "topk.merge_across": _merge_across,
    "topk.scan_top_k": _scan_top_k,
    # eval
    "eval.evaluate_arrays": _evaluate_arrays,
    # nn
    "nn.maxsim": lambda: (
        importlib.import_module("jaxrank.nn").maxsim,
        (QTOK[0], DTOK),
    ),
    "nn.pool_tokens": lambda: (importlib.import_module("jaxrank.nn").pool_tokens, (EMB,)),
    "nn.signed_log1p": lambda: (importlib.import_module("jaxrank.nn").signed_log1p, (S,)),
    "nn.train_step": _train_step,
}

HOST = {
    # io: files and strings
    **{
        f"io.{n}": "file/string parsing on the host (numpy)"
        for n in (
            "read_beir",
            "read_beir_jsonl",
            "read_beir_qrels",
            "read_qrels",
            "read_run",
            "read_svmlight",
            "write_run",
        )
    },
    **{
        f"io.{n}": "dict/object conversion on the host"
        for n in ("from_pytrec_eval", "from_ranx", "to_pytrec_eval", "to_ranx")
    },
    "io.load_ir_datasets": "reads an ir_datasets iterator on the host",
    # eval: trec_eval-exact evaluation and statistics on the host
    "eval.evaluate": "trec_eval-exact evaluation of id-keyed runs (float64 numpy)",
    "eval.compare": "host statistics over evaluate()'s per-query values",
    "eval.build_arrays": "host: builds the EvalArrays that evaluate_arrays consumes",
    "eval.parse_measures": "string parsing",
    **{
        f"eval.{n}": "host significance statistics (numpy float64)"
        for n in (
            "bonferroni",
            "bootstrap_ci",
            "holm",
            "paired_t_test",
            "randomization_test",
            "student_t_sf",
        )
    },
    # fusion: id-keyed runs in, runs out (the arrays core is fuse_arrays)
    **{
        f"fusion.{n}": "host wrapper over fuse_arrays for id-keyed runs"
        for n in ("fuse", "fuse_input", "runs_to_arrays", "to_dict", "to_run", "qrels_to_dict")
    },
    "fusion.canonical_method": "name lookup",
    "fusion.canonical_norm": "name lookup",
    "fusion.train": "host estimation of probabilistic fusion parameters from judgments",
    "fusion.grid_search": "host search loop over fuse_arrays + trec_eval",
    "fusion.learn_weights": "host optax loop over approx_ndcg (exported above)",
    # retrieve: index building, strings, search drivers
    **{
        f"retrieve.{n}": "host index construction / persistence (numpy)"
        for n in (
            "build_index",
            "load_index",
            "save_index",
            "bm25_weights",
            "method_weights",
            "ql_weights",
            "tfidf_weights",
        )
    },
    "retrieve.searcher": "host: prepares a Searcher; its jitted scoring is exported above",
    "retrieve.rm3": "host PRF driver around Searcher (strings, vocabularies)",
    "retrieve.robertson_expansion": "host PRF driver around Searcher",
    "retrieve.build_ivf": "host driver building an IVFIndex with kmeans (exported above)",
    "retrieve.train_pq": "host driver (argument and finiteness checks) around a jitted "
    "per-subspace Lloyd k-means (kmeans is exported above)",
    # rerank
    "rerank.highlight": "string formatting of an Alignment",
    # nn: host loops and serialization (the heads export in tests/test_nn.py)
    "nn.fit": "host training loop around train_step (exported above)",
    "nn.predict": "host batching loop around the model call",
    "nn.evaluate": "host loop over predict",
    "nn.export_model": "is itself jax.export (tested for cpu/cuda/tpu in tests/test_nn.py)",
    "nn.load_exported": "deserialization",
    "nn.save_checkpoint": "file I/O",
    "nn.load_checkpoint": "file I/O",
    # config, plot
    "config.get_native_mode": "library switch",
    "config.set_native_mode": "library switch",
    "config.native_mode": "library switch (context manager)",
    **{
        f"plot.{n}": "matplotlib figure on the host"
        for n in ("per_query_differences", "precision_recall", "soft_rank_vs_temperature")
    },
}


def _public_functions() -> list[str]:
    names = []
    for sub in SUBPACKAGES:
        mod = importlib.import_module(f"jaxrank.{sub}")
        public = getattr(mod, "__all__", None)
        if public is None:
            public = [
                n
                for n, o in vars(mod).items()
                if not n.startswith("_") and inspect.isfunction(o) and o.__module__ == mod.__name__
            ]
        for n in public:
            obj = getattr(mod, n)
            if inspect.isclass(obj) or not callable(obj):
                continue  # types, containers, constants (classes: see the module docstring)
            names.append(f"{sub}.{n}")
    return names


def test_every_public_function_is_classified():
    covered = {name.split("[")[0].split("@")[0] for name in CASES}
    public = _public_functions()
    missing = [n for n in public if n not in covered and n not in HOST]
    assert not missing, f"public functions neither exported in CASES nor listed in HOST: {missing}"
    stale = [n for n in (covered | set(HOST)) if "(" not in n and n not in public]
    assert not stale, f"CASES/HOST entries that are not public functions: {stale}"
    assert all(reason.strip() for reason in HOST.values())


@pytest.mark.parametrize("name", sorted(CASES))
def test_exports_for_cpu_cuda_tpu(name):
    fn, args = CASES[name]()
    exp = jax.export.export(
        jax.jit(fn), platforms=PLATFORMS, disabled_checks=_native.export_disabled_checks()
    )(*args)
    assert exp.platforms == PLATFORMS
    text = exp.mlir_module()
    assert "callback" not in text, f"{name} lowers a host callback"


def _ivf_index_argument():
    from jaxrank.retrieve import build_ivf, ivf_search

    # 16 rows in 2 lists of capacity 6: some list is split (static max_pieces > 1)
    index = build_ivf(CORPUS, 2, key=KEY, iters=2, capacity=6, overflow="split")
    return (lambda ix, q: ivf_search(ix, q, 3, nprobe=1)), (index, QV)


def _pq_codebook_argument():
    from jaxrank import retrieve

    pq = retrieve.train_pq(CORPUS, 2, key=KEY, n_bits=2, iters=2)
    codes = retrieve.pq_encode(pq, CORPUS)
    return (lambda p, c, q: retrieve.pq_search(q, p, c, 3)), (pq, codes, QV)


# every public pytree type in an exported function's inputs or outputs
SERIALIZED = {
    "EvalArrays in": _evaluate_arrays,
    "Alignment out": CASES["rerank.maxsim_alignment"],
    "IVFIndex in, SearchHits out": _ivf_index_argument,
    "PQCodebook in": _pq_codebook_argument,
}


@pytest.mark.parametrize("name", sorted(SERIALIZED))
def test_exported_pytrees_serialize(name):
    """Exported.serialize() needs the pytree types registered (jaxrank._serialize);
    the deserialized function returns what the jitted one does."""
    fn, args = SERIALIZED[name]()
    exp = jax.export.export(
        jax.jit(fn), platforms=PLATFORMS, disabled_checks=_native.export_disabled_checks()
    )(*args)
    back = jax.export.deserialize(exp.serialize())
    want, got = jax.jit(fn)(*args), back.call(*args)
    assert type(got) is type(want)
    jax.tree.map(np.testing.assert_array_equal, got, want)
