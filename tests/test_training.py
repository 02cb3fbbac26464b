"""Training and validation instances (Sect. 3.2) and the training loop (Sect. 3.3)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ocmembers.exceptions import TooFewMembersError
from ocmembers.method.classifier import DeepSetsClassifier
from ocmembers.sources.models import FileCheckpoint, load_classifier
from ocmembers.method.training import (HISTORY_COLUMNS, ClusterSets, build_instances, classification_metrics,
                                fit_standardisation, sample_support, split_clusters)


def _cluster(name: str, n_m: int, n_nm: int, rng: np.random.Generator) -> ClusterSets:
    """Separable toy sets: members near the origin, non-members on a shell of radius 1.5-4."""
    members = 0.3 * rng.normal(size=(n_m, 5))
    d = rng.normal(size=(n_nm, 5))
    non = d / np.linalg.norm(d, axis=1, keepdims=True) * rng.uniform(1.5, 4.0, (n_nm, 1))
    return ClusterSets(name, members, non, rng.normal(size=3))


@pytest.mark.parametrize("n_pool", [12, 25, 400])        # argsort and rejection regimes
def test_sample_support_distinct_and_excluding(n_pool):
    rng = np.random.default_rng(0)
    n_sets, k = 3000, 10
    excl = rng.integers(-1, n_pool, n_sets)
    s = sample_support(n_pool, n_sets, k, rng, exclude=excl)
    assert s.shape == (n_sets, k) and s.dtype == np.int64
    assert s.min() >= 0 and s.max() < n_pool
    srt = np.sort(s, axis=1)
    assert not (srt[:, 1:] == srt[:, :-1]).any()                     # without replacement
    assert not (s == excl[:, None]).any()                            # never the excluded member
    # each allowed index is used about equally often: counts ~ binomial
    counts = np.bincount(s.ravel(), minlength=n_pool)
    expect = n_sets * k / n_pool
    assert np.all(np.abs(counts - expect) < 6 * np.sqrt(expect) + 0.05 * expect)


def _former_sample_support(n_pool, n_sets, k, rng, exclude=None):
    """sample_support as it was before the blocks: every set drawn in one call."""
    if n_pool <= 3 * k:
        keys = rng.random((n_sets, n_pool))
        if exclude is not None:
            rows = np.flatnonzero(exclude >= 0)
            keys[rows, exclude[rows]] = np.inf
        return np.argsort(keys, axis=1)[:, :k].astype(np.int64)
    out = rng.integers(0, n_pool, size=(n_sets, k))
    todo = np.arange(n_sets)
    while True:
        sub = np.sort(out[todo], axis=1)
        bad = (sub[:, 1:] == sub[:, :-1]).any(axis=1)
        if exclude is not None:
            bad |= (out[todo] == exclude[todo, None]).any(axis=1)
        todo = todo[bad]
        if todo.size == 0:
            return out
        out[todo] = rng.integers(0, n_pool, size=(todo.size, k))


@pytest.mark.parametrize("n_pool", [12, 25, 40])          # argsort and rejection (many redraws)
@pytest.mark.parametrize("with_exclude", [False, True])
def test_sample_support_blocks_and_int32_give_the_former_sets(monkeypatch, n_pool, with_exclude):
    from ocmembers.method import instances
    monkeypatch.setattr(instances, "SETS_PER_BLOCK", 333)     # odd: blocks of an odd count of draws
    excl = np.random.default_rng(1).integers(-1, n_pool, 2001) if with_exclude else None
    expect = _former_sample_support(n_pool, 2001, 10, np.random.default_rng(4), excl)
    rng = np.random.default_rng(4)
    got = sample_support(n_pool, 2001, 10, rng, exclude=excl, dtype=np.int32)
    assert got.dtype == np.int32
    np.testing.assert_array_equal(got, expect)
    # and the generator is left where the former left it
    ref = np.random.default_rng(4)
    _former_sample_support(n_pool, 2001, 10, ref, excl)
    assert rng.random() == ref.random()


def test_sample_support_index_type_too_small():
    with pytest.raises(ValueError, match="int8"):
        sample_support(300, 5, 10, np.random.default_rng(0), dtype=np.int8)


def test_sample_support_too_small():
    with pytest.raises(TooFewMembersError):
        sample_support(10, 5, 10, np.random.default_rng(0), exclude=np.zeros(5, int))


def test_split_by_cluster():
    names = [f"C{i:02d}" for i in range(20)]
    train, val = split_clusters(names, 0.3, seed=1)
    assert len(val) == 6 and len(train) == 14
    assert set(train).isdisjoint(val) and set(train) | set(val) == set(names)
    assert split_clusters(list(reversed(names)), 0.3, seed=1) == (train, val)    # order-free
    assert split_clusters(names, 0.3, seed=2) != (train, val)
    assert split_clusters(["A"], 0.3, 1) == (["A"], [])
    assert split_clusters(["A", "B"], 0.3, 1)[1] != []


def test_instance_counts_and_support_sets():
    rng = np.random.default_rng(1)
    a = _cluster("A", 30, 1000, rng)
    b = _cluster("B", 20, 150, rng)          # 150 < 5 x 2 x 20 = 200: padding
    mean, std = np.zeros(8), np.ones(8)
    inst = build_instances([a, b], mean, std, n_support=10, n_member_copies=2, negative_ratio=5,
                           rng=np.random.default_rng(2))
    lab = inst.label.numpy()
    cl = inst.cluster_index.numpy()
    for ci, c in enumerate((a, b)):
        n_m = len(c.members)
        assert (lab[cl == ci] == 1).sum() == 2 * n_m                 # every member twice
        assert (lab[cl == ci] == 0).sum() == 10 * n_m                # 5 x that in negatives
    own = inst.member_index.numpy()
    sup = inst.support.numpy()
    pos = lab == 1
    # each member appears exactly twice, with two different support sets
    assert np.all(np.bincount(own[pos]) == 2)
    assert not (sup[pos] == own[pos, None]).any()                   # never in its own support set
    # support sets come from the instance's own cluster
    offsets = np.array([0, 30, 50])
    assert np.all((sup >= offsets[cl][:, None]) & (sup < offsets[cl + 1][:, None]))
    first, second = np.flatnonzero(pos & (cl == 0))[:30], np.flatnonzero(pos & (cl == 0))[30:60]
    assert np.array_equal(own[first], own[second])
    assert np.any(np.sort(sup[first], 1) != np.sort(sup[second], 1), axis=1).all()
    # negatives: A (enough) all distinct; B padded: every non-member 1 or 2 times
    src = inst.source.numpy()
    neg_a = src[(lab == 0) & (cl == 0)]
    assert len(np.unique(neg_a, axis=0)) == len(neg_a)
    neg_b = src[(lab == 0) & (cl == 1)]
    _, reps = np.unique(neg_b, axis=0, return_counts=True)
    assert len(reps) == 150 and set(reps) <= {1, 2} and reps.sum() == 200
    # batches assemble [source, cluster, member] elements
    x, y = inst.batch(torch.tensor([0, len(inst) - 1]))
    assert x.shape == (2, 10, 13)
    np.testing.assert_array_equal(x[0, :, :5].numpy(), np.repeat(src[:1], 10, 0))
    np.testing.assert_array_equal(x[0, :, 8:].numpy(), inst.pool.numpy()[sup[0]])
    np.testing.assert_allclose(x[1, 0, 5:8].numpy(), b.cluster, rtol=1e-6)
    assert y.tolist() == [1, 0]


def test_too_few_members():
    rng = np.random.default_rng(0)
    with pytest.raises(TooFewMembersError, match="SMALL"):
        build_instances([_cluster("SMALL", 10, 50, rng)], np.zeros(8), np.ones(8), n_support=10,
                        rng=rng)


def test_standardisation_weights_clusters_equally():
    rng = np.random.default_rng(0)
    a = ClusterSets("A", np.zeros((3, 5)), rng.normal(0, 1, (1000, 5)), np.array([1.0, 8.0, 0.5]),
                    candidates=rng.normal(0, 1, (10, 5)))
    b = ClusterSets("B", np.zeros((3, 5)), rng.normal(10, 2, (50, 5)), np.array([3.0, 9.0, 1.5]),
                    candidates=rng.normal(10, 2, (5, 5)))
    mean, std = fit_standardisation([a, b])
    xa = np.concatenate([a.non_members, a.candidates])
    xb = np.concatenate([b.non_members, b.candidates])
    mu = (xa.mean(0) + xb.mean(0)) / 2
    np.testing.assert_allclose(mean[:5], mu)
    np.testing.assert_allclose(std[:5], np.sqrt(((xa.var(0) + (xa.mean(0) - mu) ** 2)
                                                 + (xb.var(0) + (xb.mean(0) - mu) ** 2)) / 2))
    np.testing.assert_allclose(mean[5:], [2.0, 8.5, 1.0])
    np.testing.assert_allclose(std[5:], [1.0, 0.5, 0.5])
    _, std1 = fit_standardisation([a])
    np.testing.assert_array_equal(std1[5:], 1.0)            # one cluster: no spread, not a division by 0


def test_metrics():
    m = classification_metrics(tp=8, tn=80, fp=2, fn=10)
    assert m["precision"] == pytest.approx(0.8) and m["recall"] == pytest.approx(8 / 18)
    assert m["selectivity"] == pytest.approx(80 / 82) and m["accuracy"] == pytest.approx(0.88)
    assert m["balanced_accuracy"] == pytest.approx((8 / 18 + 80 / 82) / 2)
    assert m["f1"] == pytest.approx(16 / 28)
    assert classification_metrics(0, 10, 0, 0)["f1"] == 0.0
    assert np.isnan(classification_metrics(0, 10, 0, 0)["precision"])


def _fit(seed: int, epochs: int, patience: int = 20):
    rng = np.random.default_rng(10)
    clusters = [_cluster(f"C{i}", 20, 200, rng) for i in range(4)]
    clf = DeepSetsClassifier(max_epochs=epochs, patience=patience, learning_rate=3e-3,
                             random_state=seed)
    return clf.fit(clusters[:3], clusters[3:])


def test_tiny_training_run_learns_separable_problem():
    clf = _fit(seed=4, epochs=12, patience=5)
    h = clf.history_
    assert list(h.columns) == [*HISTORY_COLUMNS, "best"]
    assert h["val_f1"].max() > 0.9
    # the kept weights are those of the best validation F1
    best = h.loc[h["best"]].iloc[0]
    assert best["val_f1"] == h["val_f1"].max()
    rng = np.random.default_rng(99)
    new = _cluster("NEW", 20, 200, rng)               # unseen cluster
    sup_idx = sample_support(20, 40, 10, rng)
    left = np.concatenate([new.members[:20], new.non_members[:20]])
    X = np.concatenate([np.repeat(left[:, None, :], 10, 1),
                        np.broadcast_to(new.cluster, (40, 10, 3)),
                        new.members[sup_idx]], axis=2)
    pred = clf.predict(X)
    assert pred[:20].mean() > 0.8 and pred[20:].mean() < 0.2


def test_same_seed_same_weights():
    a, b, c = _fit(7, 2), _fit(7, 2), _fit(8, 2)
    for k, v in a.network_.state_dict().items():
        assert torch.equal(v, b.network_.state_dict()[k])
    assert a.model_id_ == b.model_id_ != c.model_id_
    assert a.history_.equals(b.history_)


def _fit_ckpt(epochs: int, checkpoint, lr: float = 3e-3):
    rng = np.random.default_rng(10)
    clusters = [_cluster(f"C{i}", 20, 200, rng) for i in range(4)]
    clf = DeepSetsClassifier(max_epochs=epochs, patience=20, learning_rate=lr, random_state=5)
    return clf.fit(clusters[:3], clusters[3:], checkpoint=None if checkpoint is None else FileCheckpoint(checkpoint))


def test_interrupted_training_resumes_to_the_same_weights(tmp_path, capsys):
    ckpt = tmp_path / "model" / "checkpoint.pt"
    whole = _fit_ckpt(5, None)
    part = _fit_ckpt(2, ckpt)                 # "interrupted" after epoch 2
    assert ckpt.is_file() and len(part.history_) == 2
    resumed = _fit_ckpt(5, ckpt)
    assert "resuming" in capsys.readouterr().err
    assert resumed.history_.equals(whole.history_)
    for k, v in whole.network_.state_dict().items():
        assert torch.equal(v, resumed.network_.state_dict()[k]), k
    assert resumed.model_id_ == whole.model_id_


def test_checkpoint_of_other_settings_or_damaged_is_not_used(tmp_path):
    ckpt = tmp_path / "checkpoint.pt"
    _fit_ckpt(2, ckpt, lr=1e-2)               # another learning rate
    fresh = _fit_ckpt(3, None)
    other = _fit_ckpt(3, ckpt)
    assert other.history_.equals(fresh.history_)
    ckpt.write_bytes(ckpt.read_bytes()[:100])  # truncated (e.g. disk full)
    again = _fit_ckpt(3, ckpt)
    assert again.history_.equals(fresh.history_)


def test_train_stage_split_outputs_and_resume(tmp_path):
    import dataclasses
    import json

    import pandas as pd

    from ocmembers import load_config

    from ocmembers.sources import cache
    from ocmembers.stages import products, train as train_stage
    from ocmembers.method.selection import ClusterParams

    cfg = load_config(source="sim", output_dir=str(tmp_path), clusters="A,B,C,D")
    cfg = cfg.replace(training={"max_epochs": 2, "learning_rate": 3e-3})
    rng = np.random.default_rng(3)
    cols = ["f_r", "f_pm", "f_plx", "f_c", "f_g"]
    for i, name in enumerate("ABCD"):
        c = _cluster(name, 15 if name != "D" else 8, 100, rng)       # D: too few for n_support = 10
        d = cfg.out_dir / "sets" / name
        for s, x in (("members", c.members), ("candidates", c.members), ("non_members", c.non_members)):
            cache.write_table(pd.DataFrame(x, columns=cols), d / f"{s}.parquet", source="test", query=name)
        params = {f.name: 1.0 + i for f in dataclasses.fields(ClusterParams)}
        params.update(name=name, n_members=len(c.members))
        cache.write_json_product({"params": params}, d / "params.json", source="test", query=name)
    train, val = train_stage.training_split(cfg)          # no samples.json: CLUSTERS split 70/30
    assert sorted(train + val) == list("ABCD") and len(val) == 1
    path = train_stage.run(cfg)
    paths = products.model_paths(cfg)
    assert path == paths["weights"] and all(p.is_file() for p in paths.values())
    assert not products.checkpoint_path(cfg).exists()     # removed once the model is saved
    head = json.loads(paths["header"].read_text())
    assert "D" in head["skipped_clusters"]
    assert sorted(head["training_clusters"] + head["validation_clusters"]) == sorted(set("ABCD") - {"D"})
    hist = pd.read_csv(paths["history"])
    assert len(hist) == 2 and {"train_loss", "val_f1", "best"} <= set(hist.columns)
    clf = load_classifier(paths["weights"], cfg, trained_here=True)
    assert clf.model_id_ == head["model_id"]
    # resumable, and a changed [training] makes the saved model stale
    assert train_stage.run(cfg) is None
    assert train_stage._up_to_date(cfg.replace(training={"patience": 3}), train, val) is False


def _reference_training(net, train, epochs: int, seed: int, lr: float):
    """The former training loop, step for step (per-tensor Adam and clipping, a sync per step):
    the mean loss, the (TP, TN, FP, FN) counts and the weights after every epoch."""
    import copy
    from torch import nn
    crit = nn.CrossEntropyLoss(weight=torch.tensor([1.0, 5.0]), reduction="sum")
    opt = torch.optim.Adam(net.parameters(), lr=lr, weight_decay=1e-5, foreach=False)
    gen = torch.Generator().manual_seed(seed)
    losses, counts, states = [], [], []
    for _ in range(epochs):
        net.train()
        order = torch.randperm(len(train), generator=gen)
        loss_sum, c = 0.0, np.zeros(4, np.int64)
        for start in range(0, len(train), 32):
            x, y = train.batch(order[start:start + 32])
            out = net(x)
            loss = crit(out, y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(net.parameters(), max_norm=5.0, foreach=False)
            opt.step()
            loss_sum += loss.item()
            p, t = out.detach().argmax(1).bool(), y.bool()
            c += [int((p & t).sum()), int((~p & ~t).sum()), int((p & ~t).sum()), int((~p & t).sum())]
        losses.append(loss_sum / len(train))
        counts.append(c.tolist())
        states.append(copy.deepcopy(net.state_dict()))
    return losses, counts, states


def test_training_loop_is_bitwise_the_former_loop():
    """foreach Adam and clipping, and the losses and counts summed without a sync per step,
    give bitwise the weights, losses and metrics of the per-tensor loop with ``.item()``."""
    from ocmembers.method.network import DeepSetsNet
    from ocmembers.method.training import train_network
    rng = np.random.default_rng(12)
    clusters = [_cluster(f"C{i}", 20, 150, rng) for i in range(2)]
    mean, std = fit_standardisation(clusters)
    train = build_instances(clusters, mean, std, rng=rng)
    torch.manual_seed(3)
    ref_net = DeepSetsNet()
    new_net = DeepSetsNet()
    new_net.load_state_dict(ref_net.state_dict())
    state = torch.get_rng_state()
    losses, counts, states = _reference_training(ref_net, train, epochs=3, seed=9, lr=3e-3)
    torch.set_rng_state(state)                       # the same dropout masks
    hist = train_network(new_net, train, None, learning_rate=3e-3, max_epochs=3, patience=10, seed=9)
    assert hist["train_loss"].tolist() == losses
    for row, c in zip(hist.itertuples(), counts):
        m = classification_metrics(*c)
        assert (row.train_f1, row.train_recall, row.train_selectivity) == (m["f1"], m["recall"], m["selectivity"])
    best = int(np.flatnonzero(hist["best"].to_numpy())[0])   # the kept weights: those of the best epoch
    for k, v in states[best].items():
        assert torch.equal(v, new_net.state_dict()[k]), k


@pytest.mark.parametrize("hidden,n_blocks,dropout", [(64, 5, 0.5), (16, 2, 0.0), (8, 1, 0.3)])
def test_deep_sets_gradients_are_autograd_bitwise(hidden, n_blocks, dropout):
    """The written-out backward pass: the loss, the logits and every gradient are bitwise those
    of ``loss.backward()`` from the same weights, batch and dropout generator state."""
    from torch import nn
    from ocmembers.method.network import DeepSetsNet
    from ocmembers.method.training import deep_sets_gradients
    torch.manual_seed(5)
    net = DeepSetsNet(hidden=hidden, n_blocks=n_blocks, dropout=dropout).train()
    weight = torch.tensor([1.0, 5.0])
    crit = nn.CrossEntropyLoss(weight=weight, reduction="sum")
    gen = torch.Generator().manual_seed(1)
    for batch in (32, 7):
        x = torch.randn(batch, 10, 13, generator=gen)
        y = torch.randint(0, 2, (batch,), generator=gen)
        state = torch.get_rng_state()
        out = net(x)
        loss = crit(out, y)
        net.zero_grad(set_to_none=True)
        loss.backward()
        drawn = torch.get_rng_state()
        torch.set_rng_state(state)
        grads = [torch.full_like(p, float("nan")) for p in net.parameters()]
        loss2, out2 = deep_sets_gradients(net, x, y, weight, grads)
        assert torch.equal(loss.detach(), loss2) and torch.equal(out.detach(), out2)
        for (name, p), g in zip(net.named_parameters(), grads):
            assert torch.equal(p.grad, g), name
        assert torch.equal(torch.get_rng_state(), drawn)              # the same draws of the generator
    with pytest.raises(ValueError, match="gradient tensors"):
        deep_sets_gradients(net, x, y, weight, grads[:-1])


def test_flat_adam_is_torch_adam_bitwise():
    """One flat buffer updated by ``_FlatAdam`` equals torch's foreach Adam on the 19 parameters."""
    from ocmembers.method.network import DeepSetsNet
    from ocmembers.method.training import _FlatAdam, _FlatParameters
    torch.manual_seed(2)
    ref, new = DeepSetsNet(), DeepSetsNet()
    new.load_state_dict(ref.state_dict())
    opt = torch.optim.Adam(ref.parameters(), lr=3e-3, weight_decay=1e-5, foreach=True)
    flat = _FlatParameters(new.parameters())
    flat_opt = _FlatAdam(flat.flat, 3e-3, 1e-5)
    gen = torch.Generator().manual_seed(0)
    for _ in range(5):
        grads = [torch.randn(p.shape, generator=gen) for p in ref.parameters()]
        for p, g, fg in zip(ref.parameters(), grads, flat.grads):
            p.grad = g.clone()
            fg.copy_(g)
        torch.nn.utils.clip_grad_norm_(ref.parameters(), max_norm=5.0, foreach=True)
        flat.clip(5.0)
        opt.step()
        flat_opt.step()
    for (k, v), w in zip(ref.state_dict().items(), new.state_dict().values()):
        assert torch.equal(v, w), k
    flat.release()
    assert all(p._base is None for p in new.parameters())          # each parameter its own tensor again
    assert all(p.grad is None for p in new.parameters())


def test_other_modules_train_through_autograd_with_the_same_history():
    """A DeepSetsNet subclass is trained through autograd and torch's Adam: the same history
    and weights as the written-out path, so the two paths agree bitwise."""
    from ocmembers.method.network import DeepSetsNet
    from ocmembers.method.training import train_network

    class Subclass(DeepSetsNet):
        pass

    rng = np.random.default_rng(4)
    clusters = [_cluster(f"C{i}", 20, 120, rng) for i in range(2)]
    mean, std = fit_standardisation(clusters)
    train = build_instances(clusters, mean, std, rng=rng)
    torch.manual_seed(1)
    a, b = DeepSetsNet(), Subclass()
    b.load_state_dict(a.state_dict())
    state = torch.get_rng_state()
    ha = train_network(a, train, None, learning_rate=3e-3, max_epochs=2, patience=5, seed=3)
    torch.set_rng_state(state)
    hb = train_network(b, train, None, learning_rate=3e-3, max_epochs=2, patience=5, seed=3)
    assert ha.equals(hb)
    for (k, v), w in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(v, w), k
    assert all(p._base is None for p in a.parameters())


def test_evaluation_does_not_depend_on_the_number_of_workers():
    from torch import nn
    from ocmembers.method.network import DeepSetsNet
    from ocmembers.method.training import _evaluate
    rng = np.random.default_rng(8)
    clusters = [_cluster(f"C{i}", 30, 400, rng) for i in range(2)]
    mean, std = fit_standardisation(clusters)
    data = build_instances(clusters, mean, std, rng=rng)
    torch.manual_seed(0)
    net = DeepSetsNet().train()
    crit = nn.CrossEntropyLoss(weight=torch.tensor([1.0, 5.0]), reduction="sum")
    one = _evaluate(net, data, crit, batch_size=100, workers=1)
    assert len(data) > 300 and net.training                        # several batches; the mode restored
    for w in (2, 3):
        assert _evaluate(net, data, crit, batch_size=100, workers=w) == one
