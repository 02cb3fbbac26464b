"""DR2 -> DR3 match of member lists by position, for sources without the archive.

The archive route uses ``gaiadr3.dr2_neighbourhood``. Offline, the same
question is answered here: DR2 positions (epoch J2015.5) are propagated to
the DR3 epoch (J2016.0) with the DR2 proper motions, then matched to the DR3
cone with a KD-tree on unit vectors; the best match is the nearest one, ties
broken by the G magnitude difference, and a match is flagged ``ambiguous``
when a second DR3 source lies within the search radius with a magnitude
difference within ``ambiguous_dmag`` of the best. Source ids are never
compared: DR2 and DR3 ids of the same star differ for a few per cent of
sources (Torra et al. 2021).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.spatial import cKDTree

from ocmembers.config import Config
from ocmembers.method.columns import require_columns

__all__ = ["propagate_positions", "crossmatch_positional"]

_MAS_PER_DEG = 3.6e6


def propagate_positions(ra_deg: np.ndarray, dec_deg: np.ndarray, pmra_masyr: np.ndarray,
                        pmdec_masyr: np.ndarray, dt_yr: float) -> tuple[np.ndarray, np.ndarray]:
    """Linear propagation over ``dt_yr`` years (``pmra`` includes cos dec).

    Over half a year the linear tangent-plane step is accurate to far below a
    milliarcsecond except within arcminutes of the poles; missing proper
    motions (2-parameter DR2 sources) leave the position unchanged.
    """
    pmra = np.nan_to_num(np.asarray(pmra_masyr, float))
    pmdec = np.nan_to_num(np.asarray(pmdec_masyr, float))
    dec = np.asarray(dec_deg, float)
    cosd = np.cos(np.deg2rad(dec))
    ra_new = np.asarray(ra_deg, float) + pmra * dt_yr / _MAS_PER_DEG / np.where(cosd > 1e-9, cosd, 1e-9)
    dec_new = dec + pmdec * dt_yr / _MAS_PER_DEG
    return np.mod(ra_new, 360.0), dec_new


def _unit(ra_deg: np.ndarray, dec_deg: np.ndarray) -> np.ndarray:
    ra, dec = np.deg2rad(ra_deg), np.deg2rad(dec_deg)
    return np.column_stack([np.cos(dec) * np.cos(ra), np.cos(dec) * np.sin(ra), np.sin(dec)])


def crossmatch_positional(members: pd.DataFrame, cone: pd.DataFrame, cfg: Config) -> pd.DataFrame:
    """Match DR2 members to DR3 cone sources by propagated position.

    Parameters
    ----------
    members : DataFrame
        ``source_id_dr2, ra, dec, pmra, pmdec, phot_g_mean_mag`` at the DR2
        epoch (``[crossmatch] dr2_epoch``).
    cone : DataFrame
        DR3 sources (``source_id, ra, dec, phot_g_mean_mag``) at
        ``[cone] epoch``.
    cfg : Config
        Uses ``[crossmatch] max_sep_arcsec``, ``dr2_epoch``, ``ambiguous_dmag``.

    Returns
    -------
    DataFrame
        One row per matched member: ``source_id_dr2, source_id,
        angular_distance`` (arcsec), ``magnitude_difference`` (DR3 - DR2 G)
        and ``ambiguous``. Unmatched members are absent.
    """
    require_columns(members, ["source_id_dr2", "ra", "dec", "pmra", "pmdec", "phot_g_mean_mag"],
                    "member list")
    require_columns(cone, ["source_id", "ra", "dec", "phot_g_mean_mag"], "Gaia cone")
    out_cols = ["source_id_dr2", "source_id", "angular_distance", "magnitude_difference", "ambiguous"]
    if len(members) == 0 or len(cone) == 0:
        return pd.DataFrame({c: pd.Series(dtype=t) for c, t in
                             zip(out_cols, ["int64", "int64", "float64", "float64", "bool"])})
    xm = cfg.crossmatch
    ra, dec = propagate_positions(members["ra"].to_numpy(), members["dec"].to_numpy(),
                                  members["pmra"].to_numpy(), members["pmdec"].to_numpy(),
                                  cfg.cone.epoch - xm.dr2_epoch)
    tree = cKDTree(_unit(cone["ra"].to_numpy(float), cone["dec"].to_numpy(float)))
    radius = 2.0 * np.sin(np.deg2rad(xm.max_sep_arcsec / 3600.0) / 2.0)  # chord length
    hits = tree.query_ball_point(_unit(ra, dec), r=radius)
    counts = np.fromiter((len(h) for h in hits), int, len(hits))
    if counts.sum() == 0:
        return pd.DataFrame({c: pd.Series(dtype=t) for c, t in
                             zip(out_cols, ["int64", "int64", "float64", "float64", "bool"])})
    mem_idx = np.repeat(np.arange(len(hits)), counts)
    cone_idx = np.concatenate([np.asarray(h, int) for h in hits if h])
    mvec, cvec = _unit(ra, dec)[mem_idx], tree.data[cone_idx]
    chord = np.linalg.norm(mvec - cvec, axis=1)
    sep_arcsec = np.rad2deg(2.0 * np.arcsin(np.clip(chord / 2.0, 0, 1))) * 3600.0
    dmag = cone["phot_g_mean_mag"].to_numpy(float)[cone_idx] - members["phot_g_mean_mag"].to_numpy(float)[mem_idx]
    pairs = pd.DataFrame({"m": mem_idx, "c": cone_idx, "sep": sep_arcsec,
                          "dmag": dmag, "absdmag": np.nan_to_num(np.abs(dmag), nan=99.0)})
    pairs = pairs.sort_values(["m", "sep", "absdmag"], kind="mergesort")
    first = pairs.groupby("m", sort=False).head(1).set_index("m")
    best_dmag = first["absdmag"].reindex(pairs["m"]).to_numpy()
    rivals = (pairs["absdmag"].to_numpy() <= best_dmag + xm.ambiguous_dmag)
    n_rivals = pd.Series(rivals, index=pairs["m"].to_numpy()).groupby(level=0).sum()
    # A DR3 source claimed by two members goes to the nearer one; the other is ambiguous too.
    dup = first.duplicated("c", keep=False)
    result = pd.DataFrame({
        "source_id_dr2": members["source_id_dr2"].to_numpy()[first.index.to_numpy()].astype("int64"),
        "source_id": cone["source_id"].to_numpy()[first["c"].to_numpy()].astype("int64"),
        "angular_distance": first["sep"].to_numpy(),
        "magnitude_difference": first["dmag"].to_numpy(),
        "ambiguous": (n_rivals.reindex(first.index).to_numpy() > 1) | dup.to_numpy(),
    })
    return result.reset_index(drop=True)
