"""Pareto fronts (maximization) and the 2-D hypervolume used to compare engines."""

from __future__ import annotations

import numpy as np


def pareto_mask(values: np.ndarray) -> np.ndarray:
    """Rows of `values` (n x k, larger is better) that no other row dominates. Of identical rows
    only the first is kept."""
    n = values.shape[0]
    keep = np.zeros(n, dtype=bool)
    if n == 0:
        return keep
    order = np.lexsort(tuple(-values[:, j] for j in reversed(range(values.shape[1]))))
    if values.shape[1] == 1:
        keep[order[0]] = True
        return keep
    if values.shape[1] == 2:
        # Sorted by the first objective (then the second), a point is on the front exactly when
        # its second objective beats every point before it.
        y = values[order, 1]
        prev_best = np.concatenate(([-np.inf], np.maximum.accumulate(y)[:-1]))
        keep[order[y > prev_best]] = True
        return keep
    front = np.empty((0, values.shape[1]))
    for i in order:
        v = values[i]
        if front.size and np.any(np.all(front >= v, axis=1)):
            continue
        front = np.vstack([front, v])
        keep[i] = True
    return keep


def hypervolume_2d(points: np.ndarray, ref: tuple[float, float] = (0.0, 0.0)) -> float:
    """Area dominated by `points` (n x 2, larger is better) above the reference point."""
    if len(points) == 0:
        return 0.0
    p = points[(points[:, 0] > ref[0]) & (points[:, 1] > ref[1])]
    if len(p) == 0:
        return 0.0
    p = p[np.argsort(-p[:, 0])]
    area, best_y = 0.0, ref[1]
    for x, y in p:
        if y > best_y:
            area += (x - ref[0]) * (y - best_y)
            best_y = y
    return float(area)
