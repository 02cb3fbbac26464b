"""Radial profiles: the projected half-number radius of a simulated cluster is CG20's r50."""

from __future__ import annotations

import numpy as np
import pytest

from ocmembers.config import load_config
from ocmembers.exceptions import ConfigError
from ocmembers.sim._profile import isotropic
from ocmembers.sim.cluster_model import _half_radius_unit, draw_positions as _positions
from ocmembers.sim.king62 import King62
from ocmembers.sim.plummer import Plummer


@pytest.mark.parametrize("profile", ["king62", "plummer"])
def test_r50_recovered(profile):
    cfg = load_config(source="sim").replace(sim={"profile": profile})
    r50_pc = 2.5
    scale = r50_pc / _half_radius_unit(cfg)
    xyz = _positions(cfg, 100_000, scale, np.random.default_rng(5))
    r_proj = np.hypot(xyz[:, 1], xyz[:, 2])  # x is the line of sight
    # median of 1e5 draws: relative error ~ 0.5 per cent
    assert np.median(r_proj) == pytest.approx(r50_pc, rel=0.03)


def test_king_projection_of_3d_density():
    """Projecting the sampled Eq. 27 density gives King's Eq. 18 (two independent formulae)."""
    king = King62(8.0)
    r = king.sample_r3d(200_000, np.random.default_rng(2))
    xyz = isotropic(r, np.random.default_rng(3))
    rp = np.hypot(xyz[:, 0], xyz[:, 1])
    for radius in (0.5, 1.0, 2.0, 4.0):
        assert np.mean(rp < radius) == pytest.approx(float(king.n2d(np.array([radius]))[0]), abs=0.006)


def test_plummer_half_radius_is_scale():
    assert Plummer(1e4).half_number_radius_2d() == pytest.approx(1.0, rel=1e-3)


def test_bad_concentration():
    with pytest.raises(ConfigError, match="tidal/core"):
        King62(0.5)
