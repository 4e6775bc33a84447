"""Significance tests for comparing systems query by query.

All tests take per-query scores of two systems on the same queries (``[Q]`` arrays,
aligned) and return two-sided p-values:

* :func:`paired_t_test` -- Student's paired t-test (equals ``scipy.stats.ttest_rel``).
* :func:`randomization_test` -- Fisher's randomization (permutation) test: the sign of
  each per-query difference is flipped at random; p = (1 + #{|mean| >= observed}) /
  (1 + trials).
* :func:`bootstrap_ci` -- percentile bootstrap confidence interval of the mean
  difference.
* :func:`holm` / :func:`bonferroni` -- family-wise corrections across comparisons.

Example:
    >>> import numpy as np
    >>> from jaxrank.eval import paired_t_test
    >>> a = np.array([0.5, 0.6, 0.7, 0.8])
    >>> b = np.array([0.4, 0.6, 0.5, 0.7])
    >>> t, p = paired_t_test(a, b)
    >>> round(t, 4), round(p, 4)
    (2.4495, 0.0917)
"""

from __future__ import annotations

import math

import numpy as np

__all__ = [
    "bonferroni",
    "bootstrap_ci",
    "holm",
    "paired_t_test",
    "randomization_test",
    "student_t_sf",
]


def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction of the incomplete beta function (modified Lentz)."""
    tiny = 1e-300
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = tiny if abs(d) < tiny else d
    d = 1.0 / d
    h = d
    for m in range(1, 10_000):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = tiny if abs(d) < tiny else d
        c = 1.0 + aa / c
        c = tiny if abs(c) < tiny else c
        d = 1.0 / d
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = tiny if abs(d) < tiny else d
        c = 1.0 + aa / c
        c = tiny if abs(c) < tiny else c
        d = 1.0 / d
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < 1e-16:
            break
    return h


def _betainc(a: float, b: float, x: float) -> float:
    """Regularized incomplete beta I_x(a, b)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    log_front = (
        math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    )
    front = math.exp(log_front)
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _betacf(a, b, x) / a
    return 1.0 - front * _betacf(b, a, 1.0 - x) / b


def student_t_sf(t: float, df: float) -> float:
    r"""Survival function P(T > t) of Student's t with ``df`` degrees of freedom.

    Computed as :math:`\tfrac12 I_{df/(df+t^2)}(df/2, 1/2)` for :math:`t \ge 0`
    (regularized incomplete beta), :math:`1 - P(T > -t)` otherwise.

    Example (closed forms: symmetry gives 1/2 at 0; with 1 degree of freedom T is
    Cauchy, P(T > 1) = 1/2 - arctan(1)/pi = 1/4):
      >>> [round(student_t_sf(t, df), 6) for t, df in ((0.0, 5.0), (1.0, 1.0), (-1.0, 1.0))]
      [0.5, 0.25, 0.75]
    """
    x = df / (df + t * t)
    tail = 0.5 * _betainc(df / 2.0, 0.5, x)
    return tail if t >= 0 else 1.0 - tail


def _diffs(a, b) -> np.ndarray:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"a and b must be 1-D arrays of equal length, got {a.shape} and {b.shape}")
    if len(a) < 2:
        raise ValueError(f"need at least 2 queries to compare, got {len(a)}")
    return a - b


def paired_t_test(a, b) -> tuple[float, float]:
    """Paired t-test of mean(a - b) = 0: returns ``(t, two-sided p)``.

    .. math:: t = \\bar d / (s_d / \\sqrt{n}),\\quad p = 2\\,P(T_{n-1} > |t|)

    Identical differences (zero variance) give ``t = nan`` and ``p = nan`` unless all
    differences are zero, as scipy does.
    """
    d = _diffs(a, b)
    n = len(d)
    mean = d.mean()
    sd = d.std(ddof=1)
    if sd == 0.0:
        return float("nan"), float("nan")
    t = mean / (sd / math.sqrt(n))
    p = 2.0 * student_t_sf(abs(t), n - 1)
    return float(t), float(min(p, 1.0))


def randomization_test(a, b, *, trials: int = 10_000, seed: int = 0) -> float:
    """Fisher's two-sided randomization test of the mean per-query difference."""
    if trials < 1:
        raise ValueError(f"trials must be >= 1, got {trials}")
    d = _diffs(a, b)
    observed = abs(d.mean())
    rng = np.random.default_rng(seed)
    hits = 0
    block = max(1, min(trials, (1 << 22) // max(len(d), 1)))
    done = 0
    while done < trials:
        m = min(block, trials - done)
        signs = rng.integers(0, 2, size=(m, len(d)), dtype=np.int8) * 2 - 1
        means = np.abs((signs * d).mean(axis=1))
        hits += int((means >= observed - 1e-12).sum())
        done += m
    return (hits + 1) / (trials + 1)


def bootstrap_ci(
    a, b, *, confidence: float = 0.95, trials: int = 10_000, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap interval of mean(a - b) over resampled queries."""
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    d = _diffs(a, b)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(d), size=(trials, len(d)))
    means = d[idx].mean(axis=1)
    alpha = (1.0 - confidence) / 2.0
    lo, hi = np.quantile(means, [alpha, 1.0 - alpha])
    return float(lo), float(hi)


def bonferroni(pvalues) -> np.ndarray:
    """Bonferroni-adjusted p-values: ``min(1, m * p)`` for ``m`` p-values.

    Example:
      >>> bonferroni([0.01, 0.04, 0.5]).tolist()  # 3 tests: 0.03, 0.12, min(1, 1.5)
      [0.03, 0.12, 1.0]
    """
    p = np.asarray(pvalues, np.float64)
    return np.minimum(1.0, p * len(p))


def holm(pvalues) -> np.ndarray:
    """Holm step-down adjusted p-values (uniformly more powerful than Bonferroni).

    The ``i``-th smallest p-value (from 0) becomes ``min(1, (m - i) p_(i))``, made
    non-decreasing along that order (running maximum).

    Example (hand calculation: sorted 0.01, 0.03, 0.04 -> 3 x 0.01, 2 x 0.03, max(0.06,
    1 x 0.04)):
      >>> [round(x, 6) for x in holm([0.01, 0.04, 0.03]).tolist()]
      [0.03, 0.06, 0.06]
    """
    p = np.asarray(pvalues, np.float64)
    m = len(p)
    order = np.argsort(p, kind="stable")
    adjusted = np.minimum(1.0, (m - np.arange(m)) * p[order])
    adjusted = np.maximum.accumulate(adjusted)
    out = np.empty(m)
    out[order] = adjusted
    return out
