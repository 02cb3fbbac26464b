"""The truth of a simulated cone, and how to line a member list up with it.

A truth table (:data:`ocmembers.sim.cluster.TRUTH_COLUMNS`) has one row per
cone source: ``source_id``, ``is_member`` (a star of the simulated cluster),
``population`` (``cluster``, ``thin_*``, ``thick``, ``halo``), the true
astrometry and photometry, the parallax zero point added, and ``r_proj_pc``
(projected distance from the cluster centre at the cluster's distance).
It is kept apart from the cone (the pipeline never sees it) and obtained with
:meth:`ocmembers.sim.source.SimSource.truth`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ocmembers.exceptions import MissingColumnsError

__all__ = ["label_members"]


def label_members(members: pd.DataFrame, truth: pd.DataFrame, *, what: str = "member list") -> pd.DataFrame:
    """The truth table with the ``probability`` of ``members`` attached (0 where not listed).

    Parameters
    ----------
    members : DataFrame
        ``source_id`` (Gaia DR3) and ``probability``.
    truth : DataFrame
        A truth table (``source_id``, ``is_member``, ...).

    Raises
    ------
    MissingColumnsError
        When a table lacks its id/probability columns, or ``members`` lists
        sources that are not in the truth table (another cone, or DR2 ids).
    """
    for table, cols, name in ((members, ("source_id", "probability"), what),
                              (truth, ("source_id", "is_member"), "truth table")):
        missing = [c for c in cols if c not in table.columns]
        if missing:
            raise MissingColumnsError(f"{name}: missing column(s) {', '.join(missing)}")
    m = members[["source_id", "probability"]].groupby("source_id", as_index=False)["probability"].max()
    unknown = ~np.isin(m["source_id"].to_numpy(), truth["source_id"].to_numpy())
    if unknown.any():
        raise MissingColumnsError(f"{what}: {int(unknown.sum())} source_id(s) not in the simulated cone "
                                  f"(e.g. {int(m['source_id'].to_numpy()[unknown][0])})")
    out = truth.merge(m, on="source_id", how="left")
    out["probability"] = out["probability"].fillna(0.0).astype(float)
    return out
