r"""A simulated Gaia + 2MASS + VVV/VIRAC2 field around one cluster, as Peña Ramírez et al. (2022) used.

PR22 (Sect. 2.2) studied each cluster over a circle of radius
:data:`AREA_R50` x r50 (Cantat-Gaudin & Anders 2020), with an 8-dimensional
data set per source: five astrometric parameters and J, H, Ks. Bright
sources carry 2MASS photometry and Gaia EDR3 astrometry, faint ones VVV
photometry and VIRAC2 astrometry; overlaps are combined by inverse-variance
weighting. This module simulates that data set:

* **Cluster**: the cluster model of :mod:`ocmembers.sim.cluster_model` (same
  numbers, profile and velocities as the Gaia cones), with masses drawn down to
  the hydrogen-burning limit, since VVV sees members far fainter than Gaia.
* **Field**: :func:`ocmembers.sim.galaxy.simulate_field` with the bulge of
  :mod:`ocmembers.sim.bulge` added and the faintest useful mass of each
  distance set by whichever of Gaia (``[sim] g_limit`` + 0.6) and VVV
  (:data:`KS_KEEP`) reaches fainter (:func:`faintest_mass`).
* **Proper-motion window**: PR22's first cut (Sect. 3), sources within
  :data:`PM_WINDOW_SIGMA` times the cluster's dispersion of its proper motion,
  is applied as the field is simulated, after every source has been counted by
  magnitude (``meta["counts"]``: Gaia G, 2MASS Ks, VVV Ks, combined Ks).
* **Measurement**: Gaia DR3 (:func:`ocmembers.sim.errors.observe`, the same
  error model as the Gaia cones) for the stars Gaia detects; 2MASS and VVV
  photometry and VIRAC2 astrometry from :mod:`ocmembers.sim.nir`; the combined
  8-dimensional columns (:func:`combine`).

Randomness: streams of :func:`vvv_rng`, a ``SeedSequence`` of ``([sim] seed,
crc32(name), crc32("vvv"))``, disjoint from the Gaia cones' streams
(:func:`ocmembers.sim.cluster.cluster_rng`): the Gaia cones and every
product made from them are unchanged by this module.

Columns of the cone (:data:`NIR_COLUMNS` and the Gaia archive names):

* ``source_id, ra, dec``; ``parallax, pmra, pmdec`` and their ``_error``, and
  ``parallax_pmra_corr, parallax_pmdec_corr, pmra_pmdec_corr``: combined
  Gaia/VIRAC2 astrometry (Eq. 4 of :mod:`ocmembers.sim.nir`); the correlations are
  Gaia's scaled by the combination, 0 for VIRAC2 alone; ``astrometry`` is
  ``gaia``, ``virac2`` or ``gaia+virac2``;
* ``Jmag, Hmag, Ksmag`` and ``e_Jmag, e_Hmag, e_Ksmag``: combined 2MASS + VVV
  photometry in the VISTA system (2MASS through Eq. 2 of :mod:`ocmembers.sim.nir`; the
  combination is :func:`ocmembers.method.nir.combine_measurements`, as on the archive route);
* ``tmass_j ... tmass_ks_error`` (2MASS system), ``vvv_j ... vvv_ks_error``;
* ``gaia_*`` : the Gaia DR3 columns of the Gaia detections (NaN elsewhere),
  among them ``phot_g_mean_mag, phot_bp_mean_mag, phot_rp_mean_mag``.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from ocmembers.config import Config
from ocmembers.exceptions import EmptyConeError
from ocmembers.method.columns import GAIA_COLUMNS
from ocmembers.sim.bulge import NIR_POPULATIONS
from ocmembers.sim.cluster import cluster_stars, isochrone_and_physics
from ocmembers.sim.cluster_model import check_cluster, cluster_frame, cluster_model
from ocmembers.sim.errors import ScanLaw, detection_probability, make_source_ids, observe
from ocmembers.sim.galaxy import simulate_field
from ocmembers.method.nir import AREA_R50, PM_WINDOW_SIGMA, combine_measurements
from ocmembers.sim.nir import (BANDS, SURVEYS, TWOMASS, VVV, measure_survey, true_nir, twomass_from_gaia,
                               vista_from_twomass, virac2_errors)

__all__ = ["AREA_R50", "KS_KEEP", "NIR_COLUMNS", "VVVCone", "vvv_rng", "simulate_vvv_cone", "faintest_mass",
           "combine", "radius_deg", "VVV_CONE_VERSION", "PM_WINDOW_SIGMA", "COUNT_EDGES", "star_counts"]

#: True VISTA Ks fainter than which no VVV detection is possible in practice (completeness
#: < 1e-4 at the VVV Ks 50 per cent magnitude + 1.8 mag).
KS_KEEP = VVV.m10["ks"] + VVV.m50_offset + 1.8
#: Gaia: true G fainter than which no Gaia detection (as the Gaia cones: g_limit + 0.6).
G_MARGIN = 0.6
#: Lowest mass drawn for the cluster (Msun).
M_MIN = 0.08
#: PR22 Sect. 3 (:data:`ocmembers.method.nir.PM_WINDOW_SIGMA`): the simulated field keeps only
#: the sources inside the proper-motion window (after counting every source, :data:`COUNT_EDGES`),
#: which bounds the cones of the widest clusters. (:data:`AREA_R50`: PR22's 5 x r50.)
#: Magnitude bins of the star counts of each field (before the proper-motion window).
COUNT_EDGES = {"g": np.arange(6.0, 22.51, 0.25), "ks": np.arange(4.0, 20.01, 0.25)}
#: Bumped when a VVV cone changes for the same configuration.
VVV_CONE_VERSION = 1

NIR_COLUMNS: tuple[str, ...] = (
    "source_id", "ra", "dec", "parallax", "parallax_error", "pmra", "pmra_error", "pmdec", "pmdec_error",
    "parallax_pmra_corr", "parallax_pmdec_corr", "pmra_pmdec_corr", "astrometry",
    "Jmag", "e_Jmag", "Hmag", "e_Hmag", "Ksmag", "e_Ksmag",
    "tmass_j", "tmass_j_error", "tmass_h", "tmass_h_error", "tmass_ks", "tmass_ks_error",
    "vvv_j", "vvv_j_error", "vvv_h", "vvv_h_error", "vvv_ks", "vvv_ks_error",
    "phot_g_mean_mag", "phot_bp_mean_mag", "phot_rp_mean_mag",
    "phot_g_mean_flux", "phot_g_mean_flux_error", "phot_bp_mean_flux", "phot_bp_mean_flux_error",
    "phot_rp_mean_flux", "phot_rp_mean_flux_error", "gaia_source_id",
)
TRUTH_COLUMNS: tuple[str, ...] = (
    "source_id", "is_member", "population", "mass", "q", "dist_pc", "parallax_true", "pmra_true",
    "pmdec_true", "g_true", "bp_true", "rp_true", "teff", "a0", "j_true", "h_true", "ks_true",
    "in_gaia", "in_2mass", "in_vvv", "r_proj_pc",
)
_GAIA_KEEP = ("ra", "dec", "parallax", "parallax_error", "pmra", "pmra_error", "pmdec", "pmdec_error",
              "parallax_pmra_corr", "parallax_pmdec_corr", "pmra_pmdec_corr", "phot_g_mean_mag",
              "phot_bp_mean_mag", "phot_rp_mean_mag", "phot_g_mean_flux", "phot_g_mean_flux_error",
              "phot_bp_mean_flux", "phot_bp_mean_flux_error", "phot_rp_mean_flux", "phot_rp_mean_flux_error")


@dataclass
class VVVCone:
    """One simulated PR22 field: the 8-dimensional cone and its truth (same rows and order)."""

    name: str
    cone: pd.DataFrame
    truth: pd.DataFrame
    meta: dict = field(default_factory=dict)


def vvv_rng(cfg: Config, name: str, n: int = 6) -> list[np.random.Generator]:
    """Independent generators of the VVV field of ``name`` (module docstring)."""
    ss = np.random.SeedSequence([int(cfg.sim.seed), zlib.crc32(name.encode()), zlib.crc32(b"vvv")])
    return [np.random.default_rng(s) for s in ss.spawn(n)]


def radius_deg(cluster: pd.Series) -> float:
    """PR22's studied radius, :data:`AREA_R50` x r50 (deg)."""
    return AREA_R50 * float(cluster["r50"])


def _abs_ks(iso: pd.DataFrame) -> np.ndarray:
    tm = twomass_from_gaia(iso["Gmag"].to_numpy(float), iso["G_BPmag"].to_numpy(float),
                           iso["G_RPmag"].to_numpy(float))
    return vista_from_twomass(tm)["ks"]


def faintest_mass(g_limit: float, iso: pd.DataFrame, d_mid: np.ndarray, a0_mid: np.ndarray) -> np.ndarray:
    """Faintest useful initial mass per distance: the smaller of the Gaia (G < g_limit + 0.6) and
    VVV (Ks < :data:`KS_KEEP`) limits, on the main sequence, with conservative extinctions
    (A_G >= 0.6 A0 as the Gaia field; A_Ks >= 0.1 A0)."""
    mini = iso["Mini"].to_numpy(float)
    ms = iso["label"].to_numpy() == 1
    dm = 5 * np.log10(d_mid / 10)
    out = []
    for mag, lim, k in ((iso["Gmag"].to_numpy(float), g_limit + G_MARGIN, 0.6), (_abs_ks(iso), KS_KEEP, 0.1)):
        lim_abs = lim - dm - k * a0_mid
        order = np.argsort(-mag[ms])
        out.append(np.interp(-lim_abs, -mag[ms][order], mini[ms][order], left=mini[0], right=np.inf))
    return np.minimum(out[0], out[1])


def _measure(true: pd.DataFrame, scan: ScanLaw, rng_gaia: np.random.Generator, rng_nir: np.random.Generator,
             g_limit: float, wobble_fraction: float) -> pd.DataFrame:
    """Gaia, 2MASS, VVV and VIRAC2 measurements of a batch of true stars; the stars no survey
    detects are dropped."""
    nir = true_nir(true["g"].to_numpy(float), true["bp"].to_numpy(float), true["rp"].to_numpy(float),
                   true["teff"].to_numpy(float), true["a0"].to_numpy(float))
    tm = measure_survey(TWOMASS, nir["2mass"], rng_nir)
    vv = measure_survey(VVV, nir["vista"], rng_nir)
    n = len(true)
    in_gaia = rng_gaia.random(n) < detection_probability(true["g"].to_numpy(float), g_limit)
    wobble = (true["q"].to_numpy() > 0) & (rng_gaia.random(n) < wobble_fraction)
    in_tm = np.isfinite(tm["j"]) | np.isfinite(tm["h"]) | np.isfinite(tm["ks"])
    in_vv = np.isfinite(vv["j"]) | np.isfinite(vv["h"]) | np.isfinite(vv["ks"])
    keep = in_gaia | in_tm | in_vv
    idx = np.flatnonzero(keep)
    out = pd.DataFrame(index=np.arange(idx.size))
    gaia = pd.DataFrame({c: np.full(idx.size, np.nan) for c in _GAIA_KEEP})
    gaia_id = np.full(idx.size, -1, dtype=np.int64)
    gi = np.flatnonzero(in_gaia[idx])
    if gi.size:
        t = true.iloc[idx[gi]].reset_index(drop=True).assign(binary_wobble=wobble[idx[gi]])
        obs, _, kept = observe(t, scan, rng_gaia)
        rows = gi[kept]
        for c in _GAIA_KEEP:
            gaia.loc[rows, c] = obs[c].to_numpy(float)
        gaia_id[rows] = obs["source_id"].to_numpy(np.int64)
    for b in BANDS:
        out[f"tmass_{b}"], out[f"tmass_{b}_error"] = tm[b][idx], tm[b + "_error"][idx]
        out[f"vvv_{b}"], out[f"vvv_{b}_error"] = vv[b][idx], vv[b + "_error"][idx]
    # VIRAC2: VVV sources with a Ks measurement; true astrometry + noise
    ks_v = out["vvv_ks"].to_numpy(float)
    has_v = np.isfinite(ks_v)
    sig_v = np.where(has_v, virac2_errors(np.where(has_v, ks_v, 99.0)), np.nan)
    noise = rng_nir.standard_normal((3, idx.size))
    for k, c in enumerate(("parallax", "pmra", "pmdec")):
        out[f"virac_{c}"] = np.where(has_v, true[c].to_numpy(float)[idx] + sig_v * noise[k], np.nan)
        out[f"virac_{c}_error"] = sig_v
    t_ra, t_dec = true["ra"].to_numpy(float)[idx], true["dec"].to_numpy(float)[idx]
    out["ra_true"], out["dec_true"] = t_ra, t_dec
    for c in _GAIA_KEEP:
        out[f"gaia_{c}"] = gaia[c].to_numpy(float)
    out["gaia_source_id"] = gaia_id
    for c in ("is_member", "population", "mass", "q", "dist_pc", "parallax", "pmra", "pmdec", "g", "bp", "rp",
              "teff", "a0"):
        out[f"true_{c}"] = true[c].to_numpy()[idx]
    for b in BANDS:
        out[f"true_{b}"] = nir["vista"][b][idx]
    out["in_2mass"], out["in_vvv"] = in_tm[idx], in_vv[idx]
    return out


def combine(m: pd.DataFrame) -> pd.DataFrame:
    """The 8-dimensional columns (module docstring) of measured rows (``_measure``):
    :func:`ocmembers.method.nir.combine_measurements`, the VIRAC2-only sources at their true position."""
    return combine_measurements(m, fallback=("ra_true", "dec_true"),
                                gaia_phot=tuple(c for c in _GAIA_KEEP if c.startswith("phot_")))


def simulate_vvv_cone(cluster: pd.Series, cfg: Config) -> VVVCone:
    """Simulate PR22's data set for ``cluster`` (a row of the canonical cluster table).

    Returns
    -------
    VVVCone
        ``cone`` (:data:`NIR_COLUMNS`, sorted by ``source_id``; sources with
        no usable astrometry dropped) and ``truth`` (:data:`TRUTH_COLUMNS`, same rows).
    """
    check_cluster(cluster)
    name = str(cluster["name"])
    r_model, r_cl, r_field, r_gaia, r_nir, r_ids = vvv_rng(cfg, name)
    iso, phys = isochrone_and_physics(cluster, cfg)
    # masses down to the hydrogen-burning limit: the cluster model with no Gaia faint limit
    deep = replace(cfg, sim=replace(cfg.sim, g_limit=np.inf))
    model = cluster_model(phys, deep, iso, r_model)
    cl = cluster_stars(cluster, phys, deep, iso, model, r_cl)
    cl["is_member"] = True
    radius = radius_deg(cluster)
    # cluster stars outside the studied circle are not observed
    e0, _, _ = cluster_frame(float(cluster["ra"]), float(cluster["dec"]))
    sep_cl = _separation_deg(e0, cl["ra"].to_numpy(), cl["dec"].to_numpy())
    cl = cl.loc[sep_cl <= radius].reset_index(drop=True)
    scan = ScanLaw.draw(r_gaia)
    s = cfg.sim
    counts = {k: np.zeros(e.size - 1, dtype=np.int64) for k, e in
              (("gaia_g", COUNT_EDGES["g"]), ("tmass_ks", COUNT_EDGES["ks"]), ("vvv_ks", COUNT_EDGES["ks"]),
               ("ks", COUNT_EDGES["ks"]))}
    n_members_area = [0]
    window = _pm_window(cluster)

    def windowed(meas: pd.DataFrame) -> pd.DataFrame:
        """Count every measured source, keep those inside the proper-motion window."""
        comb = combine(meas)
        for key, col, edges in (("gaia_g", "phot_g_mean_mag", COUNT_EDGES["g"]), ("tmass_ks", "tmass_ks", None),
                                ("vvv_ks", "vvv_ks", None), ("ks", "Ksmag", None)):
            counts[key] += star_counts(comb[col].to_numpy(float), COUNT_EDGES["ks"] if edges is None else edges)
        n_members_area[0] += int(meas["true_is_member"].sum())
        keep = window(comb["pmra"].to_numpy(float), comb["pmdec"].to_numpy(float))
        return meas.loc[keep].reset_index(drop=True)

    measured = [windowed(_measure(cl, scan, r_gaia, r_nir, s.g_limit, s.wobble_fraction))]
    n_field = [0]

    def on_chunk(part: pd.DataFrame) -> pd.DataFrame:
        n_field[0] += len(part)
        return windowed(_measure(part.assign(is_member=False), scan, r_gaia, r_nir, s.g_limit, s.wobble_fraction))

    measured.append(simulate_field(float(cluster["ra"]), float(cluster["dec"]), radius, r_field,
                                   g_limit=np.inf, density=s.field_density, binary_fraction=s.binary_fraction,
                                   a0_anchor=(float(phys["dist_pc"]), float(cluster["a0"])),
                                   populations=NIR_POPULATIONS, on_chunk=on_chunk,
                                   m_min_fn=lambda i, d, a: faintest_mass(s.g_limit, i, d, a)))
    m = pd.concat([p for p in measured if len(p)], ignore_index=True)
    if len(m) == 0:
        raise EmptyConeError(f"cluster {name}: no simulated source in its {radius:.3f} deg VVV field")
    cone = combine(m)
    ok = np.isfinite(cone["parallax"].to_numpy(float)) & np.isfinite(cone["pmra"].to_numpy(float))
    cone, m = cone.loc[ok].reset_index(drop=True), m.loc[ok].reset_index(drop=True)
    sid = m["gaia_source_id"].to_numpy(np.int64).copy()
    new = sid < 0
    sid[new] = make_source_ids(cone["ra"].to_numpy()[new], cone["dec"].to_numpy()[new], r_ids)
    dup = pd.Series(sid).duplicated().to_numpy()
    while dup.any():
        sid[dup] += 1
        dup = pd.Series(sid).duplicated().to_numpy()
    cone.insert(0, "source_id", sid)
    cone = cone[list(NIR_COLUMNS)]
    truth = pd.DataFrame({
        "source_id": sid, "is_member": m["true_is_member"].to_numpy(bool),
        "population": m["true_population"].astype(str).to_numpy(), "mass": m["true_mass"].to_numpy(float),
        "q": m["true_q"].to_numpy(float), "dist_pc": m["true_dist_pc"].to_numpy(float),
        "parallax_true": m["true_parallax"].to_numpy(float), "pmra_true": m["true_pmra"].to_numpy(float),
        "pmdec_true": m["true_pmdec"].to_numpy(float), "g_true": m["true_g"].to_numpy(float),
        "bp_true": m["true_bp"].to_numpy(float), "rp_true": m["true_rp"].to_numpy(float),
        "teff": m["true_teff"].to_numpy(float), "a0": m["true_a0"].to_numpy(float),
        "j_true": m["true_j"].to_numpy(float), "h_true": m["true_h"].to_numpy(float),
        "ks_true": m["true_ks"].to_numpy(float), "in_gaia": m["gaia_source_id"].to_numpy(np.int64) >= 0,
        "in_2mass": m["in_2mass"].to_numpy(bool), "in_vvv": m["in_vvv"].to_numpy(bool),
        "r_proj_pc": float(phys["dist_pc"]) * np.tan(np.deg2rad(
            _separation_deg(e0, cone["ra"].to_numpy(), cone["dec"].to_numpy()))),
    })
    order = np.argsort(sid, kind="stable")
    cone = cone.iloc[order].reset_index(drop=True)
    truth = truth.iloc[order].reset_index(drop=True)
    meta = {"cluster": name, "seed": int(cfg.sim.seed), "radius_deg": radius, "n_sources": int(len(cone)),
            "n_members": int(truth["is_member"].sum()), "n_field_generated": int(n_field[0]),
            "n_cluster_generated": int(model.n_stars), "true_distance_pc": float(phys["dist_pc"]),
            "isochrone": iso.attrs.get("provenance", ""), "version": VVV_CONE_VERSION,
            "surveys": sorted(SURVEYS), "pm_window_sigma": PM_WINDOW_SIGMA,
            "n_members_area": int(n_members_area[0]),
            "area_deg2": float(2 * np.pi * (1 - np.cos(np.deg2rad(radius))) * (180 / np.pi) ** 2),
            "counts": {"edges_g": COUNT_EDGES["g"].tolist(), "edges_ks": COUNT_EDGES["ks"].tolist(),
                       **{k: v.tolist() for k, v in counts.items()}}}
    return VVVCone(name=name, cone=cone, truth=truth, meta=meta)


def _pm_window(cluster: pd.Series):
    """PR22's first cut: |pmra - pmra_cl| and |pmdec - pmdec_cl| within PM_WINDOW_SIGMA x the
    cluster's dispersions (``pmra_std``, ``pmdec_std``); NaN proper motions are kept out."""
    pm0 = float(cluster["pmra"]), float(cluster["pmdec"])
    half = PM_WINDOW_SIGMA * float(cluster["pmra_std"]), PM_WINDOW_SIGMA * float(cluster["pmdec_std"])

    def inside(pmra: np.ndarray, pmdec: np.ndarray) -> np.ndarray:
        with np.errstate(invalid="ignore"):
            return (np.abs(pmra - pm0[0]) <= half[0]) & (np.abs(pmdec - pm0[1]) <= half[1])
    return inside


def star_counts(mag: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Number of finite ``mag`` per bin of ``edges`` (sources outside the edges not counted)."""
    mag = np.asarray(mag, dtype=float)
    return np.histogram(mag[np.isfinite(mag)], bins=edges)[0].astype(np.int64)


def _separation_deg(e0: np.ndarray, ra_deg: np.ndarray, dec_deg: np.ndarray) -> np.ndarray:
    rr, dd = np.deg2rad(ra_deg), np.deg2rad(dec_deg)
    u = np.stack([np.cos(dd) * np.cos(rr), np.cos(dd) * np.sin(rr), np.sin(dd)])
    return np.rad2deg(np.arccos(np.clip(e0 @ u, -1, 1)))
