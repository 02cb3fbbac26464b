"""The scikit-learn contract of :class:`DeepSetsClassifier` (STYLE practice 8) and ``membership_proba``.

``sklearn.utils.estimator_checks.check_estimator`` feeds 2-D arrays to ``fit``;
this estimator fits on per-cluster sets, so the checks that do not fit run as
they are and the rest of the contract is tested here on a tiny synthetic fit.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.utils import estimator_checks as checks
from sklearn.utils.validation import check_is_fitted

from ocmembers.method.classifier import DeepSetsClassifier
from ocmembers.method.isochrones import IsochroneCurve
from ocmembers.method.membership import MEMBERSHIP_REQUIRED
from ocmembers.method.network import SOURCE_FEATURES
from ocmembers.method.training import ClusterSets

INIT_PARAMS = ("n_support", "hidden", "n_blocks", "dropout", "n_classes", "n_member_copies",
               "negative_ratio", "class_weights", "learning_rate", "l2", "grad_clip", "batch_size",
               "patience", "max_epochs", "random_state", "verbose")


def _cluster(name: str, n_m: int, n_nm: int, rng: np.random.Generator) -> ClusterSets:
    """Separable toy sets (as tests/test_training.py): members near 0, non-members on a shell."""
    members = 0.3 * rng.normal(size=(n_m, 5))
    d = rng.normal(size=(n_nm, 5))
    non = d / np.linalg.norm(d, axis=1, keepdims=True) * rng.uniform(1.5, 4.0, (n_nm, 1))
    return ClusterSets(name, members, non, rng.normal(size=3))


@pytest.fixture(scope="module")
def clusters() -> list[ClusterSets]:
    rng = np.random.default_rng(10)
    return [_cluster(f"C{i}", 20, 100, rng) for i in range(3)]


@pytest.fixture(scope="module")
def fitted(clusters) -> DeepSetsClassifier:
    clf = DeepSetsClassifier(n_support=5, hidden=16, n_blocks=2, max_epochs=3, patience=3,
                             learning_rate=3e-3, batch_size=64)
    out = clf.fit(clusters[:2], clusters[2:])
    assert out is clf                                           # fit returns self
    return clf


def _sets(c: ClusterSets, n_support: int, rng: np.random.Generator) -> np.ndarray:
    left = np.concatenate([c.members[:10], c.non_members[:10]])
    sup = c.members[rng.integers(0, len(c.members), (len(left), n_support))]
    return np.concatenate([np.repeat(left[:, None, :], n_support, 1),
                           np.broadcast_to(c.cluster, (len(left), n_support, 3)), sup], axis=2)


# -- the parts of check_estimator that apply ------------------------------------------
@pytest.mark.parametrize("check", [checks.check_no_attributes_set_in_init,
                                   checks.check_parameters_default_constructible,
                                   checks.check_get_params_invariance, checks.check_set_params,
                                   checks.check_estimator_cloneable, checks.check_estimator_repr])
def test_sklearn_checks_without_fit(check):
    check("DeepSetsClassifier", DeepSetsClassifier())


def test_init_stores_without_validation():
    clf = DeepSetsClassifier(n_support=-3, hidden="wide", class_weights=None, random_state=None)
    assert clf.get_params()["n_support"] == -3 and clf.get_params()["hidden"] == "wide"
    assert set(clf.get_params()) == set(INIT_PARAMS)
    assert not [k for k in vars(clf) if k.endswith("_")]       # no learned state before fit


def test_set_params_and_clone(fitted):
    clf = DeepSetsClassifier()
    assert clf.set_params(n_support=7, random_state=3) is clf
    assert clf.n_support == 7 and clf.get_params()["random_state"] == 3
    with pytest.raises(ValueError, match="Invalid parameter"):
        clf.set_params(n_suport=7)
    twin = clone(fitted)
    assert twin is not fitted and twin.get_params() == fitted.get_params()
    assert not hasattr(twin, "network_") and not hasattr(twin, "feature_mean_")
    with pytest.raises(NotFittedError):
        check_is_fitted(twin)
    check_is_fitted(fitted)


def test_unfitted_errors():
    clf = DeepSetsClassifier()
    X = np.zeros((2, 10, 13), np.float32)
    for call in (lambda: clf.predict_proba(X), lambda: clf.predict(X),
                 lambda: clf.membership_proba(pd.DataFrame(), np.zeros((3, 5)), {}, None)):
        with pytest.raises(NotFittedError, match="not fitted"):
            call()
    with pytest.raises(RuntimeError):                           # still a RuntimeError, as before
        clf.predict_proba(X)


def test_random_state_none_is_resolved_in_fit(fitted, clusters):
    assert fitted.random_state is None                          # stored as given
    assert isinstance(fitted.seed_, int)
    again = clone(fitted).set_params(random_state=fitted.seed_).fit(clusters[:2], clusters[2:])
    for a, b in zip(fitted.network_.state_dict().values(), again.network_.state_dict().values()):
        assert np.array_equal(a.numpy(), b.numpy())             # the drawn seed reproduces the fit


def test_learned_state_and_predict_proba_columns(fitted, clusters):
    assert list(fitted.classes_) == [0, 1]
    assert fitted.feature_mean_.shape == (8,) and fitted.feature_std_.shape == (8,)
    assert len(fitted.history_) >= 1
    X = _sets(clusters[0], fitted.n_support, np.random.default_rng(1))
    proba = fitted.predict_proba(X)
    assert proba.shape == (len(X), len(fitted.classes_))
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(fitted.predict(X), fitted.classes_[proba.argmax(axis=1)])
    with pytest.raises(ValueError, match="expects"):
        fitted.predict_proba(X[:, :, :12])


# -- membership_proba on plain tables -------------------------------------------------
def _plain_inputs(c: ClusterSets, n: int, rng: np.random.Generator):
    """Candidates with Gaia-like columns whose features are those the feature function gives."""
    params = {"pmra": -11.0, "pmdec": -3.0, "parallax": 1.15, "pmra_std": 0.2, "pmdec_std": 0.2,
              "parallax_std": 0.05, "delta_c": 0.1, "delta_g": 0.5, "a0": 0.1, "log_age": 9.6,
              "dist_pc": 860.0, "name": "TOY"}
    g = np.linspace(8.0, 18.0, 50)
    curve = IsochroneCurve(colour=0.3 + 0.04 * (g - 8.0), g=g, connected=np.ones(len(g) - 1, bool))
    cand = pd.DataFrame({
        "source_id": np.arange(n, dtype=np.int64),
        "pmra": -11.0 + rng.normal(0, 1, n), "pmdec": -3.0 + rng.normal(0, 1, n),
        "parallax": 1.15 + rng.normal(0, 0.2, n),
        "pmra_error": np.full(n, 0.05), "pmdec_error": np.full(n, 0.05), "parallax_error": np.full(n, 0.05),
        "parallax_pmra_corr": np.full(n, 0.1), "parallax_pmdec_corr": np.zeros(n),
        "pmra_pmdec_corr": np.full(n, -0.2),
        "phot_g_mean_mag": rng.uniform(10, 17, n), "phot_g_mean_mag_error": np.full(n, 0.003),
    })
    cand["g_rp"] = 0.3 + 0.04 * (cand["phot_g_mean_mag"] - 8.0) + rng.normal(0, 0.05, n)
    cand["g_rp_error"] = 0.01
    feats = rng.normal(0, 0.5, (n, 5))
    for j, f in enumerate(SOURCE_FEATURES):
        cand[f] = feats[:, j]
    members = pd.DataFrame(c.members, columns=list(SOURCE_FEATURES))
    members["source_id"] = np.arange(len(members), dtype=np.int64) + n - 5   # 5 candidates are members
    return cand, members, params, curve


def test_membership_proba_plain_inputs(fitted, clusters):
    from astropy.table import MaskedColumn, Table
    cand, members, params, curve = _plain_inputs(clusters[0], 40, np.random.default_rng(3))
    cand.loc[3, "pmra_error"] = np.nan                          # a source without full inputs
    p = fitted.membership_proba(cand, members, params, curve, n_samples=20, seed=5)
    assert p.shape == (len(cand),) and np.isnan(p[3])
    ok = np.delete(p, 3)
    assert np.all((ok >= 0) & (ok <= 1)) and np.allclose(ok * 20, np.round(ok * 20))
    # the same seed gives the same probabilities; an astropy Table (masked float -> NaN) the same
    t = Table.from_pandas(cand.drop(columns="pmra_error"))
    t["pmra_error"] = MaskedColumn(cand["pmra_error"].fillna(0.0), mask=cand["pmra_error"].isna())
    q = fitted.membership_proba(t, Table.from_pandas(members), params, curve, n_samples=20, seed=5)
    np.testing.assert_array_equal(p, q)
    # members as a plain (n_m, 5) array: no source_id, so no own-member exclusion
    r = fitted.membership_proba(cand, members[list(SOURCE_FEATURES)].to_numpy(), params, curve,
                                n_samples=20, seed=5)
    s = fitted.membership_proba(cand, members, params, curve, n_samples=20, seed=5, exclude_self=False)
    np.testing.assert_array_equal(r, s)
    # a name mixes the seed as the pipeline does: another stream
    from ocmembers.method.membership import cluster_seed
    u = fitted.membership_proba(cand, members, params, curve, n_samples=20, seed=5, name="TOY")
    v = fitted.membership_proba(cand, members, params, curve, n_samples=20, seed=cluster_seed(5, "TOY"))
    np.testing.assert_array_equal(u, v)


def test_membership_proba_input_errors(fitted, clusters):
    cand, members, params, curve = _plain_inputs(clusters[0], 10, np.random.default_rng(4))
    with pytest.raises(ValueError, match=r"\(n_members, 5\)"):
        fitted.membership_proba(cand, np.zeros((4, 3)), params, curve)
    with pytest.raises(ValueError, match="f_plx"):
        fitted.membership_proba(cand, members.drop(columns="f_plx"), params, curve)
    with pytest.raises(Exception, match="g_rp_error"):
        fitted.membership_proba(cand.drop(columns="g_rp_error"), members, params, curve)
    with pytest.raises(TypeError, match="cluster feature"):
        fitted.membership_proba(cand, members, {k: v for k, v in params.items() if k != "a0"}, curve)
    assert "g_rp_error" in MEMBERSHIP_REQUIRED
