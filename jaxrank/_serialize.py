"""``jax.export`` serialization of jaxrank's public pytree types.

An exported function whose inputs or outputs contain a custom pytree node can be
saved (:meth:`jax.export.Exported.serialize`) only if the node type is registered
for serialization. Every public pytree type of jaxrank is registered here under the
name ``"jaxrank.<Type>"``, so that, e.g., an exported ``ivf_search`` taking an
:class:`~jaxrank.retrieve.IVFIndex` and returning :class:`~jaxrank.retrieve.SearchHits`
round-trips through bytes (tested in ``tests/test_export_all.py``).
"""

from __future__ import annotations

import json

import jax


def namedtuple(cls):
    """Class decorator: register a NamedTuple for export serialization."""
    return jax.export.register_namedtuple_serialization(
        cls, serialized_name=f"jaxrank.{cls.__name__}"
    )


def dataclass(cls):
    """Class decorator, above ``@jax.tree_util.register_dataclass``: the auxiliary data
    is the tuple of the static fields (str/int/bool/None), stored as JSON."""
    jax.export.register_pytree_node_serialization(
        cls,
        serialized_name=f"jaxrank.{cls.__name__}",
        serialize_auxdata=lambda aux: json.dumps(list(aux)).encode(),
        deserialize_auxdata=lambda data: tuple(json.loads(data)),
    )
    return cls
