r"""Training the Deep Sets network (Sect. 3.3) and its metrics (Fig. 2).

The instances and their standardisation (Sect. 3.2) are built by
:mod:`ocmembers.method.instances` (re-exported here).

Training (Sect. 3.3): weighted cross-entropy (Eq. 18) with class weights
[1, 5] summed over the batch, L2 regularisation (Eq. 19) through Adam's
``weight_decay`` (the gradient of :math:`\tfrac{\gamma}{2}\sum w^2` added to
each gradient: the same as putting the penalty in the loss, without summing
39k squares every step, and what the published model used), gradient norm
clipped at 5, Adam, batches of 32, early stopping after ``patience = 20``
epochs without a better validation F1, keeping the best weights. The losses
in the history are the summed weighted cross-entropy divided by the number of
instances.

Each step of a :class:`~ocmembers.method.network.DeepSetsNet` takes its
gradients from :func:`deep_sets_gradients`, autograd's backward pass written
out with the same kernels, and Adam and the clipping act on one flat buffer of
all 19 parameters: the history and the weights are bitwise those of
``loss.backward()`` and the per-parameter optimiser, in two thirds of the
time at batch 32, where a step is mostly the cost of launching hundreds of
small operations (issue 14).

References
----------
van Groeningen, M. G. J., et al. 2023, A&A 675, A68, Sects. 3.2-3.3, Eqs. 18-19.
"""

from __future__ import annotations

import copy
import hashlib
import logging
import os
import sys
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Protocol

import numpy as np
import pandas as pd
import torch
from torch import nn
from tqdm.auto import tqdm

from ocmembers.method.instances import (ClusterSets, Instances, build_instances, fit_standardisation,
                                        sample_support, split_clusters)
from ocmembers.method.network import DeepSetsNet, inference, state_digest

_aten = torch.ops.aten

__all__ = [
    "Checkpoint", "ClusterSets", "Instances", "sample_support", "split_clusters", "fit_standardisation",
    "build_instances", "train_network", "classification_metrics", "deep_sets_gradients",
    "METRICS", "HISTORY_COLUMNS",
]

log = logging.getLogger(__name__)

METRICS: tuple[str, ...] = ("loss", "precision", "recall", "selectivity", "accuracy",
                            "balanced_accuracy", "f1")
HISTORY_COLUMNS: tuple[str, ...] = ("epoch", *(f"{m}_{k}" for k in METRICS for m in ("train", "val")))


def classification_metrics(tp: int, tn: int, fp: int, fn: int) -> dict[str, float]:
    """Precision, recall, selectivity, accuracy, balanced accuracy, F1 (Fig. 2).

    Undefined ratios (0/0) are NaN, except F1 = 2TP / (2TP + FP + FN), which
    is 0 when nothing is positive.
    """
    def ratio(a: float, b: float) -> float:
        return a / b if b else float("nan")
    precision, recall, selectivity = ratio(tp, tp + fp), ratio(tp, tp + fn), ratio(tn, tn + fp)
    return {"precision": precision, "recall": recall, "selectivity": selectivity,
            "accuracy": ratio(tp + tn, tp + tn + fp + fn),
            "balanced_accuracy": (recall + selectivity) / 2,
            "f1": 2 * tp / (2 * tp + fp + fn) if (2 * tp + fp + fn) else 0.0}


#: ``bincount`` cell of (prediction p, label t) is ``2 p + t``: 0 TN, 1 FN, 2 FP, 3 TP;
#: ``counts[_ORDER]`` is (TP, TN, FP, FN), the order of :func:`classification_metrics`.
_ORDER = torch.tensor([3, 0, 2, 1])


def _cell(pred: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return pred.long() * 2 + y.long()


def _counts(pred: torch.Tensor, y: torch.Tensor) -> np.ndarray:
    p, t = pred.bool(), y.bool()
    return np.array([(p & t).sum().item(), (~p & ~t).sum().item(),
                     (p & ~t).sum().item(), (~p & t).sum().item()], dtype=np.int64)


def _evaluate(net: DeepSetsNet, data: Instances, criterion: nn.Module,
              batch_size: int = 4096, workers: int | None = None) -> dict[str, float]:
    """Loss and metrics of ``data`` in eval mode, batch by batch.

    The batches are evaluated by ``workers`` threads at once (default: one per
    CPU; torch releases the GIL inside its kernels, and the training runs torch
    on one thread), their losses summed in batch order: the numbers do not
    depend on the number of workers.
    """
    starts = range(0, len(data), batch_size)

    def one(start: int) -> tuple[float, np.ndarray]:
        with torch.inference_mode():       # thread-local: a worker thread starts without it
            x, y = data.batch(torch.arange(start, min(start + batch_size, len(data))))
            out = forward(x)
            return criterion(out, y).item(), _counts(out.argmax(1), y)

    loss, counts = 0.0, np.zeros(4, np.int64)
    n_workers = max(1, min(int(workers or os.cpu_count() or 1), len(starts)))
    with inference(net) as forward:
        if n_workers == 1:
            results = map(one, starts)
        else:
            pool = ThreadPoolExecutor(n_workers)
            results = pool.map(one, starts)
        try:
            for batch_loss, batch_counts in results:
                loss += batch_loss
                counts += batch_counts
        finally:
            if n_workers > 1:
                pool.shutdown()
    return {"loss": loss / max(len(data), 1), **classification_metrics(*counts.tolist())}


#: ``reduction`` code of ``aten::nll_loss``: the sum over the batch (Eq. 18 summed)
_SUM = 2


def _manual_backward_applies(net: nn.Module) -> bool:
    """:func:`deep_sets_gradients` knows this module's graph: a plain DeepSetsNet, dropout below 1."""
    return type(net) is DeepSetsNet and 0.0 <= float(net.dropout) < 1.0


def _dropout(x: torch.Tensor, p: float) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``F.dropout(x, p, training=True)`` on a CPU, returning the scaled mask for the backward.

    The operations of ATen's CPU dropout (``bernoulli_(1 - p)``, ``div_(1 - p)``,
    ``x * noise``), so the masks and values are those of ``nn.Dropout`` from the
    same generator state.
    """
    if p == 0.0:
        return x, None
    noise = torch.empty_like(x).bernoulli_(1.0 - p)
    noise.div_(1.0 - p)
    return x * noise, noise


def deep_sets_gradients(net: DeepSetsNet, x: torch.Tensor, y: torch.Tensor, class_weights: torch.Tensor,
                        grads: Sequence[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Loss and logits of one training batch, with the gradients of the loss written into ``grads``.

    The loss is the weighted cross-entropy of Eq. (18) summed over the batch
    (``nn.CrossEntropyLoss(weight, reduction="sum")``) of the network of
    Appendix A in training mode (dropout on, drawn from torch's global
    generator). This is the backward pass that autograd runs for
    ``loss.backward()``, written out: the same ATen kernels on the same
    operands, so every gradient is bitwise autograd's (a test compares them).
    What autograd adds (recording the graph, the engine, allocating each
    gradient) is most of a step's time at batch 32.

    Per PEL (Eq. A.1), :math:`z = H W_\Gamma^T + b_\Gamma - \bar H W_\Lambda^T`
    and :math:`H' = \mathrm{ELU}(z)`; with :math:`G = \partial L/\partial z`
    (rows: set elements):
    :math:`\partial L/\partial W_\Gamma = G^T H`, :math:`\partial L/\partial b_\Gamma = \sum G`,
    :math:`\partial L/\partial W_\Lambda = -(\sum_k G_k)^T \bar H` and
    :math:`\partial L/\partial H = G W_\Gamma - \tfrac{1}{N_s}(\sum_k G_k) W_\Lambda`
    broadcast over the set.

    Parameters
    ----------
    net : DeepSetsNet
        Its weights are read, not changed.
    x : Tensor (B, n_support, n_in)
    y : Tensor (B,) int64
        Labels (1 = member).
    class_weights : Tensor (n_classes,)
    grads : sequence of Tensor
        One contiguous tensor per ``net.parameters()`` (in that order, of the
        same shapes), overwritten with the gradients.

    Returns
    -------
    loss : Tensor ()
        The summed weighted cross-entropy.
    logits : Tensor (B, n_classes)
    """
    w = [p.detach() for p in net.parameters()]
    nb, p_drop = net.n_blocks, float(net.dropout)
    if len(grads) != len(w):
        raise ValueError(f"{len(grads)} gradient tensors for {len(w)} parameters")
    b, n = x.shape[0], x.shape[1]
    saved: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []
    with torch.no_grad():
        h = x
        for i in range(nb):                                   # the PELs (Eq. A.1) and ELUs
            wg, bg, wl = w[3 * i: 3 * i + 3]
            mean = h.mean(dim=1, keepdim=True)
            hf, mf = h.reshape(-1, h.shape[-1]), mean.reshape(b, -1)
            z = torch.addmm(bg, hf, wg.t()).view(b, n, -1)
            z.sub_(torch.mm(mf, wl.t()).view(b, 1, -1))      # in place: the same numbers, no new tensor
            saved.append((hf, mf, z))
            h = nn.functional.elu(z)
        w1, b1, w2, b2 = w[3 * nb:]
        d1, noise1 = _dropout(h.mean(dim=1), p_drop)          # the head: mean, dropout, linear, ELU, ...
        u = torch.addmm(b1, d1, w1.t())
        d2, noise2 = _dropout(nn.functional.elu(u), p_drop)
        logits = torch.addmm(b2, d2, w2.t())
        logp = torch.log_softmax(logits, 1)
        loss, total_weight = _aten.nll_loss_forward(logp, y, class_weights, _SUM, -100)

        # backward, last layer first
        g = _aten.nll_loss_backward(torch.ones((), dtype=logp.dtype), logp, y, class_weights, _SUM, -100,
                                    total_weight)
        g = _aten._log_softmax_backward_data(g, logp, 1, logp.dtype)
        torch.sum(g, 0, out=grads[3 * nb + 3])
        torch.mm(g.t(), d2, out=grads[3 * nb + 2])
        g = torch.mm(g, w2)
        if noise2 is not None:
            g = g * noise2
        g = _aten.elu_backward(g, 1.0, 1, 1, False, u)
        torch.sum(g, 0, out=grads[3 * nb + 1])
        torch.mm(g.t(), d1, out=grads[3 * nb])
        g = torch.mm(g, w1)
        if noise1 is not None:
            g = g * noise1
        # the mean over the set: each element gets 1/N of it (divided before broadcasting: the same
        # numbers; made contiguous as autograd's are: elu_backward rounds a broadcast operand otherwise)
        g = (g / n).unsqueeze(1).expand(b, n, -1).contiguous()
        for i in reversed(range(nb)):
            wg, _, wl = w[3 * i: 3 * i + 3]
            hf, mf, z = saved[i]
            gz = _aten.elu_backward(g, 1.0, 1, 1, False, z)
            gzf = gz.reshape(-1, gz.shape[-1])
            gmean = gz.sum(1).neg()                           # the subtracted Lambda track
            torch.sum(gzf, 0, out=grads[3 * i + 1])
            torch.mm(gzf.t(), hf, out=grads[3 * i])
            torch.mm(gmean.t(), mf, out=grads[3 * i + 2])
            if i:
                g = torch.mm(gzf, wg).view(b, n, -1)
                g.add_((torch.mm(gmean, wl) / n).unsqueeze(1))
    return loss, logits


class _FlatParameters:
    """A network's parameters made views of one buffer, and their gradients views of another.

    Adam and the clipping then run each of their element-wise operations once
    instead of once per parameter, with the same numbers (every operation is
    element-wise; the norm is still taken per parameter first, as
    ``clip_grad_norm_`` does). :meth:`release` gives each parameter its own
    storage again.
    """

    def __init__(self, params: Sequence[nn.Parameter]) -> None:
        self.params = list(params)
        self.flat = torch.cat([p.detach().reshape(-1) for p in self.params])
        self.flat.grad = torch.zeros_like(self.flat)
        self.grads: list[torch.Tensor] = []
        offset = 0
        for p in self.params:
            k = p.numel()
            p.data = self.flat[offset:offset + k].view_as(p)
            self.grads.append(self.flat.grad[offset:offset + k].view_as(p))
            offset += k

    def clip(self, max_norm: float) -> None:
        total = nn.utils.get_total_norm(self.grads, 2.0, foreach=True)
        nn.utils.clip_grads_with_norm_([self.flat], max_norm, total, foreach=True)

    def release(self) -> None:
        for p in self.params:
            p.data = p.data.clone()
            p.grad = None


class _FlatAdam:
    """``torch.optim.Adam(..., foreach=True)`` (coupled L2, no amsgrad) on one flat parameter.

    The same ``torch._foreach_*`` calls, with the same scalars, as torch's
    ``_multi_tensor_adam`` makes: bitwise its updates (a test compares them),
    without the optimiser's per-step bookkeeping (a quarter of a step at batch 32).
    """

    def __init__(self, param: torch.Tensor, lr: float, weight_decay: float,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8) -> None:
        self.param, self.lr, self.weight_decay, self.betas, self.eps = param, lr, weight_decay, betas, eps
        self.n_steps = 0
        self.exp_avg = torch.zeros_like(param)
        self.exp_avg_sq = torch.zeros_like(param)

    def step(self) -> None:
        beta1, beta2 = self.betas
        p, g, m, v = [self.param], [self.param.grad], [self.exp_avg], [self.exp_avg_sq]
        self.n_steps += 1
        if self.weight_decay != 0:
            g = torch._foreach_add(g, p, alpha=self.weight_decay)
        torch._foreach_lerp_(m, g, 1 - beta1)
        torch._foreach_mul_(v, beta2)
        torch._foreach_addcmul_(v, g, g, 1 - beta2)
        t = float(self.n_steps)
        step_size = [(self.lr / (1 - beta1 ** t)) * -1]
        denom = torch._foreach_sqrt(v)
        torch._foreach_div_(denom, [(1 - beta2 ** t) ** 0.5])
        torch._foreach_add_(denom, self.eps)
        torch._foreach_addcdiv_(p, m, denom, step_size)

    def state_dict(self) -> dict:
        return {"n_steps": self.n_steps, "exp_avg": self.exp_avg.clone(), "exp_avg_sq": self.exp_avg_sq.clone()}

    def load_state_dict(self, state: dict) -> None:
        self.n_steps = int(state["n_steps"])
        self.exp_avg.copy_(state["exp_avg"])
        self.exp_avg_sq.copy_(state["exp_avg_sq"])


def train_network(net: DeepSetsNet, train: Instances, validation: Instances | None = None, *,
                  class_weights: Sequence[float] = (1.0, 5.0), learning_rate: float = 1e-4,
                  l2: float = 1e-5, grad_clip: float = 5.0, batch_size: int = 32,
                  patience: int = 20, max_epochs: int = 300, seed: int = 0,
                  verbose: bool = False, checkpoint: "Checkpoint | None" = None) -> pd.DataFrame:
    """Train ``net`` in place (Sect. 3.3) and leave the best weights in it.

    Parameters
    ----------
    net : DeepSetsNet
    train, validation : Instances
        Without validation instances the training F1 decides early stopping.
    class_weights : (w_non_member, w_member)
        Weights of the cross-entropy (Eq. 18), summed over each batch.
    learning_rate, l2 : float
        Adam step size and weight decay (the gamma of Eq. 19, as Adam's
        coupled L2 term).
    grad_clip : float
        Maximum L2 norm of all gradients together.
    batch_size, patience, max_epochs : int
    seed : int
        Seeds the shuffling of the training instances each epoch (the
        weights' initialisation and dropout use torch's global generator,
        seeded by the caller).
    checkpoint : Checkpoint, optional
        Where the state goes after every epoch (:class:`Checkpoint`; the file
        of :class:`ocmembers.sources.models.FileCheckpoint`): weights, Adam state, the
        shuffling and dropout generators, the history and the best weights so
        far. A training started again with the same instances, settings and
        initial weights resumes after the last finished epoch and ends with
        exactly the weights of an uninterrupted run; a checkpoint of other
        instances or settings is ignored (and replaced). The caller removes it
        once the model is saved.

    Returns
    -------
    DataFrame
        One row per epoch (numbered from 1), columns ``HISTORY_COLUMNS`` (val_* NaN without
        validation) plus ``best`` (the epoch whose weights were kept).
    """
    if len(train) == 0:
        raise ValueError("no training instances")
    # Batches of 32 sets gain nothing from intra-op threads; on a shared
    # machine extra threads cost up to 30x (measured: 3.5 ms vs 107 ms a step).
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _train(net, train, validation, class_weights=class_weights,
                      learning_rate=learning_rate, l2=l2, grad_clip=grad_clip,
                      batch_size=batch_size, patience=patience, max_epochs=max_epochs,
                      seed=seed, verbose=verbose, checkpoint=checkpoint)
    finally:
        torch.set_num_threads(threads)


def _train(net: DeepSetsNet, train: Instances, validation: Instances | None, *,
           class_weights: Sequence[float], learning_rate: float, l2: float, grad_clip: float,
           batch_size: int, patience: int, max_epochs: int, seed: int,
           verbose: bool, checkpoint: "Checkpoint | None") -> pd.DataFrame:
    flat = _FlatParameters(net.parameters()) if _manual_backward_applies(net) else None
    try:
        return _epochs(net, train, validation, flat, class_weights=class_weights,
                       learning_rate=learning_rate, l2=l2, grad_clip=grad_clip, batch_size=batch_size,
                       patience=patience, max_epochs=max_epochs, seed=seed, verbose=verbose,
                       checkpoint=checkpoint)
    finally:
        if flat is not None:
            flat.release()


def _epochs(net: DeepSetsNet, train: Instances, validation: Instances | None, flat: _FlatParameters | None,
            *, class_weights: Sequence[float], learning_rate: float, l2: float, grad_clip: float,
            batch_size: int, patience: int, max_epochs: int, seed: int,
            verbose: bool, checkpoint: "Checkpoint | None") -> pd.DataFrame:
    weight = torch.tensor(list(class_weights), dtype=torch.float32)
    criterion = nn.CrossEntropyLoss(weight=weight, reduction="sum")
    # foreach: one kernel per operation over all tensors instead of one per tensor; bitwise
    # the numbers of the per-tensor loop (``fused=True`` is not: it rounds differently)
    optimiser: _FlatAdam | torch.optim.Adam
    if flat is not None:
        optimiser = _FlatAdam(flat.flat, learning_rate, l2)
    else:
        optimiser = torch.optim.Adam(net.parameters(), lr=learning_rate, weight_decay=l2, foreach=True)
    params = list(net.parameters())
    gen = torch.Generator().manual_seed(int(seed))
    rows: list[dict[str, float]] = []
    best_f1, best_state, best_epoch, waited = -np.inf, copy.deepcopy(net.state_dict()), -1, 0
    first = 1
    key = None
    if checkpoint is not None:
        key = _checkpoint_key(net, train, validation, class_weights=class_weights,
                              learning_rate=learning_rate, l2=l2, grad_clip=grad_clip,
                              batch_size=batch_size, seed=seed,
                              optimiser_layout="flat" if flat is not None else "per-parameter")
        state = checkpoint.load(key)
        if state is not None:
            net.load_state_dict(state["net"])
            optimiser.load_state_dict(state["optimiser"])
            gen.set_state(state["shuffle_rng"])
            torch.set_rng_state(state["torch_rng"])
            rows = [dict(r, epoch=int(r["epoch"])) for r in state["rows"]]
            best_f1, best_state = state["best_f1"], state["best_state"]
            best_epoch, waited = state["best_epoch"], state["waited"]
            first = len(rows) + 1
            print(f"train: resuming from {checkpoint} after epoch {len(rows)} "
                  f"(best epoch {best_epoch}, F1 {best_f1:.4f})", file=sys.stderr)
    if first > 1 and waited >= patience:
        first = max_epochs + 1  # the checkpointed run had already stopped early
    bar = tqdm(range(first, max_epochs + 1), desc="train", unit="epoch", disable=None, file=sys.stderr,
               initial=first - 1, total=max_epochs)
    for epoch in bar:
        net.train()
        order = torch.randperm(len(train), generator=gen)
        # summed without a sync per step: float64 adds of the float32 losses (what
        # ``float += loss.item()`` did) and the confusion counts of (prediction, label)
        loss_sum = torch.zeros((), dtype=torch.float64)
        counts = torch.zeros(4, dtype=torch.int64)
        for start in range(0, len(train), batch_size):
            x, y = train.batch(order[start:start + batch_size])
            if flat is not None:
                loss, out = deep_sets_gradients(net, x, y, weight, flat.grads)
                flat.clip(grad_clip)
            else:
                out = net(x)
                loss = criterion(out, y)
                optimiser.zero_grad(set_to_none=True)
                loss.backward()
                nn.utils.clip_grad_norm_(params, max_norm=grad_clip, foreach=True)
            optimiser.step()
            loss_sum += loss.detach()
            counts += torch.bincount(_cell(out.detach().argmax(1), y), minlength=4)
        row: dict[str, float] = {"epoch": epoch}
        tr = {"loss": loss_sum.item() / len(train), **classification_metrics(*counts[_ORDER].tolist())}
        va = _evaluate(net, validation, criterion) if validation is not None and len(validation) else None
        for k in METRICS:
            row[f"train_{k}"] = tr[k]
            row[f"val_{k}"] = va[k] if va is not None else float("nan")
        rows.append(row)
        f1 = (va or tr)["f1"]
        if f1 > best_f1:
            best_f1, best_epoch, waited = f1, epoch, 0
            best_state = copy.deepcopy(net.state_dict())
        else:
            waited += 1
        bar.set_postfix(loss=f"{tr['loss']:.4f}", f1=f"{f1:.3f}", best=best_epoch)
        if verbose:
            print(f"epoch {epoch}: train loss {tr['loss']:.4f} F1 {tr['f1']:.3f}"
                  + (f", val loss {va['loss']:.4f} F1 {va['f1']:.3f}" if va else ""), file=sys.stderr)
        if checkpoint is not None:
            checkpoint.save({
                "key": key, "net": net.state_dict(), "optimiser": optimiser.state_dict(),
                "shuffle_rng": gen.get_state(), "torch_rng": torch.get_rng_state(),
                "rows": [{k: float(v) for k, v in r.items()} for r in rows], "best_f1": float(best_f1), "best_state": best_state, "best_epoch": best_epoch, "waited": waited})
        if waited >= patience:
            log.info("early stopping after epoch %d; best epoch %d (F1 %.4f)", epoch, best_epoch, best_f1)
            break
    bar.close()
    net.load_state_dict(best_state)
    net.eval()
    hist = pd.DataFrame(rows, columns=list(HISTORY_COLUMNS))
    hist["epoch"] = hist["epoch"].astype(np.int64)
    hist["best"] = hist["epoch"] == best_epoch
    return hist


# ---------------------------------------------------------------------------
# checkpoints (resuming an interrupted training)
# ---------------------------------------------------------------------------
class Checkpoint(Protocol):
    """Where :func:`train_network` keeps its state between epochs.

    ``load(key)`` returns the state saved under ``key`` (a digest of the
    instances, settings and initial weights), or ``None`` when there is none
    or it is of another key; ``save(state)`` stores ``state`` (it holds its key).
    """

    def load(self, key: str) -> dict | None: ...

    def save(self, state: dict) -> None: ...


def _checkpoint_key(net: nn.Module, train: Instances, validation: Instances | None, **settings) -> str:
    """What a checkpoint must match: instances, settings, architecture and initial weights."""
    h = hashlib.sha256()
    h.update(train.digest().encode())
    h.update((validation.digest() if validation is not None else "-").encode())
    h.update(repr(sorted((k, repr(v)) for k, v in settings.items())).encode())
    h.update(state_digest(net).encode())
    return h.hexdigest()
