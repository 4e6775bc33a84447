from jaxrank.soft._isotonic import isotonic_kl, isotonic_l2
from jaxrank.soft._permutahedron import (
    hard_rank,
    hard_sort,
    permutahedron_projection,
    soft_rank,
    soft_sort,
)

__all__ = [
    "hard_rank",
    "hard_sort",
    "isotonic_kl",
    "isotonic_l2",
    "permutahedron_projection",
    "soft_rank",
    "soft_sort",
]
