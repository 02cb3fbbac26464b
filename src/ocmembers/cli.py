"""The ``ocmembers`` command: one subcommand per pipeline stage.

``ocmembers <stage> [--source S] [--data-dir D] [--clusters A,B] [--jobs N] [--scheduler ADDR]``
runs ``ocmembers.stages.<stage>.run(cfg)``, or ``main(args, cfg)`` for a stage
with options of its own (:data:`OPTIONS`). The parser is built without
importing any stage (``--help`` loads neither torch nor pandas); only the stage
that runs is imported.
Exit status: 0 success, 1 a stage failed (the message names the cluster and
the cause; a full disk too), 2 bad configuration or input (a missing file, an
output path under a file, a file lacking columns, an unknown cluster, an
unreachable ``--scheduler``), 3 the stage is not
built yet. Errors are one line naming the file, key or cluster, never a traceback.
"""

from __future__ import annotations

import argparse
import errno
import importlib
import logging
import re
import sys
import time
from collections.abc import Sequence

from ocmembers._version import __version__
from ocmembers.config import load_config
from ocmembers.exceptions import (ConfigError, OCMembersError, StageNotBuiltError, TableParseError,
                                  UnknownClusterError)

__all__ = ["main", "STAGES", "OPTIONS"]

#: subcommand -> (module, one-line help)
STAGES: dict[str, tuple[str, str]] = {
    "catalogues": ("ocmembers.stages.catalogues", "CG20 table1 + members, T22 members; the cluster selection"),
    "cones": ("ocmembers.stages.cones", "Gaia DR3 cones (50 pc, Eqs. 1-2)"),
    "crossmatch": ("ocmembers.stages.crossmatch", "DR2 -> DR3 ids of the training members"),
    "isochrones": ("ocmembers.stages.isochrones", "PARSEC isochrones at each cluster's age"),
    "sets": ("ocmembers.stages.sets", "members, candidates and non-members with their features"),
    "train": ("ocmembers.stages.train", "train the Deep Sets model"),
    "members": ("ocmembers.stages.members", "membership probabilities (Monte Carlo, Sect. 3.4)"),
    "catalogue-members": ("ocmembers.stages.catalogue_members",
                          "member lists for every cluster of the catalogue, one HATS member catalogue"),
    "validate": ("ocmembers.stages.validate", "the statistics of Sect. 4 against T22"),
    "figures": ("ocmembers.stages.figures", "every figure of the paper"),
    "paper": ("ocmembers.stages.paper", "the paper PDF with generated numbers"),
    "truthbench": ("ocmembers.stages.truthbench", "precision/recall against the simulated truth"),
    "realism": ("ocmembers.stages.realism", "the simulated sky against the real T22, CG18 lists and M67 cone"),
    "forecast": ("ocmembers.stages.forecast", "what Gaia DR4 will add: the DR3 and DR4 truth benchmarks "
                                              "(make forecast) side by side"),
    "compare": ("ocmembers.stages.compare", "Deep Sets vs HDBSCAN (T22), UPMASK and XDGMM+UPMASK on the same "
                                            "cones; members at p >= [methods] compare_threshold"),
    "pr22": ("ocmembers.stages.pr22", "Pena Ramirez et al. (2022): XDGMM + UPMASK on Gaia + 2MASS + VVV "
                                      "(simulated, or fetched with SOURCE=archive/local) of their 37 clusters, "
                                      "statistics, figures, paper/pr22/ms.pdf"),
    "snapshot": ("ocmembers.stages.snapshot", "an archive ready for Zenodo"),
    "report": ("ocmembers.stages.report", "the clusters that failed in each stage's last run, and stage times"),
    "verify": ("ocmembers.stages.verify", "re-hash every product of the run against its manifest"),
}

#: options of a stage beyond the run settings: stage -> [(flags, add_argument keywords)]
OPTIONS: dict[str, list[tuple[tuple[str, ...], dict]]] = {
    "train": [(("--force",), dict(action="store_true",
                                  help="train again even when the model is up to date"))],
    "members": [
        (("--model",), dict(metavar="PATH|vg23|trained",
                            help="the model: 'trained' (default, model/model.pt), 'vg23' (the published "
                                 "DS10_v02 weights) or a path to a model.pt")),
        (("--cone",), dict(metavar="FILE", help="evaluate your own Gaia DR3 cone (CSV, Parquet, VOTable, "
                                                "FITS, ECSV; Gaia archive or VizieR I/355 names) around "
                                                "--cluster. The cluster's parameters, members and isochrone "
                                                "come from --source: the default 'archive' fetches them "
                                                "(network); offline use --source local --data-dir DIR (a "
                                                "directory laid out as ../shared/data), or give them: "
                                                "--cluster-params/--ra..., --training-members, --isochrone")),
        (("--cluster",), dict(metavar="NAME", help="the cluster of --cone: a catalogue name in any spelling, "
                                                   "an alternative or common name (Pleiades, M67)")),
        (("--catalogue",), dict(choices=("cg20", "hr23", "hr24"), help="with --cone: the catalogue of the "
                                "cluster's parameters: Cantat-Gaudin+2020 (default), Hunt & Reffert 2023 or "
                                "2024 ([source] cluster_catalogue)")),
        (("--cluster-params",), dict(metavar="FILE", help="with --cone: the cluster's parameters from a TOML "
                                     "file (keys name, ra, dec, parallax, pmra, pmdec, log_age, a0, dist_pc, "
                                     "r50, and pmra_std, pmdec_std, parallax_std for the cuts of Eqs. 1-2)")),
        *((("--" + k.replace("_", "-"),), dict(type=float, metavar=m, dest=f"param_{k}", help=h)) for k, m, h in (
            ("ra", "DEG", "with --cone: the cluster's centre (ICRS)"), ("dec", "DEG", "(ICRS)"),
            ("parallax", "MAS", "mean parallax"), ("pmra", "MAS_YR", "mean pmra (mu_alpha*)"),
            ("pmdec", "MAS_YR", "mean pmdec"), ("log_age", "DEX", "log10 age/yr"),
            ("a0", "MAG", "extinction A0"), ("dist_pc", "PC", "distance"), ("r50", "DEG", "half-member radius"))),
        (("--training-members",), dict(metavar="FILE", help="with --cone: training members with DR3 "
                                                            "source_id, the support-set pool (default: CG20 "
                                                            "members, matched by position)")),
        (("--isochrone",), dict(metavar="FILE", help="with --cone: the cluster's isochrone, CMD output "
                                                     "(PARSEC, Gaia EDR3 bands; the age nearest log_age is "
                                                     "used), instead of the source's")),
        (("--output",), dict(metavar="FILE", help="with --cone: where to write the member list, one row per "
                                                  "input row with its status (.ecsv, .fits, .vot, .parquet "
                                                  "or .csv; default <output-dir>/<source>/members/"
                                                  "<cluster>.ecsv)")),
        (("--plot",), dict(action="store_true", help="also draw the Fig. 1-style sets plot with the "
                                                     "probabilities (PNG beside the output)")),
    ],
    "catalogue-members": [(("--list",), dict(action="store_true",
                                             help="print the clusters of the catalogue and stop"))],
    "figures": [(("--only",), dict(metavar="NAME[,NAME]", help="draw only these figures (fig3_venn ...)"))],
    "pr22": [(("--if-any",), dict(action="store_true",
                                  help="(make all) do nothing, successfully, when CLUSTERS names none of "
                                       "PR22's 37 clusters"))],
    "compare": [
        (("--methods",), dict(default=None, help="comma-separated subset of hdbscan_t22, upmask, "
                                                 "xdgmm_upmask, xdgmm_upmask_bic, deep_sets (default: all)")),
        (("--deep-sets-model",), dict(default=None, help="vg23, trained or a model.pt path")),
    ],
    "snapshot": [
        (("--with-raw",), dict(action="store_true", help="include the raw products, not only their manifests")),
        (("--allow-dirty",), dict(action="store_true", help="archive even with uncommitted changes")),
        (("--restore",), dict(metavar="FILE", help="unpack a snapshot's products instead of writing one")),
    ],
}

#: stages whose wall and CPU time go to reports/timings.jsonl
_TIMED = frozenset(STAGES) - {"report", "snapshot", "verify"}


def _common(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("run settings (the Make variables)")
    g.add_argument("--config", metavar="FILE", action="append", default=None,
                   help="TOML file overriding keys of the packaged config (repeatable: applied in order, "
                        "a later file's key wins)")
    g.add_argument("--source", choices=("archive", "local", "sim", "hats"), help="SOURCE: where raw data comes from")
    g.add_argument("--data-dir", metavar="DIR", help="DATA_DIR: the directory of the local source")
    g.add_argument("--output-dir", metavar="DIR", help="where products land (default data/)")
    g.add_argument("--clusters", metavar="NAMES", help="CLUSTERS: a subset, by CG20 name (comma or space separated)")
    g.add_argument("--jobs", type=int, metavar="N", help="JOBS: clusters processed in parallel "
                   "(1: in-process; N: an embedded Dask LocalCluster of N workers)")
    g.add_argument("--scheduler", metavar="ADDRESS", help="SCHEDULER: run the per-cluster tasks on "
                   "this running Dask scheduler (tcp://host:8786) instead of JOBS")
    g.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help="override one configuration key (repeatable), e.g. membership.model=vg23")
    g.add_argument("-v", "--verbose", action="store_true", help="log progress details")


def _load_stage(name: str):
    module = STAGES[name][0]
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name and (exc.name == module or module.startswith(exc.name + ".")):
            raise StageNotBuiltError(f"stage '{name}' is not built yet in ocmembers {__version__} "
                                     f"(no module {module})") from None
        raise


def _plain(text: str) -> str:
    """reStructuredText markup (``literal``, :role:`x`) as plain text, for --help."""
    text = re.sub(r":[a-z]+:`~?([^`]+)`", r"\1", text)
    return re.sub(r"``([^`]+)``", r"\1", text)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ocmembers", description=_plain(__doc__.split("\n\n")[0]))
    parser.add_argument("--version", action="version", version=f"ocmembers {__version__}")
    sub = parser.add_subparsers(dest="stage", metavar="STAGE", required=True)
    for name, (module, help_) in STAGES.items():
        p = sub.add_parser(name, help=help_, description=help_)
        _common(p)
        if name in OPTIONS:
            g = p.add_argument_group(name)
            for flags, kw in OPTIONS[name]:
                g.add_argument(*flags, **kw)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    cfg = None
    status = 1
    started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    t0, c0 = time.perf_counter(), _cpu_seconds()
    memory = None
    if args.stage in _TIMED:
        from ocmembers.sources.resources import PeakMemory
        memory = PeakMemory().__enter__()
    try:
        cfg = load_config(args.config, source=args.source, local_dir=args.data_dir,
                          output_dir=args.output_dir, clusters=args.clusters, jobs=args.jobs,
                          scheduler=args.scheduler,
                          overrides=args.set)
        mod = _load_stage(args.stage)
        if hasattr(mod, "main"):
            mod.main(args, cfg)
        elif hasattr(mod, "run"):
            mod.run(cfg)
        else:
            raise StageNotBuiltError(f"stage '{args.stage}' is not built yet (module has no run())")
        status = 0
    except StageNotBuiltError as exc:
        print(f"ocmembers {args.stage}: NOT BUILT: {exc}", file=sys.stderr)
        status = 3
    except ConfigError as exc:
        print(f"ocmembers {args.stage}: configuration error: {exc}", file=sys.stderr)
        status = 2
    except (TableParseError, UnknownClusterError) as exc:
        # a file that cannot be read as what it should be (the missing columns named), or a
        # cluster the catalogue does not know: bad input
        print(f"ocmembers {args.stage}: bad input: {exc}", file=sys.stderr)
        status = 2
    except OCMembersError as exc:
        print(f"ocmembers {args.stage}: error: {exc}", file=sys.stderr)
        status = 1
    except OSError as exc:
        message, status = os_error_message(exc)
        print(f"ocmembers {args.stage}: {message}", file=sys.stderr)
    finally:
        if memory is not None:
            memory.__exit__(None, None, None)
        # wall and CPU time of every stage run, for the report (not of `report` itself, nor of
        # `members --cone`, a user's own file: it writes only its --output, never reports/)
        if (cfg is not None and args.stage in _TIMED and not getattr(args, "list", False)
                and getattr(args, "cone", None) is None):
            from ocmembers.stages.runner import record_timing
            try:
                record_timing(cfg, args.stage, wall_s=time.perf_counter() - t0, cpu_s=_cpu_seconds() - c0,
                              status=status, started=started,
                              peak_rss_mb=memory.peak_mb if memory is not None else None)
            except OSError:
                pass
    return status


#: errno values that mean the input or the paths given are wrong (exit 2), not that a stage failed
_BAD_PATH_ERRNOS = frozenset({errno.ENOENT, errno.ENOTDIR, errno.EISDIR, errno.EEXIST, errno.EACCES,
                              errno.EPERM, errno.EROFS, errno.ENAMETOOLONG, errno.ELOOP})


def os_error_message(exc: OSError) -> tuple[str, int]:
    """One line for a failed read or write, naming the path, and the exit status.

    A missing file, a path under a file, a directory where a file is expected, no
    permission: 2 (bad input). A full disk or an I/O error: 1 (the stage failed;
    writes are atomic, so nothing written before is lost or left half-written).
    """
    code = 2 if exc.errno in _BAD_PATH_ERRNOS or isinstance(exc, FileNotFoundError) else 1
    if exc.filename is None:               # our own messages already name the path
        return f"error: {exc}", code
    where = str(exc.filename) + (f" -> {exc.filename2}" if exc.filename2 else "")
    what = exc.strerror or type(exc).__name__
    if exc.errno == errno.ENOSPC:
        what += " (free space on that disk, or write elsewhere)"
    elif exc.errno in (errno.ENOTDIR, errno.EEXIST):
        what += " (a file is in the way of a directory of the path)"
    return f"error: {where}: {what}", code


def _cpu_seconds() -> float:
    """CPU time of this process and its finished children (worker processes of JOBS)."""
    import resource
    s, c = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return s.ru_utime + s.ru_stime + c.ru_utime + c.ru_stime


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
