r"""UPMASK: Unsupervised Photometric Membership Assignment in Stellar Clusters.

Krone-Martins & Moitinho (2014, A&A 561, A57). Stars of one cluster share
their photometric (and astrometric) properties *and* are concentrated on the
sky; field stars with similar properties are spread uniformly. So:

1. **Inner loop.** Partition the stars by k-means in the feature space
   (photometry, optionally astrometry; each feature standardised), with
   :math:`k = \lfloor n / n_\star \rfloor` (:math:`n_\star` = stars per
   group, 25 here as in Peña Ramírez et al. 2022). For each group compute the
   total length :math:`L` of the minimum spanning tree (MST) of its sky
   positions and compare it with the distribution of :math:`L` for the same
   number of points drawn uniformly in the same sky window. A group is
   *concentrated* if its :math:`L` is below the :math:`\alpha` quantile of
   that null distribution (one-sided test). Stars of non-concentrated groups
   are discarded and the k-means + test is repeated on the rest until no
   group is discarded (or nothing is left).
2. **Outer loop.** Repeat step 1 ``n_iterations`` times, each time with the
   features redrawn from the stars' uncertainties (Gaussian).
3. **Probability** of a star = fraction of outer iterations in which it
   ends in a concentrated group.

Cantat-Gaudin et al. (2018, 2020) ran the same algorithm in the astrometric
space :math:`(\mu_{\alpha*}, \mu_\delta, \varpi)` for the member lists the
Deep Sets model is trained on (``space="astrometry"``); Peña Ramírez et al.
(2022) in photometry (``space="photometry"``) for stars already selected in
astrometry.

Efficiency: the null MST-length distribution depends only on the group size
and the window; it is computed once per size (all random fields of one size
in a single block-diagonal MST) and cached. The MSTs of all groups of one
k-means partition are likewise one sparse MST call on the disjoint union of
the groups' complete graphs (the minimum spanning forest of a disjoint union
is the union of the trees).

References
----------
Krone-Martins, A., Moitinho, A. 2014, A&A 561, A57.
Cantat-Gaudin, T., Jordi, C., Vallenari, A., et al. 2018, A&A 618, A93.
Peña Ramírez, K., et al. 2022, MNRAS (VVV open clusters II), Sect. 3.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ocmembers.method.member_table import MethodError, member_table, source_ids
from ocmembers.method.settings import methods_config
from ocmembers.method.upmask_sky import SkyWindow, mst_lengths, sky_window, tangent_plane

__all__ = [
    "UPMASK", "upmask_members", "mst_lengths", "sky_window", "tangent_plane",
    "photometry_columns", "PHOTOMETRY_ALIASES",
]

METHOD = "upmask"

#: Photometric columns accepted, per band, in order of preference (Gaia archive, 2MASS, VizieR).
PHOTOMETRY_ALIASES: dict[str, tuple[str, ...]] = {
    "G": ("phot_g_mean_mag",),
    "BP": ("phot_bp_mean_mag",),
    "RP": ("phot_rp_mean_mag",),
    "J": ("j_m", "Jmag", "J"),
    "H": ("h_m", "Hmag", "H"),
    "Ks": ("ks_m", "Ksmag", "Kmag", "K", "Ks"),
}

#: Error columns tried for each magnitude column.
_ERROR_SUFFIXES = ("_error", "_err", "_msigcom", "_sigma")
_ERROR_NAMES = {"j_m": "j_msigcom", "h_m": "h_msigcom", "ks_m": "ks_msigcom",
                "Jmag": "e_Jmag", "Hmag": "e_Hmag", "Ksmag": "e_Ksmag", "Kmag": "e_Kmag"}
_FLUX = {"phot_g_mean_mag": "phot_g_mean_flux", "phot_bp_mean_mag": "phot_bp_mean_flux",
         "phot_rp_mean_mag": "phot_rp_mean_flux"}


def photometry_columns(table: pd.DataFrame) -> list[str]:
    """The magnitude columns present: Gaia G, BP, RP and any of J, H, Ks (2MASS/VVV spellings)."""
    cols = []
    for aliases in PHOTOMETRY_ALIASES.values():
        for a in aliases:
            if a in table.columns:
                cols.append(a)
                break
    return cols


def magnitude_errors(table: pd.DataFrame, column: str) -> np.ndarray:
    """1-sigma error of a magnitude column: an explicit error column, else from Gaia fluxes
    (:math:`\\sigma_m = 2.5/\\ln 10\\;\\sigma_F/F`), else 0."""
    names = [_ERROR_NAMES.get(column, "")] + [column + s for s in _ERROR_SUFFIXES] + ["e_" + column]
    for name in names:
        if name and name in table.columns:
            return np.nan_to_num(table[name].to_numpy(dtype=float), nan=0.0)
    flux = _FLUX.get(column)
    if flux and flux in table.columns and flux + "_error" in table.columns:
        f = table[flux].to_numpy(dtype=float)
        ef = table[flux + "_error"].to_numpy(dtype=float)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.nan_to_num(2.5 / np.log(10.0) * ef / f, nan=0.0, posinf=0.0)
    return np.zeros(len(table))


@dataclass
class UPMASK:
    """UPMASK (Krone-Martins & Moitinho 2014) with an MST-length concentration test.

    Parameters
    ----------
    stars_per_group : int
        Mean k-means group size; k = n // stars_per_group.
    n_iterations : int
        Outer Monte Carlo iterations (data redrawn from their errors).
    n_random : int
        Uniform random fields per group size for the null MST-length distribution.
    alpha : float
        One-sided level: concentrated if L < quantile_alpha(null).
    max_inner : int
        Maximum k-means + test passes within one outer iteration.
    random_state : int or None
    """

    stars_per_group: int = 25
    n_iterations: int = 50
    n_random: int = 200
    alpha: float = 0.05
    max_inner: int = 10
    random_state: int | None = None

    #: group sizes up to this get their own null distribution; larger sizes interpolate
    exact_max_size: int = 32

    def _null_quantile(self, size: int, window: SkyWindow) -> float:
        """alpha-quantile of L / sqrt(size * area) for ``size`` uniform points.

        The normalised length depends on the window only through its shape
        (disc, or box aspect ratio), so the cache is shared by all instances
        and clusters with the same settings.
        """
        key = (window.shape_key, size, self.n_random, self.alpha, self.random_state)
        if key not in _NULL_CACHE:
            rng = np.random.default_rng([0 if self.random_state is None else self.random_state, size])
            pts = window.sample(rng, (self.n_random, size)).reshape(-1, 2)
            lab = np.repeat(np.arange(self.n_random), size)
            lengths = mst_lengths(pts, lab, self.n_random) / np.sqrt(size * window.area)
            _NULL_CACHE[key] = float(np.quantile(lengths, self.alpha))
        return _NULL_CACHE[key]

    def null_threshold(self, size: int, window: SkyWindow) -> float:
        """alpha-quantile of the MST length of ``size`` uniform points in ``window``.

        Computed once per size (cached) up to :attr:`exact_max_size`; above it,
        on a geometric grid of sizes (ratio 1.1) with the normalised length
        :math:`L/\\sqrt{mA}` (nearly constant in m, Beardwood et al. 1959)
        interpolated linearly in :math:`\\ln m`.
        """
        if size <= self.exact_max_size:
            q = self._null_quantile(size, window)
        else:
            k = np.log(size / self.exact_max_size) / np.log(1.1)
            lo = int(round(self.exact_max_size * 1.1 ** np.floor(k)))
            hi = int(round(self.exact_max_size * 1.1 ** np.ceil(k)))
            q_lo, q_hi = self._null_quantile(lo, window), self._null_quantile(hi, window)
            t = 0.0 if hi == lo else (np.log(size) - np.log(lo)) / (np.log(hi) - np.log(lo))
            q = (1 - t) * q_lo + t * q_hi
        return q * np.sqrt(size * window.area)

    def _one_pass(self, feats: np.ndarray, xy: np.ndarray, window: SkyWindow,
                  rng: np.random.Generator) -> np.ndarray:
        """Inner loop: boolean mask of the stars left in concentrated groups."""
        from sklearn.cluster import KMeans

        alive = np.ones(len(feats), dtype=bool)
        for _ in range(self.max_inner):
            idx = np.flatnonzero(alive)
            n = idx.size
            if n < 3:
                return np.zeros_like(alive)
            k = max(1, n // self.stars_per_group)
            if k > 1:
                km = KMeans(n_clusters=k, n_init=1, max_iter=100,
                            random_state=int(rng.integers(2**31 - 1)))
                lab = km.fit_predict(feats[idx])
            else:
                lab = np.zeros(n, dtype=np.int64)
            lengths = mst_lengths(xy[idx], lab, k)
            sizes = np.bincount(lab, minlength=k)
            thr = np.array([self.null_threshold(int(m), window) if m >= 3 else -np.inf for m in sizes])
            concentrated = lengths < thr
            if np.all(concentrated):
                return alive
            alive[idx[~concentrated[lab]]] = False
            if not np.any(alive):
                return alive
        return alive

    def fit_predict(self, features: np.ndarray, feature_errors: np.ndarray, xy: np.ndarray,
                    window: SkyWindow | None = None) -> np.ndarray:
        """Membership probability of each star.

        Parameters
        ----------
        features : (n, f) array
            k-means space (magnitudes, colours or astrometry); standardised inside.
        feature_errors : (n, f) array
            1-sigma errors used to redraw ``features`` at each outer iteration
            (the first iteration uses the nominal values).
        xy : (n, 2) array
            Sky positions (tangent plane, degrees).
        window : SkyWindow, optional
            Where random fields are drawn (default :func:`sky_window` of ``xy``).
        """
        features = np.asarray(features, dtype=float)
        errors = np.nan_to_num(np.asarray(feature_errors, dtype=float), nan=0.0)
        xy = np.asarray(xy, dtype=float)
        n = features.shape[0]
        if features.ndim != 2 or errors.shape != features.shape or xy.shape != (n, 2):
            raise MethodError(f"UPMASK: inconsistent shapes features {features.shape}, "
                              f"errors {errors.shape}, positions {xy.shape}")
        if not (np.all(np.isfinite(features)) and np.all(np.isfinite(xy))):
            raise MethodError("UPMASK: features or positions contain NaN/inf; drop those stars first")
        if n < 2 * self.stars_per_group:
            raise MethodError(f"UPMASK: {n} stars are too few for groups of {self.stars_per_group} "
                              f"(need at least {2 * self.stars_per_group})")
        window = window or sky_window(xy)
        mu, sd = features.mean(axis=0), features.std(axis=0)
        sd = np.where(sd > 0, sd, 1.0)
        rng = np.random.default_rng(self.random_state)
        counts = np.zeros(n)
        for it in range(self.n_iterations):  # outer Monte Carlo loop over data realisations
            f = features if it == 0 else features + errors * rng.standard_normal(features.shape)
            counts += self._one_pass((f - mu) / sd, xy, window, rng)
        return counts / self.n_iterations


ASTROMETRY = ("pmra", "pmdec", "parallax")

#: normalised null MST-length quantiles, keyed by window shape, size and settings
_NULL_CACHE: dict[tuple, float] = {}


def features_for(table: pd.DataFrame, space: str) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Feature matrix, its errors and the column names for ``space``.

    ``space``: ``"photometry"`` (G, BP, RP + J, H, Ks when present),
    ``"astrometry"`` (pmra, pmdec, parallax) or ``"both"``.
    """
    cols: list[str] = []
    if space in ("photometry", "both"):
        cols += photometry_columns(table)
    if space in ("astrometry", "both"):
        cols += [c for c in ASTROMETRY if c in table.columns]
    if space not in ("photometry", "astrometry", "both"):
        raise MethodError(f"UPMASK: space must be photometry, astrometry or both, got {space!r}")
    if not cols:
        raise MethodError(f"UPMASK: no {space} columns in the input")
    x = table[cols].to_numpy(dtype=float)
    e = np.stack([table[c + "_error"].to_numpy(dtype=float) if c in ASTROMETRY and c + "_error" in table
                  else magnitude_errors(table, c) for c in cols], axis=1)
    return x, e, cols


def upmask_members(cone: pd.DataFrame, cluster: pd.Series | None = None, cfg: Any = None, *,
                   space: str | None = None, n_iterations: int | None = None,
                   window: SkyWindow | None = None) -> pd.DataFrame:
    """UPMASK membership for every star of a cone (the common member table).

    Stars lacking any feature or position get probability 0. ``space`` defaults to
    ``cfg.methods.upmask_space`` (``"astrometry"``: the Cantat-Gaudin et al. 2018 set-up).
    """
    mc = methods_config(cfg)
    space = space or mc.upmask_space
    name = str(cluster.get("name", "<cluster>")) if cluster is not None else "<cone>"
    ids = source_ids(cone)
    x, e, cols = features_for(cone, space)
    ra = cone["ra"].to_numpy(dtype=float)
    dec = cone["dec"].to_numpy(dtype=float)
    ok = np.all(np.isfinite(x), axis=1) & np.isfinite(ra) & np.isfinite(dec)
    g_max = mc.upmask_g_max
    if g_max and "phot_g_mean_mag" in cone.columns:
        ok &= cone["phot_g_mean_mag"].to_numpy(dtype=float) < g_max
    if cluster is not None and np.isfinite(float(cluster.get("ra", np.nan))):
        ra0, dec0 = float(cluster["ra"]), float(cluster["dec"])
    else:
        ra0, dec0 = float(np.nanmedian(ra)), float(np.nanmedian(dec))
    xy = tangent_plane(ra, dec, ra0, dec0)
    est = UPMASK(stars_per_group=mc.upmask_stars_per_group,
                 n_iterations=n_iterations or mc.upmask_iterations,
                 n_random=mc.upmask_random_fields, alpha=mc.upmask_alpha,
                 max_inner=mc.upmask_max_outer, random_state=mc.seed)
    try:
        p_ok = est.fit_predict(x[ok], e[ok], xy[ok], window=window)
    except MethodError as exc:
        raise MethodError(f"cluster {name}: {exc}") from exc
    prob = np.zeros(len(cone))
    prob[ok] = p_ok
    params = {"space": space, "features": cols, "stars_per_group": est.stars_per_group,
              "n_iterations": est.n_iterations, "n_random": est.n_random, "alpha": est.alpha,
              "max_inner": est.max_inner, "seed": est.random_state, "g_max": g_max,
              "cluster": name, "n_used": int(ok.sum())}
    return member_table(ids, prob, METHOD, params)
