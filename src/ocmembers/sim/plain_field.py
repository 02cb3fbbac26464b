"""A simulated cone with no cluster: the field as the Gaia archive returns it (issue 16).

The ``realism`` stage holds it against a real plain field (``gaia/fields/`` of
``DATA_DIR``): the same Galaxy model, binaries, RUWE model and measurement as
the field of :func:`ocmembers.sim.cluster.simulate_cone`, at any position,
with no cut in parallax or proper motion.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ocmembers.config import Config
from ocmembers.exceptions import ConfigError, EmptyConeError
from ocmembers.method.columns import GAIA_COLUMNS
from ocmembers.method.cuts import angular_separation_deg
from ocmembers.sim.cluster import Measurement, cluster_rng
from ocmembers.sim.errors import ScanLaw
from ocmembers.sim.galaxy import simulate_field

__all__ = ["simulate_plain_field"]


def simulate_plain_field(ra: float, dec: float, radius_deg: float, cfg: Config) -> pd.DataFrame:
    """Every simulated source within ``radius_deg`` of (``ra``, ``dec``), with no cluster.

    Its generators are seeded by ``[sim] seed`` and the position, so the same
    cone gives the same sources.

    Returns
    -------
    DataFrame
        ``GAIA_COLUMNS``, sorted by ``source_id``.

    Raises
    ------
    ConfigError
        A position that is not finite, or a radius outside (0, 10] deg.
    EmptyConeError
        No simulated source in the cone.
    """
    if not (np.isfinite(ra) and np.isfinite(dec) and -90.0 <= dec <= 90.0 and 0.0 < radius_deg <= 10.0):
        raise ConfigError(f"plain field: need a finite position and 0 < radius <= 10 deg, got "
                          f"ra={ra}, dec={dec}, radius={radius_deg} deg")
    r_field, r_obs, r_scan, r_orbit = cluster_rng(cfg, f"field ra={ra:.6f} dec={dec:.6f} r={radius_deg:.6f}", 4)
    measure = Measurement(cfg, ScanLaw.draw(r_scan), r_obs, None,  # type: ignore[arg-type]  # no cut
                          orbit_rng=r_orbit if cfg.sim.ruwe_model == "orbit" else None)
    parts: list[pd.DataFrame] = []

    def field_chunk(part: pd.DataFrame) -> pd.DataFrame:
        parts.append(measure(part.assign(is_member=False)))
        return parts[-1].iloc[:0]

    simulate_field(float(ra), float(dec), float(radius_deg), r_field, g_limit=cfg.sim.g_limit,
                   density=cfg.sim.field_density, binary_fraction=cfg.sim.binary_fraction,
                   on_chunk=field_chunk)
    kept = [p for p in parts if len(p)]
    if not kept:
        raise EmptyConeError(f"plain field at ra={ra}, dec={dec}: no simulated source within {radius_deg} deg")
    both = pd.concat(kept, ignore_index=True)
    inside = angular_separation_deg(both["ra"].to_numpy(float), both["dec"].to_numpy(float),
                                    float(ra), float(dec)) <= radius_deg
    out = both.loc[inside, list(GAIA_COLUMNS)].sort_values("source_id", kind="stable").reset_index(drop=True)
    # source ids are drawn per batch of stars: the rare repeat (~1e-6) gets the next free id
    ids = out["source_id"].to_numpy().copy()
    while True:
        repeat = np.flatnonzero(ids[1:] == ids[:-1]) + 1
        if not repeat.size:
            break
        ids[repeat] += 1
        order = np.argsort(ids, kind="stable")
        ids, out = ids[order], out.iloc[order].reset_index(drop=True)
    out["source_id"] = ids
    return out
