r"""Independent noise-free draws of a simulated cone's populations, for the ideal classifier.

The ideal classifier (:mod:`ocmembers.method.ideal`) needs, for each cone, the
densities of the cluster and of the field in the observed space

.. math::

    x = (x_{pc}, y_{pc}, \varpi, \mu_{\alpha*}, \mu_\delta, G, G_{BP} - G_{RP}),

(:data:`SPACE`; :math:`x_{pc}, y_{pc}` the gnomonic offsets from the
catalogued centre at the catalogued distance). They come from draws of the
same generating model as the cone, on random streams the cone never uses
(``SeedSequence((seed, crc32(name), DRAW_TAG, draw))``), so that draw 1 and
draw 2 are independent of the sky and of each other:

* the cluster: ``copies`` fresh draws of the same :class:`ClusterModel`
  (masses, binaries, positions, velocities, photometry; corona and tails on
  their own stream when ``[sim] structure = "corona_tails"``);
* the field: :func:`ocmembers.sim.galaxy.simulate_field` in the same cone,
  widened by ``FIELD_RADIUS_MARGIN_PC`` (the kernels of stars near the edge
  see no edge), at ``factor`` times ``[sim] field_density``, keeping the
  stars whose true astrometry lies within the Eq. 1-2 window widened by
  ``K_MARGIN`` times a bound on the measurement errors at their G (the
  support the candidates' kernels reach).

Both go through the same detection and Gaia measurement as the cone (the
cone's scan law): each drawn star gives its **noise-free** observed point
(true astrometry plus the parallax zero point the measurement adds, true G
and colour), the kernel's centre, and its one **noisy** measurement, whose
passing the cone's cuts counts the draw's candidates (``n_cut``, the
density's normalisation).
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ocmembers.config import Config
from ocmembers.method.cuts import cone_mask, cone_radius_deg, cone_window
from ocmembers.sim.cluster import (FAINT_ERROR_FACTOR, N_OBS_MIN, PM_PER_PARALLAX_ERROR_MAX, SIGMA_SCATTER_DEX,
                                   ZP_MARGIN, Measurement, Windows, cluster_rng, cluster_stars, escaped_stars,
                                   isochrone_and_physics)
from ocmembers.sim.cluster_model import cluster_frame, cluster_model
from ocmembers.sim.errors import ScanLaw, parallax_error_median
from ocmembers.sim.galaxy import simulate_field

__all__ = ["SPACE", "IdealDraw", "ideal_draws", "observed_space", "tangent_pc"]

#: The observed space of the ideal classifier.
SPACE: tuple[str, ...] = ("x_pc", "y_pc", "parallax", "pmra", "pmdec", "g", "bp_rp")
#: Entropy that separates the ideal's draws from every stream of the cone.
DRAW_TAG = 15_001
#: Widening of the field draw's cone (pc), beyond the largest field bandwidth in position.
FIELD_RADIUS_MARGIN_PC = 20.0
#: Error bounds the field draw's astrometric window is widened by.
K_MARGIN = 5.0
#: Extra widening of the window, in units of its half-width (the field's astrometric bandwidths
#: are at most ``FIELD_MAX_H_WINDOW`` of it; four of them).
FIELD_MAX_H_WINDOW = 0.1
#: Field draw points kept at most: beyond it the draw is halved at random (each kept point then
#: stands for 2, 4, ... drawn stars, :attr:`IdealDraw.weight`), so that a crowded cone's draw
#: (IC 4651: 23 million points, 9 GB at its peak) stays within memory. The kernel sums thin
#: such draws anyway (``pair_budget`` of :func:`ocmembers.method.ideal.kernel_sum`).
FIELD_MAX_POINTS = 4_000_000


@dataclass
class IdealDraw:
    """One population's draw: noise-free points in :data:`SPACE` and the normalisation."""

    points: np.ndarray      # (N, 7) noise-free observed values
    n_cut: int              # of the draw's noisy measurements, those inside the cone cuts
    scale: float            # the draw is ``scale`` times the population of one sky
    n_generated: int        # stars generated (before detection and the prefilter)
    weight: float = 1.0     # drawn stars each point stands for (> 1: the draw was thinned)


def tangent_pc(ra: np.ndarray, dec: np.ndarray, cluster: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Gnomonic offsets (pc, east and north) from the catalogued centre, at the catalogued distance."""
    e0, ea, ed = cluster_frame(float(cluster["ra"]), float(cluster["dec"]))
    r, d = np.deg2rad(np.asarray(ra, float)), np.deg2rad(np.asarray(dec, float))
    u = np.stack([np.cos(d) * np.cos(r), np.cos(d) * np.sin(r), np.sin(d)])
    z = e0 @ u
    dist = float(cluster["dist_pc"])
    return dist * (ea @ u) / z, dist * (ed @ u) / z


def observed_space(cone: pd.DataFrame, cluster: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """The measured values of the cone's sources in :data:`SPACE` and their error covariances.

    Returns
    -------
    x : (M, 7) array
        NaN colour where BP or RP is missing.
    cov : (M, 7, 7) array
        Parallax and proper motions with their correlations; G and colour
        (:math:`\\sigma_{BP-RP}^2 = \\sigma_{BP}^2 + \\sigma_{RP}^2`, from the flux errors);
        positions 0 (sub-mas errors).
    """
    x_pc, y_pc = tangent_pc(cone["ra"].to_numpy(float), cone["dec"].to_numpy(float), cluster)
    col = lambda c: cone[c].to_numpy(float)  # noqa: E731
    x = np.stack([x_pc, y_pc, col("parallax"), col("pmra"), col("pmdec"), col("phot_g_mean_mag"),
                  col("phot_bp_mean_mag") - col("phot_rp_mean_mag")], axis=1)
    m = len(cone)
    cov = np.zeros((m, 7, 7))
    s = np.stack([col("parallax_error"), col("pmra_error"), col("pmdec_error")], axis=1)
    r = {("parallax", "pmra"): col("parallax_pmra_corr"), ("parallax", "pmdec"): col("parallax_pmdec_corr"),
         ("pmra", "pmdec"): col("pmra_pmdec_corr")}
    for k in range(3):
        cov[:, 2 + k, 2 + k] = s[:, k] ** 2
    for (a, b), rho in r.items():
        i, j = SPACE.index(a), SPACE.index(b)
        cov[:, i, j] = cov[:, j, i] = np.nan_to_num(rho) * s[:, i - 2] * s[:, j - 2]

    def mag_err(band: str) -> np.ndarray:
        f, e = col(f"phot_{band}_mean_flux"), col(f"phot_{band}_mean_flux_error")
        with np.errstate(divide="ignore", invalid="ignore"):
            return 1.0857 * e / f

    cov[:, 5, 5] = np.nan_to_num(mag_err("g") ** 2)
    cov[:, 6, 6] = np.nan_to_num(mag_err("bp") ** 2 + mag_err("rp") ** 2)
    return x, cov


def _streams(cfg: Config, name: str, draw: int) -> list[np.random.Generator]:
    ss = np.random.SeedSequence([int(cfg.sim.seed), zlib.crc32(name.encode()), DRAW_TAG, int(draw)])
    # a child's stream depends on its index only: the sixth (the thinning) leaves the others as they were
    return [np.random.default_rng(s) for s in ss.spawn(6)]


class _Thinned:
    """Points collected chunk by chunk, at most ``cap`` kept: past it the kept points and every
    later chunk are halved at random, so each kept point stands for ``1 / rate`` collected ones
    (every point kept with the same probability ``rate``: an unbiased sum). ``n_cut`` counts
    every collected point's cut, thinned or not. Below the cap nothing is drawn from ``rng``."""

    def __init__(self, cap: int, rng: np.random.Generator) -> None:
        self.cap, self.rng, self.rate = int(cap), rng, 1.0
        self.parts: list[np.ndarray] = []
        self.n_kept = self.n_cut = 0

    def add(self, points: np.ndarray, cut: np.ndarray) -> None:
        self.n_cut += int(np.count_nonzero(cut))
        if self.rate < 1.0:
            points = points[self.rng.random(len(points)) < self.rate]
        self.parts.append(points)
        self.n_kept += len(points)
        while self.n_kept > self.cap:
            self.rate /= 2
            self.parts = [p[self.rng.random(len(p)) < 0.5] for p in self.parts]
            self.n_kept = sum(len(p) for p in self.parts)

    def points(self) -> np.ndarray:
        return np.concatenate(self.parts) if self.parts else np.zeros((0, len(SPACE)))


def _keep_all(plx, pmra, pmdec, g):
    return np.ones(np.shape(plx), bool)


def _noise_free(measured: pd.DataFrame, cluster: pd.Series, cone_cut) -> tuple[np.ndarray, np.ndarray]:
    """Noise-free points in :data:`SPACE` of measured rows (``true_*`` columns) and whether their
    noisy measurement passes the cone cuts."""
    if len(measured) == 0:
        return np.zeros((0, 7)), np.zeros(0, bool)
    # positions: the measured ones (sub-mas noise; at the release's epoch)
    x_pc, y_pc = tangent_pc(measured["ra"].to_numpy(float), measured["dec"].to_numpy(float), cluster)
    t = lambda c: measured[f"true_{c}"].to_numpy(float)  # noqa: E731
    pts = np.stack([x_pc, y_pc, t("parallax") + t("zero_point"), t("pmra"), t("pmdec"), t("g"),
                    t("bp") - t("rp")], axis=1)
    return pts, cone_cut(measured)


def ideal_draws(cluster: pd.Series, cfg: Config, *, draw: int, copies: int,
                field_factor: float) -> tuple[IdealDraw, IdealDraw]:
    """The cluster and field draws (module docstring) of ``cluster`` (a catalogue row).

    Parameters
    ----------
    draw : int
        Which independent draw (1, 2, ...).
    copies : int
        Cluster realisations drawn.
    field_factor : float
        The field draw's density relative to the sky's.
    """
    name = str(cluster["name"])
    r_model = cluster_rng(cfg, name)[0]            # the cone's model: the same derived parameters
    r_scan = cluster_rng(cfg, name)[4]             # the cone's scan law
    r_cl, r_obs, r_field, r_esc, r_fobs, r_thin = _streams(cfg, name, draw)
    iso, phys = isochrone_and_physics(cluster, cfg)
    model = cluster_model(phys, cfg, iso, r_model)
    scan = ScanLaw.draw(r_scan)
    window = cone_window(cluster, radius_pc=cfg.cone.radius_pc, n_sigma=cfg.cone.n_sigma)

    def cone_cut(measured: pd.DataFrame) -> np.ndarray:
        return cone_mask(measured, window)

    measure = Measurement(cfg, scan, r_obs, _keep_all)
    core = cfg.replace(sim={"structure": "core_halo"}) if cfg.sim.structure != "core_halo" else cfg
    parts = []
    for _ in range(int(copies)):
        stars = cluster_stars(cluster, phys, core, iso, model, r_cl)
        if cfg.sim.structure != "core_halo":
            esc = escaped_stars(cluster, phys, cfg, iso, model, stars["mass"].to_numpy(float),
                                stars["q"].to_numpy(float), r_esc)
            stars = pd.concat([stars, esc], ignore_index=True)
        parts.append(_noise_free(measure(stars.assign(is_member=True)), cluster, cone_cut))
    cl = IdealDraw(points=np.concatenate([p for p, _ in parts]), n_cut=int(sum(c.sum() for _, c in parts)),
                   scale=float(copies), n_generated=measure.n_generated)

    w = Windows.of(cluster, cfg)
    h_plx, h_pm = FIELD_MAX_H_WINDOW * w.plx_half, FIELD_MAX_H_WINDOW * w.pm_r

    def support(plx, g_bright, g_faint, pmra, pmdec, noise):
        s_up = parallax_error_median(g_faint, N_OBS_MIN) * 10 ** SIGMA_SCATTER_DEX * FAINT_ERROR_FACTOR
        ok_plx = np.abs(plx - w.parallax) <= w.plx_half + ZP_MARGIN + K_MARGIN * s_up + 4 * h_plx
        dpm = np.hypot(pmra - w.pmra, pmdec - w.pmdec)
        return ok_plx & (dpm <= w.pm_r + K_MARGIN * PM_PER_PARALLAX_ERROR_MAX * s_up + 4 * h_pm)

    fmeasure = Measurement(cfg, scan, r_fobs, _keep_all)
    radius = cone_radius_deg(cfg.cone.radius_pc + FIELD_RADIUS_MARGIN_PC, float(cluster["dist_pc"]))
    kept = _Thinned(FIELD_MAX_POINTS, r_thin)

    def on_chunk(part: pd.DataFrame) -> pd.DataFrame:
        if len(part) == 0:
            return part
        kept.add(*_noise_free(fmeasure(part.assign(is_member=False)), cluster, cone_cut))
        return part.iloc[:0].copy()     # a view would keep the whole chunk's columns alive

    simulate_field(float(cluster["ra"]), float(cluster["dec"]), radius, r_field, g_limit=cfg.sim.g_limit,
                   density=cfg.sim.field_density * float(field_factor), binary_fraction=cfg.sim.binary_fraction,
                   a0_anchor=(float(phys["dist_pc"]), float(cluster["a0"])), prefilter=support, on_chunk=on_chunk)
    fld = IdealDraw(points=kept.points(), n_cut=kept.n_cut, scale=float(field_factor),
                    n_generated=fmeasure.n_generated, weight=1.0 / kept.rate)
    return cl, fld

