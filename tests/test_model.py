"""The Deep Sets network, the classifier's contract (method/network.py, method/classifier.py) and
models on disk (sources/models.py)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from ocmembers import load_config
from ocmembers.exceptions import ModelMismatchError
from ocmembers.method.classifier import DeepSetsClassifier
from ocmembers.method.network import (CLUSTER_FEATURES, SOURCE_FEATURES, DeepSetsNet,
                                      PermutationEquivariantLayer, assemble_sets, flops_per_set)
from ocmembers.sources.models import classifier_from_config, load_classifier, save_classifier


def _fitted(seed: int = 0) -> DeepSetsClassifier:
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    return DeepSetsClassifier.from_network(DeepSetsNet(), rng.normal(size=8), rng.uniform(0.5, 2, 8))


def test_shapes_and_size():
    net = DeepSetsNet()
    assert net.n_parameters() == 39042          # as the published DS10_v02 (5 PEL blocks, d_h = 64)
    assert net(torch.randn(7, 10, 13)).shape == (7, 2)
    assert DeepSetsNet(n_blocks=3)(torch.randn(2, 4, 13)).shape == (2, 2)
    # 10 x (13*64 + 4*64*64) + (13*64 + 4*64*64) + 64*64 + 64*2 multiply-adds
    assert flops_per_set() == pytest.approx(2 * (11 * (832 + 16384) + 4096 + 128))
    with pytest.raises(ValueError, match="expects"):
        net(torch.randn(3, 10, 12))


def test_pel_is_equivariant_and_net_invariant():
    torch.manual_seed(1)
    pel = PermutationEquivariantLayer(13, 8)
    x = torch.randn(5, 10, 13)
    perm = torch.randperm(10)
    torch.testing.assert_close(pel(x[:, perm]), pel(x)[:, perm])
    net = DeepSetsNet().eval()
    with torch.inference_mode():
        a, b = net(x), net(x[:, perm])
    torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-6)
    assert torch.equal(a.argmax(1), b.argmax(1))
    # but not invariant to swapping the halves of an element (source vs member)
    swapped = torch.cat([x[..., 8:], x[..., 5:8], x[..., :5]], dim=2)
    with torch.inference_mode():
        assert not torch.allclose(net(swapped), a)


def test_pel_formula():
    torch.manual_seed(2)
    pel = PermutationEquivariantLayer(4, 3)
    x = torch.randn(2, 6, 4)
    expect = x @ pel.gamma.weight.T + pel.gamma.bias - x.mean(1, keepdim=True) @ pel.lam.weight.T
    torch.testing.assert_close(pel(x), expect)
    assert pel.lam.bias is None


def test_assemble_sets_layout():
    src = np.arange(10.0).reshape(2, 5)
    clus = np.array([100.0, 101.0, 102.0])
    sup = -np.arange(2 * 3 * 5, dtype=float).reshape(2, 3, 5)
    x = assemble_sets(src, clus, sup).numpy()
    assert x.shape == (2, 3, 13)
    for i in range(2):
        for k in range(3):
            np.testing.assert_array_equal(x[i, k], np.concatenate([src[i], clus, sup[i, k]]))


def test_standardisation_roundtrip_and_predict_proba():
    clf = _fitted()
    rng = np.random.default_rng(5)
    raw = rng.normal(size=(4, 5)) * 3 + 1
    z = clf.standardise_source(raw)
    np.testing.assert_allclose(z * clf.feature_std_[:5] + clf.feature_mean_[:5], raw, rtol=1e-6, atol=1e-6)
    rawc = rng.normal(size=3)
    np.testing.assert_allclose(clf.standardise_cluster(rawc) * clf.feature_std_[5:] + clf.feature_mean_[5:],
                               rawc, rtol=1e-6, atol=1e-6)
    X = rng.normal(size=(6, 10, 13))
    p = clf.predict_proba(X)
    assert p.shape == (6, 2)
    np.testing.assert_allclose(p.sum(1), 1.0, rtol=1e-6)
    m, s = clf.element_mean_std()
    with torch.inference_mode():
        ref = torch.softmax(clf.network_.eval()(torch.tensor((X - m) / s, dtype=torch.float32)), 1).numpy()
    np.testing.assert_allclose(p, ref, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(clf.predict(X), (p[:, 1] > 0.5).astype(int))
    # eval mode: dropout off, so repeated calls agree exactly
    np.testing.assert_array_equal(clf.predict_proba(X), p)
    with pytest.raises(ValueError):
        clf.predict_proba(X[..., :12])


def test_estimator_contract():
    clf = DeepSetsClassifier(n_support=7, random_state=None)
    assert clf.get_params()["n_support"] == 7 and clf.get_params()["random_state"] is None
    assert clf.set_params(hidden=32) is clf and clf.hidden == 32
    with pytest.raises(ValueError):
        clf.set_params(nonsense=1)
    with pytest.raises(RuntimeError, match="not fitted"):
        clf.predict_proba(np.zeros((1, 7, 13)))
    cfg = load_config()
    c2 = classifier_from_config(cfg)
    assert c2.n_support == cfg.model.n_support and c2.random_state == cfg.training.seed
    assert tuple(c2.class_weights) == tuple(cfg.training.class_weights)


def test_save_load_roundtrip(tmp_path):
    cfg = load_config()
    clf = _fitted(3)
    path = save_classifier(clf, tmp_path / "model" / "model.pt", cfg)
    head = json.loads((tmp_path / "model" / "model.json").read_text())
    assert head["source_features"] == list(SOURCE_FEATURES)
    assert head["cluster_features"] == list(CLUSTER_FEATURES)
    assert head["versions"]["torch"] == torch.__version__
    assert len(head["config_hash"]) == 64
    back = load_classifier(path, cfg, trained_here=True)
    X = np.random.default_rng(0).normal(size=(5, 10, 13))
    np.testing.assert_array_equal(back.predict_proba(X), clf.predict_proba(X))
    np.testing.assert_array_equal(back.feature_mean_, clf.feature_mean_)
    assert back.model_id_ == clf.model_id_ == head["model_id"]
    assert not list((tmp_path / "model").glob(".*tmp"))          # atomic writes leave no temp files


def test_load_mismatch_errors(tmp_path):
    cfg = load_config()
    path = save_classifier(_fitted(), tmp_path / "model.pt", cfg)
    with pytest.raises(ModelMismatchError, match="features"):
        load_classifier(path, features=("f_r", "f_pm", "f_plx", "f_c"))
    with pytest.raises(ModelMismatchError, match="hidden"):
        load_classifier(path, cfg.replace(model={"hidden": 32}))
    # a model of another set size is refused, whoever trained it (--model PATH included)
    with pytest.raises(ModelMismatchError, match="n_support"):
        load_classifier(path, cfg.replace(model={"n_support": 7}))
    with pytest.raises(ModelMismatchError, match="re-run"):
        load_classifier(path, cfg.replace(training={"learning_rate": 1e-3}), trained_here=True)
    # a model from elsewhere is not stale because this run trains differently
    load_classifier(path, cfg.replace(training={"learning_rate": 1e-3}))
    # other sections do not invalidate a model
    load_classifier(path, cfg.replace(membership={"n_samples": 10}), trained_here=True)
    with pytest.raises(FileNotFoundError, match="ocmembers train"):
        load_classifier(tmp_path / "absent.pt")
    # weights that do not fit the architecture named in the header
    torch.save(DeepSetsNet(hidden=16).state_dict(), path)
    with pytest.raises(ModelMismatchError, match="do not fit"):
        load_classifier(path)


def test_saved_weights_are_the_same_bytes_for_the_same_model(tmp_path):
    a = save_classifier(_fitted(5), tmp_path / "a" / "model.pt")
    b = save_classifier(_fitted(5), tmp_path / "b" / "model.pt")
    assert a.read_bytes() == b.read_bytes()
    assert a.with_suffix(".json").read_bytes() == b.with_suffix(".json").read_bytes()


def test_forward_inference_equals_eval_forward():
    torch.manual_seed(4)
    net = DeepSetsNet()
    x = torch.randn(50, 10, 13)
    with torch.inference_mode():
        ref = net.eval()(x)
        fast = net.forward_inference(x)
    torch.testing.assert_close(fast, ref, rtol=0, atol=1e-6)
    net.train()
    slow = net.forward_inference(x)          # autograd on: falls back to the eval-mode forward
    torch.testing.assert_close(slow, ref)
    assert net.training                      # mode restored


@pytest.mark.parametrize("chunk,workers,threads", [(7, 1, 1), (64, 2, 1), (1000, 1, 2), (333, 3, 1)])
def test_set_logits_exact_is_bitwise_one_big_call(chunk, workers, threads):
    """Workers and threads change nothing in ``exact`` mode: bitwise the logits of the former
    code (``forward_inference`` of the sets assembled ``chunk`` at a time); chunks of 32 sets or
    more also give bitwise the logits of one call (MKL takes another path below).

    Below 32 sets MKL's kernel also depends on the thread count on some CPUs (AMD EPYC), so
    the former code is run with the same intra-op threads: what is claimed is that the
    workers and the chunked assembly change nothing."""
    from ocmembers.method.network import assemble_sets, set_logits
    torch.manual_seed(5)
    net = DeepSetsNet()
    g = torch.Generator().manual_seed(1)
    src, clus, pool = torch.randn(1500, 5, generator=g), torch.randn(3, generator=g), torch.randn(40, 5, generator=g)
    sup = torch.randint(0, 40, (1500, 10), generator=g)
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with torch.inference_mode():
            old = torch.cat([net.eval().forward_inference(assemble_sets(src[i:i + chunk], clus, sup[i:i + chunk], pool))
                             for i in range(0, 1500, chunk)])
    finally:
        torch.set_num_threads(before)
    with torch.inference_mode():
        one_call = net.forward_inference(assemble_sets(src, clus, sup, pool))
    got = set_logits(net, src, clus, sup, pool, chunk=chunk, workers=workers, threads=threads)
    assert torch.equal(got, old)
    if chunk >= 32 and 1500 % chunk >= 32:
        assert torch.equal(got, one_call)
    assert set_logits(net, src[:0], clus, sup[:0], pool).shape == (0, 2)
    with pytest.raises(ValueError, match="network mode"):
        set_logits(net, src, clus, sup, pool, mode="fast")


def test_set_logits_compiled_close_to_exact():
    """The compiled graph (fused ELU by exp) agrees with the exact logits to float32 rounding,
    with any chunk (the last one is padded) and does not depend on the worker count."""
    from ocmembers.method.network import set_logits
    torch.manual_seed(6)
    net = DeepSetsNet()
    g = torch.Generator().manual_seed(2)
    src, clus, pool = torch.randn(2100, 5, generator=g), torch.randn(3, generator=g), torch.randn(60, 5, generator=g)
    sup = torch.randint(0, 60, (2100, 10), generator=g)
    exact = set_logits(net, src, clus, sup, pool, chunk=512)
    one = set_logits(net, src, clus, sup, pool, chunk=512, threads=1, mode="compiled")
    two = set_logits(net, src, clus, sup, pool, chunk=512, threads=1, workers=2, mode="compiled")
    from ocmembers.method import network
    assert network._COMPILED.get(("compiled", 512, 1)) is not None       # compiled, no fallback
    assert not torch.equal(one, exact)                                   # another rounding
    torch.testing.assert_close(one, exact, rtol=1e-4, atol=1e-4)
    assert torch.equal(one, two)
    assert torch.equal(one.argmax(1), exact.argmax(1))


def test_compiled_mode_recomputes_chunks_with_a_near_tie_exactly(monkeypatch):
    """A chunk holding a near tie is evaluated again in exact mode (on the same boundaries):
    with every set a near tie the compiled mode gives bitwise the exact logits; with none, not."""
    from ocmembers.method import network
    torch.manual_seed(7)
    net = DeepSetsNet()
    g = torch.Generator().manual_seed(3)
    src, clus, pool = torch.randn(1100, 5, generator=g), torch.randn(3, generator=g), torch.randn(30, 5, generator=g)
    sup = torch.randint(0, 30, (1100, 10), generator=g)
    exact = network.set_logits(net, src, clus, sup, pool, chunk=512)
    monkeypatch.setattr(network, "TIE_TOLERANCE", 0.0)
    assert not torch.equal(network.set_logits(net, src, clus, sup, pool, chunk=512, mode="compiled"), exact)
    monkeypatch.setattr(network, "TIE_TOLERANCE", float("inf"))
    before = network.RECOMPUTED[0]
    assert torch.equal(network.set_logits(net, src, clus, sup, pool, chunk=512, mode="compiled"), exact)
    assert network.RECOMPUTED[0] - before == 3
