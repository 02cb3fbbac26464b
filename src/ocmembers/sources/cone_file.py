"""A user's own Gaia cone from a file: CSV, Parquet, VOTable, FITS or ECSV."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ocmembers.exceptions import TableParseError
from ocmembers.method.gaia_names import canonical_gaia_table

__all__ = ["read_cone_file", "read_table_file"]


def read_cone_file(path: str | Path, require: tuple[str, ...] = ()) -> pd.DataFrame:
    """A Gaia DR3 cone from a file (CSV, Parquet, VOTable, FITS or ECSV) in canonical names.

    The columns may be spelled as the Gaia archive, VizieR I/355 or I/350,
    astroquery or HATS/LSDB spell them, in any case; they are renamed and the
    derivable ones derived by :func:`ocmembers.method.gaia_names.canonical_gaia_table`.
    ``require`` names the canonical columns that must then be present
    (:data:`ocmembers.method.gaia_names.CONE_REQUIRED` for a cone to run the
    method on, as :func:`ocmembers.api.members` asks).

    Raises
    ------
    TableParseError
        The file does not exist or cannot be read.
    MissingColumnsError
        One error naming the file and every missing quantity with its spellings.
    """
    return canonical_gaia_table(read_table_file(path), f"cone file {path}", require)


def read_table_file(path: str | Path) -> pd.DataFrame:
    """A table from a file, columns lower-cased and otherwise as written (no Gaia renaming).

    For tables that are not Gaia cones: member lists, isochrones.
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
