"""Speed of ocmembers against the authors' ``gaia-oc-amd`` 0.2.1, on the same input, in one run (issue 14).

Rows (every one with its input size, wall and CPU time, and the peak resident
set of the process during that row, reset before each row through
``/proc/self/clear_refs``):

- ``gemm``: the machine's float32 matrix-product rate, a square 1024 product
  on all threads and the network's own shape, (5120 x 64) @ (64 x 64), on one
  thread (times the number of CPUs: the rate a perfectly parallel network
  could reach). ``of GEMM`` in the network rows is measured against the latter.
- ``network``: the same sets ``(n, 10, 13)`` of the published DS10_v02
  weights through our :func:`ocmembers.method.network.set_logits` (``exact``
  and ``compiled``, one worker per CPU) and through the authors' ``D5`` class
  and their ``predict_membership`` (batch 1024, under ``torch.inference_mode``,
  which their tool does not use: a lower bound of their time), with torch's
  threads and with one thread (on a shared machine their OpenMP threads can
  stall each other); the ratio is against the better of the two. The number
  of sets whose class differs from ours (exact) is printed.
- ``members``: the Monte Carlo of Sect. 3.4 on 10,000 candidates x 100
  samples: ours (:func:`ocmembers.method.membership.membership_probabilities`,
  exact and compiled, with its split into sampling + features, support sets
  and network) against the authors' loop of ``calculate_candidate_probs``
  (their ``means_and_covariance_matrix``, ``add_features``,
  ``deep_sets_eval_dataset``, ``predict_membership``) without its file I/O.
  The compiled row prints how many p differ from the exact row.
- ``sets``: the sets step on simulated cones (``--sets-cluster``, default
  Trumpler 5: 106,019 sources after the Eq. 1-2 cuts, 56,832 candidates;
  NGC 7789, 41,555 sources, was the former default), on the same input:
  ours (:func:`ocmembers.stages.sets.build_sets` on the raw cone,
  preprocessing included) against the in-memory core of the authors'
  ``build_sets`` (:func:`their_sets`): from the cone in the columns of their
  query to their four feature-added sets, i.e. ``Cluster(params)``,
  ``cone_preprocessing`` (NaN rows, zero point, magnitude errors), their
  column drops, ``member_set``, ``update_astrometric_parameters``,
  ``isochrone_preprocessing`` (from the PARSEC table of the cluster's age, the
  one ours gets), ``set_candidate_selection_parameters``,
  ``candidate_and_non_member_set``, the dubious members
  (``get_duplicate_sources``), the comparison set and ``add_features``. Not
  timed of theirs: the cone query and its VOTable, the parameter and member
  CSVs, ``load_isochrone``'s read of the isochrone file, the plot, the
  saving. Their cone is the simulated one with the archive's ``bp_rp`` and
  ``g_rp`` derived (BP - RP, G - RP); their extinction model is pointed at
  ours (:func:`authors_sets`: their call fails with the installed
  dustapprox). Their time goes almost all to the distance to the isochrone
  (``shortest_vector_to_curve``, every source against every curve point).
  Both rows print their member, candidate and non-member counts and the
  sources kept (candidates + non-members), the authors' row the difference
  and the share of common candidates; they differ a little: their preprocessing drops every source with a NaN in any
  column (e.g. without G_BP), leaves the parallaxes outside the zero-point
  recipe's range uncorrected (ours clips) and their Deltas move in steps of
  5% (the module docstring of :mod:`ocmembers.method.sets`).
- ``train``: instances per second at batch 32 (forward, backward, gradient
  clipping, Adam), one epoch of the same instances: ours
  (:func:`ocmembers.method.training.train_network`) against the authors'
  ``step`` with their ``D5``, ``clip_grad`` and Adam.

Every measurement is repeated (``--repeats``), ours and theirs interleaved,
and the best wall time is kept; the 1-minute load average is printed before
each row, because on a shared machine the absolute numbers mean little and
the ratios, taken minutes apart at most, a little more; the rates per CPU
second in the notes are the least disturbed by other processes.

The authors' package is never imported whole (its ``__init__`` needs lxml,
astroquery and torchvision): an empty package object stands in for it and
only the modules used here are loaded from the installed wheel.

Usage::

    python benchmarks/bench_speed.py [--repeats 3] [--sets 200000] [--candidates 10000] [--quick]
                                     [--sets-cluster Trumpler_5 NGC_7789] [--only sets ...]
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import io
import importlib.util
import os
import sys
import time
import types
import warnings
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _memory import peak_mb, reset_peak, rss_mb  # noqa: E402
from bench_membership import curve, synthetic  # noqa: E402  (the same synthetic candidates)

CPUS = os.cpu_count() or 1


# ---------------------------------------------------------------------------
# measuring
# ---------------------------------------------------------------------------
def measure(fn, repeats: int):
    """Best wall time of ``repeats`` calls: (result, wall s, CPU s, peak RSS MB)."""
    best = None
    for _ in range(repeats):
        reset_peak()
        t0, c0 = time.perf_counter(), time.process_time()
        out = fn()
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        peak = peak_mb()
        if best is None or wall < best[1]:
            best = (out, wall, cpu, peak)
    return best


# ---------------------------------------------------------------------------
# the authors' code
# ---------------------------------------------------------------------------
def authors():
    """The modules of gaia-oc-amd used here, loaded without the package's ``__init__``."""
    spec = importlib.util.find_spec("gaia_oc_amd")
    if spec is None or not spec.submodule_search_locations:
        return None
    if "gaia_oc_amd" not in sys.modules:
        pkg = types.ModuleType("gaia_oc_amd")
        pkg.__path__ = list(spec.submodule_search_locations)
        pkg.__spec__ = spec                      # find_spec (ocmembers.sources.vg23) keeps working
        sys.modules["gaia_oc_amd"] = pkg
    os.environ.setdefault("TQDM_DISABLE", "1")
    names = ("candidate_evaluation.membership_probability", "data_preparation.features",
             "data_preparation.datasets", "machine_learning.deepsets_zaheer", "machine_learning.training", "io")
    return SimpleNamespace(**{n.split(".")[-1]: importlib.import_module(f"gaia_oc_amd.{n}") for n in names})


def their_model(au):
    from ocmembers.sources.vg23 import locate
    m = au.io.load_model(str(locate()))
    m.eval()
    return m


def their_probabilities(au, model, candidates: pd.DataFrame, members_std: np.ndarray, cluster, clus_std,
                        n_samples: int, seed: int) -> np.ndarray:
    """The loop of their ``calculate_candidate_probs`` (gaia-oc-amd 0.2.1) without its file I/O.

    ``members_std`` and ``clus_std`` are already standardised with the same
    means and deviations as ours; their features take the sign of theirs
    (curve minus source), which changes nothing in the timing.
    """
    mp = au.membership_probability
    props = ["parallax", "pmra", "pmdec", "phot_g_mean_mag", "g_rp"]
    np.random.seed(seed)
    means, cov = mp.means_and_covariance_matrix(candidates, props)
    chol = np.linalg.cholesky(cov)
    shape = (len(candidates), len(props))
    names = ["f_r", "f_pm", "f_plx", "f_c", "f_g"]
    mean, std = cluster.feature_mean, cluster.feature_std
    pred = np.zeros((n_samples, len(candidates)))
    for s in range(n_samples):
        sample = candidates.copy()
        sample[props] = (chol @ np.random.standard_normal((*shape, 1))).reshape(shape) + means
        au.features.add_features(sample, cluster, radius_feature=False)
        x = (sample[names].to_numpy() - mean) / std
        data = au.datasets.deep_sets_eval_dataset(x, members_std, global_features=clus_std, size_support_set=10)
        pred[s] = mp.predict_membership(data, model)
    return pred.mean(axis=0)


# ---------------------------------------------------------------------------
# the sets step: the authors' in-memory core
# ---------------------------------------------------------------------------
#: the columns of their cone query (``gaia_oc_amd.data_preparation.query.cone_search``, 0.2.1)
THEIR_CONE_COLUMNS = ("ra", "dec", "parallax", "pmra", "pmdec", "parallax_error", "pmra_error", "pmdec_error",
                      "parallax_pmra_corr", "parallax_pmdec_corr", "pmra_pmdec_corr",
                      "phot_g_mean_flux", "phot_bp_mean_flux", "phot_rp_mean_flux",
                      "phot_g_mean_flux_error", "phot_bp_mean_flux_error", "phot_rp_mean_flux_error",
                      "source_id", "phot_g_mean_mag", "phot_bp_mean_mag", "phot_rp_mean_mag", "bp_rp", "g_rp",
                      "l", "b", "nu_eff_used_in_astrometry", "pseudocolour", "ecl_lat", "astrometric_params_solved",
                      "phot_g_n_obs", "phot_bp_n_obs", "phot_rp_n_obs")

#: what their ``build_sets`` drops after ``cone_preprocessing`` and from the non-members and members
_THEIR_CONE_DROP = ["phot_g_mean_flux", "phot_bp_mean_flux", "phot_rp_mean_flux", "phot_g_mean_flux_error",
                    "phot_bp_mean_flux_error", "phot_rp_mean_flux_error", "phot_bp_mean_mag", "phot_rp_mean_mag",
                    "phot_bp_mean_mag_error", "phot_rp_mean_mag_error", "nu_eff_used_in_astrometry", "pseudocolour",
                    "ecl_lat", "astrometric_params_solved", "phot_g_n_obs", "phot_bp_n_obs", "phot_rp_n_obs"]
_THEIR_NON_MEMBER_DROP = ["parallax_error", "pmra_error", "pmdec_error", "parallax_pmra_corr", "parallax_pmdec_corr",
                          "pmra_pmdec_corr", "phot_g_mean_mag_error", "bp_rp_error", "g_rp_error"]
_THEIR_MEMBER_DROP = ["parallax_pmra_corr", "parallax_pmdec_corr", "pmra_pmdec_corr"]


def authors_sets() -> SimpleNamespace | None:
    """Their modules of the sets step (loaded without the package ``__init__``), or None.

    Apart from :func:`authors` because these need ``zero_point`` (gaiadr3-zeropoint)
    and ``dustapprox``: without them only the sets rows lose the authors' column.
    Their ``correct_for_extinction`` loads the first model ``PrecomputedModel().find
    (passband='Gaia')`` returns; with the installed dustapprox that is a Gaia DR4
    (A0, R0) model and ``load_model`` fails on it ("Model kind polynomial not
    implemented"). ``find`` is pointed at ``gaia_kurucz_f99_a0_teff``, the model
    ours uses (and the comparison in :mod:`ocmembers.method.sets` used); nothing else changes.
    """
    if authors() is None:
        return None
    names = ("data_preparation.cone_preprocessing", "data_preparation.isochrone_preprocessing",
             "data_preparation.source_sets", "data_preparation.cluster", "data_preparation.features")
    try:
        mods = {n.split(".")[-1]: importlib.import_module(f"gaia_oc_amd.{n}") for n in names}
    except ImportError as exc:
        print(f"the authors' sets step is not timed: {exc}", flush=True)
        return None
    from importlib import resources
    root = resources.files("dustapprox").joinpath("data", "precomputed")
    hits = sorted(Path(str(root)).rglob("gaia_kurucz_f99_a0_teff.ecsv"))
    if not hits:
        print("the authors' sets step is not timed: dustapprox has no gaia_kurucz_f99_a0_teff", flush=True)
        return None
    base = mods["isochrone_preprocessing"].PrecomputedModel

    class _F99(base):  # type: ignore[misc, valid-type]
        def find(self, *args, **kwargs):          # their r[0]: the model, as a path load_model reads
            return [str(hits[0])]

    mods["isochrone_preprocessing"].PrecomputedModel = _F99
    return SimpleNamespace(**mods)


def their_sets_inputs(cone: pd.DataFrame, crow: pd.Series,
                      iso: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, Any], pd.DataFrame]:
    """Their cone, cluster parameters and isochrone table, from what our ``build_sets`` gets.

    - cone: the columns of their query (:data:`THEIR_CONE_COLUMNS`), dtypes as
      simulated; the simulated cone has them all but the archive's ``bp_rp``
      and ``g_rp``, which are derived as the archive does (BP - RP, G - RP).
    - parameters: the cluster's CG20 row under their names (``age`` = log age,
      ``dist`` in pc, ``*_error`` = the members' dispersions); their
      ``update_astrometric_parameters`` replaces position, motion and parallax
      from the members, as ours does.
    - isochrone: the same PARSEC table ours gets (absolute magnitudes at the
      cluster's age), ``Gmag`` under the name their ``load_isochrone`` gives it.
    """
    c = cone.assign(bp_rp=cone["phot_bp_mean_mag"] - cone["phot_rp_mean_mag"],
                    g_rp=cone["phot_g_mean_mag"] - cone["phot_rp_mean_mag"])
    params = {"name": str(crow["name"]), "ra": float(crow["ra"]), "dec": float(crow["dec"]),
              "pmra": float(crow["pmra"]), "pmdec": float(crow["pmdec"]), "parallax": float(crow["parallax"]),
              "pmra_error": float(crow["pmra_std"]), "pmdec_error": float(crow["pmdec_std"]),
              "parallax_error": float(crow["parallax_std"]), "age": float(crow["log_age"]),
              "a0": float(crow["a0"]), "dist": float(crow["dist_pc"])}
    return c[list(THEIR_CONE_COLUMNS)].copy(), params, iso.rename(columns={"Gmag": "phot_g_mean_mag"})


def their_sets(au: SimpleNamespace, cone: pd.DataFrame, params: dict[str, Any], iso: pd.DataFrame,
               member_ids: pd.Series, member_probs: pd.Series) -> dict[str, pd.DataFrame]:
    """The in-memory core of their ``build_sets`` for one cluster (gaia-oc-amd 0.2.1), line for line.

    From the cone as their query returns it to the four feature-added sets:
    ``Cluster(params)``, ``cone_preprocessing`` (NaN rows, parallax zero point,
    magnitude errors), their column drops, ``member_set``,
    ``update_astrometric_parameters``, ``isochrone_preprocessing`` (extinction,
    distance, interpolation), ``set_candidate_selection_parameters``,
    ``candidate_and_non_member_set``, ``get_duplicate_sources`` and the dubious
    members moved to the candidates, the comparison set (their fallback
    without a T22 file: the training members), the column drops and
    ``add_features`` on the four sets. Left out: reading the parameter CSV,
    the cone query and VOTable, the member CSVs and the isochrone file
    (``load_isochrone``'s read of the whole grid), the plot, the saving and the prints.
    """
    cluster = au.cluster.Cluster(params)
    cone = au.cone_preprocessing.cone_preprocessing(cone)
    cone = cone.drop(columns=_THEIR_CONE_DROP)
    train = au.source_sets.member_set(cone, member_ids, member_probs)
    cluster.update_astrometric_parameters(train)
    isochrone = au.isochrone_preprocessing.isochrone_preprocessing(iso, cluster.dist, colour="g_rp", a0=cluster.a0)
    cluster.set_candidate_selection_parameters(train, isochrone, colour="g_rp", pm_error_weight=3.0,
                                               r_max_margin=15.0, c_margin=0.1, g_margin=0.8,
                                               source_error_weight=3.0, r_threshold_member_fraction=0.90,
                                               iso_threshold_member_fraction=0.90)
    candidates, non_members = au.source_sets.candidate_and_non_member_set(cone, cluster)
    dubious = au.source_sets.get_duplicate_sources(train, non_members, keep="last")
    if len(dubious) > 0:
        train = train[~train["source_id"].isin(dubious["source_id"])].copy()
        non_members = non_members[~non_members["source_id"].isin(dubious["source_id"])].copy()
        candidates = pd.concat((candidates, dubious))
    comparison = au.source_sets.member_set(cone, member_ids, member_probs)
    non_members = non_members.drop(columns=_THEIR_NON_MEMBER_DROP)
    train = train.drop(columns=_THEIR_MEMBER_DROP)
    comparison = comparison.drop(columns=_THEIR_MEMBER_DROP)
    au.features.add_features([train, candidates, non_members, comparison], cluster)
    return {"members": train, "candidates": candidates, "non_members": non_members, "comparison": comparison,
            "dubious_members": dubious}


# ---------------------------------------------------------------------------
# rows
# ---------------------------------------------------------------------------
HEADER = (f"{'row':<34} {'input':>22} {'wall s':>8} {'CPU s':>8} {'peak RSS MB':>11} "
          f"{'rate':>16} {'vs authors':>10}  notes")


def row(name, size, wall, cpu, peak, rate, ratio="", notes=""):
    print(f"{name:<34} {size:>22} {wall:>8.3f} {cpu:>8.2f} {peak:>11.0f} {rate:>16} {ratio:>10}  {notes}",
          flush=True)


def load() -> str:
    return f"load {os.getloadavg()[0]:.2f}"


def gemm(repeats: int) -> float:
    """Prints the GEMM rows; returns the network-shape rate of all CPUs (GFLOP/s)."""
    old = torch.get_num_threads()
    rates = {}
    for label, (m, k, n), threads in (("gemm square 1024, all threads", (1024, 1024, 1024), old),
                                      ("gemm (5120x64)@(64x64), 1 thread", (5120, 64, 64), 1)):
        torch.set_num_threads(threads)
        a, b = torch.randn(m, k), torch.randn(k, n)
        reps = max(1, int(1e11 // (2 * m * k * n)))   # about 0.5 s

        def run():
            for _ in range(reps):
                torch.mm(a, b)
        run()
        _, wall, cpu, peak = measure(run, repeats)
        rates[label] = 2 * m * k * n * reps / wall / 1e9
        row(label, f"{reps} x {m}x{k}x{n}", wall, cpu, peak, f"{rates[label]:.0f} GFLOP/s",
            notes=f"{threads} thread(s); {load()}")
    torch.set_num_threads(old)
    net_peak = rates["gemm (5120x64)@(64x64), 1 thread"] * CPUS
    print(f"{'':<34} network-shape peak of {CPUS} CPUs: {net_peak:.0f} GFLOP/s", flush=True)
    return net_peak


def network_rows(au, repeats: int, n_sets: int, peak_gflops: float) -> None:
    from ocmembers.method.network import assemble_sets, flops_per_set, set_logits
    from ocmembers.sources.vg23 import load_vg23
    net = load_vg23().network_
    g = torch.Generator().manual_seed(0)
    src, clus = torch.randn(n_sets, 5, generator=g), torch.randn(3, generator=g)
    pool = torch.randn(120, 5, generator=g)
    sup = torch.randint(0, 120, (n_sets, 10), generator=g)
    x = assemble_sets(src, clus, sup, pool)          # the authors' input: every set materialised
    size = f"{n_sets} sets"
    flop = n_sets * flops_per_set()
    theirs_m = their_model(au) if au else None
    set_logits(net, src[:4096], clus, sup[:4096], pool, mode="compiled", threads=1, workers=CPUS)  # compile
    results = {}
    old = torch.get_num_threads()
    for _ in range(repeats):  # interleaved: ours exact, ours compiled, theirs
        for key in ("exact", "compiled", "authors", "authors1"):
            if key.startswith("authors"):
                if theirs_m is None:
                    continue

                def fn(threads=1 if key == "authors1" else old):
                    torch.set_num_threads(threads)
                    try:
                        with torch.inference_mode():
                            return au.membership_probability.predict_membership(x, theirs_m, 1024)
                    finally:
                        torch.set_num_threads(old)
            else:
                def fn(key=key):
                    lg = set_logits(net, src, clus, sup, pool, chunk=2048, threads=1, workers=CPUS, mode=key)
                    return (lg[:, 1] > lg[:, 0]).numpy()
            r = measure(fn, 1)
            if key not in results or r[1] < results[key][1]:
                results[key] = r
    theirs = [results[k] for k in ("authors", "authors1") if k in results]
    ref = min(theirs, key=lambda r: r[1]) if theirs else None      # the better of their two
    for key, label in (("exact", "network ours exact"), ("compiled", "network ours compiled"),
                       ("authors", f"network authors D5, {old} threads"),
                       ("authors1", "network authors D5, 1 thread")):
        if key not in results:
            continue
        out, wall, cpu, peak = results[key]
        ratio = f"{ref[1] / wall:.2f}x" if ref is not None and not key.startswith("authors") else ""
        differ = int(np.sum(out != results["exact"][0]))
        gf = flop / wall / 1e9
        row(label, size, wall, cpu, peak, f"{n_sets / wall / 1e3:.0f}k sets/s", ratio,
            f"{n_sets / cpu / 1e3:.0f}k sets per CPU s; {gf:.0f} GFLOP/s = {gf / peak_gflops:.0%} of GEMM; "
            f"{differ} sets classed unlike exact; {load()}")


def member_rows(au, repeats: int, n: int, n_samples: int) -> None:
    from ocmembers.method.membership import feature_function, membership_probabilities
    from ocmembers.sources.vg23 import load_vg23
    clf = load_vg23()
    rng = np.random.default_rng(1)
    df = synthetic(n, rng)
    params = SimpleNamespace(pmra=-5.0, pmdec=2.0, parallax=1.0, delta_c=0.15, delta_g=1.2)
    cur = curve()
    fn = feature_function(params, cur)
    for k, v in fn({k: df[k].to_numpy() for k in ("parallax", "pmra", "pmdec", "phot_g_mean_mag", "g_rp")}).items():
        df[k] = v
    df["f_r"] = rng.uniform(0, 50, n)
    members = np.column_stack([rng.uniform(0, 5, 120), rng.uniform(0, 0.3, 120), rng.normal(0, 0.05, 120),
                               rng.normal(0, 0.02, 120), rng.normal(0, 0.1, 120)])
    clus = np.array([0.5, 8.5, 1.0])
    size = f"{n} x {n_samples} samples"
    results = {}
    their = None
    if au is not None:
        their = their_model(au)
        ns = 5
        cl = SimpleNamespace(pmra=-5.0, pmdec=2.0, delta_pm=1.0, parallax=1.0, delta_plx_plus=0.3,
                             delta_plx_min=0.3, delta_c=0.15, delta_g=1.2, isochrone_colour="g_rp",
                             isochrone=pd.DataFrame({"g_rp": cur.colour, "phot_g_mean_mag": cur.g}),
                             feature_mean=clf.feature_mean_[:ns], feature_std=clf.feature_std_[:ns])
        members_std = clf.standardise_source(members)
        clus_std = clf.standardise_cluster(clus)
        cand = df.copy()
    for _ in range(repeats):
        for key in ("exact", "compiled", "authors"):
            if key == "authors":
                if their is None:
                    continue

                def run():
                    old = torch.get_num_threads()
                    torch.set_num_threads(1)  # the faster of their settings on a shared machine (network rows)
                    try:
                        with torch.inference_mode():
                            return their_probabilities(au, their, cand, members_std, cl, clus_std, n_samples, 42), {}
                    finally:
                        torch.set_num_threads(old)
            else:
                def run(key=key):
                    t: dict[str, float] = {}
                    p = membership_probabilities(df, members, clus, clf, fn, n_samples=n_samples, seed=2023,
                                                 threads=CPUS, network=key, timings=t, batch_size=2048)
                    return p, t
            r = measure(run, 1)
            if key not in results or r[1] < results[key][1]:
                results[key] = r
    ref = results.get("authors")
    for key, label in (("exact", "members ours exact"), ("compiled", "members ours compiled"),
                       ("authors", "members authors (MC loop, 1 thr)")):
        if key not in results:
            continue
        (p, t), wall, cpu, peak = results[key]
        ratio = f"{ref[1] / wall:.2f}x" if ref is not None and key != "authors" else ""
        notes = f"mean p {np.nanmean(p):.4f}"
        if t:
            frac = (t["sampling_features"] + t["support_sets"]) / t["network"]
            notes += (f"; sampling+features {t['sampling_features']:.2f} s, support {t['support_sets']:.2f} s, "
                      f"network {t['network']:.2f} s ({n * n_samples / t['network'] / 1e3:.0f}k sets/s); "
                      f"non-network = {frac:.0%} of network")
        if key == "compiled":
            notes += f"; {int(np.sum(p != results['exact'][0][0]))} p differ from exact"
        row(label, size, wall, cpu, peak, f"{n * n_samples / wall / 1e3:.0f}k samples/s", ratio,
            notes + f"; {load()}")


def train_rows(au, repeats: int, n_clusters: int) -> None:
    from torch import nn
    from ocmembers.method.instances import ClusterSets, build_instances, fit_standardisation
    from ocmembers.method.network import DeepSetsNet
    from ocmembers.method.training import train_network
    rng = np.random.default_rng(0)
    clusters = [ClusterSets(f"c{i}", rng.normal(0, 1, (150, 5)), rng.normal(1, 2, (3000, 5)), rng.normal(size=3))
                for i in range(n_clusters)]
    mean, std = fit_standardisation(clusters)
    inst = build_instances(clusters, mean, std, rng=np.random.default_rng(1))
    n = len(inst)
    size = f"{n} instances, batch 32"
    # the same batches for the authors' step (their one-hot labels)
    order = torch.randperm(n, generator=torch.Generator().manual_seed(0))
    batches = []
    for s in range(0, n, 32):
        x, y = inst.batch(order[s:s + 32])
        batches.append((x, nn.functional.one_hot(y, 2).float()))
    results = {}
    old = torch.get_num_threads()
    for _ in range(repeats):
        for key in ("ours", "authors"):
            if key == "authors":
                if au is None:
                    continue
                torch.manual_seed(0)
                model = au.deepsets_zaheer.D5(64, x_dim=13, pool="mean", out_dim=2)
                opt = torch.optim.Adam([{"params": model.parameters()}], lr=1e-4, weight_decay=1e-5)
                crit = nn.CrossEntropyLoss(weight=torch.FloatTensor([1, 5]), reduction="sum")

                def run():
                    torch.set_num_threads(1)  # as ours; their default (all threads) is slower at batch 32
                    try:
                        with contextlib.redirect_stderr(io.StringIO()):   # their progress bar
                            return au.training.step(batches, model, opt, crit, 0, "train")
                    finally:
                        torch.set_num_threads(old)
            else:
                torch.manual_seed(0)
                net = DeepSetsNet()

                def run():
                    return train_network(net, inst, None, max_epochs=1, seed=0)
            r = measure(run, 1)
            if key not in results or r[1] < results[key][1]:
                results[key] = r
    ref = results.get("authors")
    for key, label in (("ours", "train ours"), ("authors", "train authors (step, D5)")):
        if key in results:
            _, wall, cpu, peak = results[key]
            ratio = f"{ref[1] / wall:.2f}x" if ref is not None and key != "authors" else ""
            row(label, size, wall, cpu, peak, f"{n / wall / 1e3:.1f}k inst/s", ratio,
                f"{wall / (n / 32) * 1e3:.2f} ms/step; {n / cpu / 1e3:.1f}k inst per CPU s; {load()}")


def sets_rows(au_sets: SimpleNamespace | None, repeats: int, names: list[str]) -> None:
    """The sets step on simulated cones: ours against the authors' in-memory core, on the same input.

    Ours: :func:`ocmembers.stages.sets.build_sets` on the raw simulated cone
    (preprocessing included). Theirs: :func:`their_sets` on the same cone in
    their column layout (:func:`their_sets_inputs`). Both get the same member
    ids and the same PARSEC table; each is called ``repeats`` times,
    interleaved, and the best wall time kept.
    """
    from ocmembers.config import load_config
    from ocmembers.method.columns import cluster_row
    from ocmembers.sim.catalogues import cg20_like_members
    from ocmembers.sim.cluster import simulate_cone
    from ocmembers.sim.source import SimSource, embedded_cluster_table
    from ocmembers.sources.local import read_cluster_table
    from ocmembers.stages.sets import build_sets, members_of
    cfg = load_config(source="sim")
    src = SimSource(cfg)
    cg20 = cfg.local_dir / "catalogues" / "cg20_table1.csv"     # as benchmarks/bench_sim.py
    table = read_cluster_table(cg20) if cg20.is_file() else embedded_cluster_table()
    for name in names:
        try:
            crow = cluster_row(table, name)
        except Exception as exc:  # noqa: BLE001 - a cluster outside the embedded rows without the shared CG20 table
            where = ("the CG20 table" if cg20.is_file()
                     else f"the embedded rows ({cg20} is missing; NGC_7789 is embedded)")
            print(f"sets {name}: not simulated, not in {where}: {exc}", flush=True)
            continue
        t0 = time.perf_counter()
        sim = simulate_cone(crow, cfg)                            # not cached: writes nothing
        t_sim = time.perf_counter() - t0
        members = cg20_like_members(sim, crow, cfg)
        xm = src.crossmatch(members, sim.cone, crow)
        ids = members_of(members, xm, name, cfg.selection.member_probability)
        iso = src.isochrone(float(crow["log_age"]))
        their_in = their_sets_inputs(sim.cone, crow, iso) if au_sets is not None else None
        base = rss_mb()                                          # the cone, torch, ...: under both peaks
        results: dict[str, Any] = {}
        for _ in range(repeats):
            for key in ("ours", "authors"):
                if key == "authors":
                    if their_in is None:
                        continue

                    def run():
                        with warnings.catch_warnings():   # their pandas idioms warn on pandas 3
                            warnings.simplefilter("ignore")
                            return their_sets(au_sets, *their_in, ids["source_id"], ids["probability"])
                else:
                    def run():
                        return build_sets(sim.cone, ids, crow, iso, cfg)
                r = measure(run, 1)
                if key not in results or r[1] < results[key][1]:
                    results[key] = r
        size = f"{len(sim.cone)} sources"
        ours, wall, cpu, peak = results["ours"]
        c = ours.counts
        mine = {k: c[k] for k in ("members", "candidates", "non_members", "dubious_members")}
        ref = results.get("authors")
        notes = (f"{mine['candidates']} candidates, {mine['members']} members, {mine['non_members']} non-members "
                 f"({mine['dubious_members']} dubious), {mine['candidates'] + mine['non_members']} kept; "
                 f"{len(ids)} listed members, {c['members_in_cone']} in the cone, {c['members_outlying']} outlying; "
                 f"simulating the cone took {t_sim:.1f} s; RSS before both {base:.0f} MB; {load()}")
        row(f"sets ours ({name}, simulated)", size, wall, cpu, peak, f"{len(sim.cone) / wall / 1e3:.0f}k sources/s",
            f"{ref[1] / wall:.2f}x" if ref is not None else "", notes)
        if ref is None:
            continue
        theirs, wall, cpu, peak = ref
        n = {k: len(v) for k, v in theirs.items()}
        diff = ", ".join(f"{k} {n[k] - mine[k]:+d}" for k in mine)
        a = set(ours.candidates["source_id"].to_numpy().tolist())
        b = set(theirs["candidates"]["source_id"].to_numpy().tolist())
        row(f"sets authors ({name}, core)", size, wall, cpu, peak, f"{len(sim.cone) / wall / 1e3:.0f}k sources/s",
            notes=f"{n['candidates']} candidates, {n['members']} members, {n['non_members']} non-members "
                  f"({n['dubious_members']} dubious), {n['candidates'] + n['non_members']} kept, "
                  f"{n['comparison']} comparison; theirs - ours: {diff}; "
                  f"candidates in both {len(a & b) / max(1, len(a | b)):.1%} of either; {load()}")


ROWS = ("gemm", "network", "members", "train", "sets")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--sets", type=int, default=200_000)
    ap.add_argument("--candidates", type=int, default=10_000)
    ap.add_argument("--samples", type=int, default=100)
    ap.add_argument("--train-clusters", type=int, default=4)
    ap.add_argument("--sets-cluster", nargs="+", default=["Trumpler_5"],
                    help="the simulated cone(s) of the sets rows (default Trumpler_5: 106,000 sources)")
    ap.add_argument("--only", nargs="+", choices=ROWS, default=list(ROWS),
                    help="these rows only (the network rows bring the GEMM rows they are measured against)")
    ap.add_argument("--quick", action="store_true", help="small inputs, one repeat (a smoke run)")
    args = ap.parse_args()
    if args.quick:
        args.repeats, args.sets, args.candidates, args.samples, args.train_clusters = 1, 20_000, 500, 20, 1
    au = authors()
    au_sets = authors_sets() if "sets" in args.only else None
    print(f"machine: {CPUS} CPUs, torch {torch.__version__} ({torch.get_num_threads()} threads), "
          f"authors' code: {'gaia-oc-amd 0.2.1' if au else 'not installed'}; {load()} at the start; "
          f"best of {args.repeats}, ours and theirs interleaved")
    print(HEADER)
    print("-" * len(HEADER))
    if "gemm" in args.only or "network" in args.only:
        peak = gemm(args.repeats)
    if "network" in args.only:
        network_rows(au, args.repeats, args.sets, peak)
    if "members" in args.only:
        member_rows(au, args.repeats, args.candidates, args.samples)
    if "train" in args.only:
        train_rows(au, args.repeats, args.train_clusters)
    if "sets" in args.only:
        sets_rows(au_sets, args.repeats, args.sets_cluster)


if __name__ == "__main__":
    main()
