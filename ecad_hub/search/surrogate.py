"""Surrogate screening (``SearchConfig.screening``): :class:`RidgeSurrogate`, a linear model of
quality over the mask bits, and :func:`screen`, which picks the candidates worth evaluating by the
hypervolume their predicted point adds to the front."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from .genome import Genome
from .pareto import _hv_gain, _staircase


class RidgeSurrogate:
    """Linear model of quality over the free mask bits (ridge regression, closed form).

    Fit on every schedule evaluated so far; used to rank surplus offspring before any of them
    is evaluated. Cheap (a ``bits x bits`` solve) and deterministic.
    """

    def __init__(self, genome: Genome, alpha: float = 1.0):
        self.genome = genome
        self.alpha = float(alpha)
        self.coef = None
        self.intercept = 0.0
        self._mean = None

    def _features(self, X: np.ndarray) -> np.ndarray:
        X = np.asarray(X, dtype=bool).reshape(-1, self.genome.n_var)
        return (~X[:, self.genome.free]).astype(np.float64)  # 1 = reused

    def fit(self, X: np.ndarray, y: Sequence[float]) -> "RidgeSurrogate":
        A = self._features(X)
        y = np.asarray(y, dtype=np.float64)
        mean = A.mean(axis=0)
        self.intercept = float(y.mean())
        A = A - mean
        n_feat = A.shape[1]
        self.coef = np.linalg.solve(A.T @ A + self.alpha * np.eye(n_feat), A.T @ (y - self.intercept))
        self._mean = mean
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        A = self._features(X) - self._mean
        return self.intercept + A @ self.coef


def screen(cost: np.ndarray, predicted: np.ndarray, front: list[tuple[float, float]], n: int,
           rng: np.random.Generator, *, ref_quality: float, explore: float = 0.25) -> list[int]:
    """Pick ``n`` of the candidates: ``explore`` of them at random, the rest greedily by the
    hypervolume their predicted point adds to the front (predicted points join the front as
    they are picked, so the picks spread along it). Returns indices, in pick order."""
    m = len(cost)
    if m <= n:
        return list(range(m))
    n_random = int(round(explore * n))
    chosen: list[int] = []
    remaining = list(range(m))
    work = list(front)
    ref_q = min([ref_quality] + [float(q) for q in predicted])
    for _ in range(n - n_random):
        stairs = _staircase(work)
        gains = np.array([_hv_gain(stairs, (float(cost[i]), float(predicted[i])), 1.0, ref_q) for i in remaining])
        if gains.max() <= 0:
            # nothing is predicted to improve the front: closest to it (smallest predicted shortfall)
            def shortfall(i):
                better = [q for c, q in work if c <= cost[i]]
                return (max(better) if better else ref_q) - predicted[i]

            j = int(np.argmin([shortfall(i) for i in remaining]))
        else:
            j = int(np.argmax(gains))
        i = remaining.pop(j)
        chosen.append(i)
        work.append((float(cost[i]), float(predicted[i])))
    if n_random:
        picks = rng.choice(len(remaining), size=min(n_random, len(remaining)), replace=False)
        chosen += [remaining[j] for j in sorted(picks)]
    return chosen
