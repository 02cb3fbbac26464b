r"""The sky geometry of UPMASK (Krone-Martins & Moitinho 2014): the tangent plane,
the window that random comparison fields are drawn in, and the minimum-spanning-tree
length of each group of stars (the statistic of the sky-concentration test).

Used by :class:`ocmembers.method.upmask.UPMASK` (re-exported there).

References
----------
Krone-Martins, A., Moitinho, A. 2014, A&A 561, A57.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import minimum_spanning_tree

from ocmembers.method.member_table import MethodError

__all__ = ["tangent_plane", "SkyWindow", "sky_window", "mst_lengths"]


def tangent_plane(ra_deg: np.ndarray, dec_deg: np.ndarray, ra0: float, dec0: float) -> np.ndarray:
    """Gnomonic projection (degrees) about (ra0, dec0): (n, 2) array of (xi, eta)."""
    ra, dec = np.radians(ra_deg), np.radians(dec_deg)
    a0, d0 = np.radians(ra0), np.radians(dec0)
    cosc = np.sin(d0) * np.sin(dec) + np.cos(d0) * np.cos(dec) * np.cos(ra - a0)
    xi = np.cos(dec) * np.sin(ra - a0) / cosc
    eta = (np.cos(d0) * np.sin(dec) - np.sin(d0) * np.cos(dec) * np.cos(ra - a0)) / cosc
    return np.degrees(np.stack([xi, eta], axis=1))


@dataclass(frozen=True)
class SkyWindow:
    """The sky window (in tangent-plane degrees) in which random fields are drawn."""

    kind: str                    # "disc" or "box"
    centre: tuple[float, float]
    radius: float = 0.0
    lo: tuple[float, float] = (0.0, 0.0)
    hi: tuple[float, float] = (0.0, 0.0)

    @property
    def shape_key(self) -> tuple[str, float]:
        """What the normalised MST null depends on: disc, or box with its aspect ratio."""
        if self.kind == "disc":
            return ("disc", 1.0)
        w, h = self.hi[0] - self.lo[0], self.hi[1] - self.lo[1]
        return ("box", round(float(max(w, h) / max(min(w, h), 1e-12)), 2))

    @property
    def area(self) -> float:
        if self.kind == "disc":
            return float(np.pi * self.radius ** 2)
        return float((self.hi[0] - self.lo[0]) * (self.hi[1] - self.lo[1]))

    def sample(self, rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
        """Uniform points, array of shape ``shape + (2,)``."""
        if self.kind == "disc":
            r = self.radius * np.sqrt(rng.random(shape))
            phi = 2 * np.pi * rng.random(shape)
            return np.stack([self.centre[0] + r * np.cos(phi), self.centre[1] + r * np.sin(phi)], -1)
        u = rng.random(shape + (2,))
        return np.asarray(self.lo) + u * (np.asarray(self.hi) - np.asarray(self.lo))


def sky_window(xy: np.ndarray) -> SkyWindow:
    """The smaller of the bounding box and the bounding disc about the centroid of the box.

    A circular cone gives its disc (area pi r^2 < 4 r^2); a box-shaped extract its box.
    """
    lo, hi = xy.min(axis=0), xy.max(axis=0)
    centre = 0.5 * (lo + hi)
    radius = float(np.sqrt(((xy - centre) ** 2).sum(axis=1)).max())
    box = SkyWindow("box", tuple(centre), lo=tuple(lo), hi=tuple(hi))
    disc = SkyWindow("disc", tuple(centre), radius=radius)
    if box.area <= 0 and disc.area <= 0:
        raise MethodError("UPMASK: all stars at the same sky position; no window for random fields")
    return disc if 0 < disc.area < box.area or box.area <= 0 else box


def mst_lengths(xy: np.ndarray, labels: np.ndarray, n_groups: int) -> np.ndarray:
    """Total MST length of the points of each group, all groups at once.

    Every Euclidean MST edge :math:`(p, q)` of a group has an empty diametral
    circle (Gabriel property), so after shifting the groups apart by more
    than their extent it is an edge of the Delaunay triangulation of the
    union. One Delaunay triangulation of all points, its intra-group edges
    and one sparse :func:`scipy.sparse.csgraph.minimum_spanning_tree` call
    (the spanning forest of a disjoint union is the union of the trees) give
    every group's exact MST length with O(n) edges.

    Parameters
    ----------
    xy : (n, 2) array
        Positions.
    labels : (n,) int array
        Group of each point, 0..n_groups-1 (negative: ignored).
    n_groups : int

    Returns
    -------
    (n_groups,) array; 0 for groups of fewer than two points.
    """
    from scipy.spatial import Delaunay

    keep = labels >= 0
    p = np.asarray(xy, dtype=float)[keep]
    lab = np.asarray(labels)[keep]
    out = np.zeros(n_groups)
    if lab.size < 2:
        return out
    span = float(np.ptp(p, axis=0).max()) or 1.0
    shifted = p.copy()
    shifted[:, 0] += lab * 3.0 * span        # groups far apart: no group's Gabriel circles overlap another
    if lab.size <= 3:   # qhull needs 4 points in 2-D: every pair is a candidate edge
        edges = np.array([[a, b] for a in range(lab.size) for b in range(a + 1, lab.size)])
    else:
        tri = Delaunay(shifted, qhull_options="QJ Qbb Qc")
        s = tri.simplices
        edges = np.sort(np.concatenate([s[:, [0, 1]], s[:, [1, 2]], s[:, [0, 2]]]), axis=1)
        code = np.unique(edges[:, 0].astype(np.int64) * lab.size + edges[:, 1])  # each edge once
        edges = np.stack([code // lab.size, code % lab.size], axis=1)
    edges = edges[lab[edges[:, 0]] == lab[edges[:, 1]]]
    if edges.size == 0:
        return out
    i, j = edges[:, 0], edges[:, 1]
    d = np.maximum(np.hypot(p[i, 0] - p[j, 0], p[i, 1] - p[j, 1]), 1e-12)  # 0 would mean "no edge"
    graph = coo_matrix((d, (i, j)), shape=(lab.size, lab.size)).tocsr()
    tree = minimum_spanning_tree(graph).tocoo()
    np.add.at(out, lab[tree.row], tree.data)
    return out
