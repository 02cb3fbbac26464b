"""Stage ``members``: membership probabilities of every candidate (Sect. 3.4).

For each cluster, the candidates of ``sets/<cluster>/candidates.parquet``
(which, as in the authors' tool, include the training members that pass the
candidate conditions and the "dubious" training members that do not) get a
Monte Carlo probability (:func:`ocmembers.membership.membership_probabilities`)
with the training members of ``members.parquet`` as the support pool. The
training members are therefore in the output with their own probability
(flag ``training_member``), which is what the validation against T22 uses.

Outputs, atomically: ``members/<cluster>.parquet`` (with a manifest) and
``members/<cluster>.ecsv``, an astropy Table with units and metadata
(software version, model id and origin, seed, number of samples, sha256 of
every input file and of the model weights), ready for CDS.

The model is ``[membership] model``: ``"trained"`` (``model/model.pt`` of
this source, written by ``ocmembers train``), ``"vg23"`` (the published
DS10_v02 weights, :mod:`ocmembers.vg23`) or a path to a ``model.pt``;
``--model`` on the command line overrides it.

Each cluster's random stream is seeded by ``[membership] seed`` and the
cluster name, so a cluster's probabilities do not depend on which other
clusters are processed, or in which order. The stage resumes: a cluster
whose outputs are newer than its inputs and were made with the same model
is skipped.

Users with their own cone: ``ocmembers members --cone FILE --cluster NAME``
(CSV, Parquet, VOTable, FITS or ECSV with Gaia archive column names) or, in
Python, :func:`members_from_cone`.
"""

from __future__ import annotations

import logging
import os
import sys
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from . import __version__, cache
from .config import Config
from .exceptions import ConfigError, OCMembersError, TableParseError
from .membership import (cluster_feature_vector, feature_function, membership_probabilities,
                         probability_summary)
from .model import SOURCE_FEATURES, DeepSetsClassifier

__all__ = [
    "OUTPUT_COLUMNS", "UNITS", "load_model", "cluster_seed", "evaluate_sets", "members_paths",
    "write_members", "run", "read_cone_file", "members_from_cone", "configure_parser", "main",
]

log = logging.getLogger(__name__)

#: Columns of the member lists, in order (those present in the sets).
OUTPUT_COLUMNS: tuple[str, ...] = (
    "source_id", "ra", "dec", "l", "b", "parallax", "parallax_error", "pmra", "pmra_error",
    "pmdec", "pmdec_error", "phot_g_mean_mag", "phot_g_mean_mag_error", "phot_bp_mean_mag",
    "phot_rp_mean_mag", "g_rp", "g_rp_error", "ruwe", *SOURCE_FEATURES, "pass_pm", "pass_plx",
    "pass_iso", "candidate", "training_member", "probability",
)

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

_MODELS: dict[tuple[str, str], DeepSetsClassifier] = {}


def torch_threads(cfg: Config) -> int | None:
    """Intra-op threads of the network: ``[membership] torch_threads``, or, when 0 and clusters
    run in parallel, the CPUs shared out among the ``JOBS`` processes. torch's default (all
    CPUs in every process) oversubscribes: JOBS=2 on 2 cores ran 4 busy threads."""
    if cfg.membership.torch_threads:
        return int(cfg.membership.torch_threads)
    jobs = int(cfg.clusters.jobs)
    if jobs > 1:
        return max(1, (os.cpu_count() or 1) // jobs)
    return None


def load_model(cfg: Config, spec: str | None = None) -> DeepSetsClassifier:
    """The classifier named by ``spec`` (default ``[membership] model``), cached per process.

    ``"trained"``: ``<out_dir>/model/model.pt`` (checked against the
    configuration); ``"vg23"``: the published model; otherwise a path to a
    ``model.pt`` written by :meth:`DeepSetsClassifier.save`.
    """
    spec = spec or cfg.membership.model
    key = (spec, str(cfg.out_dir))
    if key not in _MODELS:
        if spec == "vg23":
            from .vg23 import load_vg23
            _MODELS[key] = load_vg23()
        elif spec == "trained":
            from .train import model_paths
            path = model_paths(cfg)["weights"]
            if not path.is_file():
                raise OCMembersError(f"no trained model at {path}: run `ocmembers train`, or use "
                                     "--model vg23 for the published weights")
            _MODELS[key] = DeepSetsClassifier.load(path, cfg)
        else:
            _MODELS[key] = DeepSetsClassifier.load(Path(spec))
    return _MODELS[key]


def _model_weights_path(cfg: Config, spec: str) -> Path | None:
    if spec == "vg23":
        from .vg23 import locate
        return locate() / "model_parameters"
    if spec == "trained":
        from .train import model_paths
        return model_paths(cfg)["weights"]
    return Path(spec)


def cluster_seed(seed: int, name: str) -> int:
    """The seed of one cluster: ``[membership] seed`` mixed with the cluster name."""
    return int(np.random.SeedSequence([int(seed), zlib.crc32(name.encode())]).generate_state(1)[0])


def evaluate_sets(candidates: pd.DataFrame, members: pd.DataFrame, params: Any, curve: Any,
                  model: DeepSetsClassifier, cfg: Config, name: str,
                  timings: dict[str, float] | None = None) -> pd.DataFrame:
    """The member list of one cluster: ``candidates`` with their probabilities.

    Parameters
    ----------
    candidates, members : DataFrame
        The ``sets`` tables (features and Gaia columns).
    params : ClusterParams
    curve : IsochroneCurve
    model : DeepSetsClassifier
    cfg : Config
        ``[membership]`` settings.
    name : str

    Returns
    -------
    DataFrame
        ``OUTPUT_COLUMNS`` (those present), sorted by ``source_id``.
    """
    m = cfg.membership
    from .sources.columns import require_columns
    require_columns(members, list(SOURCE_FEATURES) + ["source_id"], f"{name}: training members")
    pool = members[list(SOURCE_FEATURES)].to_numpy(np.float64)
    own = None
    if m.exclude_self:
        pos = pd.Series(np.arange(len(members)), index=members["source_id"].to_numpy())
        pos = pos[~pos.index.duplicated()]
        own = candidates["source_id"].map(pos).fillna(-1).to_numpy(np.int64)
    p = membership_probabilities(
        candidates, pool, cluster_feature_vector(params), model, feature_function(params, curve),
        n_samples=m.n_samples, seed=cluster_seed(m.seed, name), batch_size=m.batch_size,
        own_member=own, correlate_g_colour=m.correlate_g_colour, n_support=cfg.model.n_support,
        threads=torch_threads(cfg), timings=timings, name=name)
    out = candidates.copy()
    out["probability"] = p
    if "training_member" not in out.columns:
        out["training_member"] = out["source_id"].isin(members["source_id"])
    if "candidate" not in out.columns:
        out["candidate"] = True
    cols = [c for c in OUTPUT_COLUMNS if c in out.columns]
    return out[cols].sort_values("source_id", kind="stable").reset_index(drop=True)


def members_paths(cfg: Config, name: str) -> tuple[Path, Path]:
    d = cfg.out_dir / "members"
    return d / f"{name}.parquet", d / f"{name}.ecsv"


def _meta(cfg: Config, name: str, model: DeepSetsClassifier, inputs: dict[str, str],
          table: pd.DataFrame) -> dict[str, Any]:
    m = cfg.membership
    return {
        "cluster": name,
        "software": f"ocmembers {__version__}",
        "method": "Deep Sets membership, van Groeningen et al. 2023, A&A 675, A68",
        "model_id": model.model_id_,
        "model_origin": getattr(model, "origin_", "ocmembers"),
        "seed": cluster_seed(m.seed, name),
        "membership_seed": m.seed,
        "n_samples": m.n_samples,
        "n_support": cfg.model.n_support,
        "correlate_g_colour": m.correlate_g_colour,
        "exclude_self": m.exclude_self,
        "config_membership": cfg.digest("membership")[:16],
        "source": cfg.source.name,
        "inputs_sha256": inputs,
        "n_sources": int(len(table)),
        **probability_summary(table["probability"].to_numpy(), m.thresholds),
    }


def write_members(table: pd.DataFrame, parquet: Path, ecsv: Path, meta: dict[str, Any]) -> None:
    """Write the Parquet (with manifest) and the ECSV (units, descriptions, meta) atomically."""
    from astropy.table import Table
    t = Table.from_pandas(table)
    for c in t.colnames:
        if c in UNITS:
            t[c].unit = UNITS[c]
        if c in DESCRIPTIONS:
            t[c].description = DESCRIPTIONS[c]
    t.meta.update(meta)
    with cache.atomic_path(ecsv) as tmp:
        t.write(tmp, format="ascii.ecsv", overwrite=True)
    cache.write_table(table, parquet, source=meta.get("source", ""),
                      query=f"members of {meta['cluster']} with model {meta['model_id']}",
                      extra={k: v for k, v in meta.items() if k != "inputs_sha256"}
                      | {"inputs_sha256": meta["inputs_sha256"]})


def _inputs(cfg: Config, name: str) -> list[Path]:
    d = cfg.out_dir / "sets" / name
    return [d / "candidates.parquet", d / "members.parquet", d / "params.json", d / "isochrone.parquet"]


def _members_one(cfg: Config, name: str) -> bool:
    from .isochrones import IsochroneCurve
    from .pipeline import is_up_to_date
    from .sets import load_params
    from .train import _read
    spec = cfg.membership.model
    inputs = _inputs(cfg, name)
    missing = [p.name for p in inputs if not p.is_file()]
    if missing:
        raise OCMembersError(f"cluster {name}: sets not built ({', '.join(missing)} missing in "
                             f"{inputs[0].parent}); run `ocmembers sets` first")
    weights = _model_weights_path(cfg, spec)
    model = load_model(cfg, spec)
    parquet, ecsv = members_paths(cfg, name)
    if is_up_to_date([parquet, ecsv], inputs + ([weights] if weights else [])):
        try:
            if cache.read_manifest(parquet).get("extra", {}).get("model_id") == model.model_id_:
                return False
        except OCMembersError:
            pass
    candidates, members = _read(inputs[0]), _read(inputs[1])
    params = load_params(cfg, name)
    curve = IsochroneCurve.from_frame(_read(inputs[3]))
    table = evaluate_sets(candidates, members, params, curve, model, cfg, name)
    shas = {p.name: cache.sha256_file(p) for p in inputs}
    if weights is not None and weights.is_file():
        shas["model"] = cache.sha256_file(weights)
    meta = _meta(cfg, name, model, shas, table)
    write_members(table, parquet, ecsv, meta)
    return True


def run(cfg: Config) -> None:
    """Stage ``members`` for every cluster (``members/<cluster>.{parquet,ecsv}``)."""
    from .pipeline import cluster_names, for_each_cluster
    load_model(cfg)  # fail early, once, when the model is missing or does not fit
    for_each_cluster(cfg, cluster_names(cfg, "test"), _members_one, "members")


# ---------------------------------------------------------------------------
# A user's own cone
# ---------------------------------------------------------------------------
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


def _catalogue(cfg: Config, product: str) -> pd.DataFrame:
    raw = cfg.raw_dir / "catalogues" / f"{product}.parquet"
    if raw.is_file():
        return cache.read_table(raw)
    from .sources import get_source
    src = get_source(cfg)
    return src.cluster_table() if product == "clusters" else src.training_members()


def members_from_cone(cone: pd.DataFrame, cluster_name: str, model: DeepSetsClassifier | str,
                      cfg: Config, training_members: pd.DataFrame | None = None,
                      isochrone: pd.DataFrame | None = None, *, return_sets: bool = False
                      ) -> pd.DataFrame | tuple[pd.DataFrame, Any]:
    """Membership probabilities for a user's Gaia DR3 cone around a catalogued cluster.

    Parameters
    ----------
    cone : DataFrame
        Gaia DR3 sources with the archive columns (``columns.GAIA_REQUIRED``
        and the flux/n_obs columns the preprocessing needs).
    cluster_name : str
        A CG20 name (``NGC_2682``); its parameters come from the catalogue.
    model : DeepSetsClassifier or str
        A classifier, or ``"vg23"`` / ``"trained"`` / a path.
    cfg : Config
    training_members : DataFrame, optional
        Training members with DR3 ``source_id``. Default: the CG20 members of
        the catalogue (p >= ``[selection] member_probability``) matched to the
        cone by position (:func:`ocmembers.sources.positional.crossmatch_positional`).
    isochrone : DataFrame, optional
        The cluster's isochrone (CMD columns, absolute magnitudes); default
        the ``isochrones`` stage product or the data source.

    return_sets : bool
        Also return the :class:`ocmembers.sets.ClusterSets` (for plots).

    Returns
    -------
    DataFrame
        As a ``members/<cluster>.parquet`` table (and the sets, see above).
    """
    from .sets import build_sets
    from .sources.columns import cluster_row
    clf = load_model(cfg, model) if isinstance(model, str) else model
    row = cluster_row(_catalogue(cfg, "clusters"), cluster_name)
    name = str(row["name"])
    if training_members is None:
        from .sources.positional import crossmatch_positional
        tm = _catalogue(cfg, "train_members")
        tm = tm.loc[tm["cluster"] == name]
        if "probability" in tm.columns:
            tm = tm.loc[tm["probability"] >= cfg.selection.member_probability]
        xm = crossmatch_positional(tm, cone, cfg)
        if "ambiguous" in xm.columns:
            xm = xm.loc[~xm["ambiguous"].astype(bool)]
        training_members = xm[["source_id"]].dropna().drop_duplicates()
    if isochrone is None:
        iso_path = cfg.out_dir / "isochrones" / f"{name}.parquet"
        if iso_path.is_file():
            isochrone = cache.read_table(iso_path)
        else:
            from .sources import get_source
            isochrone = get_source(cfg).isochrone(float(row["log_age"]))
    sets = build_sets(cone, training_members, row, isochrone, cfg)
    table = evaluate_sets(sets.candidates, sets.members, sets.params, sets.isochrone_curve, clf, cfg, name)
    return (table, sets) if return_sets else table


# ---------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------
def configure_parser(parser) -> None:  # argparse.ArgumentParser
    g = parser.add_argument_group("members")
    g.add_argument("--model", metavar="PATH|vg23|trained",
                   help="the model: 'trained' (default, model/model.pt), 'vg23' (the published "
                        "DS10_v02 weights) or a path to a model.pt")
    g.add_argument("--cone", metavar="FILE",
                   help="evaluate your own Gaia DR3 cone (CSV, Parquet, VOTable, FITS) around --cluster")
    g.add_argument("--cluster", metavar="NAME", help="the catalogued cluster of --cone (CG20 name)")
    g.add_argument("--training-members", metavar="FILE",
                   help="with --cone: training members with DR3 source_id (default: CG20, matched by position)")
    g.add_argument("--output", metavar="FILE",
                   help="with --cone: where to write the member list (.parquet, .ecsv or .csv; "
                        "default <output-dir>/<source>/members/<cluster>.ecsv)")
    g.add_argument("--plot", action="store_true",
                   help="also draw the Fig. 1-style sets plot with the probabilities (PNG beside the output)")


def main(args, cfg: Config) -> None:
    if getattr(args, "model", None):
        cfg = cfg.replace(membership={"model": args.model})
    if getattr(args, "cone", None) is None:
        if getattr(args, "cluster", None):
            raise ConfigError("--cluster goes with --cone; to evaluate catalogued clusters use --clusters")
        run(cfg)
        if args.plot:
            _plot_stage(cfg)
        return
    if not args.cluster:
        raise ConfigError("--cone needs --cluster NAME (the catalogued cluster the cone is centred on)")
    cone = read_cone_file(args.cone)
    tm = read_cone_file(args.training_members) if args.training_members else None
    model = load_model(cfg)
    table, sets = members_from_cone(cone, args.cluster, model, cfg, training_members=tm,
                                    return_sets=True)
    name = str(sets.params.name)
    out = Path(args.output) if args.output else members_paths(cfg, name)[1]
    shas = {Path(args.cone).name: cache.sha256_file(args.cone)}
    meta = _meta(cfg, name, model, shas, table)
    if out.suffix == ".csv":
        with cache.atomic_path(out) as tmp:
            table.to_csv(tmp, index=False)
    elif out.suffix == ".parquet":
        write_members(table, out, out.with_suffix(".ecsv"), meta)
    else:
        write_members(table, out.with_suffix(".parquet"), out, meta)
    print(f"members: {name}: {len(table)} candidates, "
          + ", ".join(f"{v} with p >= {k[7:]}" for k, v in probability_summary(
              table["probability"].to_numpy(), cfg.membership.thresholds).items())
          + f" -> {out}", file=sys.stderr)
    if args.plot:
        from .plots import save_cluster_plot
        save_cluster_plot(sets, table, out.with_suffix(".png"), title=name)


def _plot_stage(cfg: Config) -> None:
    """PNG per cluster beside the member lists (``members/<cluster>.png``)."""
    from .pipeline import cluster_names
    from .plots import save_cluster_plot
    from .train import _read
    for name in cluster_names(cfg):
        parquet, _ = members_paths(cfg, name)
        if not parquet.is_file():
            continue
        d = cfg.out_dir / "sets" / name
        sets = {s: _read(d / f"{s}.parquet") for s in ("members", "candidates", "non_members")}
        sets["isochrone"] = _read(d / "isochrone.parquet")
        from .sets import load_params
        sets["params"] = load_params(cfg, name)
        save_cluster_plot(sets, _read(parquet), parquet.with_suffix(".png"), title=name)
