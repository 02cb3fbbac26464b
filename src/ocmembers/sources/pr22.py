"""The published numbers and the 37 clusters of Peña Ramírez et al. (2022, "PR22").

``ocmembers/data/published_pr22.json`` holds what PR22 printed: Table 1
(the literature members with p >= 0.9, Cantat-Gaudin & Anders 2020), Table 2
(their members with p >= 0.9, total masses, distances) and the numbers quoted
in the text (Sect. 4), each with where it is printed. The clusters are
selected by name from the CG20 cluster table (``pr22_cluster_table``), so
every parameter the simulation and the pipeline use is CG20's, as PR22's were.
"""

from __future__ import annotations

import json
from importlib import resources

import pandas as pd

from ocmembers.exceptions import UnknownClusterError
from ocmembers.method.columns import normalise_cluster_name

__all__ = ["published_pr22", "pr22_names", "pr22_cluster_table", "PUBLISHED_FILE"]

PUBLISHED_FILE = "published_pr22.json"


def published_pr22() -> dict:
    """The published numbers of PR22 (module docstring)."""
    return json.loads(resources.files("ocmembers").joinpath("data", PUBLISHED_FILE).read_text(encoding="utf-8"))


def pr22_names() -> list[str]:
    """The 37 cluster names of PR22's Table 1, spelled as in CG20 (``NGC_4349``)."""
    return [normalise_cluster_name(c["name"]) for c in published_pr22()["clusters"]]


def pr22_cluster_table(table: pd.DataFrame, names: list[str] | None = None) -> pd.DataFrame:
    """The rows of the canonical cluster ``table`` for PR22's clusters (``names``: a subset), in
    PR22's order, with the published columns ``n_literature_p09, n_pr22_p09, mass_pr22_msun,
    mass_pr22_err_msun, dist_pr22_pc`` joined.

    Raises
    ------
    UnknownClusterError
        Naming every PR22 cluster the table lacks.
    """
    pub = pd.DataFrame(published_pr22()["clusters"])
    pub["name"] = pub["name"].map(normalise_cluster_name)
    if names:
        wanted = [normalise_cluster_name(n) for n in names]
        unknown = sorted(set(wanted) - set(pub["name"]))
        if unknown:
            raise UnknownClusterError(f"not among the 37 clusters of PR22: {', '.join(unknown)}")
        pub = pub.set_index("name").loc[wanted].reset_index()
    have = set(table["name"].astype(str))
    missing = [n for n in pub["name"] if n not in have]
    if missing:
        raise UnknownClusterError(f"PR22 cluster(s) missing from the cluster table: {', '.join(missing)}")
    rows = table.set_index("name").loc[pub["name"]].reset_index()
    extra = pub.rename(columns={"mass_msun": "mass_pr22_msun", "mass_err_msun": "mass_pr22_err_msun",
                                "dist_pc": "dist_pr22_pc"})
    return rows.merge(extra[["name", "paper_name", "n_literature_p09", "n_pr22_p09", "mass_pr22_msun",
                             "mass_pr22_err_msun", "dist_pr22_pc"]], on="name", how="left")
