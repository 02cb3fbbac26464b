"""The common member table of the comparison methods (issue 6).

Every method of :mod:`ocmembers.method.member_table` (HDBSCAN as Tarricq et al. 2022,
UPMASK as Krone-Martins & Moitinho 2014, XDGMM + UPMASK as Peña Ramírez et
al. 2022) returns one row per *input* source:

``source_id`` (Gaia DR3), ``probability`` (membership probability in [0, 1];
0 for sources the method did not consider, e.g. fainter than its magnitude
limit), ``method`` (the method's short name). The method's parameters are kept
in ``table.attrs["parameters"]`` (a dict) and ``table.attrs["method"]``; use
:func:`parameters_json` to write them next to a product.

An empty result (e.g. no compact group found) is still a table with these
columns, every probability 0, and ``attrs["empty_reason"]`` saying why.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd

from ocmembers.exceptions import MissingColumnsError, OCMembersError

__all__ = [
    "MEMBER_TABLE_COLUMNS", "MethodError", "member_table", "empty_result",
    "members", "parameters_json", "source_ids",
]

#: Columns every method returns.
MEMBER_TABLE_COLUMNS: tuple[str, ...] = ("source_id", "probability", "method")


class MethodError(OCMembersError, ValueError):
    """A membership method cannot run on this input (too few stars, degenerate data...)."""


def source_ids(cone: pd.DataFrame) -> np.ndarray:
    """The ``source_id`` column as int64, or the row index when it is absent (synthetic input)."""
    if "source_id" in cone.columns:
        return cone["source_id"].to_numpy(dtype=np.int64)
    return np.arange(len(cone), dtype=np.int64)


def member_table(ids: np.ndarray, probability: np.ndarray, method: str,
                 parameters: dict[str, Any] | None = None,
                 extra: dict[str, np.ndarray] | None = None) -> pd.DataFrame:
    """Build the common member table (one row per input source).

    Parameters
    ----------
    ids : array of int
        Gaia DR3 ``source_id`` of every input source.
    probability : array of float
        Membership probability of each source, clipped to [0, 1]; NaN becomes 0.
    method : str
        Short method name (``"hdbscan_t22"``, ``"upmask"``, ``"xdgmm_upmask"``).
    parameters : dict, optional
        The method's parameters, stored in ``attrs["parameters"]``.
    extra : dict of arrays, optional
        Further per-source columns (e.g. ``hdbscan_label``).
    """
    p = np.nan_to_num(np.asarray(probability, dtype=float), nan=0.0)
    ids = np.asarray(ids, dtype=np.int64)
    if p.shape != ids.shape:
        raise MethodError(f"{method}: {p.size} probabilities for {ids.size} sources")
    data: dict[str, Any] = {
        "source_id": ids,
        "probability": np.clip(p, 0.0, 1.0),
        "method": np.full(ids.size, method, dtype=object),
    }
    for k, v in (extra or {}).items():
        data[k] = np.asarray(v)
    table = pd.DataFrame(data)
    table["method"] = table["method"].astype("string")
    table.attrs["method"] = method
    table.attrs["parameters"] = dict(parameters or {})
    return table


def empty_result(ids: np.ndarray, method: str, reason: str,
                 parameters: dict[str, Any] | None = None) -> pd.DataFrame:
    """A clearly labelled empty result: every probability 0, ``attrs["empty_reason"]`` set."""
    table = member_table(ids, np.zeros(len(ids)), method, parameters)
    table.attrs["empty_reason"] = reason
    return table


def members(table: pd.DataFrame, threshold: float = 0.5) -> pd.DataFrame:
    """Rows of a member table with ``probability >= threshold``."""
    missing = [c for c in MEMBER_TABLE_COLUMNS if c not in table.columns]
    if missing:
        raise MissingColumnsError(f"member table: missing column(s) {', '.join(missing)}")
    return table.loc[table["probability"] >= threshold]


def parameters_json(table: pd.DataFrame) -> str:
    """The method name and parameters of a member table as a JSON string."""
    return json.dumps({"method": table.attrs.get("method"),
                       "parameters": table.attrs.get("parameters", {}),
                       "empty_reason": table.attrs.get("empty_reason")},
                      sort_keys=True, default=_default)


def _default(o: Any) -> Any:
    if hasattr(o, "item"):
        return o.item()
    if isinstance(o, (tuple, set)):
        return list(o)
    return str(o)
