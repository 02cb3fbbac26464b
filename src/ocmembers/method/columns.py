"""Column names shared by every data source.

Gaia columns keep their archive names (``gaiadr3.gaia_source``). Catalogue
tables are renamed once, at the source boundary, into the canonical names
below, so that the rest of the pipeline never sees VizieR spellings.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from ocmembers.exceptions import MissingColumnsError, UnknownClusterError
from ocmembers.method.cluster_names import COMMON_KEYS, COMMON_NAMES, name_key

__all__ = [
    "GAIA_COLUMNS", "GAIA_REQUIRED", "CLUSTER_COLUMNS", "MEMBER_COLUMNS",
    "CG20_RENAME", "HR_RENAME", "CLUSTER_CATALOGUES", "require_columns", "normalise_cluster_name", "cluster_row", "cluster_label", "as_frame",
]

#: Columns of ``gaiadr3.gaia_source`` that a cone carries (DESIGN.md).
GAIA_COLUMNS: tuple[str, ...] = (
    "source_id", "ra", "dec", "ra_error", "dec_error",
    "parallax", "parallax_error", "pmra", "pmra_error", "pmdec", "pmdec_error",
    "ra_dec_corr", "ra_parallax_corr", "ra_pmra_corr", "ra_pmdec_corr",
    "dec_parallax_corr", "dec_pmra_corr", "dec_pmdec_corr",
    "parallax_pmra_corr", "parallax_pmdec_corr", "pmra_pmdec_corr",
    "phot_g_mean_mag", "phot_bp_mean_mag", "phot_rp_mean_mag",
    "phot_g_mean_flux", "phot_g_mean_flux_error",
    "phot_bp_mean_flux", "phot_bp_mean_flux_error",
    "phot_rp_mean_flux", "phot_rp_mean_flux_error",
    "phot_g_n_obs", "phot_bp_n_obs", "phot_rp_n_obs",
    "l", "b", "ruwe", "nu_eff_used_in_astrometry", "pseudocolour", "ecl_lat",
    "astrometric_params_solved",
)

#: Columns without which a cone cannot be processed at all.
GAIA_REQUIRED: tuple[str, ...] = (
    "source_id", "ra", "dec", "parallax", "parallax_error", "pmra", "pmra_error",
    "pmdec", "pmdec_error", "parallax_pmra_corr", "parallax_pmdec_corr",
    "pmra_pmdec_corr", "phot_g_mean_mag", "phot_rp_mean_mag",
)

#: Canonical cluster-table columns (CG20 table1; units in the comments).
CLUSTER_COLUMNS: dict[str, str] = {
    "name": "",            # CG20 spelling, underscores: NGC_2682
    "ra": "deg", "dec": "deg", "l": "deg", "b": "deg",
    "r50": "deg",          # radius containing half the members
    "n_members": "",       # members with p >= 0.7 (n07)
    "pmra": "mas/yr", "pmra_std": "mas/yr",     # mean and std of the members
    "pmdec": "mas/yr", "pmdec_std": "mas/yr",
    "parallax": "mas", "parallax_std": "mas",
    "log_age": "dex",      # logAgeNN
    "a0": "mag",           # AVNN, used as A0 for the extinction model
    "dist_mod": "mag",     # DMNN
    "dist_pc": "pc",       # DistPc
}

#: Canonical member-list columns (CG20/CG18 with ``source_id_dr2``, T22 with ``source_id``).
MEMBER_COLUMNS: tuple[str, ...] = (
    "cluster", "ra", "dec", "pmra", "pmdec", "parallax", "phot_g_mean_mag", "probability",
)

#: CG20 table1 as in the CSV release and as VizieR exports it.
CG20_RENAME: dict[str, str] = {
    "Name": "name", "Cluster": "name",
    "RA": "ra", "RA_ICRS": "ra", "_RA.icrs": "ra", "DEC": "dec", "DE_ICRS": "dec",
    "GLON": "l", "GLAT": "b", "r50": "r50", "n07": "n_members", "nbstars07": "n_members",
    "pmRA": "pmra", "pmRA*": "pmra", "pmRA_": "pmra", "e_pmRA": "pmra_std", "s_pmRA*": "pmra_std",
    "e_pmRA*": "pmra_std", "pmDE": "pmdec", "e_pmDE": "pmdec_std", "s_pmDE": "pmdec_std",
    "plx": "parallax", "e_plx": "parallax_std", "s_plx": "parallax_std",
    "Age": "log_age", "AgeNN": "log_age", "A": "a0", "AVNN": "a0",
    "D_m": "dist_mod", "DMNN": "dist_mod", "D_pc": "dist_pc", "DistPc": "dist_pc",
}


#: Hunt & Reffert 2023 (J/A+A/673/A114) and 2024 (J/A+A/686/A42) cluster tables, VizieR names.
#: The 50th percentiles of the posteriors are the parameters; ``s_*`` are member dispersions.
HR_RENAME: dict[str, str] = {
    "Name": "name", "AllNames": "aliases", "RA_ICRS": "ra", "DE_ICRS": "dec", "GLON": "l", "GLAT": "b",
    "r50": "r50", "N": "n_members", "pmRA": "pmra", "s_pmRA": "pmra_std", "pmDE": "pmdec",
    "s_pmDE": "pmdec_std", "Plx": "parallax", "s_Plx": "parallax_std", "logAge50": "log_age",
    "AV50": "a0", "MOD50": "dist_mod", "dist50": "dist_pc",
}

#: The cluster catalogues a user's cone can take its parameters from (``[source] cluster_catalogue``).
CLUSTER_CATALOGUES: dict[str, str] = {
    "cg20": "Cantat-Gaudin et al. 2020 (J/A+A/640/A1/table1)",
    "hr23": "Hunt & Reffert 2023 (J/A+A/673/A114/clusters)",
    "hr24": "Hunt & Reffert 2024 (J/A+A/686/A42/clusters)",
}


def require_columns(table: pd.DataFrame, columns: tuple[str, ...] | list[str], what: str) -> None:
    """Raise :class:`MissingColumnsError` naming ``what`` and the missing columns."""
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise MissingColumnsError(f"{what}: missing required column(s) {', '.join(missing)}")


def normalise_cluster_name(name: str) -> str:
    """CG20 spelling of a cluster name: stripped, spaces as underscores (``NGC 2682`` -> ``NGC_2682``)."""
    return "_".join(str(name).strip().split())


def _alias_index(table: pd.DataFrame) -> dict[str, int]:
    """name key -> row position, from a table's ``aliases`` column (comma-separated names)."""
    if "aliases" not in table.columns:
        return {}
    out: dict[str, int] = {}
    for pos, text in enumerate(table["aliases"].fillna("").astype(str).to_numpy()):
        for alias in text.split(","):
            if alias.strip():
                out.setdefault(name_key(alias), pos)
    return out


def cluster_row(table: pd.DataFrame, name: str, aliases: pd.DataFrame | None = None,
                catalogue: str = "the cluster catalogue") -> pd.Series:
    """The row of cluster ``name`` in a canonical cluster table, or a clear error.

    ``name`` may be spelled in any case, with spaces or underscores, or be an
    alternative name: of the table's own ``aliases`` column, of the ``aliases``
    of another table (``name``, ``aliases``: the Hunt & Reffert ``AllNames``,
    for a CG20 table that has none), or a common name
    (:data:`ocmembers.method.cluster_names.COMMON_NAMES`: ``Pleiades``, ``M67``).
    The row's ``name`` stays the catalogue's.
    """
    key = normalise_cluster_name(name)
    hit = table.loc[table["name"] == key]
    if len(hit):
        return hit.iloc[0]
    keys = table["name"].astype(str).map(name_key).to_numpy()
    position = {k: i for i, k in reversed(list(enumerate(keys)))}
    k = name_key(name)
    if k in position:
        return table.iloc[position[k]]
    own = _alias_index(table)
    if k in own:
        return table.iloc[own[k]]
    if aliases is not None and len(aliases):
        other = _alias_index(aliases)
        if k in other:
            row = aliases.iloc[other[k]]
            for alt in [str(row["name"]), *str(row.get("aliases", "")).split(",")]:
                if alt.strip() and name_key(alt) in position:
                    return table.iloc[position[name_key(alt)]]
    if k in COMMON_KEYS and name_key(COMMON_KEYS[k]) in position:
        return table.iloc[position[name_key(COMMON_KEYS[k])]]
    pool = table["name"].astype(str).tolist() + [n for n in COMMON_NAMES if name_key(COMMON_NAMES[n]) in position]
    close = difflib.get_close_matches(key, pool, n=3)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    raise UnknownClusterError(f"cluster {name!r} is not in {catalogue} (by name, alternative name or "
                              f"common name){hint}")


def cluster_label(cluster: pd.Series) -> str:
    """The name of a cluster row for messages (its ``name``, else its index label)."""
    name = cluster.get("name", cluster.name)
    return str(name) if name is not None else "<unnamed cluster>"


def as_frame(table: Any, what: str, units: Mapping[str, str] | None = None) -> pd.DataFrame:
    """A DataFrame from a DataFrame, an astropy ``Table``/``QTable`` or a mapping of 1-D arrays.

    Masked float columns of a Table become NaN (as :func:`ocmembers.sources.cone_file.read_cone_file`
    reads them). A float column with a unit is converted once to ``units[name]`` (by its
    lower-case name) when ``units`` names it; other units are dropped (the Gaia archive's).
    """
    if isinstance(table, pd.DataFrame):
        return table
    if hasattr(table, "colnames") and hasattr(table, "to_pandas"):      # astropy Table / QTable
        cols: dict[str, np.ndarray] = {}
        for c in table.colnames:
            col = table[c]
            if getattr(col, "mask", None) is not None and col.dtype.kind == "f":
                col = col.filled(np.nan)
            unit = getattr(col, "unit", None)
            want = (units or {}).get(str(c).lower())
            if unit is not None and want is not None and col.dtype.kind == "f":
                from astropy import units as u                          # only for tables with units
                cols[c] = u.Quantity(col, unit, copy=False).to_value(want)
            else:
                cols[c] = np.asarray(getattr(col, "value", col))        # Quantity -> ndarray
        return pd.DataFrame(cols)
    if isinstance(table, Mapping):
        return pd.DataFrame({k: np.asarray(v) for k, v in table.items()})
    raise TypeError(f"{what}: expected a DataFrame, an astropy Table or a mapping of arrays, "
                    f"got {type(table).__name__}")
