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

References
----------
van Groeningen, M. G. J., et al. 2023, A&A 675, A68, Sects. 3.2-3.3, Eqs. 18-19.
"""

from __future__ import annotations

import copy
import hashlib
import logging
import sys
from collections.abc import Sequence
from typing import Protocol

import numpy as np
import pandas as pd
import torch
from torch import nn
from tqdm.auto import tqdm

from ocmembers.method.instances import (ClusterSets, Instances, build_instances, fit_standardisation,
                                        sample_support, split_clusters)
from ocmembers.method.network import DeepSetsNet, inference, state_digest

__all__ = [
    "Checkpoint", "ClusterSets", "Instances", "sample_support", "split_clusters", "fit_standardisation",
    "build_instances", "train_network", "classification_metrics", "METRICS", "HISTORY_COLUMNS",
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
              batch_size: int = 4096) -> dict[str, float]:
    loss, counts = 0.0, np.zeros(4, np.int64)
    with inference(net) as forward:
        for start in range(0, len(data), batch_size):
            idx = torch.arange(start, min(start + batch_size, len(data)))
            x, y = data.batch(idx)
            out = forward(x)
            loss += criterion(out, y).item()
            counts += _counts(out.argmax(1), y)
    return {"loss": loss / max(len(data), 1), **classification_metrics(*counts.tolist())}


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
    weight = torch.tensor(list(class_weights), dtype=torch.float32)
    criterion = nn.CrossEntropyLoss(weight=weight, reduction="sum")
    # foreach: one kernel per operation over all 19 tensors instead of one per tensor; bitwise
    # the numbers of the per-tensor loop (``fused=True`` is not: it rounds differently)
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
                              batch_size=batch_size, seed=seed)
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
