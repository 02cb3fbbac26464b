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

from ocmembers.exceptions import ConfigError
from ocmembers.sources import cache

if TYPE_CHECKING:  # pragma: no cover
    from astropy.table import Table

__all__ = ["UNITS", "DESCRIPTIONS", "UCDS", "MEMBER_FORMATS", "member_table", "write_members",
           "write_member_file"]

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
    "training_member": ("listed in the training member list (Cantat-Gaudin et al. 2020 with p = 1, or "
                        "the user's list); in the support-set pool only if it also passes Eqs. 3-5"),
    "probability": ("fraction of Monte Carlo samples classified member (Sect. 3.4); "
                    "empty (NaN) for a source that was not evaluated (see status)"),
    "probability_deep_sets": ("with [membership] variant = calibrated: the paper's probability (Sect. 3.4), "
                              "from which the calibrated posterior in probability is learned "
                              "(ocmembers.method.calibration)"),
    "pass_pm": "passes Eq. 3 (proper motion); empty if not tested",
    "pass_plx": "passes Eq. 4 (parallax); empty if not tested",
    "pass_iso": "passes Eq. 5 (isochrone); empty if not tested",
    "status": ("why the source was or was not evaluated: candidate, training_member, dubious_member, "
               "outlying_member, failed_eq3/4/5, cut_eq1_2, outside_cone, missing_photometry, "
               "missing_astrometry, implausible, duplicate (ocmembers.method.accounting)"),
    "source_id": "Gaia DR3 source identifier",
    "ruwe": "renormalised unit weight error of the astrometric solution",
    "phot_g_mean_mag_error": "G error of the DPAC photometric model (Riello et al. 2021)",
}

#: IVOA UCD1+ of each column (as the Gaia archive labels ``gaiadr3.gaia_source``), for
#: VOTable ``ucd`` attributes and FITS ``TUCDn`` keywords (TOPCAT reads both).
UCDS: dict[str, str] = {
    "source_id": "meta.id;meta.main", "ra": "pos.eq.ra;meta.main", "dec": "pos.eq.dec;meta.main",
    "l": "pos.galactic.lon", "b": "pos.galactic.lat",
    "parallax": "pos.parallax.trig", "parallax_error": "stat.error;pos.parallax.trig",
    "pmra": "pos.pm;pos.eq.ra", "pmra_error": "stat.error;pos.pm;pos.eq.ra",
    "pmdec": "pos.pm;pos.eq.dec", "pmdec_error": "stat.error;pos.pm;pos.eq.dec",
    "phot_g_mean_mag": "phot.mag;em.opt", "phot_g_mean_mag_error": "stat.error;phot.mag;em.opt",
    "phot_bp_mean_mag": "phot.mag;em.opt.B", "phot_rp_mean_mag": "phot.mag;em.opt.R",
    "g_rp": "phot.color;em.opt", "g_rp_error": "stat.error;phot.color;em.opt", "ruwe": "stat.fit.goodness",
    "f_r": "pos.distance;arith.diff", "f_pm": "pos.pm;arith.diff", "f_plx": "pos.parallax;arith.diff",
    "f_c": "phot.color;arith.diff", "f_g": "phot.mag;arith.diff",
    "pass_pm": "meta.code", "pass_plx": "meta.code", "pass_iso": "meta.code", "candidate": "meta.code",
    "training_member": "meta.code", "probability": "stat.probability", "status": "meta.code.status",
    "probability_deep_sets": "stat.probability",
}

#: Suffixes :func:`write_member_file` writes, and the astropy format of each.
MEMBER_FORMATS: dict[str, str] = {".ecsv": "ascii.ecsv", ".fits": "fits", ".fit": "fits",
                                  ".vot": "votable", ".xml": "votable", ".votable": "votable",
                                  ".csv": "csv", ".parquet": "parquet"}


def member_table(table: pd.DataFrame, meta: Mapping[str, Any]) -> "Table":
    """The member list as an astropy Table: units, UCDs, descriptions and ``meta``."""
    from astropy.table import Table
    t = Table.from_pandas(table)
    for c in t.colnames:
        if c in UNITS:
            t[c].unit = UNITS[c]
        if c in DESCRIPTIONS:
            t[c].description = DESCRIPTIONS[c]
        if c in UCDS:
            t[c].meta["ucd"] = UCDS[c]
    t.meta.update(meta)
    return t


def write_member_file(t: "Table", path: str | Path) -> Path:
    """Write a member list (:func:`member_table`) by the suffix of ``path``, atomically.

    ``.ecsv`` keeps everything (units, UCDs, descriptions, meta, masks). ``.fits``:
    units as ``TUNITn``, UCDs as ``TUCDn``, descriptions as ``TCOMMn`` (the keywords
    TOPCAT reads), the flags as 0/1 integers with a null (``TNULLn``) where not
    tested, the metadata as header cards (nested values as JSON). ``.vot``/``.xml``:
    a VOTable with ``unit``, ``ucd`` and ``DESCRIPTION`` on every field and the
    metadata as ``INFO`` elements. ``.csv`` and ``.parquet``: the values only.

    Raises
    ------
    ConfigError
        An unknown suffix (naming the path and the suffixes written).
    """
    import json

    path = Path(path)
    fmt = MEMBER_FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise ConfigError(f"--output {path}: unknown suffix {path.suffix!r}; use one of "
                          f"{', '.join(sorted(MEMBER_FORMATS))}")
    with cache.atomic_path(path) as tmp:
        if fmt == "fits":
            _write_fits(t, tmp)
        elif fmt == "votable":
            from astropy.io.votable import from_table
            from astropy.io.votable.tree import Info
            vot = from_table(t)
            for k, v in t.meta.items():
                text = v if isinstance(v, str) else json.dumps(v, sort_keys=True, default=str)
                vot.resources[0].tables[0].infos.append(Info(name=str(k), value=text))
            vot.to_xml(str(tmp))
        elif fmt == "parquet":
            t.to_pandas().to_parquet(tmp, index=False)
        else:
            t.write(tmp, format=fmt, overwrite=True)
    return path


def _write_fits(t: "Table", tmp: Path) -> None:
    import json

    import numpy as np
    from astropy.io import fits
    from astropy.table import MaskedColumn, Table
    out = Table(t, copy=True)
    out.meta.clear()
    for c in out.colnames:
        col = out[c]
        if col.dtype.kind == "b" and getattr(col, "mask", None) is not None and np.any(col.mask):
            # FITS logicals cannot be null in astropy: 0/1 integers with a TNULL instead
            out[c] = MaskedColumn(np.asarray(col.filled(False), dtype=np.int16), mask=col.mask,
                                  fill_value=-1, unit=col.unit, description=col.description, meta=col.meta)
    hdu = fits.table_to_hdu(out)
    for i, c in enumerate(out.colnames, start=1):
        if c in UCDS:
            hdu.header[f"TUCD{i}"] = UCDS[c]
        if out[c].description:
            hdu.header[f"TCOMM{i}"] = str(out[c].description)
    for k, v in t.meta.items():
        text = v if isinstance(v, (str, int, float, bool)) else json.dumps(v, sort_keys=True, default=str)
        key = str(k).upper() if len(str(k)) <= 8 else f"HIERARCH {k}"
        if isinstance(text, str) and len(text) > 60:
            hdu.header.add_comment(f"{k} = {text}")
        else:
            hdu.header[key] = text
    fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(tmp, overwrite=True)


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
