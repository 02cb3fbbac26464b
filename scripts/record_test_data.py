#!/usr/bin/env python
"""Write the small recorded replies that the offline tests of the archive source serve.

Two ways to make them, with the same file names under ``tests/data/``:

``python scripts/record_test_data.py`` (default, no network)
    Builds replies *in the services' formats* from a few rows of the
    reference data in ``$OCMEMBERS_SHARED_DATA`` (default ``../shared/data``):

    - ``archive_vizier_cg20_table1.xml``: VizieR VOTable of
      ``J/A+A/640/A1/table1`` (field names as VizieR's: ``pmRA*``, ``AgeNN``...),
      a few clusters of ``cg20_table1.csv``, one with its age masked;
    - ``archive_vizier_cg20_nodup.xml``: VizieR VOTable of ``J/A+A/640/A1/nodup``
      (``GaiaDR2``, ``proba``) from the CG18 DR2 member list of NGC 2682;
    - ``archive_vizier_t22_table2.xml``: VizieR VOTable of ``J/A+A/659/A59/table2``
      (``GaiaEDR3``, ``Proba``) from the T22 list of NGC 2682;
    - ``archive_gaia_cone_NGC_2682.xml``: a Gaia TAP VOTable with the cone
      columns, 25 sources of the real M67 extract;
    - ``archive_cmd_reply.html``, ``archive_cmd_error.html``: a CMD result page
      linking its output and a CMD error page;
    - ``archive_cmd_output.dat``: CMD output text, the header and the first 20
      points of the logAge 7.00 and 7.05 isochrones of the Z = 0.0105 PARSEC
      file (renamed; the shared file is never copied whole).

``python scripts/record_test_data.py --live`` (needs the network)
    Records real replies of the same requests that ``ocmembers`` sends, for
    NGC 2682 only and with small row limits, to the same names with the
    prefix ``archive_live_`` (review them, then rename them over the built
    ones if wanted): VizieR VOTables (POSTed to ``viz-bin/votable`` with
    astroquery's payload), a ``TOP 25`` Gaia cone, and a CMD reply page with
    its output for logAge 9.30-9.32.

Each file records its query in its name; rerunning overwrites them.
"""

from __future__ import annotations

import argparse
import gzip
import io
import os
import sys
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "tests" / "data"
CLUSTERS = ("NGC_2682", "NGC_752", "Blanco_1", "IC_4756", "NGC_2516")
MASK_AGE_OF = "IC_4756"  # one row with a masked AgeNN, as VizieR has for some clusters

CMD_PAGE = """<!DOCTYPE html>
<html><head><title>CMD 3.8 output</title></head>
<body>
<h2>CMD 3.8 output</h2>
<p>Your request has been processed. Results:</p>
<p><a href="../tmp/output{digits}.dat">output{digits}.dat</a> (isochrone tables, {n} ages)</p>
<p>Evolutionary tracks: PARSEC v1.2S + COLIBRI S_37. Photometric system: Gaia EDR3.</p>
</body></html>
"""

CMD_ERROR_PAGE = """<!DOCTYPE html>
<html><head><title>CMD 3.8 input form</title></head>
<body>
<p class="errorwarning"><b>Error:</b> Metallicity Z=0.9 outside the range of available tracks
(0.0001&le;Z&le;0.06). Please change your input.<br></p>
<form method="post" action="cmd">...</form>
</body></html>
"""


def shared_dir() -> Path:
    return Path(os.environ.get("OCMEMBERS_SHARED_DATA", REPO.parent / "shared" / "data"))


def _votable(table_name: str, resource_name: str, columns: list[tuple[str, str, np.ndarray, str]],
             masks: dict[str, np.ndarray] | None = None) -> bytes:
    """A VOTable in VizieR's layout: one RESOURCE named after the catalogue,
    one TABLE named after the table, FIELD name = VizieR column name and
    ID = the name with ``*`` replaced by ``_`` (as VizieR writes them)."""
    from astropy.io.votable.tree import Field, Resource, TableElement, VOTableFile

    vot = VOTableFile()
    resource = Resource(name=resource_name)
    vot.resources.append(resource)
    table = TableElement(vot, name=table_name)
    resource.tables.append(table)
    for name, datatype, _values, unit in columns:
        kwargs = {"arraysize": "*"} if datatype == "char" else {}
        table.fields.append(Field(vot, name=name, ID=name.replace("*", "_"), datatype=datatype,
                                  unit=unit or None, **kwargs))
    n = len(columns[0][2])
    table.create_arrays(n)
    for i, (name, _dt, values, _unit) in enumerate(columns):
        table.array[name] = values
        if masks and name in masks:
            table.array.mask[name] = masks[name]
    buf = io.BytesIO()
    vot.to_xml(buf)
    return buf.getvalue()


def build_cg20_table1(shared: Path) -> bytes:
    csv = pd.read_csv(shared / "catalogues" / "cg20_table1.csv")
    rows = csv.set_index("Name").loc[list(CLUSTERS)].reset_index()
    spec = [("Cluster", "char", "Name", ""), ("RA_ICRS", "double", "RA", "deg"),
            ("DE_ICRS", "double", "DEC", "deg"), ("GLON", "double", "GLON", "deg"),
            ("GLAT", "double", "GLAT", "deg"), ("r50", "double", "r50", "deg"),
            ("nbstars07", "short", "n07", ""), ("pmRA*", "double", "pmRA", "mas/yr"),
            ("e_pmRA*", "double", "e_pmRA", "mas/yr"), ("pmDE", "double", "pmDE", "mas/yr"),
            ("e_pmDE", "double", "e_pmDE", "mas/yr"), ("plx", "double", "plx", "mas"),
            ("e_plx", "double", "e_plx", "mas"), ("AgeNN", "double", "Age", "[yr]"),
            ("AVNN", "double", "A", "mag"), ("DMNN", "double", "D_m", "mag"),
            ("DistPc", "double", "D_pc", "pc")]
    columns = []
    for name, dt, src, unit in spec:
        values = rows[src].to_numpy()
        values = values.astype(str) if dt == "char" else values.astype(
            np.int16 if dt == "short" else np.float64)
        columns.append((name, dt, values, unit))
    mask = (rows["Name"] == MASK_AGE_OF).to_numpy()
    return _votable("J/A+A/640/A1/table1", "J/A+A/640/A1", columns, masks={"AgeNN": mask})


def _members_votable(frame: pd.DataFrame, id_name: str, prob_name: str, table: str,
                     resource: str) -> bytes:
    columns = [("Cluster", "char", frame["cluster"].astype(str).to_numpy(), ""),
               (id_name, "long", frame["Source"].to_numpy(dtype=np.int64), ""),
               ("RA_ICRS", "double", frame["ra"].to_numpy(float), "deg"),
               ("DE_ICRS", "double", frame["dec"].to_numpy(float), "deg"),
               ("pmRA", "double", frame["pmra"].to_numpy(float), "mas/yr"),
               ("pmDE", "double", frame["pmdec"].to_numpy(float), "mas/yr"),
               ("Plx", "double", frame["parallax"].to_numpy(float), "mas"),
               ("Gmag", "double", frame["phot_g_mean_mag"].to_numpy(float), "mag"),
               (prob_name, "double", frame["PMemb"].to_numpy(float), "")]
    return _votable(table, resource, columns)


def build_members(shared: Path, file: str, n: int) -> pd.DataFrame:
    members = pd.read_csv(shared / "catalogues" / file)
    return members.loc[members["cluster"] == "NGC_2682"].sort_values("Source").head(n)


def build_gaia_cone(shared: Path) -> bytes:
    from astropy.io.votable import from_table
    from astropy.table import Table

    sys.path.insert(0, str(REPO / "src"))
    from ocmembers.method.columns import GAIA_COLUMNS

    cone = pd.read_csv(shared / "gaia" / "cones" / "NGC_2682.csv")
    cone = cone.sort_values("source_id").head(25).loc[:, list(GAIA_COLUMNS)]
    table = Table.from_pandas(cone)
    buf = io.BytesIO()
    from_table(table).to_xml(buf)
    return buf.getvalue()


def build_cmd_output(shared: Path, points: int = 20) -> bytes:
    lines = (shared / "isochrones" / "parsec12s_gaiaedr3_Z0.010500_logAge7.00-10.10.dat"
             ).read_text().splitlines(keepends=True)
    out: list[str] = []
    block = 0
    kept = 0
    for line in lines:
        if line.startswith("# Age ="):
            block += 1
            kept = 0
            if block > 2:
                break
        if line.startswith("#"):
            out.append(line)
        elif kept < points:
            out.append(line)
            kept += 1
    out.append("#isochrone terminated\n")
    return "".join(out).encode()


def build_offline(out: Path) -> None:
    shared = shared_dir()
    if not (shared / "README.md").is_file():
        sys.exit(f"shared data not found at {shared}; set OCMEMBERS_SHARED_DATA")
    files = {
        "archive_vizier_cg20_table1.xml": build_cg20_table1(shared),
        "archive_vizier_cg20_nodup.xml": _members_votable(
            build_members(shared, "cg18_members_dr2.csv.gz", 12), "GaiaDR2", "proba",
            "J/A+A/640/A1/nodup", "J/A+A/640/A1"),
        "archive_vizier_t22_table2.xml": _members_votable(
            build_members(shared, "t22_members_edr3.csv.gz", 10), "GaiaEDR3", "Proba",
            "J/A+A/659/A59/table2", "J/A+A/659/A59"),
        "archive_gaia_cone_NGC_2682.xml": build_gaia_cone(shared),
        "archive_cmd_reply.html": CMD_PAGE.format(digits="1700000000123", n=2).encode(),
        "archive_cmd_error.html": CMD_ERROR_PAGE.encode(),
        "archive_cmd_output.dat": build_cmd_output(shared),
    }
    out.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (out / name).write_bytes(data)
        print(f"wrote {out / name} ({len(data)} bytes)")


def record_live(out: Path) -> None:  # pragma: no cover - needs the network
    import requests
    from astroquery.vizier import Vizier

    sys.path.insert(0, str(REPO / "src"))
    from ocmembers import load_config
    from ocmembers.sources import cmd, gaia, vizier
    from ocmembers.method.columns import cluster_row

    cfg = load_config()
    out.mkdir(parents=True, exist_ok=True)
    server = "https://vizier.cds.unistra.fr/viz-bin/votable"
    for product, payload in vizier.catalogue_queries().items():
        body = Vizier(columns=payload["columns"], row_limit=12).query_constraints(
            catalog=payload["catalog"], get_query_payload=True,
            **({} if product == "clusters" else {"Cluster": "NGC_2682"}))
        reply = requests.post(server, data=body, timeout=300)
        reply.raise_for_status()
        (out / f"archive_live_vizier_{product}.xml").write_bytes(reply.content)
    clusters = vizier.parse_cg20_table1(vizier.fetch_vizier(
        vizier.catalogue_queries()["clusters"], cfg=cfg))
    adql = gaia.build_cone_adql(cluster_row(clusters, "NGC_2682"), cfg).replace(
        "SELECT ", "SELECT TOP 25 ", 1)
    table = gaia.gaia_client(cfg).launch_job_async(adql).get_results()
    table.write(out / "archive_live_gaia_cone_NGC_2682.xml", format="votable", overwrite=True)
    payload = cmd.build_cmd_payload(9.30, 9.32, 0.01, cfg.isochrone.metallicity_z,
                                    cmd_version=cfg.source.cmd_version)
    with requests.Session() as session:
        page = session.post(cfg.source.cmd_url, data=payload, timeout=600)
        page.raise_for_status()
        (out / "archive_live_cmd_reply.html").write_bytes(page.content)
        data = session.get(cmd.cmd_output_url(page.text, page.url), timeout=600).content
        if data[:2] == b"\x1f\x8b":
            data = gzip.decompress(data)
        (out / "archive_live_cmd_output.dat").write_bytes(data)
    print(f"recorded live replies under {out}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--live", action="store_true", help="record real replies (network)")
    parser.add_argument("--out", type=Path, default=OUT, help="output directory (tests/data)")
    args = parser.parse_args(argv)
    record_live(args.out) if args.live else build_offline(args.out)


if __name__ == "__main__":
    main()
