"""Member lists on disk: Parquet (with its manifest) and ECSV with units, descriptions and provenance.

The ECSV is an astropy Table ready for CDS: every column with a unit carries
it, the features and flags carry a description, and the metadata say what
made the list (software, model, seed, samples, the sha256 of every input).
The Parquet table and the ECSV are each written atomically, the table first,
then the ECSV, then their manifests, the table's last (the commit point: a
list whose manifest does not match is not up to date). The metadata hold no
time, so the same inputs give the same bytes.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from ocmembers.sources import cache

if TYPE_CHECKING:  # pragma: no cover
    from astropy.table import Table

__all__ = ["UNITS", "DESCRIPTIONS", "member_table", "write_members"]

UNITS: dict[str, str] = {
    "ra": "deg", "dec": "deg", "l": "deg", "b": "deg",
    "parallax": "mas", "parallax_error": "mas", "f_plx": "mas",
    "pmra": "mas / yr", "pmra_error": "mas / yr", "pmdec": "mas / yr", "pmdec_error": "mas / yr",
    "f_pm": "mas / yr", "f_r": "pc",
    "phot_g_mean_mag": "mag", "phot_g_mean_mag_error": "mag", "phot_bp_mean_mag": "mag",
    "phot_rp_mean_mag": "mag", "g_rp": "mag", "g_rp_error": "mag", "f_c": "mag", "f_g": "mag",
}

DESCRIPTIONS: dict[str, str] = {
    "f_r": "projected distance to the cluster centre (Eq. 13)",
    "f_pm": "proper-motion separation from the cluster mean (Eq. 15)",
    "f_plx": "parallax minus the cluster mean parallax (Eq. 16)",
    "f_c": "colour separation from the nearest isochrone point (Eq. 17)",
    "f_g": "magnitude separation from the nearest isochrone point (Eq. 17)",
    "g_rp": "colour G - G_RP",
    "parallax": "parallax corrected for the Lindegren et al. (2021) zero point",
    "candidate": "passes the candidate conditions (Eqs. 3-5)",
    "training_member": "Cantat-Gaudin et al. (2020) member with p = 1 used for the support sets",
    "probability": "fraction of Monte Carlo samples classified member (Sect. 3.4)",
}


def member_table(table: pd.DataFrame, meta: Mapping[str, Any]) -> "Table":
    """The member list as an astropy Table: units, descriptions and ``meta``."""
    from astropy.table import Table
    t = Table.from_pandas(table)
    for c in t.colnames:
        if c in UNITS:
            t[c].unit = UNITS[c]
        if c in DESCRIPTIONS:
            t[c].description = DESCRIPTIONS[c]
    t.meta.update(meta)
    return t


def write_members(table: pd.DataFrame, parquet: Path, ecsv: Path, meta: dict[str, Any],
                  record: dict[str, Any] | None = None) -> None:
    """Write the Parquet and the ECSV (units, descriptions, meta) atomically, then their
    manifests (with ``record``), the Parquet's last."""
    t = member_table(table, meta)
    source = meta.get("source", "")
    query = f"members of {meta['cluster']} with model {meta['model_id']}"
    cache.write_table(table, parquet, source=source, query=query, manifest=False)
    with cache.atomic_path(ecsv) as tmp:
        t.write(tmp, format="ascii.ecsv", overwrite=True)
    cache.write_manifest(ecsv, source=source, query=query, rows=len(table), record=record)
    cache.write_manifest(parquet, source=source, query=query, rows=len(table), record=record,
                         extra={k: v for k, v in meta.items() if k != "inputs_sha256"}
                         | {"inputs_sha256": meta["inputs_sha256"]})
