"""Monte Carlo membership probabilities (Sect. 3.4): sampling, features, support sets, decisions."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from scipy.stats import norm
from torch import nn

from ocmembers.method.membership import (covariance_factor, draw_samples, membership_probabilities,
                                  sample_astrometry, sample_photometry)
from ocmembers.method.classifier import DeepSetsClassifier


def _stars(n: int, rng: np.random.Generator) -> pd.DataFrame:
    df = pd.DataFrame({
        "parallax": rng.normal(1.0, 0.2, n), "pmra": rng.normal(0, 1, n), "pmdec": rng.normal(0, 1, n),
        "parallax_error": rng.uniform(0.05, 0.3, n), "pmra_error": rng.uniform(0.05, 0.3, n),
        "pmdec_error": rng.uniform(0.05, 0.3, n),
        "parallax_pmra_corr": rng.uniform(-0.6, 0.6, n), "parallax_pmdec_corr": rng.uniform(-0.3, 0.3, n),
        "pmra_pmdec_corr": rng.uniform(-0.5, 0.5, n),
        "phot_g_mean_mag": rng.uniform(10, 20, n), "phot_g_mean_mag_error": rng.uniform(0.003, 0.02, n),
        "g_rp": rng.uniform(0.3, 1.2, n), "g_rp_error": rng.uniform(0.02, 0.1, n),
    })
    for f in ("f_r", "f_pm", "f_plx", "f_c", "f_g"):
        df[f] = rng.normal(size=n)
    return df


def _features(s):
    return {"f_pm": np.hypot(s["pmra"], s["pmdec"]), "f_plx": s["parallax"] - 1.0,
            "f_c": s["g_rp"] - 0.7, "f_g": s["phot_g_mean_mag"] - 15.0}


def test_astrometric_samples_reproduce_the_covariance():
    rng = np.random.default_rng(0)
    sig = np.array([[0.1, 0.2, 0.3], [1.0, 0.5, 0.05], [0.3, 0.3, 0.3]])
    rho = np.array([[0.5, -0.3, 0.2], [-0.9, 0.1, -0.05], [0.0, 0.0, 0.0]])   # (plx-pmra, plx-pmdec, pmra-pmdec)
    cov = sig[:, :, None] * sig[:, None, :]
    for k, (i, j) in enumerate(((0, 1), (0, 2), (1, 2))):
        cov[:, i, j] *= rho[:, k]
        cov[:, j, i] *= rho[:, k]
    mean = np.array([[1.0, -2.0, 3.0], [0.0, 0.0, 0.0], [5.0, 5.0, 5.0]])
    n = 40000
    x = sample_astrometry(mean, cov, n, rng)
    assert x.shape == (3, n, 3)
    for s in range(3):
        emp = np.cov(x[s].T)
        # standard error of a sample covariance: sqrt((S_ii S_jj + S_ij^2) / n); 5 sigma
        se = np.sqrt((np.outer(np.diag(cov[s]), np.diag(cov[s])) + cov[s] ** 2) / n)
        assert np.all(np.abs(emp - cov[s]) < 5 * se)
        assert np.all(np.abs(x[s].mean(0) - mean[s]) < 5 * sig[s] / np.sqrt(n))


def test_covariance_factor_singular_fallback():
    cov = np.array([[[1.0, 1.0, 0.0], [1.0, 1.0, 0.0], [0.0, 0.0, 0.0]]])   # rho = 1 and a zero error
    L = covariance_factor(cov)
    np.testing.assert_allclose(L @ np.swapaxes(L, 1, 2), cov, atol=1e-12)


def test_photometric_samples_share_the_g_error():
    rng = np.random.default_rng(1)
    g, sg = np.array([15.0, 19.0]), np.array([0.01, 0.03])
    c, sc = np.array([0.5, 1.0]), np.array([0.02, 0.10])
    n = 100000
    gs, cs = sample_photometry(g, sg, c, sc, n, rng, correlated=True)
    for i in range(2):
        emp = np.cov(gs[i], cs[i])
        expect = np.array([[sg[i] ** 2, sg[i] ** 2], [sg[i] ** 2, sc[i] ** 2]])
        se = np.sqrt((np.outer(np.diag(expect), np.diag(expect)) + expect ** 2) / n)
        assert np.all(np.abs(emp - expect) < 5 * se)
    gs, cs = sample_photometry(g, sg, c, sc, n, rng, correlated=False)
    assert abs(np.corrcoef(gs[0], cs[0])[0, 1]) < 5 / np.sqrt(n)


def test_draw_samples_columns_and_determinism():
    df = _stars(5, np.random.default_rng(2))
    a = draw_samples(df, 7, np.random.default_rng(3))
    b = draw_samples(df, 7, np.random.default_rng(3))
    assert set(a) == {"parallax", "pmra", "pmdec", "phot_g_mean_mag", "g_rp"}
    for k in a:
        assert a[k].shape == (5, 7)
        np.testing.assert_array_equal(a[k], b[k])


class _PmCut(nn.Module):
    """Member iff the (standardised = raw here) f_pm of the source is below 1."""

    def forward(self, x):
        f_pm = x[:, 0, 1]
        return torch.stack([torch.zeros_like(f_pm), 1.0 - f_pm], dim=1)


class _Soft(nn.Module):
    """Depends on the source's f_pm and on the support set, so p varies between 0 and 1."""

    def forward(self, x):
        margin = 1.2 - x[:, 0, 1] + 0.5 * x[:, :, 8].mean(dim=1)
        return torch.stack([torch.zeros_like(margin), margin], dim=1)


class _SelfInSupport(nn.Module):
    """Member iff some support element equals the source (features 0-4 vs 8-12)."""

    def forward(self, x):
        same = (x[:, :, :5] == x[:, :, 8:]).all(dim=2).any(dim=1).float()
        return torch.stack([0.5 * torch.ones_like(same), same], dim=1)


def _stub(net: nn.Module, n_support: int = 10) -> DeepSetsClassifier:
    return DeepSetsClassifier.from_network(net, np.zeros(8), np.ones(8), n_support=n_support)


def test_probability_is_the_fraction_of_member_samples():
    """p = P(|pmra| < 1) for pmra ~ N(0.5, 1), pmdec = 0 exactly: Phi(0.5) - Phi(-1.5)."""
    n = 400
    df = _stars(n, np.random.default_rng(4))
    df["pmra"], df["pmra_error"] = 0.5, 1.0
    df["pmdec"], df["pmdec_error"] = 0.0, 0.0
    df["parallax_pmra_corr"] = df["parallax_pmdec_corr"] = df["pmra_pmdec_corr"] = 0.0
    p = membership_probabilities(df, np.zeros((30, 5)), np.zeros(3), _stub(_PmCut()), _features,
                                 n_samples=100, seed=1, batch_size=5000)
    assert p.shape == (n,)
    np.testing.assert_allclose(p * 100, np.round(p * 100), atol=1e-9)          # fractions of 100
    expect = norm.cdf(0.5) - norm.cdf(-1.5)                                      # 0.6247
    assert abs(p.mean() - expect) < 5 * np.sqrt(expect * (1 - expect) / (100 * n))


def test_same_seed_same_probabilities_and_nan_rows():
    rng = np.random.default_rng(5)
    df = _stars(300, rng)
    df.loc[3, "pmra_error"] = np.nan
    clf = _stub(_Soft())
    members = rng.normal(size=(40, 5))
    args = (df, members, np.array([1.0, 8.5, 1.0]), clf, _features)
    t: dict[str, float] = {}
    p1 = membership_probabilities(*args, n_samples=50, seed=11, timings=t)
    p2 = membership_probabilities(*args, n_samples=50, seed=11, batch_size=777)
    p3 = membership_probabilities(*args, n_samples=50, seed=12)
    np.testing.assert_array_equal(p1, p2)
    assert np.isnan(p1[3]) and np.isfinite(np.delete(p1, 3)).all()
    assert not np.array_equal(np.nan_to_num(p1), np.nan_to_num(p3))
    assert 0.2 < np.nanmean(p1) < 0.8 and np.nanstd(p1) > 0.1          # a non-trivial test
    assert set(t) == {"sampling_features", "support_sets", "network"}


def test_a_training_member_is_not_in_its_own_support_sets():
    rng = np.random.default_rng(6)
    df = _stars(12, rng)
    df["parallax_error"] = df["pmra_error"] = df["pmdec_error"] = 0.0
    df["phot_g_mean_mag_error"] = df["g_rp_error"] = 0.0
    members = np.column_stack([df["f_r"], *(np.asarray(v) for v in _features(df).values())])
    own = np.arange(12)
    # with 12 members and support sets of 10, a member would be in ~10/12 of its sets
    p_in = membership_probabilities(df, members, np.zeros(3), _stub(_SelfInSupport()), _features,
                                    n_samples=50, seed=0)
    p_out = membership_probabilities(df, members, np.zeros(3), _stub(_SelfInSupport()), _features,
                                     n_samples=50, seed=0, own_member=own)
    assert p_in.mean() > 0.6
    np.testing.assert_array_equal(p_out, 0.0)


def _former_probabilities(candidates, members, cluster_features, model, feature_fn, *,
                          n_samples, seed, own_member=None):
    """membership_probabilities as it was before the blocks: all n*S samples at once."""
    from ocmembers.method.membership import MEMBERSHIP_REQUIRED
    from ocmembers.method.instances import sample_support
    from ocmembers.method.network import SOURCE_FEATURES
    out = np.full(len(candidates), np.nan)
    ok = np.isfinite(candidates[list(MEMBERSHIP_REQUIRED)].to_numpy(np.float64)).all(axis=1)
    idx = np.flatnonzero(ok)
    df = candidates.iloc[idx]
    rng = np.random.default_rng(seed)
    samples = draw_samples(df, n_samples, rng)
    new = feature_fn({k: v.reshape(-1) for k, v in samples.items()})
    feats = np.column_stack([np.asarray(new[f]).reshape(-1) if f in new
                             else np.repeat(df[f].to_numpy(np.float64), n_samples)
                             for f in SOURCE_FEATURES])
    exclude = None if own_member is None else np.repeat(own_member[idx], n_samples)
    support = sample_support(len(members), idx.size * n_samples, model.n_support, rng, exclude=exclude)
    x = np.concatenate([np.repeat(model.standardise_source(feats)[:, None, :], model.n_support, 1),
                        np.broadcast_to(model.standardise_cluster(cluster_features),
                                        (len(feats), model.n_support, 3)),
                        model.standardise_source(members)[support]], axis=2)
    with torch.no_grad():
        lg = model.network_(torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)))
    out[idx] = (lg[:, 1] > lg[:, 0]).numpy().reshape(idx.size, n_samples).mean(axis=1)
    return out


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("n_members", [25, 40])            # argsort and rejection support sets
def test_blocks_give_the_probabilities_of_one_call(monkeypatch, n_members, threads):
    """Drawn and featurised block by block (here 7 candidates of 50 samples at a time, in
    pieces of 2 candidates shared by 1 or 2 threads, and support sets 333 at a time), p is
    bitwise that of the former one-call algorithm, with a covariance that is not positive
    definite (the eigen fallback for the whole table), a non-finite row and training members
    left out of their own sets."""
    from ocmembers.method import instances, membership
    rng = np.random.default_rng(8)
    df = _stars(61, rng)
    df.loc[5, "parallax_pmra_corr"] = 1.0             # with equal errors: a singular matrix
    df.loc[5, ["parallax_error", "pmra_error"]] = 0.1
    df.loc[9, "g_rp"] = np.nan
    members = rng.normal(size=(n_members, 5))
    own = np.full(61, -1)
    own[[0, 7, 30]] = [3, 0, 11]
    clf = _stub(_Soft())
    args = (df, members, np.array([1.0, 8.5, 1.0]), clf, _features)
    expect = _former_probabilities(*args, n_samples=50, seed=3, own_member=own)
    monkeypatch.setattr(membership, "SAMPLES_PER_BLOCK", 7 * 50 + 13)
    monkeypatch.setattr(membership, "SAMPLES_PER_PIECE", 2 * 50)
    monkeypatch.setattr(instances, "SETS_PER_BLOCK", 333)
    got = membership_probabilities(*args, n_samples=50, seed=3, own_member=own, threads=threads)
    np.testing.assert_array_equal(got, expect)
    assert np.nanstd(got) > 0.1                        # a non-trivial comparison


def test_missing_columns_named():
    from ocmembers.exceptions import MissingColumnsError
    df = _stars(3, np.random.default_rng(0)).drop(columns=["g_rp_error"])
    with pytest.raises(MissingColumnsError, match="g_rp_error"):
        membership_probabilities(df, np.zeros((20, 5)), np.zeros(3), _stub(_PmCut()), _features,
                                 name="NGC_0000")


def test_network_modes_and_workers_give_the_same_probabilities():
    """Exact mode: the same p with 1 or 2 workers and any chunk of >= 32 sets (bitwise logits);
    compiled mode (other rounding, about 1e-5 in the logits): still the same p here."""
    from ocmembers.method.instances import sample_support
    from ocmembers.method.network import DeepSetsNet, assemble_sets
    rng = np.random.default_rng(8)
    df = _stars(400, rng)
    torch.manual_seed(8)
    net = DeepSetsNet()
    members = rng.normal(size=(40, 5))
    src = np.column_stack([df["f_r"], *(np.asarray(v) for v in _features(df).values())])
    with torch.no_grad():                              # centre the margin: p spread over (0, 1)
        x = assemble_sets(src, np.array([1.0, 8.5, 1.0]), sample_support(40, 400, 10, rng), members)
        margin = net.eval()(x).diff(dim=1)[:, 0]
        net.rho[4].bias[1] -= margin.median()
    clf = DeepSetsClassifier.from_network(net, np.zeros(8), np.ones(8))
    args = (df, members, np.array([1.0, 8.5, 1.0]), clf, _features)
    p1 = membership_probabilities(*args, n_samples=50, seed=3, threads=1, batch_size=2048)
    p2 = membership_probabilities(*args, n_samples=50, seed=3, threads=2, batch_size=2048)
    pc = membership_probabilities(*args, n_samples=50, seed=3, threads=2, batch_size=2048, network="compiled")
    np.testing.assert_array_equal(p1, p2)
    np.testing.assert_array_equal(p1, pc)
    assert 0.05 < p1.mean() < 0.95 and ((p1 > 0) & (p1 < 1)).mean() > 0.2    # a non-trivial test
