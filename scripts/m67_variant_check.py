"""The calibrated variant on the real M67 cone (issue 15 item 2): the T22 members it recovers at
p >= 0.5, and its members per G bin beside the published DS10_v02's (the paper's probability).

    PYTHONPATH=src .venv/bin/python scripts/m67_variant_check.py \
        --model data/variant/sim/model/model.pt --calibrator data/variant/sim/model/calibrator.pkl

The model and calibrator are those of a SOURCE=sim run with VARIANT=calibrated (faint.toml's
command). The cone is the real Gaia DR3 extract of ../shared/data (pre-cut in proper motion:
a partial cone), so the T22 fraction is over the T22 members it holds.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

import ocmembers
from ocmembers.sources.local import read_member_list

G_EDGES = (3.0, 15.0, 16.0, 17.0, 18.0, 19.0, 20.0, 21.0)
THRESHOLD = 0.5


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", default="../shared/data")
    ap.add_argument("--model", required=True, help="model.pt of the SOURCE=sim run")
    ap.add_argument("--calibrator", required=True, help="its model/calibrator.pkl")
    ap.add_argument("--n-samples", type=int, default=100)
    a = ap.parse_args()
    data = Path(a.data_dir)
    cone = data / "gaia" / "cones" / "NGC_2682.csv"
    paper_cfg = ocmembers.load_config(source="local", local_dir=str(data))
    var_cfg = ocmembers.load_config(source="local", local_dir=str(data),
                                    overrides=["membership.variant=calibrated", f"membership.calibrator={a.calibrator}"])
    runs = {
        "DS10_v02 (paper's p)": ocmembers.members(cone, "NGC_2682", "vg23", config=paper_cfg, n_samples=a.n_samples),
        "calibrated variant": ocmembers.members(cone, "NGC_2682", a.model, config=var_cfg, n_samples=a.n_samples),
    }
    runs = {k: t.to_pandas() for k, t in runs.items()}
    var = runs["calibrated variant"]
    runs["its model, paper's p"] = var.assign(probability=var["probability_deep_sets"])
    t22 = read_member_list(data / "catalogues" / "t22_members_edr3.csv.gz", id_column="source_id")
    t22 = t22.loc[t22["cluster"] == "NGC_2682"]
    ids = set(var["source_id"])
    held = t22.loc[t22["source_id"].isin(ids)]
    print(f"T22 members of NGC_2682: {len(t22)}; in the real cone extract ({cone}): {len(held)}")
    print(f"\n| p >= {THRESHOLD:g} | T22 members recovered | " +
          " | ".join(f"G {lo:g}-{hi:g}" for lo, hi in zip(G_EDGES[:-1], G_EDGES[1:])) + " | all |")
    print("|---|---|" + "---|" * (len(G_EDGES)))
    for name, t in runs.items():
        sel = t.loc[t["probability"].to_numpy(float) >= THRESHOLD]
        rec = held["source_id"].isin(sel["source_id"]).mean() if len(held) else np.nan
        g = sel["phot_g_mean_mag"].to_numpy(float)
        counts = np.histogram(g, bins=G_EDGES)[0]
        print(f"| {name} | {rec:.3f} ({int(held['source_id'].isin(sel['source_id']).sum())}/{len(held)}) | "
              + " | ".join(str(int(c)) for c in counts) + f" | {len(sel)} |")


if __name__ == "__main__":
    main()
