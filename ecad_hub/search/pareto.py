"""2-D Pareto utilities (minimise cost, maximise quality): the nondominated set, the hypervolume,
and the staircase / hypervolume gain of one point that surrogate screening ranks candidates by."""

from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np


def nondominated(cost: Sequence[float], quality: Sequence[float]) -> np.ndarray:
    """Bool mask of the points no other point dominates (lower cost, higher quality); exact ties
    are kept once (the first)."""
    c = np.asarray(cost, dtype=float)
    q = np.asarray(quality, dtype=float)
    n = len(c)
    keep = np.zeros(n, dtype=bool)
    order = np.lexsort((-q, c))  # by cost, then best quality first
    best_q = -np.inf
    for i in order:
        if q[i] > best_q:
            keep[i] = True
            best_q = q[i]
    return keep


def hypervolume(cost: Iterable[float], quality: Iterable[float], ref_cost: float = 1.0,
                ref_quality: float = 0.0) -> float:
    """2-D hypervolume dominated by the points (minimise cost, maximise quality) and bounded by
    the reference point ``(ref_cost, ref_quality)``; points beyond it contribute nothing."""
    pts = [(float(c), float(q)) for c, q in zip(cost, quality) if c < ref_cost and q > ref_quality]
    if not pts:
        return 0.0
    pts.sort()
    hv = 0.0
    best = ref_quality
    for i, (c, q) in enumerate(pts):
        best = max(best, q)
        nxt = pts[i + 1][0] if i + 1 < len(pts) else ref_cost
        hv += (nxt - c) * (best - ref_quality)
    return hv


def _staircase(front: list[tuple[float, float]]) -> tuple[np.ndarray, np.ndarray]:
    """Breakpoints of f(x) = best quality among front points with cost <= x: (costs, running max)."""
    if not front:
        return np.zeros(0), np.zeros(0)
    arr = np.array(sorted(front), dtype=float)
    return arr[:, 0], np.maximum.accumulate(arr[:, 1])


def _hv_gain(stairs: tuple[np.ndarray, np.ndarray], point: tuple[float, float], ref_cost: float, ref_q: float) -> float:
    """Hypervolume that ``point`` adds to a front given as its staircase (2-D, exact)."""
    c, q = point
    if c >= ref_cost or q <= ref_q:
        return 0.0
    xs, fs = stairs
    # breakpoints in [c, ref_cost): the front's height just before c, then at each later cost
    i = int(np.searchsorted(xs, c, side="right"))
    height = fs[i - 1] if i > 0 else -np.inf
    edges = np.concatenate([[c], xs[i:][xs[i:] < ref_cost], [ref_cost]])
    heights = np.concatenate([[height], fs[i:][xs[i:] < ref_cost]])
    floor = np.maximum(heights, ref_q)
    return float(np.sum(np.diff(edges) * np.maximum(0.0, q - floor)))
