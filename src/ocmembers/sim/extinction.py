r"""Extinction in the Gaia passbands and along a line of sight.

Passbands
---------
:math:`A_X = k_X(T_{eff}, A_0)\,A_0` for :math:`X \in \{G, G_{BP}, G_{RP}\}`
with the dustapprox polynomial model ``gaia_kurucz_f99_a0_teff`` (Kurucz
atmospheres, Fitzpatrick 1999 law, :math:`R_0 = 3.1`; Fouesneau et al. 2022),
the same model the pipeline shifts its isochrones with (``[isochrone]
extinction_model``). Inputs are clipped to the model's grid
(:math:`3500 \le T_{eff} \le 50000` K, :math:`0.01 \le A_0 \le 20`).

Line of sight
-------------
Dust in an exponential disc,
:math:`\rho_d \propto \exp(-(R - R_0)/h_{R,d} - |z|/h_{z,d})` with
:math:`h_{R,d} = 3` kpc, :math:`h_{z,d} = 0.15` kpc and
:math:`dA_0/ds = 1` mag/kpc at the Sun (Drimmel & Spergel 2001 order of
magnitude), integrated numerically along the direction; for a simulated
cluster the curve in front of the cluster is rescaled so that
:math:`A_0(d_{cl})` equals the CG20 :math:`A_0` of the cluster, and beyond
it grows as the model.

.. warning:: dustapprox models are solar-metallicity only.

References
----------
Fouesneau, M., et al. 2022, A&A 662, A125 (dustapprox).
Fitzpatrick, E. L. 1999, PASP 111, 63.
Drimmel, R., Spergel, D. N. 2001, ApJ 556, 181.
"""

from __future__ import annotations

import functools

import numpy as np
import pandas as pd

from ocmembers.sim._numeric import Interpolator, clip

__all__ = ["gaia_extinction", "los_a0", "DUST_HR_KPC", "DUST_HZ_KPC", "DUST_A0_PER_KPC"]

DUST_HR_KPC = 3.0
DUST_HZ_KPC = 0.15
DUST_A0_PER_KPC = 1.0
MODEL_FILE = "gaia_kurucz_f99_a0_teff.ecsv"
_PASSBANDS = ("GAIA_GAIA3.G", "GAIA_GAIA3.Gbp", "GAIA_GAIA3.Grp")


@functools.lru_cache(maxsize=1)
def _coefficients() -> pd.DataFrame:
    """Polynomial coefficients of the dustapprox model, read from its ECSV without importing
    dustapprox (whose import pulls in pyphot and scikit-learn: seconds per process)."""
    import importlib.util
    from pathlib import Path

    spec = importlib.util.find_spec("dustapprox")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("dustapprox is not installed")
    root = Path(list(spec.submodule_search_locations)[0]) / "data" / "precomputed" / "polynomial"
    hits = sorted(root.rglob(MODEL_FILE))
    if not hits:
        raise FileNotFoundError(f"dustapprox model {MODEL_FILE} not found under {root}")
    table = pd.read_csv(hits[0], comment="#").set_index("passband")
    return table.loc[list(_PASSBANDS)]


def gaia_extinction(teff: np.ndarray, a0: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(A_G, A_BP, A_RP)`` for effective temperatures ``teff`` (K) and ``a0`` (mag).

    :math:`k_X = \\sum c_{ij} A_0^i\\,(T_{eff}/5040)^j` (:math:`i + j \\le 3`), the
    polynomial of the dustapprox model, evaluated here in numpy.
    """
    teff = np.asarray(teff, dtype=float)
    a0 = np.broadcast_to(np.asarray(a0, dtype=float), teff.shape)
    x = clip(a0, 0.01, 20.0)
    t = clip(teff, 3500.0, 50000.0) / 5040.0
    feats = {"1": np.ones_like(x), "A0": x, "teffnorm": t, "A0^2": x * x, "A0 teffnorm": x * t,
             "teffnorm^2": t * t, "A0^3": x ** 3, "A0^2 teffnorm": x * x * t, "A0 teffnorm^2": x * t * t,
             "teffnorm^3": t ** 3}
    out = []
    for band in _PASSBANDS:
        k = sum(c * feats[name] for name, c in _band_coefficients(band))
        out.append(np.where(a0 > 0, k * a0, 0.0))
    return tuple(out)  # type: ignore[return-value]


@functools.lru_cache(maxsize=None)
def _band_coefficients(band: str) -> tuple[tuple[str, float], ...]:
    """``(feature, coefficient)`` of one passband, in the order of the sum of :func:`gaia_extinction`."""
    c = _coefficients().loc[band]
    names = ("1", "A0", "teffnorm", "A0^2", "A0 teffnorm", "teffnorm^2", "A0^3", "A0^2 teffnorm",
             "A0 teffnorm^2", "teffnorm^3")
    return tuple((name, float(c[name])) for name in names)


def los_a0(d_pc: np.ndarray, l_deg: float, b_deg: float, *, r0_pc: float = 8200.0,
           z_sun_pc: float = 20.8, scale: float = 1.0,
           anchor: tuple[float, float] | None = None) -> np.ndarray:
    """:math:`A_0` (mag) to distances ``d_pc`` in the direction ``(l, b)`` (module docstring).

    ``anchor = (d_a, A_a)``: the curve is rescaled in front of ``d_a`` so that
    :math:`A_0(d_a) = A_a` (a cluster's catalogue extinction), and grows as
    the model beyond it.
    """
    d = np.asarray(d_pc, dtype=float)
    dmax = max(float(np.nanmax(d)) if d.size else 1.0, 1.0, anchor[0] if anchor else 1.0)
    s = np.linspace(0.0, dmax, 2001)
    lr, br = np.deg2rad(l_deg), np.deg2rad(b_deg)
    x = r0_pc - s * np.cos(br) * np.cos(lr)
    y = s * np.cos(br) * np.sin(lr)
    z = s * np.sin(br) + z_sun_pc
    rho = np.exp(-(np.hypot(x, y) - r0_pc) / (DUST_HR_KPC * 1e3) - np.abs(z) / (DUST_HZ_KPC * 1e3))
    cum = np.concatenate([[0.0], np.cumsum(0.5 * (rho[1:] + rho[:-1]) * np.diff(s))]) * DUST_A0_PER_KPC / 1e3
    model = Interpolator(s).interp(d, cum) if d.ndim == 1 and d.size > 4096 else np.interp(d, s, cum)
    if anchor is None:
        return scale * model
    d_a, a_a = float(anchor[0]), float(anchor[1])
    m_a = float(np.interp(d_a, s, cum))
    front = model * (a_a / m_a) if m_a > 0 else a_a * d / max(d_a, 1e-9)
    return np.where(d <= d_a, front, a_a + model - m_a)
