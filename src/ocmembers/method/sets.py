r"""Members, candidates and non-members of one cluster (Sects. 2.2-2.4, 3.1).

:func:`build_sets`, for a catalogued cluster or a user's own cone:

1. Preprocess the cone (:func:`ocmembers.method.preprocessing.preprocess_cone`) and
   drop the sources without full astrometry (2-parameter solutions, missing
   proper motion or parallax errors): they cannot be judged by Eqs. 3-4 nor
   given features. Sources with values no star can have (infinite, an error
   <= 0, a proper motion beyond 20 arcsec/yr...:
   :data:`ocmembers.method.preprocessing.PLAUSIBLE_RANGES`) are dropped too,
   with a warning naming the columns. Counts go to ``ClusterSelection.counts``,
   the ``source_id`` of each dropped source and why to ``ClusterSelection.dropped``.
2. Training members: the cone sources whose DR3 ``source_id`` is in the
   member list (CG20 members with p >= ``[selection] member_probability``,
   mapped from DR2 by the ``crossmatch`` stage; matches flagged ``ambiguous``
   are not used). Members far from the others in proper motion or parallax
   (:func:`ocmembers.method.selection.outlying_members`, ``[selection]
   member_clip_sigma``) are not used, so one wrong star cannot move the
   weighted means. Fewer than ``[selection] min_members`` raise
   :class:`~ocmembers.exceptions.TooFewMembersError`.
3. The isochrone is shifted to the cluster (distance modulus, A0) and
   densified; the cluster parameters and Deltas follow from the members
   (:func:`ocmembers.method.selection.cluster_parameters`).
4. Every cone source is tested with Eqs. 3-5.

What the authors' tool (gaia_oc_amd 0.2.1, ``build_sets.py`` and
``source_sets.py``) does, and we follow:

* The candidates are drawn from the *whole* cone, training members included:
  a training member that passes Eqs. 3-5 is both a member (for training and
  support sets) and a candidate (so it gets a membership probability).
* A training member that fails Eqs. 3-5 ("dubious member") is removed from
  the members *and* from the non-members and put among the candidates; so the
  non-members never contain a training member. The cluster parameters are
  computed before this, from all training members in the cone.
* Features are computed with the same parameters for all three sets.

Checked against the authors' code on the same inputs (the real M67 extract,
CG18 p = 1 members, the same isochrone, their dustapprox call pointed at the
``gaia_kurucz_f99_a0_teff`` model): identical counts (108 members in the
cone, 1446 candidates including 1 dubious member, 47 non-members), identical
mean astrometry and Delta_mu; Delta_plx differs in the 4th decimal (their
R_90 is found by shrinking a radius in steps of 5% of the largest) and
Delta_C = 0.1659 here against their 0.165 (their Delta_C,90 moves in steps
of 0.005).

Every set carries the cone columns, the preprocessing columns, the five
features (:data:`ocmembers.method.features.FEATURES`), ``pass_pm``, ``pass_plx``,
``pass_iso``, ``candidate`` and ``training_member`` (True for the members and
for the dubious members among the candidates).

The stage :mod:`ocmembers.stages.sets` writes them per cluster.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ocmembers.exceptions import EmptyConeError, TooFewMembersError
from ocmembers.method.columns import require_columns
from ocmembers.method.features import add_features
from ocmembers.method.isochrones import IsochroneCurve, shift_isochrone
from ocmembers.method.preprocessing import ASTROMETRY_COLUMNS, astrometry_quality, preprocess_cone
from ocmembers.method.selection import (ClusterParams, candidate_conditions, cluster_parameters,
                                        outlying_members)

__all__ = ["ClusterSelection", "build_sets", "members_of", "SET_NAMES"]

log = logging.getLogger(__name__)

SET_NAMES = ("members", "candidates", "non_members")

_ASTROMETRY = ASTROMETRY_COLUMNS


@dataclass
class ClusterSelection:
    """The three source sets of one cluster with what produced them."""

    members: pd.DataFrame
    candidates: pd.DataFrame
    non_members: pd.DataFrame
    params: ClusterParams
    curve: pd.DataFrame
    counts: dict[str, int] = field(default_factory=dict)
    #: ``source_id`` and ``status`` of the cone sources not in the three sets (missing_photometry,
    #: missing_astrometry, implausible) and of the training members not used (outlying_member,
    #: which stay in the sets as ordinary sources)
    dropped: pd.DataFrame = field(default_factory=lambda: pd.DataFrame({"source_id": [], "status": []}))

    @property
    def isochrone_curve(self) -> IsochroneCurve:
        return IsochroneCurve.from_frame(self.curve)


def members_of(train_members: pd.DataFrame, crossmatch: pd.DataFrame, cluster: str,
               min_probability: float) -> pd.DataFrame:
    """DR3 ids of the training members of ``cluster`` (``source_id``, ``source_id_dr2``, ``probability``).

    ``train_members`` is the canonical member list (``cluster, source_id_dr2,
    probability``); ``crossmatch`` the DR2 -> DR3 map of the crossmatch stage.
    Ambiguous matches and members below ``min_probability`` are left out.
    """
    require_columns(train_members, ["cluster", "source_id_dr2", "probability"], "training member list")
    require_columns(crossmatch, ["source_id_dr2", "source_id"], f"crossmatch of cluster {cluster}")
    m = train_members.loc[(train_members["cluster"] == cluster)
                          & (train_members["probability"] >= min_probability),
                          ["source_id_dr2", "probability"]]
    xm = crossmatch
    if "ambiguous" in xm.columns:
        xm = xm.loc[~xm["ambiguous"].astype(bool)]
    out = m.merge(xm[["source_id_dr2", "source_id"]], on="source_id_dr2", how="inner")
    return out.drop_duplicates("source_id").reset_index(drop=True)


def build_sets(cone: pd.DataFrame, members_dr3: pd.DataFrame, cluster_row: pd.Series,
               iso_table: pd.DataFrame, cfg: Any) -> ClusterSelection:
    """Members, candidates and non-members of one cluster (module docstring).

    Parameters
    ----------
    cone : DataFrame
        Gaia DR3 sources (archive columns), raw or already preprocessed
        (recognised by a ``parallax_raw`` column).
    members_dr3 : DataFrame
        Training members with DR3 ``source_id`` (a ``probability`` column, if
        present, is cut at ``[selection] member_probability``).
    cluster_row : Series
        The cluster's row of the canonical cluster table (``name, a0,
        log_age, dist_mod, dist_pc``).
    iso_table : DataFrame
        The cluster's isochrone in absolute magnitudes (CMD columns).
    cfg : Config

    Returns
    -------
    ClusterSelection
    """
    name = str(cluster_row["name"])
    sel = cfg.selection
    raw_ids = None if "parallax_raw" in cone.columns else cone["source_id"].to_numpy()
    table = cone if raw_ids is None else preprocess_cone(cone, cluster=name, zero_point=cfg.cone.parallax_zero_point)
    counts: dict[str, int] = {"cone": int(table.attrs.get("n_input", len(table)))}
    for k, v in table.attrs.get("dropped", {}).items():
        counts[f"dropped_{k}"] = int(v)
    missing, implausible, bad_columns = astrometry_quality(table)
    counts["dropped_no_astrometry"] = int(missing.sum())
    counts["dropped_implausible"] = int(implausible.sum())
    if implausible.any():
        log.warning("cluster %s: %d source(s) with values no star can have dropped (%s)", name,
                    int(implausible.sum()), ", ".join(f"{c}: {n}" for c, n in bad_columns.items()))
    dropped = [pd.DataFrame({"source_id": table.loc[m, "source_id"].to_numpy(), "status": status})
               for m, status in ((missing, "missing_astrometry"), (implausible, "implausible"))]
    if raw_ids is not None:                       # what the preprocessing dropped: no G or no G_RP
        gone = raw_ids[~np.isin(raw_ids, table["source_id"].to_numpy())]
        dropped.insert(0, pd.DataFrame({"source_id": gone, "status": "missing_photometry"}))
    table = table.loc[~(missing | implausible)].reset_index(drop=True)
    if len(table) == 0:
        nan = {c: int(cone[c].isna().sum()) for c in _ASTROMETRY if c in cone.columns and cone[c].isna().any()}
        raise EmptyConeError(
            f"cluster {name}: none of the {counts['cone']} sources of the cone has full astrometry: "
            + (", ".join(f"{c} is NaN in {n}" for c, n in nan.items()) or "no NaN")
            + (f"; impossible values in {', '.join(f'{c} ({n})' for c, n in bad_columns.items())}"
               if bad_columns else ""))

    require_columns(members_dr3, ["source_id"], f"training members of cluster {name}")
    ids = members_dr3
    if "probability" in ids.columns:
        ids = ids.loc[ids["probability"] >= sel.member_probability]
    is_member = table["source_id"].isin(ids["source_id"]).to_numpy().copy()
    counts["members_listed"] = int(ids["source_id"].nunique())
    counts["members_in_cone"] = int(is_member.sum())
    if is_member.sum() < sel.min_members:
        raise TooFewMembersError(
            f"cluster {name}: {int(is_member.sum())} of {counts['members_listed']} training members "
            f"(p >= {sel.member_probability}) are in the cone with full astrometry, fewer than "
            f"[selection] min_members = {sel.min_members}")
    # one wrong star in the list must not move the weighted means of Eq. 7
    where = np.flatnonzero(is_member)
    outliers = where[outlying_members(table.iloc[where], sel.member_clip_sigma)]
    counts["members_outlying"] = int(outliers.size)
    if outliers.size:
        log.warning("cluster %s: %d training member(s) beyond %g robust dispersions in proper motion or "
                    "parallax not used (source_id %s)", name, outliers.size, sel.member_clip_sigma,
                    ", ".join(str(i) for i in table["source_id"].to_numpy()[outliers[:5]]))
        is_member[outliers] = False
        if is_member.sum() < sel.min_members:
            raise TooFewMembersError(f"cluster {name}: {int(is_member.sum())} training members left after "
                                     f"{outliers.size} outlier(s), fewer than [selection] min_members = "
                                     f"{sel.min_members}")
    outlier_ids = table["source_id"].to_numpy()[outliers]

    curve_frame = shift_isochrone(iso_table, float(cluster_row["dist_mod"]), float(cluster_row["a0"]),
                                  max_label=cfg.isochrone.max_label, max_step_mag=cfg.isochrone.max_step_mag,
                                  model=cfg.isochrone.extinction_model)
    curve = IsochroneCurve.from_frame(curve_frame)
    params = cluster_parameters(table.loc[is_member], cluster_row, curve, cfg)

    flags = candidate_conditions(table, params, curve, cfg)
    table = pd.concat([table, flags], axis=1)
    table["training_member"] = is_member
    table = add_features(table, params, curve)
    cand = table["candidate"].to_numpy()
    members = table.loc[is_member & cand].reset_index(drop=True)
    candidates = table.loc[cand | is_member].reset_index(drop=True)
    non_members = table.loc[~cand & ~is_member].reset_index(drop=True)
    counts.update(members=len(members), candidates=len(candidates), non_members=len(non_members),
                  dubious_members=int((is_member & ~cand).sum()))
    for t in (members, candidates, non_members):
        t.attrs = {}
    dropped.append(pd.DataFrame({"source_id": outlier_ids, "status": "outlying_member"}))
    return ClusterSelection(members=members, candidates=candidates, non_members=non_members, params=params,
                            curve=curve_frame, counts=counts,
                            dropped=pd.concat(dropped, ignore_index=True))
