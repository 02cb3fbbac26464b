"""The figures stage: which figures a run's products allow, and with which inputs."""

from __future__ import annotations

import json

from ocmembers import load_config
from ocmembers.sources import cache
from ocmembers.stages.figures import figure_jobs


def test_fig1_of_a_cluster_without_member_list_needs_only_its_sets(tmp_path):
    # the demo's NGC 2527 is a training cluster: it has sets but no member list; Fig. 1 then
    # shows the sets without probabilities (make demo failed on this once)
    cfg = load_config(source="sim", output_dir=str(tmp_path))
    sets = cfg.out_dir / "sets" / "NGC_2527"
    sets.mkdir(parents=True)
    cache.write_json({"test": ["NGC_752"], "train": ["NGC_2527"], "validation": []}, cfg.out_dir / "samples.json")
    (sets / "params.json").write_text(json.dumps({"params": {}}))
    jobs = {j.name: j for j in figure_jobs(cfg)}
    fig1 = jobs["fig1_sets"]
    members = cfg.out_dir / "members" / "NGC_2527.parquet"
    assert members not in fig1.inputs
    members.parent.mkdir(parents=True)
    members.write_bytes(b"x")
    assert members in {j.name: j for j in figure_jobs(cfg)}["fig1_sets"].inputs


def _script(name):
    import importlib.util
    from pathlib import Path
    path = Path(__file__).resolve().parents[1] / "figures" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _sets(n=30, seed=1):
    import numpy as np
    import pandas as pd
    rng = np.random.default_rng(seed)

    def frame(k):
        return pd.DataFrame({"source_id": np.arange(k), "l": rng.normal(0, 1, k), "b": rng.normal(0, 1, k),
                             "parallax": rng.normal(1, 0.1, k), "pmra": rng.normal(0, 1, k),
                             "pmdec": rng.normal(0, 1, k), "phot_g_mean_mag": rng.uniform(10, 18, k),
                             "g_rp": rng.uniform(0.2, 1.0, k)})
    return {"members": frame(n), "candidates": frame(n), "non_members": frame(n)}


def test_fig1_legend_names_the_role_of_the_cluster(tmp_path):
    # the members of a validation cluster are not "training members"
    cfg = load_config(source="sim", output_dir=str(tmp_path))
    for name in ("NGC_2527", "NGC_752"):
        (cfg.out_dir / "sets" / name).mkdir(parents=True)
        (cfg.out_dir / "sets" / name / "params.json").write_text(json.dumps({"params": {}}))
    cache.write_json({"test": ["NGC_752"], "train": [], "validation": ["NGC_2527"]}, cfg.out_dir / "samples.json")
    fig1 = {j.name: j for j in figure_jobs(cfg)}["fig1_sets"]
    assert fig1.args[-1] == "validation members"
    cache.write_json({"test": ["NGC_752"], "train": ["NGC_2527"], "validation": []}, cfg.out_dir / "samples.json")
    assert {j.name: j for j in figure_jobs(cfg)}["fig1_sets"].args[-1] == "training members"
    from ocmembers.stages.plots import plot_cluster_sets
    fig = plot_cluster_sets(_sets(), member_label="validation members", boundaries=False)
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert "validation members" in labels and "training members" not in labels


def test_fig4_magnitude_axes_carry_their_unit():
    import numpy as np
    t = _sets()["candidates"].assign(probability=np.linspace(0, 1, 30), t22=np.arange(30) % 2 == 0,
                                     ra=lambda d: d["l"], dec=lambda d: d["b"])
    fig = _script("fig_clusters_t22").draw({"NGC_752": t, "NGC_2682": t})
    for row in np.asarray(fig.axes).reshape(2, 4):
        assert row[1].get_ylabel() == "$G$ [mag]" and row[3].get_ylabel() == "$G$ [mag]"
        assert "[mag]" in row[3].get_xlabel()


def test_venn_labels_never_overlap_for_two_nearly_equal_lists():
    # ours against the truth: the circles almost coincide, the differences are slivers
    from itertools import combinations
    venn = {"ours_only": 5, "t22_only": 3, "both": 5000, "ours": 5005, "t22": 5003}
    stats = {"thresholds": {"p_all": 0.1, "p_strict": 0.5, "radius_pc": 20.0, "g_max": 18.0},
             "n_clusters": 7, "venn_all": venn, "venn_strict": dict(venn, ours_only=0, ours=5000)}
    fig = _script("fig_venn").draw(stats, "this work", "truth")
    fig.tight_layout()
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    from matplotlib.text import Text
    texts = list({id(t): t for t in fig.findobj(Text) if t.get_visible() and t.get_text().strip()}.values())
    boxes = [(t.get_text(), t.get_window_extent(renderer)) for t in texts]
    # touching counts as colliding: each box padded by 2 px ("truth" ended where "this work" began)
    boxes = [(s, bb.padded(2)) for s, bb in boxes]
    clash = [(a, b) for (a, ba), (b, bb) in combinations(boxes, 2) if ba.overlaps(bb)]
    assert not clash, clash
    assert any("truth only: 3" in s for s, _ in boxes) and any("both: 5,000" in s for s, _ in boxes)
    assert fig._suptitle.get_text() == "7 test clusters"
    one = _script("fig_venn").draw(dict(stats, n_clusters=1))
    assert one._suptitle.get_text() == "1 test cluster"


def test_figures_without_their_scripts_is_one_clear_error(tmp_path, monkeypatch):
    # `docker run -v "$PWD/figures:/work/figures"` from outside the checkout mounts an empty
    # directory over the scripts: six "no script" failures became one error saying why
    import pytest
    from ocmembers.exceptions import OCMembersError
    from ocmembers.stages.figures import run
    cfg = load_config(source="sim", output_dir=str(tmp_path / "data"))
    (tmp_path / "figures").mkdir()
    monkeypatch.chdir(tmp_path)
    with pytest.raises(OCMembersError, match=r"no figure scripts \(fig_\*\.py\) in .*figures.*checkout"):
        run(cfg)
