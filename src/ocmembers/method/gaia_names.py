r"""The spellings of the Gaia DR3 columns in the exports users have, and the one function that reads them.

Every user table of Gaia sources (a cone file, a DataFrame, an astropy Table)
goes through :func:`canonical_gaia_table`, which renames its columns to the
``gaiadr3.gaia_source`` names of :data:`ocmembers.method.columns.GAIA_COLUMNS`,
derives what can be derived, and raises one :class:`MissingColumnsError`
naming the table and every quantity still missing, each with its spellings.

Accepted spellings (:data:`GAIA_SPELLINGS`; matched without regard to case)
-------------------------------------------------------------------------

============================  =====================  ===============================
``gaiadr3.gaia_source``       VizieR I/355, I/350    unit (both)
============================  =====================  ===============================
source_id                     Source                 --
ra, dec                       RA_ICRS, DE_ICRS       deg (epoch 2016.0 / 2016.0)
                              (RAdeg, DEdeg)
ra_error, dec_error           e_RA_ICRS, e_DE_ICRS   mas (both: ``ra_error`` is
                              (e_RAdeg, e_DEdeg)
                                                     :math:`\sigma_{\alpha*}` in mas)
parallax, parallax_error      Plx, e_Plx             mas
pmra, pmra_error              pmRA (pmRA*), e_pmRA   mas/yr (:math:`\mu_{\alpha*}`)
pmdec, pmdec_error            pmDE, e_pmDE           mas/yr
ra_dec_corr ...               RADEcor, RAPlxcor,     --
pmra_pmdec_corr               RApmRAcor, RApmDEcor,
                              DEPlxcor, DEpmRAcor,
                              DEpmDEcor, PlxpmRAcor,
                              PlxpmDEcor, pmRApmDEcor
phot_{g,bp,rp}_mean_mag       Gmag, BPmag, RPmag     mag (Vega)
phot_{g,bp,rp}_mean_flux      FG, FBP, FRP           e-/s
phot_{g,bp,rp}_mean_flux_err  e_FG, e_FBP, e_FRP     e-/s
phot_{g,bp,rp}_n_obs          o_Gmag, o_BPmag,       --
                              o_RPmag
ruwe                          RUWE                   --
nu_eff_used_in_astrometry     nueff                  1/um
pseudocolour                  pscol                  1/um
astrometric_params_solved     Solved                 --
l, b, ecl_lat                 GLON, GLAT, ELAT       deg
g_rp, bp_rp                   G-RP, BP-RP            mag
============================  =====================  ===============================

The spellings and units were checked against the byte-by-byte description
of the I/355/gaiadr3 ReadMe (CDS): it labels the positions ``RAdeg``/``DEdeg``
with errors ``e_RAdeg``/``e_DEdeg`` (mas), which VizieR's query forms and
astroquery serve as ``RA_ICRS``/``DE_ICRS``; ``pmRA`` is
:math:`\mu_{\alpha*}` = pmRA cos DE in mas/yr; fluxes in e-/s; ``nueff`` and
``pscol`` in um-1; ``Solved`` in [3/95]; ``o_Gmag``, ``o_BPmag``, ``o_RPmag``
the numbers of observations. Some exports capitalise ``PlxpmRACor``: names
match without regard to case.

VizieR's magnitude errors ``e_Gmag, e_BPmag, e_RPmag`` (mag; not columns of
``gaia_source``) are read as ``phot_*_mean_mag_error`` only to derive missing
flux errors (below) and are then dropped: the method's magnitude errors are
the DPAC model's (:mod:`ocmembers.method.preprocessing`). The VizieR units
above are those of the archive, so no value is converted. astroquery returns
the archive's names from ``Gaia.launch_job`` and VizieR's from
``Vizier.query_region`` (a few tables spell ``pmRA*``); the HATS/LSDB Gaia DR3
catalogues keep the archive's names. CSV, Parquet, VOTable, FITS and ECSV are
read by :func:`ocmembers.sources.cone_file.read_cone_file`.

Derived when missing
--------------------
* ``phot_X_mean_mag`` from the flux: :math:`m = ZP_X - 2.5\log_{10} F_X` with
  the Gaia (E)DR3 Vega zero points :data:`DR3_VEGA_ZERO_POINTS` (Riello et al.
  2021; the EDR3 zero points, unchanged in DR3). On the real M67 extract
  this gives the archive's magnitudes to within the spacing of a float32
  (the archive stores magnitudes as float32: <= 1.9e-6 mag at G >= 16).
* ``phot_X_mean_flux_error`` from a magnitude error,
  :math:`\sigma_F = F \ln(10)/2.5\,\sigma_m`.
* ``phot_rp_mean_mag`` from ``phot_g_mean_mag`` and ``g_rp`` (or from
  ``phot_bp_mean_mag`` and ``bp_rp``); the colour G - G_RP that the method uses
  is computed by :func:`ocmembers.method.preprocessing.preprocess_cone`.
* ``astrometric_params_solved`` from the colour DR3 used in the astrometric
  solution: 31 (5 parameters) where ``nu_eff_used_in_astrometry`` is finite, 95
  (6 parameters) where ``pseudocolour`` is, 3 (2 parameters) where neither is
  (that is how DR3 fills the two columns).
* ``ecl_lat`` from ra, dec (in the preprocessing).

Not derived, hence required (:data:`CONE_REQUIRED`): the astrometry with its
errors and the three correlations between parallax and proper motions (the
Monte Carlo samples of Sect. 3.4 draw from the full covariance; setting them to
0 would change the probabilities, so a table without them is refused, and the
message says how to ask VizieR for them), G and G_RP (or what they follow
from), ``phot_g_n_obs`` and ``phot_rp_n_obs`` (the DPAC error model), and the
two colours that the parallax zero point needs.

References
----------
Riello, M., et al. 2021, A&A 649, A3. Gaia Collaboration, Vallenari, A., et al.
2023, A&A 674, A1. VizieR I/355/gaiadr3 and I/350/gaiaedr3 ReadMe files.
"""

from __future__ import annotations

import logging
from typing import Iterable

import numpy as np
import pandas as pd

from ocmembers.exceptions import MissingColumnsError, TableParseError
from ocmembers.method.preprocessing import PREPROCESS_REQUIRED

__all__ = ["GAIA_SPELLINGS", "DR3_VEGA_ZERO_POINTS", "CONE_REQUIRED", "canonical_gaia_table", "drop_duplicate_sources",
           "spellings_of"]

log = logging.getLogger(__name__)

#: Accepted spellings of each canonical ``gaiadr3.gaia_source`` column besides the canonical
#: name itself (VizieR I/355/gaiadr3 and I/350/gaiaedr3; matched without regard to case).
GAIA_SPELLINGS: dict[str, tuple[str, ...]] = {
    "source_id": ("Source",),
    "ra": ("RA_ICRS", "RAdeg"), "dec": ("DE_ICRS", "DEdeg"),
    "ra_error": ("e_RA_ICRS", "e_RAdeg"), "dec_error": ("e_DE_ICRS", "e_DEdeg"),
    "parallax": ("Plx",), "parallax_error": ("e_Plx",),
    "pmra": ("pmRA", "pmRA*"), "pmra_error": ("e_pmRA", "e_pmRA*"),
    "pmdec": ("pmDE",), "pmdec_error": ("e_pmDE",),
    "ra_dec_corr": ("RADEcor",), "ra_parallax_corr": ("RAPlxcor",),
    "ra_pmra_corr": ("RApmRAcor",), "ra_pmdec_corr": ("RApmDEcor",),
    "dec_parallax_corr": ("DEPlxcor",), "dec_pmra_corr": ("DEpmRAcor",),
    "dec_pmdec_corr": ("DEpmDEcor",),
    "parallax_pmra_corr": ("PlxpmRAcor",), "parallax_pmdec_corr": ("PlxpmDEcor",),
    "pmra_pmdec_corr": ("pmRApmDEcor",),
    "phot_g_mean_mag": ("Gmag",), "phot_bp_mean_mag": ("BPmag",), "phot_rp_mean_mag": ("RPmag",),
    "phot_g_mean_flux": ("FG",), "phot_bp_mean_flux": ("FBP",), "phot_rp_mean_flux": ("FRP",),
    "phot_g_mean_flux_error": ("e_FG",), "phot_bp_mean_flux_error": ("e_FBP",),
    "phot_rp_mean_flux_error": ("e_FRP",),
    "phot_g_mean_mag_error": ("e_Gmag",), "phot_bp_mean_mag_error": ("e_BPmag",),
    "phot_rp_mean_mag_error": ("e_RPmag",),
    "phot_g_n_obs": ("o_Gmag",), "phot_bp_n_obs": ("o_BPmag",), "phot_rp_n_obs": ("o_RPmag",),
    "ruwe": ("RUWE",), "nu_eff_used_in_astrometry": ("nueff",), "pseudocolour": ("pscol",),
    "astrometric_params_solved": ("Solved",),
    "l": ("GLON",), "b": ("GLAT",), "ecl_lat": ("ELAT",),
    "g_rp": ("G-RP",), "bp_rp": ("BP-RP",),
}

#: Gaia (E)DR3 Vega zero points (mag) of G, G_BP, G_RP (Riello et al. 2021; the archive's magnitudes
#: follow from its fluxes with these to float32 precision on the M67 extract, tests/test_gaia_names.py).
DR3_VEGA_ZERO_POINTS: dict[str, float] = {"g": 25.6873668671, "bp": 25.3385422158, "rp": 24.7478955012}

#: What a cone must hold after renaming and deriving (``ecl_lat`` follows from ra, dec).
CONE_REQUIRED: tuple[str, ...] = tuple(c for c in PREPROCESS_REQUIRED if c != "ecl_lat")

_MAG_ERRORS = tuple(f"phot_{b}_mean_mag_error" for b in ("g", "bp", "rp"))
_LN10_2P5 = np.log(10.0) / 2.5

_ALIASES: dict[str, str] = {}
for _canon, _names in GAIA_SPELLINGS.items():
    for _n in (_canon, *_names):
        if _ALIASES.setdefault(_n.lower(), _canon) != _canon:  # pragma: no cover - checked by a test
            raise RuntimeError(f"spelling {_n!r} names two columns")


def spellings_of(column: str) -> tuple[str, ...]:
    """The accepted spellings of canonical ``column`` (itself first)."""
    return (column, *GAIA_SPELLINGS.get(column, ()))


def _rename(table: pd.DataFrame) -> pd.DataFrame:
    """Columns renamed to the canonical names (others lower-cased); a canonical name wins a clash."""
    targets = [_ALIASES.get(str(c).strip().lower(), str(c).strip().lower()) for c in table.columns]
    keep, seen = [], {}
    exact = {t for c, t in zip(table.columns, targets) if str(c) == t}
    for i, (c, t) in enumerate(zip(table.columns, targets)):
        if t in seen or (t in exact and str(c) != t):
            log.debug("column %r dropped: %r already holds %s", c, t, t)
            continue
        seen[t] = i
        keep.append(i)
    out = table.iloc[:, keep].copy()
    out.columns = [targets[i] for i in keep]
    return out


def _derive(table: pd.DataFrame) -> pd.DataFrame:
    """``table`` with the derivable columns that are missing added (module docstring)."""
    cols = table.columns
    for band, zp in DR3_VEGA_ZERO_POINTS.items():
        mag, flux = f"phot_{band}_mean_mag", f"phot_{band}_mean_flux"
        if mag not in cols and flux in cols:
            f = table[flux].to_numpy(float)
            with np.errstate(divide="ignore", invalid="ignore"):
                table[mag] = np.where(f > 0, zp - 2.5 * np.log10(f), np.nan)
        ferr, merr = f"phot_{band}_mean_flux_error", f"phot_{band}_mean_mag_error"
        if ferr not in cols and merr in cols and flux in table.columns:
            table[ferr] = table[flux].to_numpy(float) * _LN10_2P5 * table[merr].to_numpy(float)
    if "phot_rp_mean_mag" not in table.columns:
        if {"phot_g_mean_mag", "g_rp"} <= set(table.columns):
            table["phot_rp_mean_mag"] = table["phot_g_mean_mag"].to_numpy(float) - table["g_rp"].to_numpy(float)
        elif {"phot_bp_mean_mag", "bp_rp"} <= set(table.columns):
            table["phot_rp_mean_mag"] = table["phot_bp_mean_mag"].to_numpy(float) - table["bp_rp"].to_numpy(float)
    if "astrometric_params_solved" not in table.columns and \
            {"nu_eff_used_in_astrometry", "pseudocolour"} <= set(table.columns):
        nu = np.isfinite(pd.to_numeric(table["nu_eff_used_in_astrometry"], errors="coerce").to_numpy(float))
        pc = np.isfinite(pd.to_numeric(table["pseudocolour"], errors="coerce").to_numpy(float))
        table["astrometric_params_solved"] = np.where(nu, 31, np.where(pc, 95, 3)).astype(np.int16)
    return table.drop(columns=[c for c in _MAG_ERRORS if c in table.columns])


def canonical_gaia_table(table: pd.DataFrame, what: str,
                         require: Iterable[str] = CONE_REQUIRED) -> pd.DataFrame:
    """A table of Gaia DR3 sources with the ``gaiadr3.gaia_source`` column names.

    Parameters
    ----------
    table : DataFrame
        Columns in any spelling of :data:`GAIA_SPELLINGS` (any case); other
        columns are kept, lower-cased.
    what : str
        The table in messages: ``"cone file /path/x.csv"``.
    require : iterable of str
        Canonical columns that must be present after deriving (default
        :data:`CONE_REQUIRED`; ``()`` only renames and derives).

    Returns
    -------
    DataFrame
        A new frame (the input is not changed).

    Raises
    ------
    MissingColumnsError
        One error naming ``what`` and every missing quantity with its accepted spellings.
    """
    out = _derive(_rename(table))
    missing = [c for c in require if c not in out.columns]
    if missing:
        hints = {"phot_g_mean_mag": " or phot_g_mean_flux/FG",
                 "phot_rp_mean_mag": " or phot_rp_mean_flux/FRP, or G and g_rp/G-RP",
                 "astrometric_params_solved": " or both nu_eff_used_in_astrometry and pseudocolour"}
        parts = [f"{c} (as {' or '.join(spellings_of(c))}{hints.get(c, '')})" for c in missing]
        tip = ""
        if any(c.endswith("_corr") for c in missing):
            tip = ("; VizieR gives the correlations with all columns (astroquery "
                   "Vizier(columns=['**']) or the 'PlxpmRAcor', 'PlxpmDEcor', 'pmRApmDEcor' columns)")
        raise MissingColumnsError(f"{what}: missing {len(missing)} quantit{'y' if len(missing) == 1 else 'ies'} "
                                  f"the method needs: {'; '.join(parts)}{tip}")
    if "source_id" in out.columns and out["source_id"].dtype.kind in "iu":
        out["source_id"] = out["source_id"].astype("int64")
    return drop_duplicate_sources(out, what)


def drop_duplicate_sources(table: pd.DataFrame, what: str) -> pd.DataFrame:
    """``table`` with one row per ``source_id``.

    A source listed twice with the same values (overlapping queries concatenated)
    is kept once, with a warning and the count in ``attrs["n_duplicates_dropped"]`` (the
    ``source_id`` of each dropped repeat in ``attrs["duplicate_ids"]``);
    a source listed twice with different values is refused: which row is the star
    cannot be known, and keeping both would give it two probabilities.

    Raises
    ------
    TableParseError
        Naming ``what``, the number of conflicting ``source_id`` and a few of them.
    """
    if "source_id" not in table.columns:
        return table
    dup = table["source_id"].duplicated(keep=False).to_numpy()
    if not dup.any():
        return table
    rows = table.loc[dup]
    differs = rows.groupby("source_id").nunique(dropna=False).gt(1).any(axis=1)
    if differs.any():
        ids = ", ".join(str(i) for i in differs.index[differs][:5])
        raise TableParseError(f"{what}: {int(differs.sum())} source_id(s) appear more than once with "
                              f"different values (e.g. {ids}); keep one row per source")
    n = int(table["source_id"].duplicated().sum())
    log.warning("%s: %d repeated row(s) of the same source_id with the same values dropped", what, n)
    out = table.drop_duplicates("source_id", keep="first").reset_index(drop=True)
    repeated = table["source_id"].to_numpy()[table["source_id"].duplicated().to_numpy()]
    out.attrs = {**table.attrs, "n_duplicates_dropped": n, "duplicate_ids": [int(i) for i in repeated]}
    return out
