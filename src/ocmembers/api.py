"""The Python interface: membership for a user's own cone, without the pipeline's products.

:func:`members_from_cone` runs the whole method of van Groeningen et al. (2023)
on one cone: preprocessing, the candidate selection (Eqs. 3-12), the features
(Eqs. 13-17) and the Monte Carlo probabilities (Sect. 3.4), with the cluster's
catalogue parameters, training members and isochrone from the data source of
the configuration (or given). It reads no product of a run and writes nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pandas as pd

from ocmembers.config import Config
from ocmembers.method.classifier import DeepSetsClassifier
from ocmembers.method.columns import cluster_row
from ocmembers.method.membership import evaluate_sets
from ocmembers.method.sets import ClusterSelection, build_sets
from ocmembers.sources import get_source
from ocmembers.sources.models import load_model_spec
from ocmembers.sources.positional import crossmatch_positional

__all__ = ["members_from_cone"]


def _catalogue(cfg: Config, product: str, given: Mapping[str, pd.DataFrame] | None) -> pd.DataFrame:
    if given is not None and product in given:
        return given[product]
    src = get_source(cfg)
    return src.cluster_table() if product == "clusters" else src.training_members()


def members_from_cone(cone: pd.DataFrame, cluster_name: str, model: DeepSetsClassifier | str,
                      cfg: Config, training_members: pd.DataFrame | None = None,
                      isochrone: pd.DataFrame | None = None, *, catalogues: Mapping[str, pd.DataFrame] | None = None,
                      threads: int | None = None, return_sets: bool = False
                      ) -> pd.DataFrame | tuple[pd.DataFrame, ClusterSelection]:
    """Membership probabilities for a user's Gaia DR3 cone around a catalogued cluster.

    Parameters
    ----------
    cone : DataFrame
        Gaia DR3 sources with the archive columns (``columns.GAIA_REQUIRED``
        and the flux/n_obs columns the preprocessing needs).
    cluster_name : str
        A CG20 name (``NGC_2682``); its parameters come from the catalogue.
    model : DeepSetsClassifier or str
        A classifier, or ``"vg23"`` / the path of a ``model.pt``
        (:func:`ocmembers.sources.models.load_model_spec`).
    cfg : Config
    training_members : DataFrame, optional
        Training members with DR3 ``source_id``. Default: the CG20 members of
        the catalogue (p >= ``[selection] member_probability``) matched to the
        cone by position (:func:`ocmembers.sources.positional.crossmatch_positional`).
    isochrone : DataFrame, optional
        The cluster's isochrone (CMD columns, absolute magnitudes); default
        from the data source of ``cfg``.
    catalogues : mapping, optional
        ``clusters`` and ``train_members`` tables (as the ``catalogues`` stage
        writes them); default from the data source of ``cfg``.
    threads : int, optional
        Intra-op threads of the network.

    return_sets : bool
        Also return the :class:`ocmembers.method.sets.ClusterSelection` (for plots).

    Returns
    -------
    DataFrame
        As a ``members/<cluster>.parquet`` table (and the sets, see above).
    """
    clf = load_model_spec(model, cfg) if isinstance(model, (str, Path)) else model
    row = cluster_row(_catalogue(cfg, "clusters", catalogues), cluster_name)
    name = str(row["name"])
    if training_members is None:
        tm = _catalogue(cfg, "train_members", catalogues)
        tm = tm.loc[tm["cluster"] == name]
        if "probability" in tm.columns:
            tm = tm.loc[tm["probability"] >= cfg.selection.member_probability]
        xm = crossmatch_positional(tm, cone, cfg)
        if "ambiguous" in xm.columns:
            xm = xm.loc[~xm["ambiguous"].astype(bool)]
        training_members = xm[["source_id"]].dropna().drop_duplicates()
    if isochrone is None:
        isochrone = get_source(cfg).isochrone(float(row["log_age"]))
    sets = build_sets(cone, training_members, row, isochrone, cfg)
    table = evaluate_sets(sets.candidates, sets.members, sets.params, sets.isochrone_curve, clf,
                          cfg.membership, name, threads=threads)
    return (table, sets) if return_sets else table
