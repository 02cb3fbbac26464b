"""Every input source accounted for: the ``status`` of each row of a user's cone.

:func:`ocmembers.api.members` returns one row per row of the input file. The
candidates (Eqs. 3-5) carry their membership probability (Sect. 3.4); every
other row carries NaN and the reason it was not evaluated, in the order the
pipeline meets them:

==================== ===================================================================
``duplicate``         a repeated row of a ``source_id`` already listed (identical values)
``outside_cone``      farther from the cluster than the cone radius (Sect. 2.1, 50 pc)
``cut_eq1_2``         inside the radius, outside Eq. 1 (proper motion) or Eq. 2 (parallax)
``missing_photometry`` no G or no G_RP magnitude, or ``phot_*_n_obs`` = 0 (no colour)
``missing_astrometry`` no parallax or proper motion (2-parameter solution) or their errors
``implausible``       a value no star can have (infinite, an error <= 0, a proper motion
                      beyond 20 arcsec/yr...; ``preprocessing.PLAUSIBLE_RANGES``)
``failed_eq3``        fails Eq. 3 (proper motion), the first condition it fails
``failed_eq4``        passes Eq. 3, fails Eq. 4 (parallax)
``failed_eq5``        passes Eqs. 3-4, fails Eq. 5 (isochrone)
``candidate``         passes Eqs. 3-5: evaluated, ``probability`` given
``training_member``   a listed training member passing Eqs. 3-5: in the support-set pool,
                      and evaluated as a candidate (with a support set that excludes it)
``dubious_member``    a listed training member failing Eq. 3, 4 or 5: not in the support-set
                      pool, but evaluated as a candidate (as the authors' tool does)
``outlying_member``   a listed training member far from the others
                      (``selection.outlying_members``): not used for the cluster parameters
                      nor the support sets; evaluated if it passes Eqs. 3-5
==================== ===================================================================
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["STATUSES", "EVALUATED", "failed_condition", "account_for_every_source"]

#: Every value of the ``status`` column, in the order of the table above.
STATUSES: tuple[str, ...] = (
    "duplicate", "outside_cone", "cut_eq1_2", "missing_photometry", "missing_astrometry", "implausible",
    "failed_eq3", "failed_eq4", "failed_eq5", "candidate", "training_member", "dubious_member",
    "outlying_member",
)

#: Statuses whose rows have a membership probability.
EVALUATED: frozenset[str] = frozenset({"candidate", "training_member", "dubious_member"})

_NULLABLE_FLAGS = ("pass_pm", "pass_plx", "pass_iso", "candidate")


def failed_condition(pass_pm: np.ndarray, pass_plx: np.ndarray, pass_iso: np.ndarray) -> np.ndarray:
    """``failed_eq3``/``failed_eq4``/``failed_eq5`` by the first of Eqs. 3, 4, 5 a source fails
    (``""`` if it passes all three)."""
    out = np.full(len(pass_pm), "", dtype=object)
    out[~np.asarray(pass_iso, bool)] = "failed_eq5"
    out[~np.asarray(pass_plx, bool)] = "failed_eq4"
    out[~np.asarray(pass_pm, bool)] = "failed_eq3"
    return out


def account_for_every_source(cone: pd.DataFrame, evaluated: pd.DataFrame, non_members: pd.DataFrame,
                             dropped: pd.DataFrame, cut_status: np.ndarray, duplicate_ids,
                             member_ids, columns) -> pd.DataFrame:
    """One row per input row of ``cone``, with ``status`` and, where evaluated, ``probability``.

    Parameters
    ----------
    cone : DataFrame
        The input with one row per ``source_id`` (canonical Gaia names), before any cut.
    evaluated : DataFrame
        The candidates with their probabilities (:func:`ocmembers.method.membership.evaluate_sets`).
    non_members : DataFrame
        The sources that failed Eqs. 3-5 (with ``pass_pm``, ``pass_plx``, ``pass_iso``).
    dropped : DataFrame
        ``source_id`` and ``status`` of the sources the selection did not use
        (:attr:`ocmembers.method.sets.ClusterSelection.dropped`).
    cut_status : ndarray of str
        Per row of ``cone``: ``""`` or the status of a row set aside before the selection
        (``outside_cone``, ``cut_eq1_2``: :func:`ocmembers.method.cuts.cone_cut_status`;
        ``implausible``).
    duplicate_ids : sequence of int
        The ``source_id`` of each repeated input row that was dropped (one entry per repeat).
    member_ids : sequence of int
        The training members' ``source_id`` (``training_member`` is True for them on any row).
    columns : sequence of str
        The columns of the result, ``status`` and ``probability`` included (those present).

    Returns
    -------
    DataFrame
        ``len(cone) + len(duplicate_ids)`` rows, sorted by ``source_id`` (repeats next to
        their first row); the flags are nullable booleans (unknown where not tested).
    """
    ids = cone["source_id"].to_numpy()
    members = np.isin(ids, np.asarray(list(member_ids), dtype=ids.dtype))
    status = np.asarray(cut_status, dtype=object).copy()
    reason = pd.Series(dropped["status"].to_numpy(object), index=dropped["source_id"].to_numpy())
    reason = reason[~reason.index.duplicated(keep="first")]
    ev = evaluated.set_index("source_id")
    nm = non_members.set_index("source_id")

    rest = status == ""
    why = pd.Series(ids[rest]).map(reason).to_numpy(object)
    status[rest] = np.where(pd.isna(why), "", why)
    is_nm = (status == "") & np.isin(ids, nm.index.to_numpy())
    if is_nm.any():
        f = nm.loc[ids[is_nm]]
        status[is_nm] = failed_condition(f["pass_pm"].to_numpy(bool), f["pass_plx"].to_numpy(bool),
                                         f["pass_iso"].to_numpy(bool))
    is_ev = np.isin(ids, ev.index.to_numpy())
    cand = is_ev & (status == "")
    passed = np.zeros(len(ids), bool)
    if cand.any():
        passed[cand] = ev.loc[ids[cand], "candidate"].to_numpy(bool)
    status[cand & members & passed] = "training_member"
    status[cand & members & ~passed] = "dubious_member"
    status[cand & ~members] = "candidate"

    # the Gaia columns of every row; the selection's columns where the selection made them
    out = cone.copy()
    extra = [c for c in ev.columns if c not in out.columns or c in ("parallax",)]
    known = pd.concat([ev[extra], nm[[c for c in extra if c in nm.columns]]])
    known = known[~known.index.duplicated(keep="first")]
    for c in extra:
        out[c] = pd.Series(ids).map(known[c]).to_numpy() if c in known.columns else np.nan
    # the preprocessing's parallax (zero-point corrected) where it exists; the input's elsewhere
    if "parallax" in known.columns:
        corrected = pd.Series(ids).map(known["parallax"]).to_numpy(float)
        out["parallax"] = np.where(np.isnan(corrected), cone["parallax"].to_numpy(float), corrected)
    for c in _NULLABLE_FLAGS:
        if c in out.columns:
            out[c] = pd.Series(out[c].to_numpy(object), index=out.index).astype("boolean")
    out["training_member"] = members
    out["status"] = status
    if "probability" not in out.columns:
        out["probability"] = np.nan
    out.loc[~np.isin(status, list(EVALUATED)) & (status != "outlying_member"), "probability"] = np.nan

    if len(duplicate_ids):
        first = out.set_index("source_id").loc[list(duplicate_ids)].reset_index()
        first["status"] = "duplicate"
        first["probability"] = np.nan
        out = pd.concat([out, first], ignore_index=True)
    cols = [c for c in columns if c in out.columns]
    return out[cols].sort_values("source_id", kind="stable").reset_index(drop=True)
