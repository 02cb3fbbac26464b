r"""Isochrones of the simulated sky: PARSEC when available, else a model of our own.

The cluster stars of the simulated sky are drawn from the same isochrone that
:meth:`ocmembers.sim.source.SimSource.isochrone` returns, so that the
pipeline sees a consistent world. With the shared PARSEC grids
(``<local_dir>/isochrones/*.dat``) and :func:`ocmembers.sources.parsec.local_isochrone`
that isochrone is PARSEC (interpolated in age and metallicity); without them
(a fresh machine, ``make demo`` with no data), or for an age outside the
PARSEC grids (the shared ones start at log age 7.0), it is :func:`model_isochrone`.

The fallback model
------------------
A deliberately simple, smooth stellar-evolution sketch, good enough to give a
cluster a main sequence, a turn-off, a sub-giant branch, a red-giant branch and
a red clump at the right places in the Gaia CMD (not a substitute for PARSEC):

* Zero-age main sequence, :math:`L_Z(M)` piecewise power laws
  (:math:`L \propto M^{2.3}` below 0.43 Msun, :math:`M^4` to 2 Msun,
  :math:`M^{3.5}` to 20 Msun, :math:`M^{2.5}` above) and
  :math:`R_Z(M) \propto M^{0.9}` (:math:`M<1`), :math:`M^{0.57}` (:math:`M\ge1`),
  normalised so that a 1 Msun star of 4.6 Gyr has :math:`L = R = 1`.
* Main-sequence lifetime :math:`t_{MS} = 10^{10}\,M^{-2.5}` yr
  (:math:`M \le 10`), :math:`3.16\times10^{7} (M/10)^{-1}` yr above; with
  :math:`x = t / t_{MS}`, :math:`L = L_Z (1 + 1.2 x^{1.5})`,
  :math:`R = R_Z (1 + 0.7 x^2)`; :math:`T_{eff} = 5772\,(L/R^2)^{1/4}` K.
* Post-main-sequence stars occupy the 4 per cent of initial mass above the
  turn-off mass :math:`M_{TO}` (:math:`t_{MS}(M_{TO}) = t`): sub-giant branch
  (label 2), red-giant branch to :math:`\log L = 3.3` (label 3) along
  :math:`T_{eff} = 4900 - 380 (\log L - 1)` K, and core-helium burning
  (label 4) at :math:`\log L = \max(1.7, 1.2 + 2.5 \log M)`.
* Metallicity: :math:`\Delta \log T_{eff} = -0.03\,[M/H]`,
  :math:`\Delta \log L = -0.1\,[M/H]`.
* Gaia magnitudes from :math:`M_{bol} = 4.74 - 2.5 \log L` and tables of
  :math:`BC_G`, :math:`G_{BP}-G_{RP}` and :math:`G-G_{RP}` against
  :math:`T_{eff}` for dwarfs (after Pecaut & Mamajek 2013, their online table
  v2019; :math:`BC_G` between 4000 and 8000 K after Andrae et al. 2018,
  Eq. 7 and Table 8; below 4000 K as :math:`BC_V + (V - G)` of M dwarfs).

No pre-main sequence, no AGB, no white dwarfs.

References
----------
Bressan, A., et al. 2012, MNRAS 427, 127 (PARSEC).
Pecaut, M. J., Mamajek, E. E. 2013, ApJS 208, 9.
Andrae, R., et al. 2018, A&A 616, A8.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import pandas as pd

from ocmembers.exceptions import IsochroneRangeError, OCMembersError
from ocmembers.sources.parsec import local_isochrone

__all__ = ["model_isochrone", "cluster_isochrone", "ISOCHRONE_COLUMNS", "LOG_AGE_RANGE",
           "teff_to_gaia", "ms_lifetime_yr"]

ISOCHRONE_COLUMNS: tuple[str, ...] = ("logAge", "MH", "Mini", "label", "logTe", "Gmag", "G_BPmag", "G_RPmag")

#: Ages the fallback model accepts (those of the PARSEC grids of the CMD service).
LOG_AGE_RANGE: tuple[float, float] = (6.0, 10.13)

MBOL_SUN = 4.74
TEFF_SUN = 5772.0

# Teff [K], BP-RP, G-RP, BC_G (dwarfs; see module docstring)
_COLOUR_TABLE = np.array([
    [2600., 4.50, 1.60, -2.00], [2900., 3.90, 1.52, -1.50], [3100., 3.30, 1.42, -1.20],
    [3300., 2.80, 1.30, -0.90], [3500., 2.45, 1.18, -0.75], [3700., 2.10, 1.05, -0.60],
    [4000., 1.80, 0.92, -0.50], [4500., 1.40, 0.73, -0.21], [5000., 1.10, 0.59, -0.05],
    [5500., 0.92, 0.50, 0.04], [5772., 0.82, 0.45, 0.06], [6000., 0.73, 0.40, 0.07],
    [7000., 0.48, 0.27, 0.08], [8000., 0.26, 0.14, 0.02], [9000., 0.05, 0.03, -0.18],
    [10000., -0.02, -0.01, -0.35], [12000., -0.09, -0.04, -0.75], [15000., -0.15, -0.07, -1.20],
    [20000., -0.25, -0.12, -1.90], [30000., -0.35, -0.17, -2.90], [40000., -0.40, -0.20, -3.60],
])


def teff_to_gaia(logte: np.ndarray, logl: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Absolute ``(G, G_BP, G_RP)`` from :math:`\\log T_{eff}` and :math:`\\log L/L_\\odot`."""
    lt = np.log10(_COLOUR_TABLE[:, 0])
    bprp = np.interp(logte, lt, _COLOUR_TABLE[:, 1])
    grp = np.interp(logte, lt, _COLOUR_TABLE[:, 2])
    bc = np.interp(logte, lt, _COLOUR_TABLE[:, 3])
    g = MBOL_SUN - 2.5 * np.asarray(logl) - bc
    rp = g - grp
    return g, rp + bprp, rp


def ms_lifetime_yr(mass: np.ndarray | float) -> np.ndarray:
    """Main-sequence lifetime of the fallback model (yr)."""
    m = np.asarray(mass, dtype=float)
    return np.where(m <= 10.0, 1e10 * m ** -2.5, 10 ** 7.5 * (m / 10.0) ** -1.0)


def _turnoff_mass(age_yr: float) -> float:
    t10 = 10 ** 7.5
    return float((age_yr / 1e10) ** (-1 / 2.5)) if age_yr >= t10 else float(10.0 * t10 / age_yr)


def _zams(m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """ZAMS :math:`\\log L` and :math:`\\log R` (solar units)."""
    l0 = np.log10(1 / 1.37)  # a 1 Msun ZAMS star brightens by 1.37 to 4.6 Gyr
    lm = np.log10(m)
    logl = np.select(
        [m < 0.43, m < 2.0, m < 20.0],
        [l0 + 4 * np.log10(0.43) + 2.3 * (lm - np.log10(0.43)), l0 + 4 * lm,
         l0 + 4 * np.log10(2.0) + 3.5 * (lm - np.log10(2.0))],
        l0 + 4 * np.log10(2.0) + 3.5 * (np.log10(20.0) - np.log10(2.0)) + 2.5 * (lm - np.log10(20.0)))
    r0 = np.log10(1 / 1.148)
    logr = r0 + np.where(m < 1.0, 0.9, 0.57) * lm
    return logl, logr


def model_isochrone(log_age: float, mh: float = 0.0, *, n_ms: int = 400, n_post: int = 240,
                    m_min: float = 0.09) -> pd.DataFrame:
    """The fallback isochrone (module docstring), in the CMD column format.

    Parameters
    ----------
    log_age : float
        log10 of the age in years, within :data:`LOG_AGE_RANGE`.
    mh : float
        Metallicity [M/H] (dex).
    n_ms, n_post : int
        Points on the main sequence and after it.

    Returns
    -------
    DataFrame
        ``logAge, MH, Mini, label, logTe, Gmag, G_BPmag, G_RPmag`` (absolute
        Vega magnitudes, ``Mini`` strictly increasing).
    """
    if not np.isfinite(log_age) or not LOG_AGE_RANGE[0] <= log_age <= LOG_AGE_RANGE[1]:
        raise IsochroneRangeError(f"log_age={log_age} outside the isochrone range "
                                  f"{LOG_AGE_RANGE[0]}-{LOG_AGE_RANGE[1]}")
    if not -2.5 <= mh <= 0.6:
        raise IsochroneRangeError(f"[M/H]={mh} outside the model range -2.5..0.6")
    age = 10 ** log_age
    m_to = _turnoff_mass(age)
    if m_to <= m_min:
        raise IsochroneRangeError(f"log_age={log_age}: no main sequence left")
    # -- main sequence
    m = np.geomspace(m_min, m_to, n_ms)
    x = np.clip(age / ms_lifetime_yr(m), 0, 1)
    logl_z, logr_z = _zams(m)
    logl = logl_z + np.log10(1 + 1.2 * x ** 1.5)
    logr = logr_z + np.log10(1 + 0.7 * x ** 2)
    logte = np.log10(TEFF_SUN) + 0.25 * (logl - 2 * logr)
    label = np.ones(n_ms, dtype=int)
    # -- after the turn-off: 4 per cent of initial mass
    s = np.linspace(0, 1, n_post + 1)[1:]
    m_post = m_to * (1 + 0.04 * s)
    lt_to, ll_to = logte[-1], logl[-1]
    lm = np.log10(m_post)
    logl_tip = 3.3 + np.maximum(0.0, 2.0 * (lm - np.log10(2.2)))
    logl_he = np.maximum(1.7, 1.2 + 2.5 * lm)
    te_rgb = lambda ll: np.log10(4900 - 380 * (ll - 1) + 300 * np.clip(m_post - 1, 0, 3))  # noqa: E731
    sgb = s <= 0.15
    rgb = (s > 0.15) & (s <= 0.75)
    he = s > 0.75
    u = np.where(sgb, s / 0.15, 0)
    ll_base = ll_to + 0.1 + 0.0 * lm
    ll_sgb = ll_to + u * (ll_base - ll_to)
    lt_sgb = lt_to + u * (te_rgb(ll_base) - lt_to)
    v = np.clip((s - 0.15) / 0.6, 0, 1)
    ll_rgb = ll_base + v ** 0.7 * (logl_tip - ll_base)
    lt_rgb = te_rgb(ll_rgb)
    w = np.clip((s - 0.75) / 0.25, 0, 1)
    ll_he = logl_he + 0.15 * w
    lt_he = np.log10(4750 + 600 * np.clip(m_post - 2.2, 0, 6)) + 0.01 * w
    logl_p = np.select([sgb, rgb], [ll_sgb, ll_rgb], ll_he)
    logte_p = np.select([sgb, rgb], [lt_sgb, lt_rgb], lt_he)
    label_p = np.select([sgb, rgb, he], [2, 3, 4])
    mass = np.concatenate([m, m_post])
    logl = np.concatenate([logl, logl_p]) - 0.1 * mh
    logte = np.concatenate([logte, logte_p]) - 0.03 * mh
    label = np.concatenate([label, label_p])
    g, bp, rp = teff_to_gaia(logte, logl)
    return pd.DataFrame({"logAge": np.full(mass.size, float(log_age)), "MH": np.full(mass.size, float(mh)),
                         "Mini": mass, "label": label, "logTe": logte,
                         "Gmag": g, "G_BPmag": bp, "G_RPmag": rp})


def _parsec_dir(local_dir: str | Path) -> Path | None:
    d = Path(local_dir) / "isochrones"
    return d if d.is_dir() and any(d.glob("*.dat")) else None


@functools.lru_cache(maxsize=64)
def _cached(local_dir: str, log_age: float, z: float, use_parsec: bool) -> pd.DataFrame:
    mh = float(np.log10(z / 0.0152))
    if use_parsec:
        d = _parsec_dir(local_dir)
        if d is not None:
            try:
                iso = local_isochrone(d, log_age, z)
            except IsochroneRangeError as exc:
                why = f"outside the PARSEC grids in {d}: {exc}"
            else:
                out = iso[[c for c in ISOCHRONE_COLUMNS if c in iso.columns]].copy()
                out.attrs["provenance"] = f"PARSEC ({iso.attrs.get('provenance', d)})"
                return out
        else:
            why = f"no PARSEC grid in {local_dir}/isochrones"
    else:
        why = "[sim] use_parsec = false"
    iso = model_isochrone(log_age, mh)
    iso.attrs["provenance"] = (f"ocmembers.sim.isochrones.model_isochrone(log_age={log_age:.3f}, "
                               f"MH={mh:.3f}) ({why})")
    return iso


def cluster_isochrone(local_dir: str | Path, log_age: float, z: float, *, use_parsec: bool = True,
                      cluster: str = "") -> pd.DataFrame:
    """The isochrone a simulated cluster is drawn from (PARSEC if possible, else the model).

    Raises
    ------
    IsochroneRangeError
        ``log_age`` outside the grid, naming ``cluster``.
    """
    try:
        iso = _cached(str(local_dir), round(float(log_age), 4), float(z), bool(use_parsec))
    except IsochroneRangeError as exc:
        raise IsochroneRangeError(f"cluster {cluster or '?'}: {exc}") from exc
    except OCMembersError:
        raise
    iso = iso.copy()
    iso.attrs = dict(iso.attrs)
    return iso
