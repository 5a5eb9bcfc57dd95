"""Embedding drift: a kernel two-sample test (MMD²) with a permutation p-value.

Why MMD and not a domain classifier: with a few hundred 384-d embeddings a classifier needs
cross-validation to give an honest AUC and its p-value needs a bound or permutations of the
whole fit; MMD² with an RBF kernel is one kernel matrix, its permutation null is exact under
"no drift" (the reference and current rows are exchangeable) whatever the embedding geometry,
and all permutations are one matrix product. The bandwidth is the median pairwise squared
distance of the pooled sample (the median heuristic), computed without the labels so the
permutation test stays valid.

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> x = rng.normal(size=(60, 8))
>>> mmd_test(x, rng.normal(size=(30, 8)), seed=1).p_value > 0.05
True
>>> mmd_test(x, rng.normal(loc=1.0, size=(30, 8)), seed=1).p_value
0.004975124378109453
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, slots=True)
class TwoSampleResult:
    """One test of reference vs current: biased MMD² estimate, permutation p-value, sizes."""

    statistic: float
    p_value: float
    n_reference: int
    n_current: int
    bandwidth: float


def rbf_kernel(z: np.ndarray) -> tuple[np.ndarray, float]:
    """RBF kernel matrix (float32) of the rows of ``z`` with the median-heuristic bandwidth.

    The bandwidth is the median squared distance over all ordered pairs including the ``len(z)``
    zero self-distances (a negligible downward bias that saves extracting the triangle).
    """
    z = np.asarray(z, dtype=np.float32)
    sq = np.einsum("ij,ij->i", z, z)
    d2 = z @ z.T
    d2 *= -2.0
    d2 += sq[:, None]
    d2 += sq[None, :]
    np.maximum(d2, 0.0, out=d2)
    flat = d2.ravel().copy()
    mid = flat.size // 2
    bandwidth = float(np.partition(flat, mid)[mid])
    if not bandwidth > 0.0:
        bandwidth = 1.0  # all rows identical: any bandwidth gives K = 1
    d2 *= np.float32(-1.0 / bandwidth)
    return np.exp(d2, out=d2), bandwidth


def mmd_test(
    reference: np.ndarray, current: np.ndarray, n_permutations: int = 200, seed: int | np.random.SeedSequence = 0
) -> TwoSampleResult:
    """MMD² of ``reference`` vs ``current`` and its permutation p-value (``(1 + #≥) / (1 + P)``).

    All permutations are evaluated at once: each is a ±weight vector ``a`` (``1/m`` on the rows
    labelled reference, ``-1/n`` on the others) and MMD² = aᵀKa, so the null distribution is
    ``((A @ K) * A).sum(1)`` for the (P, m + n) weight matrix ``A``.
    """
    m, n = len(reference), len(current)
    if m < 2 or n < 2:
        raise ValueError(f"need at least 2 rows per sample, got {m} reference and {n} current")
    kernel, bandwidth = rbf_kernel(np.vstack([reference, current]))
    weights = np.concatenate([np.full(m, 1.0 / m), np.full(n, -1.0 / n)]).astype(np.float32)
    rng = np.random.default_rng(seed)
    perms = rng.permuted(np.tile(np.arange(m + n), (n_permutations, 1)), axis=1)
    a = np.empty((n_permutations, m + n), dtype=np.float32)
    np.put_along_axis(a, perms, weights[None, :], axis=1)
    null = np.einsum("pi,pi->p", a @ kernel, a, dtype=np.float64)
    observed = float(np.einsum("i,i->", weights @ kernel, weights, dtype=np.float64))
    # a relative tolerance so that float32 rounding of a permutation that reproduces the
    # observed split does not decide the count
    exceed = int(np.sum(null >= observed - 1e-6 * abs(observed)))
    return TwoSampleResult(
        statistic=max(observed, 0.0),
        p_value=(1 + exceed) / (1 + n_permutations),
        n_reference=m,
        n_current=n,
        bandwidth=bandwidth,
    )
