"""A user's own Gaia cone from a file: CSV, Parquet, VOTable, FITS or ECSV."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ocmembers.exceptions import TableParseError

__all__ = ["read_cone_file"]


def read_cone_file(path: str | Path) -> pd.DataFrame:
    """A Gaia cone as the archive exports it: CSV, Parquet, VOTable, FITS or ECSV.

    Column names are lower-cased (the archive's VOTable and FITS exports use
    the ``gaia_source`` names; some tools upper-case them).
    """
    path = Path(path)
    if not path.is_file():
        raise TableParseError(f"cone file {path} does not exist")
    suffix = "".join(path.suffixes[-2:]).lower() if path.suffix.lower() == ".gz" else path.suffix.lower()
    try:
        if suffix in (".csv", ".csv.gz"):
            df = pd.read_csv(path)
        elif suffix in (".parquet", ".pq"):
            df = pd.read_parquet(path)
        else:
            from astropy.table import Table
            fmt = {".vot": "votable", ".xml": "votable", ".votable": "votable", ".fits": "fits",
                   ".fit": "fits", ".fits.gz": "fits", ".ecsv": "ascii.ecsv"}.get(suffix)
            if fmt is None:
                raise TableParseError(f"cone file {path}: unknown format {suffix!r} (use CSV, "
                                      "Parquet, VOTable, FITS or ECSV)")
            t = Table.read(path, format=fmt)
            for c in t.colnames:          # masked floats -> NaN; masked ints stay nullable
                if getattr(t[c], "mask", None) is not None and t[c].dtype.kind == "f":
                    t[c] = t[c].filled(np.nan)
            df = t.to_pandas()
    except TableParseError:
        raise
    except Exception as exc:  # noqa: BLE001 - any reader failure is a parse error of this file
        raise TableParseError(f"cone file {path} could not be read: {exc}") from exc
    df.columns = [str(c).lower() for c in df.columns]
    return df
