r"""PARSEC isochrones: reading CMD output, interpolating grids, placing them in the CMD.

Sect. 2.3 of van Groeningen et al. (2023): the candidate condition of Eq. 5 and
the isochrone features of Eq. 17 use the PARSEC 1.2S (+ COLIBRI) isochrone of
the cluster's age (CG20 logAgeNN) at solar metallicity (Z = 0.0152), with
evolutionary stages ``label <= 7`` (up to the early AGB), moved to the
cluster's distance modulus and reddened point by point with the precomputed
dustapprox model ``gaia_kurucz_f99_a0_teff`` (Fitzpatrick 1999 law, Kurucz
atmospheres; :math:`A_X = k_X(A_0, T_{\rm eff})\,A_0`):

.. math::

    G = M_G + \mu + k_G A_0, \qquad G_{RP} = M_{RP} + \mu + k_{RP} A_0,
    \qquad C = G - G_{RP}.

Offline grids
-------------
CMD returns the isochrone at the requested age and Z. Offline
(:func:`local_isochrone`), :func:`isochrone_at` interpolates a stack of CMD
tables bilinearly: first between the two neighbouring ages of each
metallicity grid, then between the two grids bracketing the target in
[M/H] (:func:`z_to_mh`, the CMD relation with Y = 0.2485 + 1.78 Z and
(Z/X)_sun = 0.0207). Two isochrones are combined by *evolutionary phase*:
within each ``label`` (0 PMS, 1 MS, 2 SGB, 3 RGB, 4-6 core He burning, 7 EAGB)
every point is given its normalised position along the label,
:math:`u = (M_{\rm ini} - M_{\rm ini,min}) / (M_{\rm ini,max} - M_{\rm ini,min})`,
both isochrones are resampled at the union of their :math:`u` values and the
magnitudes, :math:`\log T_{\rm eff}`, masses etc. are averaged with the linear
weights. Labels present in only one of the two isochrones are dropped. An
exact grid point (same Z within 1e-6, age within 5e-4 dex) is returned as is.
Among the metallicity grids that bracket the age, the one on each side of the
target is chosen by the finest age bracket first, then the smallest
:math:`|\Delta[M/H]|`. The method used is written to ``attrs["provenance"]``.

The curve
---------
:func:`shift_isochrone` returns the curve in (colour, G) as a table of points;
consecutive points with the same ``segment`` id are joined by straight
segments. Segments join consecutive points of increasing initial mass, except
across the jump from the RGB tip to the start of core helium burning
(label 3 -> 4, the helium flash of low-mass stars), which is not a stellar
sequence. Segments longer than ``max_step_mag`` in (C, G) are split
(:func:`densify`), so that the KD-tree search of :mod:`ocmembers.method.features` is
exact with a small candidate set. :class:`IsochroneCurve` holds these points
for the distance computations.

.. warning::
   The dustapprox model is fitted for 3500 K <= Teff <= 50 000 K and
   0.01 <= A0 <= 20 mag; outside, the extinction coefficient is evaluated at the
   nearest bound (the cool lower main sequence gets the coefficient of 3500 K).

References
----------
van Groeningen et al. 2023, A&A 675, A68; Bressan et al. 2012, MNRAS 427, 127;
Fouesneau et al. 2022 (dustapprox); Fitzpatrick 1999, PASP 111, 63.
"""

from __future__ import annotations

import functools
import io
import logging
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ocmembers.exceptions import IsochroneRangeError, TableParseError

__all__ = [
    "CMD_REQUIRED", "z_to_mh", "isochrone_at", "extinction_coefficients", "shift_isochrone",
    "densify", "IsochroneCurve",
]

log = logging.getLogger(__name__)

#: Columns every CMD table must have.
CMD_REQUIRED: tuple[str, ...] = ("Zini", "logAge", "Mini", "label", "logTe", "Gmag", "G_RPmag")

#: Columns interpolated between isochrones (when present in both).
_INTERP_COLUMNS = ("Mini", "int_IMF", "Mass", "logL", "logTe", "logg", "mbolmag",
                   "Gmag", "G_BPmag", "G_RPmag")

_AGE_TOL = 5e-4
_Z_TOL = 1e-6

#: The jump that is not joined by a segment (RGB tip -> core He burning).
_BREAKS = ((3, 4),)


def z_to_mh(z: float | np.ndarray) -> float | np.ndarray:
    """[M/H] of PARSEC for metal mass fraction Z (CMD: Y = 0.2485 + 1.78 Z, (Z/X)_sun = 0.0207)."""
    z = np.asarray(z, dtype=float)
    y = 0.2485 + 1.78 * z
    x = 1.0 - y - z
    out = np.log10(z / x) - np.log10(0.0207)
    return float(out) if out.ndim == 0 else out


# ---------------------------------------------------------------------------
# Interpolation between grid isochrones
# ---------------------------------------------------------------------------
def _split(grids: pd.DataFrame) -> dict[tuple[float, float], pd.DataFrame]:
    keys = grids[["Zini", "logAge"]].round(6)
    out: dict[tuple[float, float], pd.DataFrame] = {}
    for (z, a), sub in grids.groupby([keys["Zini"], keys["logAge"]], sort=True):
        if (z, a) not in out:
            out[(float(z), float(a))] = sub
    return out


def _by_phase(a: pd.DataFrame, b: pd.DataFrame, w: float) -> tuple[pd.DataFrame, list[int]]:
    """``(1 - w) a + w b``, matching points by normalised initial mass within each label."""
    if w <= 0:
        return a.copy(), []
    if w >= 1:
        return b.copy(), []
    cols = [c for c in _INTERP_COLUMNS if c in a.columns and c in b.columns]
    la, lb = set(a["label"].unique()), set(b["label"].unique())
    dropped = sorted(int(x) for x in la ^ lb)
    parts = []
    for lab in sorted(la & lb):
        pa = a.loc[a["label"] == lab].sort_values("Mini")
        pb = b.loc[b["label"] == lab].sort_values("Mini")
        ua, ub = _phase(pa["Mini"].to_numpy()), _phase(pb["Mini"].to_numpy())
        u = np.union1d(ua, ub)
        block = {"label": np.full(len(u), lab, dtype="int64")}
        for c in cols:
            va = _interp(u, ua, pa[c].to_numpy(float))
            vb = _interp(u, ub, pb[c].to_numpy(float))
            block[c] = (1.0 - w) * va + w * vb
        parts.append(pd.DataFrame(block))
    if not parts:
        raise IsochroneRangeError("the two isochrones to interpolate share no evolutionary stage")
    return pd.concat(parts, ignore_index=True), dropped


def _phase(mini: np.ndarray) -> np.ndarray:
    span = mini[-1] - mini[0]
    if len(mini) < 2 or span <= 0:
        return np.zeros(len(mini))
    return (mini - mini[0]) / span


def _interp(u: np.ndarray, xp: np.ndarray, fp: np.ndarray) -> np.ndarray:
    xp_u, idx = np.unique(xp, return_index=True)
    return np.interp(u, xp_u, fp[idx])


def isochrone_at(grids: pd.DataFrame, log_age: float, z: float) -> pd.DataFrame:
    """The isochrone of ``log_age`` and ``z`` from a stack of CMD isochrones.

    Parameters
    ----------
    grids : DataFrame
        Stacked :func:`read_cmd` tables (columns ``Zini, MH, logAge, Mini,
        label, ...``), several metallicities and ages.
    log_age : float
        log10 of the age in years.
    z : float
        Metal mass fraction (PARSEC ``Zini``).

    Returns
    -------
    DataFrame
        Columns as in CMD output (``Zini, MH, logAge, Mini, label, logTe,
        Gmag, G_BPmag, G_RPmag``...), sorted by initial mass;
        ``attrs["provenance"]`` says which grid points were combined and how
        (module docstring).

    Raises
    ------
    IsochroneRangeError
        The age or metallicity lies outside what the grids cover.
    """
    if "MH" not in grids.columns:
        grids = grids.assign(MH=z_to_mh(grids["Zini"].to_numpy(float)))
    iso = _split(grids)
    if not iso:
        raise IsochroneRangeError("no isochrones in the grid")
    zs = sorted({k[0] for k in iso})
    ages_of = {zv: np.array(sorted(k[1] for k in iso if k[0] == zv)) for zv in zs}
    mh_of = {zv: float(np.mean(next(v for k, v in iso.items() if k[0] == zv)["MH"])) for zv in zs}
    target_mh = z_to_mh(z)

    # Which ages bracket log_age in each metallicity grid.
    bracket: dict[float, tuple[float, float]] = {}
    for zv, ages in ages_of.items():
        hit = np.flatnonzero(np.abs(ages - log_age) <= _AGE_TOL)
        if len(hit):
            bracket[zv] = (ages[hit[0]], ages[hit[0]])
            continue
        lo, hi = ages[ages < log_age], ages[ages > log_age]
        if len(lo) and len(hi):
            bracket[zv] = (lo[-1], hi[0])
    if not bracket:
        ranges = ", ".join(f"Z={zv:g}: {ages_of[zv][0]:.2f}-{ages_of[zv][-1]:.2f}" for zv in zs)
        raise IsochroneRangeError(f"logAge {log_age:.3f} lies outside every isochrone grid ({ranges})")

    def key(zv: float) -> tuple[float, float]:
        lo, hi = bracket[zv]
        return (round(hi - lo, 3), abs(mh_of[zv] - target_mh))

    exact_z = [zv for zv in bracket if abs(zv - z) <= _Z_TOL * max(1.0, z)]
    if exact_z:
        z_lo = z_hi = exact_z[0]
    else:
        lower = [zv for zv in bracket if mh_of[zv] < target_mh]
        upper = [zv for zv in bracket if mh_of[zv] > target_mh]
        if not lower or not upper:
            have = ", ".join(f"{zv:g}" for zv in sorted(bracket))
            raise IsochroneRangeError(f"Z = {z:g} ([M/H] = {target_mh:+.3f}) is not bracketed by the grids "
                                      f"that cover logAge {log_age:.3f} (Z = {have})")
        z_lo, z_hi = min(lower, key=key), min(upper, key=key)

    steps: list[str] = []
    dropped: list[int] = []

    def at_age(zv: float) -> pd.DataFrame:
        a_lo, a_hi = bracket[zv]
        if a_lo == a_hi:
            steps.append(f"Z={zv:g} logAge={a_lo:.5f}")
            return iso[(zv, a_lo)]
        w = (log_age - a_lo) / (a_hi - a_lo)
        steps.append(f"Z={zv:g} logAge {a_lo:.5f}-{a_hi:.5f} (w={w:.3f})")
        out, d = _by_phase(iso[(zv, a_lo)], iso[(zv, a_hi)], w)
        dropped.extend(d)
        return out

    first = at_age(z_lo)
    if z_hi == z_lo:
        result = first.copy()
        exact_age = bracket[z_lo][0] == bracket[z_lo][1]
        how = "exact grid point" if exact_age else "age interpolation by evolutionary phase"
    else:
        second = at_age(z_hi)
        w = (target_mh - mh_of[z_lo]) / (mh_of[z_hi] - mh_of[z_lo])
        result, d = _by_phase(first, second, w)
        dropped.extend(d)
        steps.append(f"[M/H] {mh_of[z_lo]:+.4f}..{mh_of[z_hi]:+.4f} (w={w:.3f})")
        how = "bilinear interpolation (age, then [M/H]) by evolutionary phase"
    result = result.drop(columns=[c for c in ("Zini", "MH", "logAge") if c in result.columns])
    result.insert(0, "Zini", float(z))
    result.insert(1, "MH", float(target_mh))
    result.insert(2, "logAge", float(log_age))
    # Along an isochrone the initial mass increases; labels are not always contiguous in
    # Mini (PARSEC marks a few ~0.35-0.4 Msun points as PMS in old isochrones).
    result = result.sort_values(["Mini", "label"], kind="stable").reset_index(drop=True)
    result["label"] = result["label"].astype("int64")
    note = f"; labels only in one isochrone dropped: {sorted(set(dropped))}" if dropped else ""
    result.attrs["provenance"] = f"PARSEC grid, {how}: " + "; ".join(steps) + note
    return result


# ---------------------------------------------------------------------------
# Distance, extinction, densification
# ---------------------------------------------------------------------------
@functools.lru_cache(maxsize=4)
def _extinction_models(model: str) -> tuple[Any, Any]:
    from dustapprox.models import PrecomputedModel
    root = resources.files("dustapprox").joinpath("data", "precomputed")
    with resources.as_file(root) as base:
        hits = sorted(Path(base).rglob(f"{model}.ecsv"))
    if not hits:
        raise IsochroneRangeError(f"dustapprox model {model!r} not found in the installed dustapprox")
    lib = PrecomputedModel()
    g = lib.load_model(str(hits[0]), passband="GAIA_GAIA3.G")
    rp = lib.load_model(str(hits[0]), passband="GAIA_GAIA3.Grp")
    return g, rp


def extinction_coefficients(teff: np.ndarray, a0: float,
                            model: str = "gaia_kurucz_f99_a0_teff") -> tuple[np.ndarray, np.ndarray]:
    """``(k_G, k_RP)`` = A_X / A_0 of the dustapprox ``model`` (inputs clipped to its fitted range)."""
    g_model, rp_model = _extinction_models(model)
    t = np.clip(np.asarray(teff, dtype=float), 3500.0, 50000.0)
    a = float(np.clip(a0, 0.01, 20.0))
    frame = pd.DataFrame({"A0": np.full(len(t), a), "teff": t})
    return np.asarray(g_model.predict(frame), float), np.asarray(rp_model.predict(frame), float)


def densify(curve: pd.DataFrame, max_step: float) -> pd.DataFrame:
    """Insert points on every segment longer than ``max_step`` (in (g_rp, G), mag).

    ``curve`` has ``g_rp``, ``phot_g_mean_mag`` and ``segment``; consecutive
    points with the same ``segment`` are joined. Other numeric columns are
    interpolated linearly; ``label`` is that of the segment's first point.
    """
    if max_step <= 0:
        raise ValueError(f"max_step_mag must be positive, got {max_step}")
    c = curve["g_rp"].to_numpy(float)
    g = curve["phot_g_mean_mag"].to_numpy(float)
    seg = curve["segment"].to_numpy()
    n = len(c)
    if n < 2:
        return curve.reset_index(drop=True)
    length = np.hypot(np.diff(c), np.diff(g))
    joined = seg[1:] == seg[:-1]
    n_sub = np.where(joined, np.maximum(1, np.ceil(length / max_step).astype(int)), 1)
    # Each original point i < n-1 is followed by n_sub[i] - 1 inserted points.
    counts = np.append(n_sub, 1)
    start = np.repeat(np.arange(n), counts)
    frac = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    frac = frac / np.repeat(np.append(n_sub, 1).astype(float), counts)
    end = np.minimum(start + 1, n - 1)
    out = {}
    for col in curve.columns:
        v = curve[col].to_numpy()
        if col in ("label", "segment") or not np.issubdtype(v.dtype, np.floating):
            out[col] = v[start]
        else:
            out[col] = v[start] + frac * (v[end] - v[start])
    return pd.DataFrame(out)


def shift_isochrone(iso: pd.DataFrame, dist_mod: float, a0: float, *, max_label: int = 7,
                    max_step_mag: float = 0.02, model: str = "gaia_kurucz_f99_a0_teff") -> pd.DataFrame:
    """The isochrone as seen at the cluster: apparent G and G_RP, colour, densified.

    Parameters
    ----------
    iso : DataFrame
        Absolute magnitudes as from :func:`read_cmd` / :func:`isochrone_at`
        (``label, Mini, logTe, Gmag, G_RPmag``).
    dist_mod : float
        Distance modulus (mag), CG20 ``DMNN``.
    a0 : float
        Extinction A_0 at 550 nm (mag), CG20 ``AVNN``.
    max_label : int
        Last evolutionary stage kept (``[isochrone] max_label``, 7 = early AGB).
    max_step_mag : float
        Largest distance between neighbouring points of the result
        (``[isochrone] max_step_mag``).
    model : str
        dustapprox model (``[isochrone] extinction_model``).

    Returns
    -------
    DataFrame
        ``g_rp, phot_g_mean_mag, phot_rp_mean_mag, label, Mini, logTe,
        segment`` (see the module docstring); ``attrs["provenance"]``.
    """
    missing = [c for c in ("label", "Mini", "logTe", "Gmag", "G_RPmag") if c not in iso.columns]
    if missing:
        raise TableParseError(f"isochrone: missing column(s) {', '.join(missing)}")
    if not np.isfinite(dist_mod) or not np.isfinite(a0):
        raise IsochroneRangeError(f"distance modulus {dist_mod} or A0 {a0} is not finite")
    sub = iso.loc[iso["label"] <= max_label].sort_values(["Mini", "label"], kind="stable")
    sub = sub.reset_index(drop=True)
    if len(sub) < 2:
        raise IsochroneRangeError(f"the isochrone has {len(sub)} point(s) with label <= {max_label}")
    teff = 10.0 ** sub["logTe"].to_numpy(float)
    if a0 > 0:
        k_g, k_rp = extinction_coefficients(teff, a0, model)
    else:
        k_g = k_rp = np.zeros(len(sub))
    g = sub["Gmag"].to_numpy(float) + dist_mod + k_g * max(a0, 0.0)
    rp = sub["G_RPmag"].to_numpy(float) + dist_mod + k_rp * max(a0, 0.0)
    label = sub["label"].to_numpy()
    brk = np.zeros(len(sub), dtype=bool)
    for a, b in _BREAKS:
        brk[1:] |= (label[:-1] == a) & (label[1:] == b)
    curve = pd.DataFrame({
        "g_rp": g - rp, "phot_g_mean_mag": g, "phot_rp_mean_mag": rp,
        "label": label.astype("int64"), "Mini": sub["Mini"].to_numpy(float),
        "logTe": sub["logTe"].to_numpy(float), "segment": np.cumsum(brk).astype("int64"),
    })
    curve = densify(curve, max_step_mag)
    src = iso.attrs.get("provenance", "isochrone")
    curve.attrs["provenance"] = (f"{src}; labels <= {max_label}; distance modulus {dist_mod:.3f}; "
                                 f"A0 {a0:.3f} with dustapprox {model}; densified to {max_step_mag} mag")
    return curve


@dataclass(frozen=True, eq=False)
class IsochroneCurve:
    """The isochrone curve in the CMD (colour = G - G_RP, G) for the distance computations.

    ``connected[i]`` says whether points ``i`` and ``i + 1`` are joined by a
    segment. Build it with :meth:`from_frame` from :func:`shift_isochrone`
    output (or the ``sets/<cluster>/isochrone.parquet`` file).
    """

    colour: np.ndarray
    g: np.ndarray
    connected: np.ndarray
    _cache: dict = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        if len(self.colour) != len(self.g) or len(self.connected) != max(len(self.g) - 1, 0):
            raise ValueError("IsochroneCurve: colour, g and connected have inconsistent lengths")
        if len(self.g) == 0:
            raise IsochroneRangeError("IsochroneCurve: the curve has no points")

    @classmethod
    def from_frame(cls, frame: pd.DataFrame) -> "IsochroneCurve":
        seg = frame["segment"].to_numpy() if "segment" in frame.columns else np.zeros(len(frame), int)
        return cls(colour=frame["g_rp"].to_numpy(float).copy(),
                   g=frame["phot_g_mean_mag"].to_numpy(float).copy(),
                   connected=(seg[1:] == seg[:-1]))

    @property
    def points(self) -> np.ndarray:
        """(n, 2) array of (colour, G)."""
        return np.column_stack([self.colour, self.g])

    def __len__(self) -> int:
        return len(self.g)
