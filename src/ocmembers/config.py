"""The one configuration of ocmembers.

The packaged ``config.toml`` holds every threshold, seed, path and
hyperparameter. :func:`load_config` reads it once into a frozen
:class:`Config`, merges an optional user file (any subset of keys) and
keyword overrides such as ``source="local"``, and validates the result. The
Makefile and the CLI both go through it, so nothing is hard-coded twice.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import tomllib
import typing
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from ocmembers.exceptions import ConfigError
from ocmembers.method.settings import HDBSCAN_BACKENDS, MethodsConfig

__all__ = ["Config", "load_config", "SOURCES"]

SOURCES = ("archive", "local", "sim", "hats")


@dataclass(frozen=True)
class PathsConfig:
    output_dir: str = "data"
    figures_dir: str = "figures"
    paper_dir: str = "paper"


@dataclass(frozen=True)
class SourceConfig:
    name: str = "archive"
    local_dir: str = "../shared/data"
    gaia_table: str = "gaiadr3.gaia_source"
    gaia_login: bool = False
    retries: int = 4
    backoff_s: float = 2.0
    timeout_s: float = 600.0
    cmd_url: str = "https://stev.oapd.inaf.it/cgi-bin/cmd"
    gaia_credentials_file: str = ""
    neighbourhood_table: str = "gaiadr3.dr2_neighbourhood"
    cmd_version: str = "3.8"
    cmd_max_ages: int = 400
    hats_catalog: str = "https://data.lsdb.io/hats/gaia_dr3"
    hats_catalogues: str = "local"
    cluster_catalogue: str = "cg20"
    gaia_release: str = "dr3"
    gaia_columns: tuple[str, ...] = ()


@dataclass(frozen=True)
class ClustersConfig:
    names: tuple[str, ...] = ()
    jobs: int = 1
    scheduler: str = ""


@dataclass(frozen=True)
class ConeConfig:
    radius_pc: float = 50.0
    n_sigma: float = 10.0
    epoch: float = 2016.0
    parallax_zero_point: str = "lindegren21"


@dataclass(frozen=True)
class CrossmatchConfig:
    max_sep_arcsec: float = 1.0
    dr2_epoch: float = 2015.5
    ambiguous_dmag: float = 0.1
    method: str = "neighbourhood"


@dataclass(frozen=True)
class IsochroneConfig:
    metallicity_z: float = 0.0152
    max_label: int = 7
    log_age_min: float = 6.0
    log_age_max: float = 9.99
    log_age_step: float = 0.01
    extinction_model: str = "gaia_kurucz_f99_a0_teff"
    max_step_mag: float = 0.02


@dataclass(frozen=True)
class SelectionConfig:
    n_sigma_source: float = 3.0
    sigma_plx0_mas: float = 0.015
    r_max_extra_pc: float = 15.0
    member_fraction: float = 0.9
    delta_ratio_g_c: float = 8.0
    delta_c_extra: float = 0.1
    delta_g_extra: float = 0.8
    member_probability: float = 1.0
    min_members: int = 5
    member_clip_sigma: float = 10.0


@dataclass(frozen=True)
class ModelConfig:
    n_support: int = 10
    hidden: int = 64
    n_blocks: int = 5
    dropout: float = 0.5
    n_classes: int = 2


@dataclass(frozen=True)
class TrainingConfig:
    n_member_copies: int = 2
    negative_ratio: int = 5
    validation_fraction: float = 0.3
    class_weights: tuple[float, ...] = (1.0, 5.0)
    learning_rate: float = 1e-4
    l2: float = 1e-5
    grad_clip: float = 5.0
    batch_size: int = 32
    patience: int = 20
    max_epochs: int = 300
    seed: int = 2023


@dataclass(frozen=True)
class MembershipConfig:
    n_samples: int = 100
    thresholds: tuple[float, ...] = (0.1, 0.5, 0.9)
    seed: int = 2023
    batch_size: int = 2048
    correlate_g_colour: bool = True
    exclude_self: bool = True
    torch_threads: int = 0
    model: str = "trained"
    network: str = "exact"
    variant: str = "paper"
    calibrator: str = ""


@dataclass(frozen=True)
class SamplesConfig:
    train_min_members: int = 80
    train_min_dlon_deg: float = 60.0
    train_max_parallax_mas: float = 4.0
    test_min_members: int = 20
    test_min_dlon_deg: float = 30.0
    split_seed: int = 2023
    # Explicit roles (the demo); empty: selected from the catalogues.
    train_clusters: tuple[str, ...] = ()
    validation_clusters: tuple[str, ...] = ()
    test_clusters: tuple[str, ...] = ()


@dataclass(frozen=True)
class ValidationConfig:
    radius_pc: float = 20.0
    g_max: float = 18.0
    probability_all: float = 0.1
    probability_strict: float = 0.5
    ruwe_max: float = 1.4


@dataclass(frozen=True)
class SimConfig:
    seed: int = 2023
    g_limit: float = 21.0
    binary_fraction: float = 0.3
    demo_clusters: tuple[str, ...] = ()
    profile: str = "king62"
    king_concentration: float = 10.0
    halo_fraction: float = 0.15
    halo_scale: float = 4.0
    field_density: float = 0.14
    min_sigma_v_kms: float = 0.3
    wobble_fraction: float = 0.3
    use_parsec: bool = True
    min_members: int = 5
    max_cluster_stars: int = 2000000
    cg20_g_max: float = 18.0
    cg20_completeness: float = 0.7
    cg20_contamination: float = 0.02
    cg20_low_probability_fraction: float = 0.15
    dr2_id_change_fraction: float = 0.05
    pdmf_tilt_per_gyr: float = 0.35
    n_members_factor: float = 1.8
    distance: str = "parallax"
    min_parallax_mas: float = 0.25
    t22_g_max: float = 18.0
    pdmf_tilt_max: float = 1.5
    t22_pm_window: float = 5.0
    t22_sky: bool = False
    t22_check: bool = True
    ruwe_model: str = "orbit"
    release: str = "dr3"
    structure: str = "corona_tails"
    dissolution_t0_myr: float = 3.3
    dissolution_gamma: float = 0.62
    tail_max_pc: float = 200.0
    escaper_mass_function: str = "present"
    tail_orbits: str = "tide_only"
    tidal_field: str = "galactocentric"


@dataclass(frozen=True)
class Config:
    """All settings of a run; sections mirror the tables of ``config.toml``."""

    paths: PathsConfig = field(default_factory=PathsConfig)
    source: SourceConfig = field(default_factory=SourceConfig)
    clusters: ClustersConfig = field(default_factory=ClustersConfig)
    cone: ConeConfig = field(default_factory=ConeConfig)
    crossmatch: CrossmatchConfig = field(default_factory=CrossmatchConfig)
    isochrone: IsochroneConfig = field(default_factory=IsochroneConfig)
    selection: SelectionConfig = field(default_factory=SelectionConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    membership: MembershipConfig = field(default_factory=MembershipConfig)
    samples: SamplesConfig = field(default_factory=SamplesConfig)
    validation: ValidationConfig = field(default_factory=ValidationConfig)
    sim: SimConfig = field(default_factory=SimConfig)
    methods: MethodsConfig = field(default_factory=MethodsConfig)

    # -- derived locations -------------------------------------------------
    @property
    def out_dir(self) -> Path:
        """Root of this source's products: ``<output_dir>/<source>``."""
        return Path(self.paths.output_dir) / self.source.name

    @property
    def raw_dir(self) -> Path:
        return self.out_dir / "raw"

    @property
    def local_dir(self) -> Path:
        return Path(self.source.local_dir)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def digest(self, *sections: str, exclude: tuple[tuple[str, str], ...] = ()) -> str:
        """sha256 of the given sections (all if none), for provenance and cache keys;
        ``exclude``: ``(section, key)`` pairs left out."""
        d = self.to_dict()
        if sections:
            d = {s: d[s] for s in sections}
        for sec, key in exclude:
            if sec in d:
                d[sec] = {k: v for k, v in d[sec].items() if k != key}
        blob = json.dumps(d, sort_keys=True, default=list).encode()
        return hashlib.sha256(blob).hexdigest()

    def replace(self, **sections: Any) -> "Config":
        """A copy with some keys changed: ``cfg.replace(source={"name": "sim"})``."""
        return _build({k: v for k, v in self.to_dict().items()}, sections)


def _default_toml() -> dict[str, Any]:
    text = resources.files("ocmembers").joinpath("config.toml").read_text()
    return tomllib.loads(text)


_TYPE_NAMES = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}


def _hints(cls: type) -> dict[str, Any]:
    """The resolved field types of a section's dataclass (the module uses string annotations)."""
    return typing.get_type_hints(cls)


def _expected(hint: Any) -> str:
    if typing.get_origin(hint) is tuple:
        (elem, *_rest) = typing.get_args(hint)
        return f"a list of {_TYPE_NAMES.get(elem, str(elem)).replace('an ', '').replace('a ', '')}s"
    return _TYPE_NAMES.get(hint, str(hint))


def _check_value(section: str, key: str, value: Any, hint: Any) -> Any:
    """``value`` as the type of ``[section] key``, or a :class:`ConfigError` naming both.

    TOML already types what it reads; this refuses what does not fit (a string
    for a number, a float for an integer, a bool anywhere but a flag) and
    widens an integer to a float, so that every section holds what its
    dataclass says before any work starts.
    """
    def bad() -> ConfigError:
        return ConfigError(f"[{section}] {key}: expected {_expected(hint)}, got {value!r} "
                           f"({type(value).__name__})")

    if typing.get_origin(hint) is tuple:
        if not isinstance(value, (list, tuple)):
            raise bad()
        elem = typing.get_args(hint)[0]
        try:
            return tuple(_check_value(section, key, v, elem) for v in value)
        except ConfigError:
            raise bad() from None
    if hint is bool:
        if not isinstance(value, bool):
            raise bad()
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad()
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise bad()
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise bad()
        return value
    return value


def _coerce(cls: type, section: str, values: dict[str, Any]) -> Any:
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = set(values) - set(fields)
    if unknown:
        raise ConfigError(f"unknown key(s) in [{section}]: {', '.join(sorted(unknown))}")
    hints = _hints(cls)
    kwargs = {name: _check_value(section, name, value, hints[name]) for name, value in values.items()}
    return cls(**kwargs)


def _parse_override(section: str, key: str, value: str) -> Any:
    """The value of ``--set section.key=value``, parsed by the key's type.

    A string key takes the text as written (``--set source.cmd_version=3.8``
    stays ``"3.8"``; surrounding quotes are removed); a list key takes a TOML
    list or comma-separated items (``--set samples.test_clusters=NGC_752,NGC_2682``);
    a number or flag is read as TOML, so ``--set membership.n_samples=abc`` is
    refused naming the key. An unknown section or key is left for
    :func:`_build` to refuse.
    """
    cls = next((f.default_factory for f in dataclasses.fields(Config) if f.name == section), None)
    hint = _hints(cls).get(key) if cls is not None else None  # type: ignore[arg-type]
    text = value.strip()
    quoted = len(text) >= 2 and text[0] == text[-1] and text[0] in "'\""
    if hint is str:
        return text[1:-1] if quoted else text
    if typing.get_origin(hint) is tuple and not text.startswith("["):
        items = [t.strip() for t in text.split(",") if t.strip()]
        elem = typing.get_args(hint)[0]
        return [t.strip("'\"") if elem is str else _toml_scalar(t) for t in items]
    return _toml_scalar(text)


def _toml_scalar(text: str) -> Any:
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def _build(base: dict[str, Any], *updates: dict[str, Any]) -> Config:
    merged = {k: dict(v) for k, v in base.items()}
    for upd in updates:
        for section, values in upd.items():
            if section not in merged:
                raise ConfigError(f"unknown configuration section [{section}]")
            if not isinstance(values, dict):
                raise ConfigError(f"[{section}] must be a table of keys, got {values!r}")
            merged[section].update(values)
    sections = {}
    for f in dataclasses.fields(Config):
        cls = f.default_factory  # type: ignore[misc]
        sections[f.name] = _coerce(cls, f.name, merged.get(f.name, {}))
    cfg = Config(**sections)
    _validate(cfg)
    return cfg


def _validate(cfg: Config) -> None:
    if cfg.source.name not in SOURCES:
        raise ConfigError(f"source.name (SOURCE) must be one of {SOURCES}, got {cfg.source.name!r}")
    if cfg.membership.network not in ("exact", "compiled"):
        raise ConfigError(f"membership.network must be \"exact\" or \"compiled\", got {cfg.membership.network!r}")
    if cfg.membership.variant not in ("paper", "calibrated"):
        raise ConfigError(f"membership.variant must be \"paper\" (Sect. 3.4) or \"calibrated\" "
                          f"(ocmembers.method.calibration), got {cfg.membership.variant!r}")
    if cfg.membership.calibrator and cfg.membership.variant != "calibrated":
        raise ConfigError("membership.calibrator is set but membership.variant is not \"calibrated\"")
    if cfg.methods.hdbscan_backend not in HDBSCAN_BACKENDS:
        raise ConfigError(f"methods.hdbscan_backend must be one of {HDBSCAN_BACKENDS}, "
                          f"got {cfg.methods.hdbscan_backend!r}")
    if not cfg.methods.hdbscan_ruwe_max > 0:
        raise ConfigError(f"methods.hdbscan_ruwe_max must be > 0 (inf: no RUWE cut), "
                          f"got {cfg.methods.hdbscan_ruwe_max!r}")
    for (section, key), choices in _CHOICES.items():
        value = getattr(getattr(cfg, section), key)
        if value not in choices:
            listed = ", ".join(f'"{c}"' for c in choices[:-1]) + f' or "{choices[-1]}"'
            raise ConfigError(f"{section}.{key} must be {listed}, got {value!r}")
    for key in ("dissolution_t0_myr", "dissolution_gamma", "tail_max_pc"):
        if not getattr(cfg.sim, key) > 0:
            raise ConfigError(f"sim.{key} must be positive, got {getattr(cfg.sim, key)!r}")
    _validate_release(cfg)
    if cfg.clusters.jobs < 1:
        raise ConfigError(f"clusters.jobs (JOBS) must be >= 1, got {cfg.clusters.jobs}")
    if cfg.source.retries < 1:
        raise ConfigError(f"source.retries must be >= 1, got {cfg.source.retries}")
    if not 0 < cfg.training.validation_fraction < 1:
        raise ConfigError("training.validation_fraction must lie in (0, 1), got "
                          f"{cfg.training.validation_fraction}")
    if cfg.membership.n_samples < 1:
        raise ConfigError(f"membership.n_samples must be >= 1, got {cfg.membership.n_samples}")
    if cfg.model.n_support < 1:
        raise ConfigError(f"model.n_support must be >= 1, got {cfg.model.n_support}")
    for name in cfg.clusters.names:
        check_cluster_name(name, "clusters.names (CLUSTERS)")


#: Keys whose value is one of a few words, and those words (checked by :func:`_validate`).
_CHOICES: dict[tuple[str, str], tuple[str, ...]] = {
    ("sim", "release"): ("dr3", "dr4"),
    ("sim", "structure"): ("core_halo", "corona_tails"),
    ("sim", "escaper_mass_function"): ("present", "imf"),
    ("sim", "tail_orbits"): ("tide_only", "cluster_gravity"),
    ("sim", "tidal_field"): ("galactocentric", "solar"),
    ("sim", "ruwe_model"): ("ad_hoc", "orbit"),
    ("source", "cluster_catalogue"): ("cg20", "hr23", "hr24"),
    ("source", "hats_catalogues"): ("local", "archive"),
    ("cone", "parallax_zero_point"): ("lindegren21", "none"),
    ("crossmatch", "method"): ("neighbourhood", "positional"),
}


#: The reference epoch of the positions of each Gaia release (Gaia Collaboration 2021, 2023;
#: DR4: J2017.5, as announced by DPAC).
RELEASE_EPOCH: dict[str, float] = {"dr3": 2016.0, "dr4": 2017.5}


def _column_pair(item: str) -> tuple[str, str] | None:
    """``(ours, theirs)`` of a ``"ours=theirs"`` item of ``[source] gaia_columns``; None when malformed."""
    ours, sep, theirs = (p.strip() for p in item.partition("="))
    return (ours, theirs) if sep and ours and theirs and theirs.replace("_", "").isalnum() else None


def gaia_column_map(cfg: Config) -> dict[str, str]:
    """``[source] gaia_columns`` as ``{our name: the release's name}`` (checked at load)."""
    return dict(_column_pair(item) for item in cfg.source.gaia_columns)


def _validate_release(cfg: Config) -> None:
    """The Gaia release and what depends on it (issue 15): table, epoch, zero point, crossmatch."""
    from ocmembers.method.columns import GAIA_COLUMNS

    src = cfg.source
    if src.gaia_release not in RELEASE_EPOCH:
        raise ConfigError(f"source.gaia_release must be one of {tuple(RELEASE_EPOCH)}, got {src.gaia_release!r}")
    for item in src.gaia_columns:
        pair = _column_pair(item)
        if pair is None:
            raise ConfigError(f"source.gaia_columns: {item!r} is not 'our_name=archive_name'")
        if pair[0] not in GAIA_COLUMNS:
            raise ConfigError(f"source.gaia_columns: {pair[0]!r} is not a column of a cone "
                              f"(ocmembers.method.columns.GAIA_COLUMNS)")
    if src.name not in ("archive", "local", "hats"):
        return   # the simulated sky has its own release ([sim] release)
    rel = src.gaia_release
    if abs(cfg.cone.epoch - RELEASE_EPOCH[rel]) > 1e-6:
        raise ConfigError(f"cone.epoch = {cfg.cone.epoch} but Gaia {rel.upper()} positions are at "
                          f"J{RELEASE_EPOCH[rel]}: set [cone] epoch = {RELEASE_EPOCH[rel]}")
    if rel != "dr3":
        if "dr3" in src.gaia_table.lower():
            raise ConfigError(f"source.gaia_release = {rel!r} but source.gaia_table = {src.gaia_table!r}: "
                              "name the release's table")
        if cfg.cone.parallax_zero_point == "lindegren21":
            raise ConfigError(f"cone.parallax_zero_point = \"lindegren21\" is the recipe of Gaia DR3 "
                              f"(Lindegren et al. 2021), not of {rel.upper()}: set it to \"none\"")
        if cfg.crossmatch.method == "neighbourhood" and "gaiadr3." in src.neighbourhood_table.lower():
            raise ConfigError(f"crossmatch.method = \"neighbourhood\" with {src.neighbourhood_table} gives "
                              f"DR3 ids, not {rel.upper()}'s: set [crossmatch] method = \"positional\" or "
                              "name the release's neighbourhood table")


def check_cluster_name(name: str, where: str) -> str:
    """``name`` if it can be a file name under the output directory, else a :class:`ConfigError`.

    Cluster names become parts of product paths (``members/<cluster>.parquet``):
    a name with a path separator, a leading dot or a control character could
    write outside ``OUTPUT_DIR`` (``CLUSTERS='../../x'``), so it is refused before
    any work.
    """
    s = str(name)
    bad = (not s.strip() or s.strip().startswith(".") or any(c in s for c in "/\\")
           or any(ord(c) < 32 for c in s))
    if bad:
        raise ConfigError(f"{where}: {s!r} is not a cluster name (no path separators, leading dots "
                          "or control characters; catalogue names look like NGC_2682)")
    return s


def load_config(path: str | os.PathLike | Sequence[str | os.PathLike] | None = None, *,
                source: str | None = None,
                output_dir: str | None = None,
                local_dir: str | None = None,
                clusters: list[str] | tuple[str, ...] | str | None = None,
                jobs: int | None = None,
                scheduler: str | None = None,
                overrides: list[str] | tuple[str, ...] = ()) -> Config:
    """Read the packaged defaults, a user TOML file and command-line overrides.

    Parameters
    ----------
    path : path-like or sequence of path-likes, optional
        A TOML file with any subset of the keys of the packaged
        ``config.toml``, or several, applied in order (a later file's key
        wins: ``[forecast.toml, dr4.toml]`` is the forecast's clusters seen
        by DR4). Defaults to ``$OCMEMBERS_CONFIG`` when set.
    source, local_dir, clusters, jobs, scheduler : optional
        The Make variables ``SOURCE``, ``DATA_DIR`` (the ``local`` directory),
        ``CLUSTERS`` (names separated by commas or spaces), ``JOBS`` and
        ``SCHEDULER`` (a Dask scheduler address, ``[clusters] scheduler``).
    output_dir : optional
        Where products land (default ``data``), as ``<output_dir>/<source>/``.
    overrides : sequence of str
        ``section.key=value`` settings (``--set`` on the command line, ``MODEL``
        in the Makefile), parsed by the key's type (:func:`_parse_override`).

    Raises
    ------
    ConfigError
        An unknown section or key, or a value of the wrong type, naming the key
        and the type it needs (every value is checked here, before any work).
    """
    base = _default_toml()
    updates: list[dict[str, Any]] = []
    path = path if path is not None else os.environ.get("OCMEMBERS_CONFIG") or None
    paths = [] if path is None else [path] if isinstance(path, (str, os.PathLike)) else list(path)
    for item in paths:
        p = Path(item)
        if not p.is_file():
            raise ConfigError(f"configuration file {p} does not exist")
        try:
            updates.append(tomllib.loads(p.read_text()))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"configuration file {p} is not valid TOML: {exc}") from exc
    cli: dict[str, dict[str, Any]] = {}
    if source:
        cli.setdefault("source", {})["name"] = source
    if local_dir:
        cli.setdefault("source", {})["local_dir"] = str(local_dir)
    if output_dir:
        cli.setdefault("paths", {})["output_dir"] = str(output_dir)
    if clusters:
        names = clusters.replace(",", " ").split() if isinstance(clusters, str) else list(clusters)
        cli.setdefault("clusters", {})["names"] = names
    if jobs is not None:
        cli.setdefault("clusters", {})["jobs"] = int(jobs)
    if scheduler:
        cli.setdefault("clusters", {})["scheduler"] = str(scheduler)
    for item in overrides:
        key, sep, value = item.partition("=")
        section, dot, name = key.strip().partition(".")
        if not sep or not dot or not name:
            raise ConfigError(f"--set expects section.key=value, got {item!r}")
        cli.setdefault(section, {})[name] = _parse_override(section, name, value)
    updates.append(cli)
    return _build(base, *updates)
