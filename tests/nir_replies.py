"""Generated archive replies of a PR22 field (Gaia TAP, VizieR II/246/out, VizieR II/387/virac2) made
from a simulated VVV field, and fake clients serving them: no network.

The replies carry the measurements of :mod:`ocmembers.sim.vvv` (``_measure``: Gaia, 2MASS, VVV
and VIRAC2 of each simulated source), in the column names and units the services use
(:mod:`ocmembers.sources.nir_archive` says which names are confirmed), through a VOTable
round trip so that nulls come back masked as in a real reply:

* Gaia: the Gaia DR3 columns (epoch 2016.0) of the Gaia detections; the columns the simulation does
  not make (``ra_error``, ``l``, ``ruwe`` ...) filled with fixed values;
* 2MASS PSC: ``2MASS, RAJ2000, DEJ2000`` (deg) at epoch 2000.0 (the true 2016 position moved back
  with the true proper motion, plus 60 mas of noise), ``Jmag, e_Jmag, Hmag, e_Hmag, Kmag, e_Kmag``
  (mag) and ``Qflg``: ``A`` for a measured band, ``U`` (upper limit: the magnitude the 2MASS
  limit, the error null) for a band the simulation did not detect;
* VIRAC2: ``srcid`` (row number + 1), ``RAJ2000, DEJ2000`` (deg) at epoch 2014.0 (5 mas noise),
  ``e_RAJ2000, e_DEJ2000`` (mas), ``Plx, e_Plx`` (mas), ``pmRA, e_pmRA, pmDE, e_pmDE`` (mas/yr),
  ``Jmag ... e_Ksmag`` (mag) of every VVV detection.
"""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
from astropy.io.votable import from_table, parse_single_table
from astropy.table import MaskedColumn, Table

from ocmembers.method.columns import GAIA_COLUMNS

MAS_PER_DEG = 3.6e6
#: Magnitudes written for 2MASS upper limits (the PSC's ``U`` bands give a limit, no error).
TMASS_LIMITS = {"j": 17.1, "h": 16.4, "ks": 15.3}


def capture_measurements(cluster: pd.Series, cfg, monkeypatch=None):
    """Simulate the VVV field of ``cluster``; the field and the per-survey measurements of its
    sources (``_measure``'s rows, in the field's order before sorting; the last call of
    ``sim.vvv.combine`` is on them)."""
    import ocmembers.sim.vvv as vvv

    seen = []
    real = vvv.combine

    def spy(m):
        seen.append(m)
        return real(m)

    vvv.combine = spy
    try:
        field = vvv.simulate_vvv_cone(cluster, cfg)
    finally:
        vvv.combine = real
    m = seen[-1]
    ok = np.isfinite(real(m)["parallax"].to_numpy(float)) & np.isfinite(real(m)["pmra"].to_numpy(float))
    return field, m.loc[ok].reset_index(drop=True)


def _move(ra, dec, pmra, pmdec, dt):
    cosd = np.cos(np.deg2rad(dec))
    return np.mod(ra + pmra * dt / MAS_PER_DEG / cosd, 360.0), dec + pmdec * dt / MAS_PER_DEG


def _votable_round_trip(table: Table) -> Table:
    buf = io.BytesIO()
    from_table(table).to_xml(buf)
    buf.seek(0)
    return parse_single_table(buf).to_table(use_names_over_ids=True)


def gaia_reply(m: pd.DataFrame) -> Table:
    """The Gaia archive's answer (all :data:`GAIA_COLUMNS`) for the Gaia detections of ``m``."""
    g = m.loc[m["gaia_source_id"].to_numpy() >= 0]
    fill = {"ra_error": 0.1, "dec_error": 0.1, "l": 0.0, "b": 0.0, "ruwe": 1.0, "nu_eff_used_in_astrometry": 1.5,
            "pseudocolour": np.nan, "ecl_lat": 0.0, "astrometric_params_solved": 31,
            "phot_g_n_obs": 300, "phot_bp_n_obs": 30, "phot_rp_n_obs": 30}
    cols = {}
    for c in GAIA_COLUMNS:
        if c == "source_id":
            cols[c] = g["gaia_source_id"].to_numpy(np.int64)
        elif f"gaia_{c}" in g.columns:
            cols[c] = g[f"gaia_{c}"].to_numpy(float)
        elif c.endswith("_corr"):
            cols[c] = np.zeros(len(g))
        else:
            cols[c] = np.full(len(g), fill[c])
    return Table(cols)


def tmass_reply(m: pd.DataFrame, rng: np.random.Generator, *, id_column: str = "2MASS",
                noise_mas: float = 60.0) -> tuple[Table, np.ndarray]:
    """The VizieR II/246/out answer for the 2MASS detections of ``m``, and their rows in ``m``."""
    rows = np.flatnonzero(np.isfinite(m[["tmass_j", "tmass_h", "tmass_ks"]].to_numpy(float)).any(axis=1))
    t = m.iloc[rows]
    ra, dec = _move(t["ra_true"].to_numpy(float), t["dec_true"].to_numpy(float),
                    t["true_pmra"].to_numpy(float), t["true_pmdec"].to_numpy(float), 2000.0 - 2016.0)
    ra = ra + rng.normal(0, noise_mas, ra.size) / MAS_PER_DEG / np.cos(np.deg2rad(dec))
    dec = dec + rng.normal(0, noise_mas, dec.size) / MAS_PER_DEG
    tab = Table()
    tab[id_column] = [f"{i:08d}-{i % 97:07d}" for i in rows]
    tab["RAJ2000"], tab["DEJ2000"] = ra, dec
    tab["RAJ2000"].unit = tab["DEJ2000"].unit = "deg"
    flags = np.full((rows.size, 3), "A")
    for k, (b, name) in enumerate((("j", "Jmag"), ("h", "Hmag"), ("ks", "Kmag"))):
        v = t[f"tmass_{b}"].to_numpy(float)
        e = t[f"tmass_{b}_error"].to_numpy(float)
        lim = ~np.isfinite(v)
        flags[lim, k] = "U"
        tab[name] = MaskedColumn(np.where(lim, TMASS_LIMITS[b], v), unit="mag")
        tab["e_" + name] = MaskedColumn(np.where(lim, 0.0, e), mask=lim, unit="mag")
    tab["Qflg"] = ["".join(f) for f in flags]
    return _votable_round_trip(tab), rows


def virac2_reply(m: pd.DataFrame, rng: np.random.Generator, *, noise_mas: float = 5.0) -> tuple[Table, np.ndarray]:
    """The VizieR II/387/virac2 answer for the VVV detections of ``m``, and their rows in ``m``
    (``srcid`` = row + 1)."""
    rows = np.flatnonzero(np.isfinite(m[["vvv_j", "vvv_h", "vvv_ks"]].to_numpy(float)).any(axis=1))
    t = m.iloc[rows]
    ra, dec = _move(t["ra_true"].to_numpy(float), t["dec_true"].to_numpy(float),
                    t["true_pmra"].to_numpy(float), t["true_pmdec"].to_numpy(float), 2014.0 - 2016.0)
    ra = ra + rng.normal(0, noise_mas, ra.size) / MAS_PER_DEG / np.cos(np.deg2rad(dec))
    dec = dec + rng.normal(0, noise_mas, dec.size) / MAS_PER_DEG
    tab = Table()
    tab["srcid"] = (rows + 1).astype(np.int64)
    tab["RAJ2000"], tab["DEJ2000"] = ra, dec
    tab["RAJ2000"].unit = tab["DEJ2000"].unit = "deg"
    for c in ("e_RAJ2000", "e_DEJ2000"):
        tab[c] = MaskedColumn(np.full(rows.size, noise_mas), unit="mas")
    for name, c, unit in (("Plx", "parallax", "mas"), ("pmRA", "pmra", "mas/yr"), ("pmDE", "pmdec", "mas/yr")):
        for col, src in ((name, f"virac_{c}"), ("e_" + name, f"virac_{c}_error")):
            v = t[src].to_numpy(float)
            tab[col] = MaskedColumn(np.nan_to_num(v), mask=~np.isfinite(v), unit=unit)
    for b, name in (("j", "Jmag"), ("h", "Hmag"), ("ks", "Ksmag")):
        for col, src in ((name, f"vvv_{b}"), ("e_" + name, f"vvv_{b}_error")):
            v = t[src].to_numpy(float)
            tab[col] = MaskedColumn(np.nan_to_num(v), mask=~np.isfinite(v), unit="mag")
    tab["UWE"] = np.ones(rows.size)
    return _votable_round_trip(tab), rows


class FakeJob:
    def __init__(self, result):
        self.result = result

    def get_results(self):
        return self.result


class FakeTap:
    """astroquery's ``Gaia``: ``launch_job_async`` answers with ``reply`` (or raises it)."""

    host = "gea.esac.esa.int"

    def __init__(self, reply):
        self.reply = reply
        self.queries: list[str] = []

    def launch_job_async(self, query, **kwargs):
        self.queries.append(query)
        if isinstance(self.reply, BaseException):
            raise self.reply
        return FakeJob(self.reply)


class FakeVizierRegion:
    """astroquery's ``Vizier``: ``query_region`` answers from ``tables`` by catalogue; a reply may be
    an exception (raised) or a list of replies served in turn."""

    VIZIER_SERVER = "vizier.cds.unistra.fr"

    def __init__(self, tables: dict):
        self.tables = {k: (list(v) if isinstance(v, list) else [v]) for k, v in tables.items()}
        self.calls: list[dict] = []

    def query_region(self, coordinates, radius=None, catalog=None, cache=True, column_filters=None, frame=None):
        self.calls.append({"catalog": catalog, "ra": float(coordinates.ra.deg), "dec": float(coordinates.dec.deg),
                           "radius_deg": float(radius.to("deg").value), "column_filters": dict(column_filters or {})})
        replies = self.tables[catalog]
        reply = replies.pop(0) if len(replies) > 1 else replies[0]
        if isinstance(reply, BaseException):
            raise reply
        return {catalog: reply}


def vista_cmd_reply(payload: dict) -> bytes:
    """A CMD reply in the VISTA system for the single age of ``payload``, in the layout of the
    recorded Gaia EDR3 reply (``tests/data/archive_cmd_output.dat``: its first isochrone, its
    header with ``Photometric system: VISTA``, the Gaia bands replaced by ``Zmag Ymag Jmag Hmag
    Ksmag`` from the project's Gaia -> 2MASS -> VISTA relations). Generated: no VISTA reply of CMD
    has been recorded (the column names follow CMD's rule, :data:`ocmembers.sources.parsec.CMD_BANDS`)."""
    from pathlib import Path

    from ocmembers.sim.nir import twomass_from_gaia, vista_from_twomass

    assert payload["photsys_file"].endswith("tab_mag_vista.dat") and payload["isoc_lagelow"] == payload["isoc_lageupp"]
    lines = (Path(__file__).parent / "data" / "archive_cmd_output.dat").read_text().splitlines()
    head, rows, seen = [], [], 0
    for line in lines:
        if line.lstrip("#").strip().startswith("Zini"):
            seen += 1
            if seen > 1:
                break
            cols = line.split()
            head.append(" ".join(cols[:-3] + ["Zmag", "Ymag", "Jmag", "Hmag", "Ksmag"]))
        elif line.startswith("#"):
            if seen == 0:
                head.append("# Photometric system: VISTA ZYJHKs (Vegamags)" if "Photometric system" in line
                            else line)
        else:
            rows.append(line.split())
    a = np.array(rows, dtype=float)
    g, bp, rp = a[:, -3], a[:, -2], a[:, -1]
    v = vista_from_twomass(twomass_from_gaia(g, bp, rp))
    out = []
    for r, j, h, k in zip(rows, v["j"], v["h"], v["ks"]):
        r = list(r)
        r[2] = f"{float(payload['isoc_lagelow']):.5f}"
        out.append(" ".join(r[:-3] + [f"{j + 0.6:.3f}", f"{j + 0.3:.3f}", f"{j:.3f}", f"{h:.3f}", f"{k:.3f}"]))
    return ("\n".join(head + out) + "\n").encode()
