"""The Python interface: membership for a user's own cone, without the pipeline's products.

:func:`members` runs the whole method of van Groeningen et al. (2023) on one
cone: preprocessing, the candidate selection (Eqs. 3-12), the features
(Eqs. 13-17) and the Monte Carlo probabilities (Sect. 3.4), and returns an
astropy Table with units. The cluster is a catalogue name or its parameters;
its training members and isochrone come from the data source of the
configuration, or are given. It reads no product of a run and writes nothing.

:func:`members_from_cone` is the same path on a :class:`~ocmembers.config.Config`
returning a DataFrame (and, on request, the source sets); the ``members``
stage and the method comparison use it.

References
----------
van Groeningen, M. G. J., et al. 2023, A&A 675, A68.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ocmembers._version import __version__
from ocmembers.config import Config, load_config
from ocmembers.exceptions import (ConfigError, IsochroneRangeError, OCMembersError, TableParseError,
                                  TooFewMembersError, UnknownClusterError)
from ocmembers.method.classifier import DeepSetsClassifier
from ocmembers.method.columns import as_frame
from ocmembers.method.columns import (CG20_RENAME, CLUSTER_CATALOGUES, CLUSTER_COLUMNS, cluster_row,
                                     normalise_cluster_name)
from ocmembers.method.accounting import account_for_every_source
from ocmembers.method.cuts import angular_separation_deg, cone_cut_status, cone_radius_deg, cone_window
from ocmembers.method.selection import sky_centre
from ocmembers.method.preprocessing import astrometry_quality
from ocmembers.method.calibration import PARAM_KEYS as CAL_PARAMS
from ocmembers.method.calibration import calibrate_table
from ocmembers.method.membership import OUTPUT_COLUMNS, cluster_seed, evaluate_sets, probability_summary
from ocmembers.method.sets import ClusterSelection, build_sets
from ocmembers.sources import get_source
from ocmembers.method.gaia_names import CONE_REQUIRED, canonical_gaia_table
from ocmembers.sources.archive import select_nearest_age
from ocmembers.sources.cone_file import read_cone_file, read_table_file
from ocmembers.sources.parsec import read_cmd_file
from ocmembers.sources.member_lists import UNITS, member_table
from ocmembers.sources.models import check_config, load_model_spec
from ocmembers.sources.positional import crossmatch_positional

if TYPE_CHECKING:  # pragma: no cover
    from astropy.table import Table

log = logging.getLogger(__name__)

__all__ = ["members", "members_from_cone", "cluster_parameters_row", "cone_frame", "member_table_meta"]

#: The cluster parameters without which the selection cannot run (the isochrone's shift).
CLUSTER_REQUIRED: tuple[str, ...] = ("a0", "log_age")
#: Name of a cluster given by parameters without a ``name``.
UNNAMED = "cluster"

_HINT = ("offline, read the files at hand: --source local --data-dir DIR (Python: config="
         "ocmembers.load_config(source=\"local\", local_dir=DIR)), DIR laid out as ../shared/data "
         "(catalogues/, isochrones/); or give the cluster's parameters (--cluster-params FILE or "
         "--ra ... --dist-pc; Python: a dict with a0, log_age, dist_pc or dist_mod), its members "
         "(--training-members; training_members=) and its isochrone (--isochrone; isochrone=)")


# ---------------------------------------------------------------------------
# Inputs
# ---------------------------------------------------------------------------
def _table_to_frame(table: Any) -> pd.DataFrame:
    """An astropy Table/QTable as a DataFrame: masked floats -> NaN; a column with a unit in
    the units of the member lists (``UNITS``: deg, mas, mas / yr, mag), converted once."""
    return as_frame(table, "table", UNITS)


def cone_frame(cone: Any) -> pd.DataFrame:
    """A cone as a DataFrame with the ``gaiadr3.gaia_source`` column names.

    Parameters
    ----------
    cone : DataFrame, astropy Table or path
        A path is read by :func:`ocmembers.sources.cone_file.read_cone_file`
        (CSV, Parquet, VOTable, FITS, ECSV); a Table's masked float columns
        become NaN, as that reader does. Every input goes through
        :func:`ocmembers.method.gaia_names.canonical_gaia_table`: the archive's
        names in any case, VizieR I/355 and I/350 names, derived magnitudes.

    Raises
    ------
    MissingColumnsError
        One error naming the input and every missing quantity with its spellings.
    """
    if isinstance(cone, (str, Path)):
        return read_cone_file(cone, require=CONE_REQUIRED)
    return canonical_gaia_table(_plain_frame(cone, "cone"), f"cone ({type(cone).__name__})")


def _plain_frame(table: Any, what: str) -> pd.DataFrame:
    """A DataFrame, Table or path as a DataFrame with lower-case names (no Gaia renaming)."""
    if isinstance(table, (str, Path)):
        return read_table_file(table)
    if isinstance(table, pd.DataFrame):
        df = table
    elif hasattr(table, "colnames"):
        df = _table_to_frame(table)
    else:
        raise TypeError(f"{what}: expected a DataFrame, an astropy Table or a path, got {type(table).__name__}")
    if any(str(c) != str(c).lower() for c in df.columns):
        df = df.rename(columns=lambda c: str(c).lower())
    return df


def cluster_parameters_row(cluster: Any) -> pd.Series:
    """A cluster given by its parameters as a row of the canonical cluster table.

    Parameters
    ----------
    cluster : mapping, Series, one-row DataFrame or astropy Table/Row
        Canonical names (:data:`ocmembers.method.columns.CLUSTER_COLUMNS`;
        CG20 spellings such as ``AVNN``/``DMNN`` are renamed). Needed:
        ``a0`` (mag), ``log_age`` (dex) and ``dist_pc`` or ``dist_mod``
        (the other follows from it); ``name`` names the cluster (its
        training members in the catalogue, the random stream, messages).
        ``ra, dec, pmra, pmdec, parallax`` and their ``_std`` are accepted
        as catalogued but not needed: the method computes them from the
        training members (Eqs. 6-7).

    Raises
    ------
    ConfigError
        A required parameter is missing or not finite.
    """
    if hasattr(cluster, "as_void"):                                       # astropy Row
        values = {c: cluster[c] for c in cluster.colnames}
    elif isinstance(cluster, pd.DataFrame) or hasattr(cluster, "colnames"):
        frame = cluster if isinstance(cluster, pd.DataFrame) else _table_to_frame(cluster)
        if len(frame) != 1:
            raise ConfigError(f"cluster parameters: a table of {len(frame)} rows; give one row")
        values = frame.iloc[0].to_dict()
    elif isinstance(cluster, (Mapping, pd.Series)):
        values = dict(cluster)
    else:
        raise TypeError(f"cluster: expected a name or its parameters (mapping, Series, one-row table), "
                        f"got {type(cluster).__name__}")
    row = {CG20_RENAME.get(str(k), str(k)): v for k, v in values.items()}
    row = {k: v for k, v in row.items() if k in CLUSTER_COLUMNS}
    name = normalise_cluster_name(row["name"]) if row.get("name") not in (None, "") else UNNAMED
    row["name"] = name
    for k in row:
        if k != "name":
            row[k] = float(np.asarray(getattr(row[k], "value", row[k])))
    if "dist_mod" not in row and "dist_pc" in row and row["dist_pc"] > 0:
        row["dist_mod"] = 5.0 * math.log10(row["dist_pc"]) - 5.0
    if "dist_pc" not in row and "dist_mod" in row:
        row["dist_pc"] = 10.0 ** (row["dist_mod"] / 5.0 + 1.0)
    bad = [k for k in (*CLUSTER_REQUIRED, "dist_mod") if not math.isfinite(row.get(k, math.nan))]
    if bad:
        need = ["dist_pc or dist_mod" if k == "dist_mod" else k for k in bad]
        raise ConfigError(f"cluster {name}: parameters lack {', '.join(need)} (finite values needed; "
                          f"given {', '.join(sorted(values)) or 'nothing'})")
    return pd.Series(row)


def _catalogue(cfg: Config, product: str, given: Mapping[str, pd.DataFrame] | None,
               cluster: str) -> pd.DataFrame:
    if given is not None and product in given:
        return given[product]
    what = "cluster catalogue" if product == "clusters" else "training member list"
    try:
        src = get_source(cfg)
        return src.cluster_table() if product == "clusters" else src.training_members()
    except (OCMembersError, OSError) as exc:
        raise ConfigError(f"cluster {cluster}: the {what} of source {cfg.source.name!r} cannot be read "
                          f"({exc}); {_HINT}") from exc


def _cluster(cluster: Any, cfg: Config, catalogues: Mapping[str, pd.DataFrame] | None) -> pd.Series:
    """The catalogue row of a name (any spelling, an alternative or a common name), or the row of
    parameters given. The catalogue is ``[source] cluster_catalogue`` (CG20, HR23, HR24)."""
    if not isinstance(cluster, str):
        return cluster_parameters_row(cluster)
    which = cfg.source.cluster_catalogue
    if which == "cg20":
        table = _catalogue(cfg, "clusters", catalogues, cluster)
    else:
        try:
            table = get_source(cfg).cluster_catalogue(which)
        except (OCMembersError, OSError) as exc:
            raise ConfigError(f"cluster {cluster}: the {CLUSTER_CATALOGUES[which]} table of source "
                              f"{cfg.source.name!r} cannot be read ({exc}); {_HINT}") from exc
    what = CLUSTER_CATALOGUES[which]
    try:
        return cluster_row(table, cluster, catalogue=what)
    except UnknownClusterError:
        if "aliases" in table.columns:
            raise
    # CG20 lists one name per cluster: look for the others in the Hunt & Reffert aliases
    try:
        aliases = get_source(cfg).cluster_aliases()
    except (OCMembersError, OSError):
        aliases = None
    return cluster_row(table, cluster, aliases=aliases, catalogue=what)


def _model(model: Any, cfg: Config, check: bool) -> DeepSetsClassifier:
    """A fitted classifier from ``model``, checked against ``cfg`` when ``check``."""
    if isinstance(model, (str, Path)):
        return load_model_spec(model, cfg if check else None)
    if not isinstance(model, DeepSetsClassifier):
        raise TypeError(f"model: expected \"vg23\", a path to a model.pt or a fitted DeepSetsClassifier, "
                        f"got {type(model).__name__}")
    model._check_fitted()
    if check:
        check_config(model, cfg, f"given ({getattr(model, 'model_id_', '?')})", trained_here=False)
    return model


def _training_members(cone: pd.DataFrame, row: pd.Series | str, cfg: Config,
                      catalogues: Mapping[str, pd.DataFrame] | None) -> pd.DataFrame:
    """The catalogue's members of the cluster (p >= ``member_probability``) found in the cone by
    position. The member list (CG20) is searched under the row's name and, for a Hunt & Reffert
    row, under each of its alternative names."""
    name = str(row["name"]) if isinstance(row, pd.Series) else str(row)
    if name == UNNAMED:
        raise ConfigError("cluster given by parameters without a name: pass training_members= "
                          "(a table with the DR3 source_id of its members), or a name to look them up")
    tm = _catalogue(cfg, "train_members", catalogues, name)
    aliases = str(row.get("aliases", "") or "") if isinstance(row, pd.Series) else ""
    listed = set(tm["cluster"].astype(str))
    names = [n for n in (name, *(normalise_cluster_name(a) for a in aliases.split(",") if a.strip()))
             if n in listed]
    if not names:
        raise ConfigError(f"cluster {name}: not in the training member list of source {cfg.source.name!r}"
                          + (f" under any of its names ({name}, {aliases})" if aliases else "")
                          + "; pass training_members= (--training-members FILE): a table with the DR3 "
                            "source_id of its members")
    tm = tm.loc[tm["cluster"] == names[0]]
    if "probability" in tm.columns:
        tm = tm.loc[tm["probability"] >= cfg.selection.member_probability]
    xm = crossmatch_positional(tm, cone, cfg)
    if "ambiguous" in xm.columns:
        xm = xm.loc[~xm["ambiguous"].astype(bool)]
    out = xm[["source_id"]].dropna().drop_duplicates()
    if len(out) == 0:
        raise TooFewMembersError(
            f"cluster {name}: none of the {len(tm)} catalogue members (p >= {cfg.selection.member_probability}) "
            f"matches a source of the cone by position (within {cfg.crossmatch.max_sep_arcsec:g} arcsec); "
            "is the cone around this cluster? (or pass training_members=)")
    return out


def _given_isochrone(isochrone: Any, row: pd.Series) -> pd.DataFrame:
    """A user's isochrone: a DataFrame or a CMD output file; of several ages, the one nearest
    the cluster's ``log_age`` (within 0.05 dex, the step of the PARSEC grids)."""
    what = f"isochrone {isochrone}" if isinstance(isochrone, (str, Path)) else "isochrone"
    grid = isochrone if isinstance(isochrone, pd.DataFrame) else read_cmd_file(isochrone)
    if "logAge" not in grid.columns or grid["logAge"].round(4).nunique() <= 1:
        return grid
    try:
        return select_nearest_age(grid, float(row["log_age"]), max_offset=0.05)
    except IsochroneRangeError as exc:
        raise ConfigError(f"cluster {row['name']}: {what}: {exc}") from exc


def _isochrone(row: pd.Series, cfg: Config) -> pd.DataFrame:
    try:
        return get_source(cfg).isochrone(float(row["log_age"]))
    except (OCMembersError, OSError) as exc:
        raise ConfigError(f"cluster {row['name']}: no isochrone of log_age {float(row['log_age']):.2f} "
                          f"from source {cfg.source.name!r} ({exc}); {_HINT}") from exc


# ---------------------------------------------------------------------------
# The one path
# ---------------------------------------------------------------------------
def _what(cone: Any) -> str:
    return f"cone file {cone}" if isinstance(cone, (str, Path)) else f"cone ({type(cone).__name__})"


def _check_cone_holds_cluster(cone: pd.DataFrame, row: pd.Series, cfg: Config, what: str) -> None:
    """A :class:`ConfigError` with the separation when no source of ``cone`` lies within the
    cone radius (``[cone] radius_pc``) of the cluster's catalogued centre."""
    try:
        ra, dec, dist = float(row["ra"]), float(row["dec"]), float(row["dist_pc"])
    except (KeyError, TypeError, ValueError):
        return
    if not (math.isfinite(ra) and math.isfinite(dec) and math.isfinite(dist) and dist > 0):
        return                                   # a cluster given without a position
    name = str(row["name"])
    radius = cone_radius_deg(cfg.cone.radius_pc, dist)
    sep = angular_separation_deg(cone["ra"].to_numpy(float), cone["dec"].to_numpy(float), ra, dec)
    if not np.isfinite(sep).any():
        raise ConfigError(f"{what}: no source has a finite ra and dec")
    if np.nanmin(sep) <= radius:
        return
    c_ra, c_dec = sky_centre(cone["ra"].to_numpy(float), cone["dec"].to_numpy(float))
    centre = float(angular_separation_deg(np.array([c_ra]), np.array([c_dec]), ra, dec)[0])
    raise ConfigError(
        f"{what} does not contain cluster {name}: its centre (ra {c_ra:.3f}, dec {c_dec:.3f} deg) is "
        f"{centre:.2f} deg from {name} (ra {ra:.3f}, dec {dec:.3f} deg) and its nearest source "
        f"{float(np.nanmin(sep)):.2f} deg, beyond the cone radius of {radius:.2f} deg "
        f"({cfg.cone.radius_pc:g} pc at {dist:.0f} pc); is it the cone of another cluster?")


def _cone_cuts(cone: pd.DataFrame, row: pd.Series, cfg: Config) -> tuple[np.ndarray, str]:
    """Per source ``""``/``outside_cone``/``cut_eq1_2`` (Sect. 2.1, Eqs. 1-2, as the pipeline's
    cones are cut), and what was applied, for the metadata. A cluster without the member
    dispersions (parameters given by hand, the VizieR subset of CG20) cannot be cut: every
    source goes on, and the metadata say why."""
    try:
        window = cone_window(row, radius_pc=cfg.cone.radius_pc, n_sigma=cfg.cone.n_sigma)
    except (TableParseError, ValueError) as exc:
        return np.full(len(cone), "", dtype=object), f"not applied ({exc})"
    return cone_cut_status(cone, window), (f"radius {cfg.cone.radius_pc:g} pc ({window.radius_deg:.4f} deg) "
                                           f"and Eqs. 1-2 at {cfg.cone.n_sigma:g} sigma of the catalogue")


def _run(cone: Any, cluster: Any, model: Any, cfg: Config, training_members: Any, isochrone: Any,
         catalogues: Mapping[str, pd.DataFrame] | None, threads: int | None, check_model: bool,
         every_source: bool = False
         ) -> tuple[pd.DataFrame, ClusterSelection, DeepSetsClassifier, dict[str, Any]]:
    clf = _model(model, cfg, check_model)
    row = _cluster(cluster, cfg, catalogues)
    name = str(row["name"])
    what = _what(cone)
    cone = cone_frame(cone)
    report: dict[str, Any] = {}
    inside = cone
    if every_source:
        _check_cone_holds_cluster(cone, row, cfg, what)
        cut, report["cone_cuts"] = _cone_cuts(cone, row, cfg)
        # a value no star can have is reported as such, before the cuts it would also fail
        _, impossible, columns = astrometry_quality(cone)
        if impossible.any():
            log.warning("%s: %d source(s) with values no star can have not used (%s)", what,
                        int(impossible.sum()), ", ".join(f"{c}: {n}" for c, n in columns.items()))
            report["implausible_columns"] = columns
        cut[impossible] = "implausible"
        inside = cone.loc[cut == ""].reset_index(drop=True)
        if len(inside) == 0:
            raise ConfigError(f"{what}: none of its {len(cone)} sources passes the cone cuts of cluster "
                              f"{name} ({report['cone_cuts']}); is it the cone of this cluster?")
    if training_members is None:
        training_members = _training_members(cone, row, cfg, catalogues)
    else:
        training_members = _plain_frame(training_members, "training_members")
    if isochrone is None:
        isochrone = _isochrone(row, cfg)
    else:
        isochrone = _given_isochrone(isochrone, row)
    sets = build_sets(inside, training_members, row, isochrone, cfg)
    table = evaluate_sets(sets.candidates, sets.members, sets.params, sets.isochrone_curve, clf,
                          cfg.membership, name, threads=threads)
    keep = list(OUTPUT_COLUMNS)
    if cfg.membership.variant == "calibrated":
        # the posterior learned on the simulated sky (ocmembers.method.calibration); no run
        # directory here, so the calibrator is the one [membership] calibrator names
        if not cfg.membership.calibrator:
            raise ConfigError("membership.variant = \"calibrated\" on a given cone needs membership.calibrator: "
                              "the calibrator.pkl of a SOURCE=sim run (its model/ directory)")
        from ocmembers.sources.models import load_calibrator
        table = calibrate_table(table, {k: getattr(sets.params, k) for k in CAL_PARAMS},
                                load_calibrator(cfg.membership.calibrator), what=f"{what}: cluster {name}")
        keep.append("probability_deep_sets")
    if every_source:
        ids = training_members["source_id"] if "source_id" in training_members.columns else []
        table = account_for_every_source(cone, table, sets.non_members, sets.dropped, cut,
                                         cone.attrs.get("duplicate_ids", []), ids,
                                         [*keep, "status"])
        report["n_input_rows"] = int(len(table))
        report["status_counts"] = {k: int(v) for k, v in table["status"].value_counts().sort_index().items()}
    return table, sets, clf, report


def members_from_cone(cone: Any, cluster: Any, model: DeepSetsClassifier | str | Path,
                      cfg: Config, training_members: Any = None, isochrone: Any = None, *,
                      catalogues: Mapping[str, pd.DataFrame] | None = None,
                      threads: int | None = None, return_sets: bool = False,
                      every_source: bool = False
                      ) -> pd.DataFrame | tuple[pd.DataFrame, ClusterSelection]:
    """Membership probabilities for a Gaia DR3 cone around a cluster, as a DataFrame.

    Parameters
    ----------
    cone : DataFrame, astropy Table or path
        Gaia DR3 sources with the archive columns (``columns.GAIA_REQUIRED``
        and the flux/n_obs columns the preprocessing needs).
    cluster : str or parameters
        A CG20 name (``NGC_2682``, ``NGC 2682``) looked up in the cluster
        catalogue of ``cfg``'s source (or ``catalogues``), or the cluster's
        parameters (:func:`cluster_parameters_row`).
    model : DeepSetsClassifier, str or path
        A fitted classifier, or ``"vg23"`` / the path of a ``model.pt``
        (:func:`ocmembers.sources.models.load_model_spec`). Checked against
        ``[model]`` of ``cfg`` (:func:`ocmembers.sources.models.check_config`).
    cfg : Config
    training_members : DataFrame, Table or path, optional
        Training members with DR3 ``source_id``. Default: the CG20 members of
        the catalogue (p >= ``[selection] member_probability``) matched to the
        cone by position (:func:`ocmembers.sources.positional.crossmatch_positional`).
    isochrone : DataFrame or path, optional
        The cluster's isochrone (CMD columns, absolute magnitudes; a CMD output
        file, whose age nearest ``log_age`` is used); default from the data
        source of ``cfg``.
    catalogues : mapping, optional
        ``clusters`` and ``train_members`` tables (as the ``catalogues`` stage
        writes them); default from the data source of ``cfg``.
    threads : int, optional
        Intra-op threads of the network.
    return_sets : bool
        Also return the :class:`ocmembers.method.sets.ClusterSelection` (for plots).
    every_source : bool
        A user's own cone: first check that it holds the cluster, apply the cone
        radius and Eqs. 1-2 of the catalogued cluster, and return one row per
        input row with its ``status`` (:mod:`ocmembers.method.accounting`);
        ``attrs["report"]`` holds the status counts and the cuts applied.
        Default: the candidates only, as the pipeline's ``members`` stage
        writes them (its cones are cut already).

    Returns
    -------
    DataFrame
        As a ``members/<cluster>.parquet`` table (and the sets, see above).

    Raises
    ------
    ModelMismatchError
        The model's ``[model]`` settings (``n_support``...) differ from ``cfg``'s.
    UnknownClusterError, ConfigError
        A name not in the catalogue, a catalogue that cannot be read, or
        cluster parameters that lack a required value.
    """
    table, sets, _, report = _run(cone, cluster, model, cfg, training_members, isochrone, catalogues,
                                  threads, check_model=True, every_source=every_source)
    table.attrs["report"] = report
    return (table, sets) if return_sets else table


def member_table_meta(cfg: Config, name: str, model: DeepSetsClassifier, table: pd.DataFrame) -> dict[str, Any]:
    """The metadata of a member list: cluster, software, model, seed, samples, counts."""
    m = cfg.membership
    return {
        "cluster": name,
        "software": f"ocmembers {__version__}",
        "method": "Deep Sets membership, van Groeningen et al. 2023, A&A 675, A68" + (
            "; probability: the calibrated posterior (ocmembers.method.calibration), the paper's in "
            "probability_deep_sets" if m.variant == "calibrated" else ""),
        "variant": m.variant,
        "model_id": model.model_id_,
        "model_origin": getattr(model, "origin_", "ocmembers"),
        "seed": cluster_seed(m.seed, name),
        "membership_seed": m.seed,
        "n_samples": m.n_samples,
        "n_support": model.n_support,
        "correlate_g_colour": m.correlate_g_colour,
        "exclude_self": m.exclude_self,
        "source": cfg.source.name,
        "n_sources": int(len(table)),
        **probability_summary(table["probability"].to_numpy(), m.thresholds),
    }


def members(cone: Any, cluster: Any, model: DeepSetsClassifier | str | Path = "vg23", *,
            config: Config | None = None, training_members: Any = None, isochrone: Any = None,
            n_samples: int | None = None, seed: int | None = None, threads: int | None = None,
            catalogues: Mapping[str, pd.DataFrame] | None = None) -> "Table":
    """Membership probabilities of the sources of a Gaia DR3 cone (van Groeningen et al. 2023).

    Parameters
    ----------
    cone : DataFrame, astropy Table or path
        Gaia DR3 ``gaia_source`` rows around the cluster with the archive's
        column names (any case): astrometry with errors and correlations,
        photometry with fluxes, flux errors and ``phot_*_n_obs``. A path is
        CSV, Parquet, VOTable, FITS or ECSV.
    cluster : str or parameters
        A catalogue name (``"NGC_2682"`` or ``"NGC 2682"``), looked up in the
        cluster table of the configured source; or the cluster's parameters
        as a dict, Series or one-row table (``a0``, ``log_age``, ``dist_pc``
        or ``dist_mod``; ``name`` optional; see :func:`cluster_parameters_row`).
    model : "vg23", path or DeepSetsClassifier
        The published DS10_v02 model, a ``model.pt`` written by
        :func:`ocmembers.save_classifier`, or a fitted classifier. Its set
        size ``n_support`` and standardisation are the ones used.
    config : Config, optional
        Default :func:`ocmembers.load_config` (source ``archive``: the
        catalogues and isochrones are fetched and need network). Offline, give
        ``load_config(source="local", local_dir=...)``. A ``config`` whose
        ``[model]`` disagrees with the model raises ``ModelMismatchError``.
    training_members : DataFrame, Table or path, optional
        The cluster's training members (a ``source_id`` column of DR3 ids).
        Default: the catalogue's member list (CG20, p >= ``[selection]
        member_probability``) matched to the cone by position; a cluster
        given by parameters without a name needs them.
    isochrone : DataFrame, optional
        The cluster's isochrone in CMD columns (absolute magnitudes); default
        from the source, for the cluster's ``log_age``.
    n_samples, seed : int, optional
        Monte Carlo samples per source and ``[membership] seed`` (default:
        the configuration's, 100 and 2023). The cluster's stream is seeded
        by the seed and its name.
    threads : int, optional
        torch intra-op threads.
    catalogues : mapping, optional
        ``clusters`` and ``train_members`` tables, instead of the source's.

    Returns
    -------
    astropy.table.Table
        One row per input row, sorted by ``source_id``: the Gaia columns, the
        features, the flags, ``status`` (why a row was or was not evaluated:
        :mod:`ocmembers.method.accounting`) and ``probability`` (Sect. 3.4;
        NaN where not evaluated), with units (deg, mas, mas / yr, mag, pc),
        UCDs and descriptions. The cone is first cut as the pipeline cuts
        its cones (the 50 pc radius and Eqs. 1-2 of the catalogued cluster;
        ``meta["cone_cuts"]`` says what was applied). ``meta`` names the
        cluster, the model, the seed, ``n_samples``, ``n_support``, the
        software version and the counts per status.

    Raises
    ------
    ModelMismatchError
        ``config`` and the model disagree on ``[model]``.
    UnknownClusterError
        A name that is not in the catalogue (with the closest names).
    ConfigError
        A catalogue or isochrone that the source cannot give (the message says
        what to pass instead), cluster parameters that lack a value, or a cone
        that does not contain the cluster (with the separation).

    Examples
    --------
    >>> import ocmembers
    >>> cfg = ocmembers.load_config(source="local", local_dir="../shared/data")  # doctest: +SKIP
    >>> t = ocmembers.members("../shared/data/gaia/cones/NGC_2682.csv", "NGC_2682",
    ...                       config=cfg, n_samples=30)                            # doctest: +SKIP
    """
    given = config is not None
    cfg = config if given else load_config()
    change = {k: v for k, v in (("n_samples", n_samples), ("seed", seed)) if v is not None}
    if change:
        cfg = cfg.replace(membership=change)
    table, sets, clf, report = _run(cone, cluster, model, cfg, training_members, isochrone, catalogues,
                                    threads, check_model=given, every_source=True)
    return member_table(table, {**member_table_meta(cfg, str(sets.params.name), clf, table), **report})

