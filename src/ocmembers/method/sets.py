r"""Members, candidates and non-members of one cluster (Sects. 2.2-2.4, 3.1).

:func:`build_sets`, for a catalogued cluster or a user's own cone:

1. Preprocess the cone (:func:`ocmembers.method.preprocessing.preprocess_cone`) and
   drop the sources without full astrometry (2-parameter solutions, missing
   proper motion or parallax errors): they cannot be judged by Eqs. 3-4 nor
   given features. Counts go to ``ClusterSelection.counts``.
2. Training members: the cone sources whose DR3 ``source_id`` is in the
   member list (CG20 members with p >= ``[selection] member_probability``,
   mapped from DR2 by the ``crossmatch`` stage; matches flagged ``ambiguous``
   are not used). Fewer than ``[selection] min_members`` raise
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

import pandas as pd

from ocmembers.exceptions import TooFewMembersError
from ocmembers.method.columns import require_columns
from ocmembers.method.features import add_features
from ocmembers.method.isochrones import IsochroneCurve, shift_isochrone
from ocmembers.method.preprocessing import preprocess_cone
from ocmembers.method.selection import ClusterParams, candidate_conditions, cluster_parameters

__all__ = ["ClusterSelection", "build_sets", "members_of", "SET_NAMES"]

log = logging.getLogger(__name__)

SET_NAMES = ("members", "candidates", "non_members")

_ASTROMETRY = ("ra", "dec", "pmra", "pmra_error", "pmdec", "pmdec_error", "parallax", "parallax_error")


@dataclass
class ClusterSelection:
    """The three source sets of one cluster with what produced them."""

    members: pd.DataFrame
    candidates: pd.DataFrame
    non_members: pd.DataFrame
    params: ClusterParams
    curve: pd.DataFrame
    counts: dict[str, int] = field(default_factory=dict)

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
    table = cone if "parallax_raw" in cone.columns else preprocess_cone(cone, cluster=name)
    counts: dict[str, int] = {"cone": int(table.attrs.get("n_input", len(table)))}
    for k, v in table.attrs.get("dropped", {}).items():
        counts[f"dropped_{k}"] = int(v)
    astro_ok = table[list(_ASTROMETRY)].notna().all(axis=1).to_numpy()
    counts["dropped_no_astrometry"] = int((~astro_ok).sum())
    table = table.loc[astro_ok].reset_index(drop=True)

    require_columns(members_dr3, ["source_id"], f"training members of cluster {name}")
    ids = members_dr3
    if "probability" in ids.columns:
        ids = ids.loc[ids["probability"] >= sel.member_probability]
    is_member = table["source_id"].isin(ids["source_id"]).to_numpy()
    counts["members_listed"] = int(ids["source_id"].nunique())
    counts["members_in_cone"] = int(is_member.sum())
    if is_member.sum() < sel.min_members:
        raise TooFewMembersError(
            f"cluster {name}: {int(is_member.sum())} of {counts['members_listed']} training members "
            f"(p >= {sel.member_probability}) are in the cone with full astrometry, fewer than "
            f"[selection] min_members = {sel.min_members}")

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
    return ClusterSelection(members=members, candidates=candidates, non_members=non_members, params=params,
                       curve=curve_frame, counts=counts)
