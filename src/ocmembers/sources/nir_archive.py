r"""The archive route of Peña Ramírez et al. (2022): Gaia DR3 + 2MASS PSC + VVV/VIRAC2 around one cluster.

PR22 (Sect. 2.2) built, per cluster, an 8-dimensional data set over a circle of
5 x r50: 2MASS J, H, Ks with Gaia (E)DR3 astrometry for the bright sources, VVV
photometry and VIRAC2 astrometry (PSF fitting on the VVV images) for the faint
ones, inverse-variance combined where they overlap. This module fetches the three
catalogues and assembles that data set with the same maths as the simulated
route (:func:`ocmembers.method.nir.combine_measurements`).

Catalogues
----------
======================  ==============================================================
Gaia DR3 (TAP)          ``[source] gaia_table`` (``gaiadr3.gaia_source``): the columns of
                        :data:`ocmembers.method.columns.GAIA_COLUMNS` in the circle, with PR22's
                        first cut (:func:`ocmembers.method.nir.pm_window_bounds`) in the
                        ``WHERE`` clause (:func:`build_gaia_field_adql`); epoch 2016.0.
``II/246/out`` (VizieR)  2MASS All-Sky Point Source Catalog (Skrutskie et al. 2006):
                        ``2MASS`` (``_2MASS`` in older astroquery replies), ``RAJ2000, DEJ2000``
                        (deg, ICRS, epoch of the 2MASS scan,
                        1997-2001), ``Jmag, e_Jmag, Hmag, e_Hmag, Kmag, e_Kmag`` (mag; ``e_``
                        null for upper limits), ``Qflg`` (three letters, J H Ks: A-D
                        detections, E poor fit, F no reliable error, U upper limit, X no
                        brightness). A band is kept when its letter is in :data:`TMASS_GOOD_QFLG`.
``II/387/virac2``        VIRAC2 (Smith et al. 2025, MNRAS 536, 3707): ``srcid``, ``RAJ2000,
(VizieR)                DEJ2000`` (deg, Gaia DR3 frame, epoch 2014.0), ``e_RAJ2000, e_DEJ2000``
                        (mas), ``pmRA, e_pmRA, pmDE, e_pmDE`` (mas/yr, absolute, Gaia DR3
                        frame), ``Plx, e_Plx`` (mas), ``Jmag, e_Jmag, Hmag, e_Hmag, Ksmag,
                        e_Ksmag`` (VISTA system, Vega), ``UWE``. The position (with
                        ``e_RAJ2000, e_DEJ2000`` in mas), proper-motion and ``Ksmag`` names are
                        the ones a published client of II/387 reads; ``srcid`` and ``Jmag ...
                        e_Ksmag`` are those of VIRAC1 (II/364) as published clients read them,
                        assumed unchanged in II/387. The parallax spelling is VizieR's convention
                        and is not confirmed by a recorded reply, so :func:`parse_virac2` accepts
                        ``Plx``, ``plx`` or ``parallax`` (and the same for its error); nor is
                        ``UWE`` (not read). No recorded II/387 reply was available: the tests
                        use generated ones with these names.
======================  ==============================================================

PR22 used *preliminary* VIRAC2 astrometry calibrated on Gaia DR2 and VVV photometry
calibrated on Alonso-García et al. (2018); the public VIRAC2 (II/387) is the released
version (Gaia DR3 frame), and its PSF photometry stands for their VVV photometry here.
PR22 matched 2MASS to Gaia with the Gaia archive's pre-computed, proper-motion-aware
best neighbours; here the match is positional (:func:`mutual_nearest`, within
:data:`MATCH_ARCSEC`) after moving each Gaia position to the other catalogue's epoch with
its own proper motion (2000.0 for 2MASS, whose scans span 1997-2001; 2014.0 for VIRAC2).

Assembly (:func:`assemble_field`): the Gaia sources, then the VIRAC2 sources without a
Gaia counterpart (their position moved to 2016.0 with their VIRAC2 proper motion),
then 2MASS matched to either; 2MASS sources matched to neither have no astrometry and
are left out (counted in ``attrs``). Sources seen by VIRAC2 alone get ``source_id =
-srcid`` (negative: not a Gaia id). The combined columns are those of the simulated
field (:mod:`ocmembers.sim.vvv`), so the stage runs the same method on both.

Requests are built without the network (:func:`field_queries`, whose JSON is the cache
manifest text) and sent by :func:`fetch_field` through the clients of :mod:`.gaia` and
:mod:`.vizier`, with the retries of :mod:`.retry`; every message names the host
(``vizier.cds.unistra.fr``, ``gea.esac.esa.int``).
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd

from ocmembers.config import Config
from ocmembers.exceptions import EmptyResponseError, MissingColumnsError, TableParseError
from ocmembers.method.columns import GAIA_COLUMNS, cluster_label, require_columns
from ocmembers.method.nir import (AREA_R50, ASTROMETRY, BANDS, CORRELATIONS, combine_measurements,
                                  pm_window_bounds)
from ocmembers.sources import gaia, vizier
from ocmembers.sources.positional import propagate_positions

__all__ = ["TMASS_PSC", "VIRAC2", "TMASS_COLUMNS", "VIRAC2_COLUMNS", "TMASS_GOOD_QFLG", "MATCH_ARCSEC",
           "TMASS_EPOCH", "VIRAC2_EPOCH", "GAIA_EPOCH", "field_radius_deg", "build_gaia_field_adql",
           "tmass_query", "virac2_query", "field_queries", "parse_2mass_psc", "parse_virac2",
           "mutual_nearest", "assemble_field", "fetch_field", "FIELD_COLUMNS"]

log = logging.getLogger(__name__)

TMASS_PSC = "II/246/out"
VIRAC2 = "II/387/virac2"
TMASS_COLUMNS: tuple[str, ...] = ("2MASS", "RAJ2000", "DEJ2000", "Jmag", "e_Jmag", "Hmag", "e_Hmag",
                                  "Kmag", "e_Kmag", "Qflg")
VIRAC2_COLUMNS: tuple[str, ...] = ("srcid", "RAJ2000", "DEJ2000", "e_RAJ2000", "e_DEJ2000", "Plx", "e_Plx",
                                   "pmRA", "e_pmRA", "pmDE", "e_pmDE", "Jmag", "e_Jmag", "Hmag", "e_Hmag",
                                   "Ksmag", "e_Ksmag", "UWE")
#: 2MASS ``Qflg`` letters of a measured magnitude with an error (A-D: S/N >= 5 down to 3 sigma
#: detections; E, F, U, X are poor fits, no error, upper limits, no brightness).
TMASS_GOOD_QFLG = "ABCD"
#: Positional match radius (arcsec) of the 2MASS and VIRAC2 counterparts.
MATCH_ARCSEC = 1.0
GAIA_EPOCH = 2016.0
TMASS_EPOCH = 2000.0
VIRAC2_EPOCH = 2014.0
#: The columns of an assembled field (those of the simulated one that the archive can fill).
FIELD_COLUMNS: tuple[str, ...] = (
    "source_id", "ra", "dec", "parallax", "parallax_error", "pmra", "pmra_error", "pmdec", "pmdec_error",
    "parallax_pmra_corr", "parallax_pmdec_corr", "pmra_pmdec_corr", "astrometry",
    "Jmag", "e_Jmag", "Hmag", "e_Hmag", "Ksmag", "e_Ksmag",
    "tmass_j", "tmass_j_error", "tmass_h", "tmass_h_error", "tmass_ks", "tmass_ks_error",
    "vvv_j", "vvv_j_error", "vvv_h", "vvv_h_error", "vvv_ks", "vvv_ks_error",
    "phot_g_mean_mag", "phot_bp_mean_mag", "phot_rp_mean_mag", "gaia_source_id", "tmass_id", "virac_srcid",
)
_GAIA_PHOT = ("phot_g_mean_mag", "phot_bp_mean_mag", "phot_rp_mean_mag")


def field_radius_deg(cluster: pd.Series) -> float:
    """PR22's studied radius, :data:`ocmembers.method.nir.AREA_R50` x r50 (deg)."""
    r = AREA_R50 * float(cluster["r50"])
    if not np.isfinite(r) or r <= 0:
        raise TableParseError(f"cluster {cluster_label(cluster)}: r50 = {cluster.get('r50')!r} gives no field")
    return r


def build_gaia_field_adql(cluster: pd.Series, cfg: Config) -> str:
    """The ADQL of the Gaia DR3 sources of the field: the circle of 5 x r50 and the
    proper-motion window of PR22 Sect. 3 (no parallax cut)."""
    f = gaia.format_number
    (a0, a1), (d0, d1) = pm_window_bounds(cluster)
    return (
        f"SELECT {', '.join(GAIA_COLUMNS)}\n"
        f"FROM {cfg.source.gaia_table}\n"
        f"WHERE 1=CONTAINS(POINT('ICRS', ra, dec), "
        f"CIRCLE('ICRS', {f(cluster['ra'])}, {f(cluster['dec'])}, {f(field_radius_deg(cluster))}))\n"
        f"AND pmra BETWEEN {f(a0)} AND {f(a1)}\n"
        f"AND pmdec BETWEEN {f(d0)} AND {f(d1)}"
    )


def tmass_query(cluster: pd.Series) -> dict[str, Any]:
    """The 2MASS PSC request of the field (the whole circle: 2MASS has no proper motions)."""
    return vizier.build_vizier_region_query(TMASS_PSC, TMASS_COLUMNS, ra=float(cluster["ra"]),
                                            dec=float(cluster["dec"]), radius_deg=field_radius_deg(cluster))


def virac2_query(cluster: pd.Series) -> dict[str, Any]:
    """The VIRAC2 request of the field, with PR22's proper-motion window as VizieR column filters."""
    (a0, a1), (d0, d1) = pm_window_bounds(cluster)
    f = gaia.format_number
    return vizier.build_vizier_region_query(
        VIRAC2, VIRAC2_COLUMNS, ra=float(cluster["ra"]), dec=float(cluster["dec"]),
        radius_deg=field_radius_deg(cluster), column_filters={"pmRA": f"{f(a0)}..{f(a1)}",
                                                              "pmDE": f"{f(d0)}..{f(d1)}"})


def field_queries(cluster: pd.Series, cfg: Config) -> dict[str, Any]:
    """The three requests of a field (no network): ``{"gaia": adql, "2mass": payload, "virac2": payload}``."""
    return {"gaia": build_gaia_field_adql(cluster, cfg), "2mass": tmass_query(cluster),
            "virac2": virac2_query(cluster)}


def _column(raw: pd.DataFrame, names: tuple[str, ...], what: str, *, required: bool = True) -> np.ndarray:
    by_lower = {str(c).lower(): c for c in raw.columns}
    for n in names:
        if n.lower() in by_lower:
            return pd.to_numeric(raw[by_lower[n.lower()]], errors="coerce").to_numpy(dtype=float)
    if required:
        raise MissingColumnsError(f"{what}: no column {' / '.join(names)} in the reply "
                                  f"(columns: {', '.join(map(str, raw.columns))})")
    return np.full(len(raw), np.nan)


def parse_2mass_psc(table: Any, *, what: str = f"2MASS PSC (VizieR {TMASS_PSC})") -> pd.DataFrame:
    """A 2MASS PSC reply as ``tmass_id, tmass_ra, tmass_dec, tmass_j, tmass_j_error, ...,
    tmass_ks_error, tmass_qflg``; a band whose ``Qflg`` letter is not in :data:`TMASS_GOOD_QFLG`
    (or without an error: upper limits) is NaN."""
    raw = vizier.to_frame(table)
    # astroquery names the column "2MASS" (use_names_over_ids=True, astroquery >= 0.4); older
    # clients, and VOTable IDs, spell it "_2MASS" (an XML id cannot start with a digit)
    id_col = next((c for c in ("2MASS", "_2MASS") if c in raw.columns), None)
    out = pd.DataFrame({"tmass_id": (raw[id_col].astype(str).str.strip() if id_col is not None
                                     else pd.Series([""] * len(raw), dtype=str)),
                        "tmass_ra": _column(raw, ("RAJ2000", "_RAJ2000"), what),
                        "tmass_dec": _column(raw, ("DEJ2000", "_DEJ2000"), what)})
    if "Qflg" in raw.columns:
        qflg = raw["Qflg"].astype(str).str.strip().str.upper()
    else:
        log.warning("%s: no Qflg column; every measured band with an error is kept", what)
        qflg = pd.Series(["AAA"] * len(raw))
    for k, (b, mag) in enumerate((("j", "Jmag"), ("h", "Hmag"), ("ks", "Kmag"))):
        m = _column(raw, (mag,), what)
        e = _column(raw, (f"e_{mag}",), what)
        good = qflg.str[k].fillna("X").isin(list(TMASS_GOOD_QFLG)).to_numpy() & np.isfinite(m) & np.isfinite(e)
        out[f"tmass_{b}"] = np.where(good, m, np.nan)
        out[f"tmass_{b}_error"] = np.where(good, e, np.nan)
    out["tmass_qflg"] = qflg.to_numpy()
    ok = np.isfinite(out["tmass_ra"]) & np.isfinite(out["tmass_dec"])
    return out.loc[ok].reset_index(drop=True)


def parse_virac2(table: Any, *, what: str = f"VIRAC2 (VizieR {VIRAC2})") -> pd.DataFrame:
    """A VIRAC2 reply as ``virac_srcid, virac_ra, virac_dec`` (epoch 2014.0), ``virac_parallax,
    virac_pmra, virac_pmdec`` and their ``_error``, ``vvv_j, vvv_j_error, ... vvv_ks_error``.

    Raises
    ------
    MissingColumnsError
        Without the source id, a position, a proper motion or the parallax (under any of its
        spellings) and their errors.
    """
    raw = vizier.to_frame(table)
    ids = _column(raw, ("srcid", "sourceid", "source_id"), what)
    if np.isnan(ids).any():
        raise TableParseError(f"{what}: {int(np.isnan(ids).sum())} row(s) without a srcid")
    out = pd.DataFrame({"virac_srcid": ids.astype(np.int64),
                        "virac_ra": _column(raw, ("RAJ2000", "RA_ICRS", "ra"), what),
                        "virac_dec": _column(raw, ("DEJ2000", "DE_ICRS", "dec"), what)})
    spell = {"parallax": ("Plx", "plx", "parallax"), "pmra": ("pmRA", "pmra"), "pmdec": ("pmDE", "pmdec")}
    for c, names in spell.items():
        out[f"virac_{c}"] = _column(raw, names, what)
        out[f"virac_{c}_error"] = _column(raw, tuple(f"e_{n}" for n in names) + (f"{c}_error",), what)
    for b, mag in (("j", "Jmag"), ("h", "Hmag"), ("ks", "Ksmag")):
        m = _column(raw, (mag,), what, required=False)
        e = _column(raw, (f"e_{mag}",), what, required=False)
        good = np.isfinite(m) & np.isfinite(e) & (e > 0)
        out[f"vvv_{b}"] = np.where(good, m, np.nan)
        out[f"vvv_{b}_error"] = np.where(good, e, np.nan)
    ok = np.isfinite(out["virac_ra"]) & np.isfinite(out["virac_dec"])
    return out.loc[ok].reset_index(drop=True)


def _unit(ra_deg: np.ndarray, dec_deg: np.ndarray) -> np.ndarray:
    ra, dec = np.deg2rad(np.asarray(ra_deg, float)), np.deg2rad(np.asarray(dec_deg, float))
    return np.column_stack([np.cos(dec) * np.cos(ra), np.cos(dec) * np.sin(ra), np.sin(dec)])


def mutual_nearest(ra1: np.ndarray, dec1: np.ndarray, ra2: np.ndarray, dec2: np.ndarray,
                   radius_arcsec: float) -> tuple[np.ndarray, np.ndarray]:
    """Index pairs ``(i1, i2)`` of sources that are each other's nearest neighbour within
    ``radius_arcsec`` (one-to-one)."""
    from scipy.spatial import cKDTree

    n1, n2 = len(ra1), len(ra2)
    if n1 == 0 or n2 == 0:
        return np.array([], dtype=np.int64), np.array([], dtype=np.int64)
    chord = 2 * np.sin(np.deg2rad(radius_arcsec / 3600.0) / 2)
    u1, u2 = _unit(ra1, dec1), _unit(ra2, dec2)
    d12, j12 = cKDTree(u2).query(u1, k=1, distance_upper_bound=chord)
    d21, j21 = cKDTree(u1).query(u2, k=1, distance_upper_bound=chord)
    i1 = np.flatnonzero(np.isfinite(d12))
    i2 = j12[i1]
    keep = j21[i2] == i1
    return i1[keep].astype(np.int64), i2[keep].astype(np.int64)


def assemble_field(gaia_cone: pd.DataFrame, tmass: pd.DataFrame, virac: pd.DataFrame, *,
                   match_arcsec: float = MATCH_ARCSEC) -> pd.DataFrame:
    """The 8-dimensional field (:data:`FIELD_COLUMNS`, module docstring) of a Gaia cone
    (archive columns), a parsed 2MASS reply (:func:`parse_2mass_psc`) and a parsed VIRAC2
    reply (:func:`parse_virac2`); any of the three may be empty. Sorted by ``source_id``;
    ``attrs``: the numbers of sources of each catalogue and of the matches."""
    g = gaia_cone.reset_index(drop=True)
    require_columns(g, ("source_id", "ra", "dec", *ASTROMETRY, *(f"{c}_error" for c in ASTROMETRY)),
                    "Gaia field")
    gpm = (g["pmra"].to_numpy(float), g["pmdec"].to_numpy(float))
    # Gaia <-> VIRAC2 at the VIRAC2 epoch
    ra14, de14 = propagate_positions(g["ra"].to_numpy(float), g["dec"].to_numpy(float), *gpm,
                                     VIRAC2_EPOCH - GAIA_EPOCH)
    ig, iv = mutual_nearest(ra14, de14, virac["virac_ra"].to_numpy(float), virac["virac_dec"].to_numpy(float),
                            match_arcsec)
    v_only = np.setdiff1d(np.arange(len(virac)), iv)
    n_g = len(g)
    rows = pd.DataFrame(index=np.arange(n_g + v_only.size))
    vrow = np.full(len(rows), -1, dtype=np.int64)
    vrow[ig] = iv
    vrow[n_g:] = v_only
    has_v = vrow >= 0
    for c in [c for c in virac.columns if c not in ("virac_ra", "virac_dec")]:
        col = virac[c].to_numpy()
        fill = -1 if c == "virac_srcid" else np.nan
        rows[c] = np.where(has_v, col[np.where(has_v, vrow, 0)] if len(virac) else fill, fill)
    # positions at 2016.0: Gaia's, else VIRAC2's moved with its proper motion
    vra = np.full(len(rows), np.nan)
    vde = np.full(len(rows), np.nan)
    if v_only.size:
        vv = virac.iloc[v_only]
        r16, d16 = propagate_positions(vv["virac_ra"].to_numpy(float), vv["virac_dec"].to_numpy(float),
                                       vv["virac_pmra"].to_numpy(float), vv["virac_pmdec"].to_numpy(float),
                                       GAIA_EPOCH - VIRAC2_EPOCH)
        vra[n_g:], vde[n_g:] = r16, d16
    rows["virac_ra_2016"], rows["virac_dec_2016"] = vra, vde
    for c in ("ra", "dec", *ASTROMETRY, *(f"{c}_error" for c in ASTROMETRY),
              *(f"{a}_{b}_corr" for a, b in CORRELATIONS), *_GAIA_PHOT):
        col = g[c].to_numpy(float) if c in g.columns else np.full(n_g, np.nan)
        rows[f"gaia_{c}"] = np.concatenate([col, np.full(v_only.size, np.nan)])
    rows["gaia_source_id"] = np.concatenate([g["source_id"].to_numpy(np.int64), np.full(v_only.size, -1)])
    # 2MASS <-> (Gaia or VIRAC2-only) at the 2MASS epoch
    ra_all = np.where(np.isfinite(rows["gaia_ra"]), rows["gaia_ra"], rows["virac_ra_2016"]).astype(float)
    de_all = np.where(np.isfinite(rows["gaia_dec"]), rows["gaia_dec"], rows["virac_dec_2016"]).astype(float)
    pmra_all = np.where(np.isfinite(rows["gaia_pmra"]), rows["gaia_pmra"], rows["virac_pmra"]).astype(float)
    pmde_all = np.where(np.isfinite(rows["gaia_pmdec"]), rows["gaia_pmdec"], rows["virac_pmdec"]).astype(float)
    ra00, de00 = propagate_positions(ra_all, de_all, pmra_all, pmde_all, TMASS_EPOCH - GAIA_EPOCH)
    ir, it = mutual_nearest(ra00, de00, tmass["tmass_ra"].to_numpy(float), tmass["tmass_dec"].to_numpy(float),
                            match_arcsec)
    trow = np.full(len(rows), -1, dtype=np.int64)
    trow[ir] = it
    has_t = trow >= 0
    for b in BANDS:
        for c in (f"tmass_{b}", f"tmass_{b}_error"):
            col = tmass[c].to_numpy(float) if len(tmass) else np.zeros(0)
            rows[c] = np.where(has_t, col[np.where(has_t, trow, 0)] if len(tmass) else np.nan, np.nan)
        for c in (f"vvv_{b}", f"vvv_{b}_error"):
            if c not in rows.columns:
                rows[c] = np.nan
    for c in ("virac_parallax", "virac_pmra", "virac_pmdec"):
        for cc in (c, f"{c}_error"):
            if cc not in rows.columns:
                rows[cc] = np.nan
    if "virac_srcid" not in rows.columns:
        rows["virac_srcid"] = -1
    ids = tmass["tmass_id"].to_numpy(str) if len(tmass) else np.zeros(0, dtype=str)
    rows["tmass_id"] = np.where(has_t, ids[np.where(has_t, trow, 0)] if len(tmass) else "", "")
    out = combine_measurements(rows, fallback=("virac_ra_2016", "virac_dec_2016"), gaia_phot=_GAIA_PHOT)
    sid = rows["gaia_source_id"].to_numpy(np.int64).copy()
    sid[sid < 0] = -rows["virac_srcid"].to_numpy(np.int64)[sid < 0]
    out.insert(0, "source_id", sid)
    out["tmass_id"] = rows["tmass_id"].to_numpy()
    out["virac_srcid"] = rows["virac_srcid"].to_numpy(np.int64)
    ok = np.isfinite(out["parallax"].to_numpy(float)) & np.isfinite(out["pmra"].to_numpy(float))
    out = out.loc[ok, list(FIELD_COLUMNS)].sort_values("source_id", kind="stable").reset_index(drop=True)
    out.attrs.update(n_gaia=int(n_g), n_2mass=int(len(tmass)), n_virac2=int(len(virac)),
                     n_gaia_virac2=int(ig.size), n_virac2_only=int(v_only.size), n_2mass_matched=int(it.size),
                     n_2mass_unmatched=int(len(tmass) - it.size), n_no_astrometry=int((~ok).sum()),
                     match_arcsec=float(match_arcsec))
    return out


def _empty_tmass() -> pd.DataFrame:
    cols = {"tmass_id": pd.Series(dtype=str), "tmass_ra": [], "tmass_dec": []}
    for b in BANDS:
        cols[f"tmass_{b}"], cols[f"tmass_{b}_error"] = [], []
    return pd.DataFrame(cols).astype({c: float for c in cols if c != "tmass_id"})


def _empty_virac() -> pd.DataFrame:
    cols = {"virac_srcid": np.zeros(0, np.int64), "virac_ra": [], "virac_dec": []}
    for c in ASTROMETRY:
        cols[f"virac_{c}"], cols[f"virac_{c}_error"] = [], []
    for b in BANDS:
        cols[f"vvv_{b}"], cols[f"vvv_{b}_error"] = [], []
    return pd.DataFrame(cols)


def fetch_field(cluster: pd.Series, cfg: Config, *, gaia_client: Any = None, vizier_client: Any = None,
                sleep: Any = None) -> pd.DataFrame:
    """Fetch the three catalogues of ``cluster``'s field and assemble it (:func:`assemble_field`).

    A catalogue that answers with no rows (a field outside the VVV footprint) leaves its
    columns NaN and is named in ``attrs["empty_catalogues"]`` (``"2mass"``, ``"virac2"``), with a
    warning; the stage then says so (``photometry``, ``nir_coverage``). ``attrs["queries"]``
    holds the request texts (the Gaia ADQL, the VizieR payloads as :func:`vizier.query_text`).

    Raises
    ------
    ArchiveError
        A service could not be reached (after the retries of ``[source]``); the message names
        the cluster, the catalogue and the host.
    """
    name = cluster_label(cluster)
    q = field_queries(cluster, cfg)
    cone = gaia.fetch_cone(q["gaia"], cfg=cfg, client=gaia_client, what=f"cluster {name}: PR22 Gaia field",
                           sleep=sleep)
    parts, empty_catalogues = {}, []
    for key, payload, parse, empty in (("2mass", q["2mass"], parse_2mass_psc, _empty_tmass),
                                       ("virac2", q["virac2"], parse_virac2, _empty_virac)):
        what = (f"cluster {name}: {'2MASS PSC' if key == '2mass' else 'VIRAC2'} (VizieR {payload['catalog']} "
                f"at {vizier.vizier_host(vizier_client)})")
        try:
            parts[key] = parse(vizier.fetch_vizier(payload, cfg=cfg, client=vizier_client, what=what, sleep=sleep),
                               what=what)
        except EmptyResponseError as exc:
            log.warning("%s; its columns stay empty", exc)
            parts[key] = empty()
            empty_catalogues.append(key)
    field = assemble_field(cone, parts["2mass"], parts["virac2"])
    field.attrs["empty_catalogues"] = empty_catalogues
    field.attrs["queries"] = {"gaia": q["gaia"], "2mass": vizier.query_text(q["2mass"]),
                              "virac2": vizier.query_text(q["virac2"])}
    return field
