r"""The calibrated variant of the membership probability (issue 15 item 2; not in the paper).

Why
---
The paper's probability (Sect. 3.4) is the fraction of Monte Carlo samples
the network classifies member. A faint member's measured astrometry is
already off by its errors; re-sampling it within those errors moves it
further, and the network, trained on members brighter than :math:`G = 18`
and given no uncertainty, rejects most samples. On the simulated sky with
ground truth (``make truthbench``, 8 test clusters, DR3 errors) the paper's
:math:`p` is therefore far from a probability at the faint end: of the
sources with :math:`0.1 \le p < 0.2`, 74 % are members, and at
:math:`G = 19`--20 the recall at :math:`p \ge 0.5` is 0.10 where the ideal
classifier reaches 0.95.

What
----
A posterior :math:`P(\mathrm{member} \mid x)` learned on simulated clusters
whose truth is known (never the test clusters), from the paper's :math:`p`
and the features that carry the star's own uncertainty relative to the
cluster's spread (:data:`CALIBRATION_FEATURES`, :func:`calibration_features`):

* :math:`p` (Sect. 3.4) and the star's :math:`G`;
* :math:`z_\mu = f_\mu / \sqrt{\sigma_{\mu,c}^2 + \sigma_\mu^2}` (Eq. 15 in units
  of the combined spread) and :math:`s_\mu = \sigma_\mu / \sigma_{\mu,c}`,
  with :math:`\sigma_\mu^2 = (\sigma_{\mu_{\alpha*}}^2 + \sigma_{\mu_\delta}^2)/2`
  and :math:`\sigma_{\mu,c}` the members' dispersion, likewise;
* :math:`z_\varpi = f_\varpi / \sqrt{\sigma_{\varpi,c}^2 + \sigma_\varpi^2}` (Eq. 16)
  and :math:`s_\varpi = \sigma_\varpi / \sigma_{\varpi,c}`;
* :math:`f_C, f_G` (Eq. 17, mag) and the colour error :math:`\sigma_C`;
* :math:`f_R` (Eq. 13, pc).

Cluster-relative quantities let one posterior serve clusters at any distance.
The estimator (:func:`fit_calibrator`) is scikit-learn's histogram gradient
boosting (log-loss), its output made calibrated by isotonic regression on
out-of-cluster predictions (``CalibratedClassifierCV`` with folds that hold out
whole clusters), so that no cluster calibrates its own predictions.

Limits
------
It is learned on the simulated sky: on real data it is only as right as the
simulation's errors and field are (held against real catalogues by
``make realism``). The paper's :math:`p` stays in the member lists beside it
(``probability_deep_sets``).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from ocmembers.method.columns import require_columns

__all__ = ["CALIBRATION_FEATURES", "INPUT_COLUMNS", "PARAM_KEYS", "calibration_features", "fit_calibrator",
           "calibrated_probability", "calibrate_table"]

#: the columns of :func:`calibration_features`, in order
CALIBRATION_FEATURES: tuple[str, ...] = ("p_deep_sets", "g", "z_pm", "s_pm", "z_plx", "s_plx", "f_c", "f_g",
                                         "sigma_c", "f_r")
#: the member table's columns it reads
INPUT_COLUMNS: tuple[str, ...] = ("probability", "phot_g_mean_mag", "f_pm", "pmra_error", "pmdec_error", "f_plx",
                                  "parallax_error", "f_c", "f_g", "g_rp_error", "f_r")
#: the cluster parameters it reads (the sets stage's ``params.json``)
PARAM_KEYS: tuple[str, ...] = ("pmra_std", "pmdec_std", "parallax_std")
#: fixed, not tuned on any test cluster: sklearn's defaults but for a seed and no early stopping
_HGB = dict(max_iter=200, learning_rate=0.1, max_leaf_nodes=31, min_samples_leaf=20, l2_regularization=0.0,
            early_stopping=False)


def calibration_features(table: pd.DataFrame, params: Mapping[str, float], *, what: str = "members") -> np.ndarray:
    """The (n, len(:data:`CALIBRATION_FEATURES`)) features of the rows of a member table.

    ``table``: the members stage's columns (:data:`INPUT_COLUMNS`; ``probability`` is the
    paper's p); ``params``: the cluster's member dispersions (:data:`PARAM_KEYS`, mas, mas/yr).
    """
    require_columns(table, INPUT_COLUMNS, what)
    missing = [k for k in PARAM_KEYS if k not in params or not np.isfinite(float(params[k]))
               or float(params[k]) <= 0]
    if missing:
        raise ValueError(f"{what}: the cluster parameters {missing} are missing or not positive")
    col = {c: table[c].to_numpy(float) for c in INPUT_COLUMNS}
    s_pm_c = np.sqrt((float(params["pmra_std"]) ** 2 + float(params["pmdec_std"]) ** 2) / 2)
    s_plx_c = float(params["parallax_std"])
    s_pm = np.sqrt((col["pmra_error"] ** 2 + col["pmdec_error"] ** 2) / 2)
    s_plx = col["parallax_error"]
    return np.column_stack([
        col["probability"], col["phot_g_mean_mag"],
        col["f_pm"] / np.hypot(s_pm_c, s_pm), s_pm / s_pm_c,
        col["f_plx"] / np.hypot(s_plx_c, s_plx), s_plx / s_plx_c,
        col["f_c"], col["f_g"], col["g_rp_error"], col["f_r"],
    ])


def fit_calibrator(x: np.ndarray, is_member: np.ndarray, groups: np.ndarray, *, seed: int,
                   n_folds: int = 5):
    """The posterior of the module docstring, fitted on features ``x`` of labelled sources.

    ``groups``: each source's cluster; the isotonic calibration is fitted on predictions for
    clusters held out of each fold's boosting (``min(n_folds, clusters)`` folds, at least 2
    clusters). Deterministic for a ``seed``. Returns a fitted scikit-learn classifier.
    """
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.model_selection import GroupKFold

    y = np.asarray(is_member, bool)
    groups = np.asarray(groups)
    n_groups = len(np.unique(groups))
    if n_groups < 2:
        raise ValueError(f"the calibration needs sources of at least 2 clusters, got {n_groups}")
    if y.all() or not y.any():
        raise ValueError("the calibration needs both members and non-members")
    folds = list(GroupKFold(n_splits=min(n_folds, n_groups)).split(x, y, groups))
    model = CalibratedClassifierCV(HistGradientBoostingClassifier(random_state=seed, **_HGB),
                                   method="isotonic", cv=folds)
    return model.fit(np.asarray(x, float), y)


def calibrated_probability(model, x: np.ndarray) -> np.ndarray:
    """P(member | x) of :func:`fit_calibrator`'s ``model`` for features ``x``, in [0, 1]."""
    if len(x) == 0:
        return np.zeros(0)
    return np.clip(model.predict_proba(np.asarray(x, float))[:, 1], 0.0, 1.0)


def calibrate_table(table: pd.DataFrame, params: Mapping[str, float], model, *, what: str = "members") -> pd.DataFrame:
    """A member table with ``probability`` replaced by the calibrated posterior for every
    evaluated source (finite p; the others stay NaN) and the paper's p kept as
    ``probability_deep_sets``."""
    out = table.copy()
    p = out["probability"].to_numpy(float).copy()
    out["probability_deep_sets"] = p.copy()
    done = np.isfinite(p)
    p[done] = calibrated_probability(model, calibration_features(out.loc[done], params, what=what))
    out["probability"] = p
    return out
