"""Fig. 1: members (blue), candidates (orange) and non-members (grey) of one cluster in
sky position, proper motion, parallax and the CMD, with the isochrone and the
zero-uncertainty boundaries (dashed red).

Usage: python figures/fig_sets.py SETS_DIR(data/<source>/sets/<cluster>) MEMBERS_PARQUET|- OUT.pdf [MEMBER_LABEL]

MEMBER_LABEL: the legend of the members (default "training members"; the figures stage
gives the cluster's role: "validation members" for a validation cluster).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import pandas as pd  # noqa: E402


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) not in (3, 4):
        raise SystemExit(__doc__)
    label = argv[3] if len(argv) == 4 else "training members"
    from ocmembers.stages.plots import save_cluster_plot
    from ocmembers.method.selection import ClusterParams
    sets_dir, members, out = Path(argv[0]), argv[1], Path(argv[2])
    params = json.loads((sets_dir / "params.json").read_text())
    sets = {kind: pd.read_parquet(sets_dir / f"{kind}.parquet") for kind in ("members", "candidates", "non_members")}
    sets["params"] = ClusterParams.from_dict(params["params"] if "params" in params else params)
    sets["isochrone"] = pd.read_parquet(sets_dir / "isochrone.parquet")
    probabilities = None
    if members != "-" and Path(members).is_file():
        probabilities = pd.read_parquet(members)[["source_id", "probability"]]
    title = sets_dir.name.replace("_", " ")
    out.parent.mkdir(parents=True, exist_ok=True)
    # Fig. 1 shows the sets themselves; the probabilities are drawn in Fig. 4
    save_cluster_plot(sets, None, out, title=title, member_label=label)
    save_cluster_plot(sets, None, out.with_suffix(".png"), title=title, dpi=150, member_label=label)
    if probabilities is not None:
        save_cluster_plot(sets, probabilities, out.with_name(out.stem + "_probabilities.pdf"), title=title,
                          member_label=label)


if __name__ == "__main__":
    main()
