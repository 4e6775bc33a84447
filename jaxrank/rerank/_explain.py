"""Why did MaxSim score this document? Token alignments and highlighted spans.

MaxSim sums, over query tokens, the best similarity to any document token:

.. math:: s(q, d) = \\sum_i \\max_j \\langle q_i, d_j \\rangle.

:func:`maxsim_alignment` returns, for each query token, the document token that
attains the max and its similarity (the term's contribution), jit-compiled and
batched; :func:`highlight` turns that into readable spans of the document's tokens on
the host.

Example:
    >>> import jax.numpy as jnp
    >>> from jaxrank.rerank import maxsim_alignment, highlight
    >>> q = jnp.array([[1.0, 0.0], [0.0, 1.0]])                  # 2 query tokens
    >>> d = jnp.array([[0.0, 1.0], [0.6, 0.8], [1.0, 0.0]])       # 3 doc tokens
    >>> a = maxsim_alignment(q, d)
    >>> a.doc_token.tolist(), a.similarity.tolist(), float(a.score)
    ([2, 0], [1.0, 1.0], 2.0)
    >>> highlight(["cats", "and", "dogs"], a, query_tokens=["dog", "cat"])
    '[cats]^cat and [dogs]^dog'
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxrank import _serialize

__all__ = ["Alignment", "highlight", "maxsim_alignment"]


@_serialize.namedtuple
class Alignment(NamedTuple):
    """MaxSim alignment of a query with a document.

    Attributes:
      doc_token: ``[..., Lq]`` int32 index of the best-matching document token
        (``-1`` for masked query tokens or empty documents).
      similarity: ``[..., Lq]`` its similarity (the query token's contribution; 0 when
        ``doc_token`` is -1).
      score: ``[...]`` the MaxSim score, the sum of ``similarity``.
    """

    doc_token: jax.Array
    similarity: jax.Array
    score: jax.Array


@jax.jit
def maxsim_alignment(q, doc, query_mask=None, doc_mask=None) -> Alignment:
    """Alignment of query tokens ``q [..., Lq, D]`` to document tokens ``doc [..., Ld, D]``.

    Masks are ``[..., Lq]`` / ``[..., Ld]`` booleans (True = real token). Accumulates in
    float32 for bf16 inputs.
    """
    q = jnp.asarray(q)
    doc = jnp.asarray(doc)
    if q.shape[-1] != doc.shape[-1]:
        raise ValueError(f"q and doc must share the last dim, got {q.shape} and {doc.shape}")
    sim = jnp.einsum("...id,...jd->...ij", q, doc, preferred_element_type=jnp.float32)
    if doc_mask is not None:
        sim = jnp.where(jnp.asarray(doc_mask, bool)[..., None, :], sim, -jnp.inf)
    best = jnp.argmax(sim, axis=-1).astype(jnp.int32)
    value = jnp.max(sim, axis=-1)
    ok = jnp.isfinite(value)
    if query_mask is not None:
        ok = ok & jnp.asarray(query_mask, bool)
    similarity = jnp.where(ok, value, 0.0)
    return Alignment(jnp.where(ok, best, -1), similarity, similarity.sum(-1))


def highlight(
    doc_tokens: list[str],
    alignment: Alignment,
    *,
    query_tokens: list[str] | None = None,
    top: int | None = None,
    open_mark: str = "[",
    close_mark: str = "]",
) -> str:
    """The document text with the tokens that query tokens matched in brackets.

    Args:
      doc_tokens: the document's tokens (same order as its vectors).
      alignment: one query-document :class:`Alignment` (no batch axes).
      query_tokens: optional query tokens; each highlight is then annotated
        ``^token`` with the query tokens it matched.
      top: highlight only the ``top`` largest contributions.
    """
    idx = np.asarray(alignment.doc_token)
    sim = np.asarray(alignment.similarity)
    if idx.ndim != 1:
        raise ValueError("highlight takes the alignment of one query and one document")
    order = np.argsort(-sim, kind="stable")
    order = [i for i in order if idx[i] >= 0][: top if top is not None else len(order)]
    matched: dict[int, list[int]] = {}
    for i in order:
        if idx[i] >= len(doc_tokens):
            raise ValueError(f"alignment points at token {idx[i]} but the document has "
                             f"{len(doc_tokens)} tokens")  # fmt: skip
        matched.setdefault(int(idx[i]), []).append(int(i))
    out = []
    for j, tok in enumerate(doc_tokens):
        if j not in matched:
            out.append(tok)
            continue
        mark = f"{open_mark}{tok}{close_mark}"
        if query_tokens is not None:
            mark += "^" + ",".join(query_tokens[i] for i in sorted(matched[j]))
        out.append(mark)
    return " ".join(out)
