r"""The Deep Sets classifier of van Groeningen et al. (2023), Appendix A.

One input set belongs to one source to classify. It has :math:`N_s` elements
(the support set, ``n_support = 10``); element :math:`k` is the 13-vector

.. math::

    x_k = [\underbrace{f_R, f_\mu, f_\varpi, f_C, f_G}_{\text{source}},\;
           \underbrace{A_0, \log t, \varpi_c}_{\text{cluster}},\;
           \underbrace{f_R, f_\mu, f_\varpi, f_C, f_G}_{\text{support member } k}]

(the order of the authors' ``concat_support_set`` in ``gaia-oc-amd`` 0.2.1),
every entry standardised with the means and standard deviations of the
training data (:attr:`DeepSetsClassifier.feature_mean_`).

The network (Fig. A.2) is five permutation-equivariant layers (PEL, Fig. A.1)
each followed by an ELU,

.. math::

    \mathrm{PEL}(X) = X W_\Gamma^T + b_\Gamma - \bar{X} W_\Lambda^T,
    \qquad \bar{X} = \frac{1}{N_s}\sum_k x_k            \quad (A.1)

then the mean over the set dimension (which makes the output invariant to a
permutation of the support set, Eq. A.2), Dropout(0.5), Linear(64, 64), ELU,
Dropout(0.5), Linear(64, 2). The two outputs are the logits of
[non-member, member]; a set is classified member when the softmax of the
member class exceeds 0.5. With ``hidden = 64`` the network has 39,042
parameters, like the published ``DS10_v02`` model, and one set evaluation
costs about 0.39 MFLOP (``flops_per_set``).

References
----------
van Groeningen, M. G. J., Castro-Ginard, A., Brown, A. G. A., et al. 2023,
A&A 675, A68 (Appendix A). Zaheer, M., Kottur, S., Ravanbakhsh, S., et al.
2017, NeurIPS 30 (Deep Sets).
"""

from __future__ import annotations

import hashlib
import logging
import warnings
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import numpy as np
import torch
from torch import nn

__all__ = [
    "SOURCE_FEATURES", "CLUSTER_FEATURES", "PermutationEquivariantLayer", "DeepSetsNet",
    "assemble_sets", "inference", "flops_per_set", "state_digest", "NETWORK_MODES", "set_logits",
]

#: The five source features (Sects. 3.1.1-3.1.4); the same names as ``features.FEATURES``.
SOURCE_FEATURES: tuple[str, ...] = ("f_r", "f_pm", "f_plx", "f_c", "f_g")
#: The three cluster features (Sect. 3.1); the same names as ``features.CLUSTER_FEATURES``.
CLUSTER_FEATURES: tuple[str, ...] = ("a0", "log_age", "parallax")


class PermutationEquivariantLayer(nn.Module):
    r"""One PEL (Fig. A.1): ``Linear(x) - Linear_nobias(mean over the set of x)``.

    Parameters
    ----------
    n_in, n_out : int
        Dimensions of one set element before and after the layer.

    Notes
    -----
    Eq. (A.1) of van Groeningen et al. (2023): :math:`x' = W_n x + b_n` on the
    left track; the right track takes the mean over the set and applies a
    linear map without bias, and is subtracted. The layer is permutation
    equivariant (Eq. A.2).
    """

    def __init__(self, n_in: int, n_out: int) -> None:
        super().__init__()
        self.gamma = nn.Linear(n_in, n_out)
        self.lam = nn.Linear(n_in, n_out, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (batch, set, n_in)
        return self.gamma(x) - self.lam(x.mean(dim=1, keepdim=True))


class DeepSetsNet(nn.Module):
    """The Deep Sets network of Appendix A (Fig. A.2).

    Parameters
    ----------
    n_in : int
        Length of one set element: ``2 * len(SOURCE_FEATURES) +
        len(CLUSTER_FEATURES)`` = 13.
    hidden : int
        Hidden dimension :math:`d_h` (64).
    n_blocks : int
        Number of (PEL, ELU) blocks (5; Zaheer et al. used 3).
    dropout : float
        Dropout probability in the head (0.5).
    n_classes : int
        Outputs: logits of [non-member, member].
    """

    def __init__(self, n_in: int = 13, hidden: int = 64, n_blocks: int = 5,
                 dropout: float = 0.5, n_classes: int = 2) -> None:
        super().__init__()
        if n_blocks < 1:
            raise ValueError(f"n_blocks must be >= 1, got {n_blocks}")
        self.n_in, self.hidden, self.n_blocks = n_in, hidden, n_blocks
        self.dropout, self.n_classes = dropout, n_classes
        layers: list[nn.Module] = []
        for i in range(n_blocks):
            layers += [PermutationEquivariantLayer(n_in if i == 0 else hidden, hidden), nn.ELU()]
        self.phi = nn.Sequential(*layers)
        self.rho = nn.Sequential(nn.Dropout(dropout), nn.Linear(hidden, hidden), nn.ELU(),
                                 nn.Dropout(dropout), nn.Linear(hidden, n_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(batch, n_classes)`` of sets ``x`` of shape ``(batch, n_support, n_in)``."""
        if x.ndim != 3 or x.shape[-1] != self.n_in:
            raise ValueError(f"DeepSetsNet expects (batch, set, {self.n_in}), got {tuple(x.shape)}")
        return self.rho(self.phi(x).mean(dim=1))

    def forward_inference(self, x: torch.Tensor) -> torch.Tensor:
        """Eval-mode logits (dropout off) computed with in-place activations.

        The same numbers as ``self.eval()(x)`` (the same operations in the same
        order), about 1.7x faster on a CPU because fewer (batch, set, 64)
        tensors are allocated. Only without autograd (``torch.inference_mode``
        or ``torch.no_grad``); otherwise it falls back to :meth:`forward`.
        """
        if torch.is_grad_enabled():
            was = self.training
            self.eval()
            try:
                return self.forward(x)
            finally:
                self.train(was)
        if x.ndim != 3 or x.shape[-1] != self.n_in:
            raise ValueError(f"DeepSetsNet expects (batch, set, {self.n_in}), got {tuple(x.shape)}")
        h = x
        for i in range(0, len(self.phi), 2):
            pel = self.phi[i]
            mean = h.mean(dim=1, keepdim=True)
            h = nn.functional.linear(h, pel.gamma.weight, pel.gamma.bias)
            h.sub_(nn.functional.linear(mean, pel.lam.weight))
            nn.functional.elu_(h)
        h = nn.functional.linear(h.mean(dim=1), self.rho[1].weight, self.rho[1].bias)
        return nn.functional.linear(nn.functional.elu_(h), self.rho[4].weight, self.rho[4].bias)

    def n_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())


def flops_per_set(n_support: int = 10, n_in: int = 13, hidden: int = 64, n_blocks: int = 5,
                  n_classes: int = 2) -> float:
    """Floating-point operations (2 per multiply-add) of one set evaluation."""
    macs = n_support * (n_in * hidden + (n_blocks - 1) * hidden * hidden)  # Gamma per element
    macs += n_in * hidden + (n_blocks - 1) * hidden * hidden                # Lambda on the mean
    macs += hidden * hidden + hidden * n_classes                             # the head
    return 2.0 * macs


def assemble_sets(source: np.ndarray | torch.Tensor, cluster: np.ndarray | torch.Tensor,
                  support: np.ndarray | torch.Tensor,
                  pool: np.ndarray | torch.Tensor | None = None) -> torch.Tensor:
    """Build the network input from its three parts (Sect. 3.2): the one place sets are assembled.

    Training batches (:meth:`ocmembers.method.instances.Instances.batch`), the
    membership Monte Carlo (:func:`ocmembers.method.membership.membership_probabilities`)
    and callers with raw arrays all build their sets here.

    Parameters
    ----------
    source : array (n, 5)
        Features of the sources to classify.
    cluster : array (3,) or (n, 3)
        Cluster features (one cluster for all, or one row per source).
    support : array (n, n_support, 5), or int array (n, n_support) with ``pool``
        Features of the support-set members of each source, or their rows in ``pool``.
    pool : array (n_pool, 5), optional
        Features of the members that ``support`` indexes (gathered here).

    Returns
    -------
    torch.Tensor (n, n_support, 13), float32
        ``[source, cluster, support member]`` for every set element. Float32
        tensors are used as they are (no copy before the concatenation).
    """
    s = torch.as_tensor(source, dtype=torch.float32)
    c = torch.as_tensor(cluster, dtype=torch.float32)
    if pool is None:
        m = torch.as_tensor(support, dtype=torch.float32)
    else:
        m = torch.as_tensor(pool, dtype=torch.float32)[torch.as_tensor(support, dtype=torch.int64)]
    n, k = m.shape[0], m.shape[1]
    if s.shape[0] != n:
        raise ValueError(f"{s.shape[0]} sources but {n} support sets")
    if c.ndim == 1:
        c = c.expand(n, -1)
    left = torch.cat([s, c], dim=1)[:, None, :].expand(n, k, -1)
    return torch.cat([left, m], dim=2)


@contextmanager
def inference(net: nn.Module, threads: int | None = None) -> Iterator[Callable[[torch.Tensor], torch.Tensor]]:
    """The eval-mode forward (dropout off, no autograd): the one path every evaluation takes.

    Yields ``net.forward_inference`` (or ``net`` itself for another module)
    inside ``torch.inference_mode`` with the network in eval mode; on exit the
    network's training flag and torch's thread count are restored.

    Parameters
    ----------
    net : DeepSetsNet or nn.Module
    threads : int, optional
        torch intra-op threads while inside; ``None`` or 0 keeps torch's setting.
    """
    was_training = net.training
    old_threads = torch.get_num_threads()
    if threads:
        torch.set_num_threads(int(threads))
    net.eval()
    try:
        with torch.inference_mode():
            yield getattr(net, "forward_inference", net)
    finally:
        net.train(was_training)
        torch.set_num_threads(old_threads)


#: The ways :func:`set_logits` evaluates the network. ``exact``: :meth:`DeepSetsNet.forward_inference`,
#: bitwise the numbers of ``net.eval()(x)``. ``compiled``: one ``torch.compile``d graph per chunk
#: (bias, PEL subtraction and ELU fused into one pass, the ELU as ``exp(min(h, 0)) - 1 +
#: max(h, 0)``), about 1.8 times faster per CPU. Its logits differ from the exact ones in the
#: last bits (up to about 2e-5), so a chunk holding a near tie (:data:`TIE_TOLERANCE`) is
#: evaluated again in exact mode, on the same chunk boundaries: the classes, and so p, are
#: those of ``exact`` (the logits of the other chunks are not bitwise). Without a working
#: compiler it falls back to ``exact``.
NETWORK_MODES: tuple[str, ...] = ("exact", "compiled")

log = logging.getLogger(__name__)


def _elu_by_exp(h: torch.Tensor) -> torch.Tensor:
    """ELU(h) = h for h > 0, exp(h) - 1 otherwise; ``exp`` is 4x cheaper than ``expm1`` on a CPU.

    Exact for h > 0 (``(exp(0) - 1) + h``); for h < 0 its absolute error is
    one float32 ulp of 1 (6e-8) instead of one ulp of the result.
    """
    return (torch.exp(torch.clamp(h, max=0.0)) - 1.0) + torch.clamp(h, min=0.0)


def _fused_forward(x: torch.Tensor, weights: list[torch.Tensor], n_blocks: int) -> torch.Tensor:
    """Eval-mode logits of :class:`DeepSetsNet` written for ``torch.compile`` (``weights``: see
    :func:`_weights`): each matrix product is followed by one fused element-wise pass."""
    def mm(a: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        return torch.matmul(a, w.t())

    h = x
    for i in range(n_blocks):
        g, b, lam = weights[3 * i: 3 * i + 3]
        mean = h.mean(dim=1, keepdim=True)
        h = _elu_by_exp(mm(h, g) + b - mm(mean, lam))
    w1, b1, w2, b2 = weights[3 * n_blocks:]
    h = _elu_by_exp(mm(h.mean(dim=1), w1) + b1)
    return torch.matmul(h, w2.t()) + b2


def _weights(net: "DeepSetsNet") -> list[torch.Tensor]:
    out: list[torch.Tensor] = []
    for i in range(0, len(net.phi), 2):
        pel = net.phi[i]
        out += [pel.gamma.weight.detach(), pel.gamma.bias.detach(), pel.lam.weight.detach()]
    return out + [net.rho[1].weight.detach(), net.rho[1].bias.detach(),
                  net.rho[4].weight.detach(), net.rho[4].bias.detach()]


_COMPILED: dict[tuple, Callable | None] = {}
#: Chunks of ``compiled`` mode evaluated again exactly (a near tie), since the process started.
RECOMPUTED = [0]
#: A set is a near tie when its two logits differ by at most this times (1 + |l0| + |l1|):
#: 50 to 100 times the largest difference measured between the compiled and the exact logits.
TIE_TOLERANCE = 1e-3


def _near_tie(logits: torch.Tensor) -> torch.Tensor:
    l0, l1 = logits[:, 0], logits[:, 1]
    return (l1 - l0).abs() <= TIE_TOLERANCE * (1.0 + l0.abs() + l1.abs())


def _compiled_forward(key: tuple) -> Callable | None:
    """The ``torch.compile``d :func:`_fused_forward` (one per chunk shape and thread count), or
    ``None`` when this machine cannot compile (no C++ compiler, an unsupported platform)."""
    if key not in _COMPILED:
        try:
            # one graph per (chunk, threads); the default limit of 8 would make later ones eager
            torch._dynamo.config.recompile_limit = max(torch._dynamo.config.recompile_limit, 64)
            with warnings.catch_warnings():   # torch's own deprecations, errors under pytest
                warnings.simplefilter("ignore", DeprecationWarning)
                fn = torch.compile(_fused_forward, dynamic=False)
        except Exception as exc:  # noqa: BLE001 - any failure means: use the exact path
            log.warning("torch.compile unavailable (%s); the network runs in exact mode", exc)
            fn = None
        _COMPILED[key] = fn
    return _COMPILED[key]


def set_logits(net: "DeepSetsNet", source: torch.Tensor, cluster: torch.Tensor,
               support: torch.Tensor, pool: torch.Tensor, *, chunk: int = 2048,
               threads: int | None = None, workers: int | None = None,
               mode: str = "exact") -> torch.Tensor:
    """Eval-mode logits ``(n, n_classes)`` of the sets :func:`assemble_sets` builds from indices.

    The sets are assembled and evaluated ``chunk`` at a time, so that the
    ``(chunk, n_support, hidden)`` activations stay in the cache and the full
    13-vectors of all ``n`` sets never exist at once.

    Parameters
    ----------
    net : DeepSetsNet
    source : Tensor (n, 5)
        Standardised source features.
    cluster : Tensor (3,)
        Standardised cluster features.
    support, pool : Tensor (n, n_support) int64 and (n_pool, 5)
        Rows of ``pool`` (standardised member features) forming each support set.
    chunk : int
        Sets per network call (``[membership] batch_size``). In ``exact`` mode
        the logits are bitwise those of ``forward_inference`` on the same
        chunks, with any ``threads`` and ``workers``, and do not depend on the
        chunk size as long as every chunk has 32 sets or more (MKL multiplies
        fewer rows another way, which changes the last bits).
    threads : int, optional
        torch intra-op threads while inside; ``None`` or 0 keeps torch's setting.
    workers : int, optional
        Python threads evaluating chunks at once (torch releases the GIL inside
        its kernels); with ``threads=1`` two workers keep two cores busy
        without intra-op synchronisation. ``None`` or 1: one.
    mode : str
        One of :data:`NETWORK_MODES`.
    """
    if mode not in NETWORK_MODES:
        raise ValueError(f"network mode {mode!r}; expected one of {', '.join(NETWORK_MODES)}")
    n = source.shape[0]
    chunk = max(int(chunk), 1)
    starts = range(0, n, chunk)
    with inference(net, threads) as forward:
        fused = None
        if mode == "compiled" and isinstance(net, DeepSetsNet) and n:
            fused = _compiled_forward(("compiled", chunk, torch.get_num_threads()))
            weights = _weights(net)

        def one(start: int) -> torch.Tensor:
            nonlocal fused
            stop = min(start + chunk, n)
            x = assemble_sets(source[start:stop], cluster, support[start:stop], pool)
            if fused is not None:
                m = x.shape[0]
                if m < chunk:  # one compiled shape: pad the last chunk
                    x = torch.cat([x, x.new_zeros((chunk - m, *x.shape[1:]))])
                try:
                    if start == 0:  # the first call compiles (torch warns of its own deprecations)
                        with warnings.catch_warnings():
                            warnings.simplefilter("ignore", DeprecationWarning)
                            lg = fused(x, weights, net.n_blocks)[:m]
                    else:
                        lg = fused(x, weights, net.n_blocks)[:m]
                except Exception as exc:  # noqa: BLE001 - a compiler that fails at first use
                    log.warning("compiled network failed (%s); exact mode from here", exc)
                    _COMPILED.clear()
                    fused = None
                    x = x[:m]
                else:
                    if not _near_tie(lg).any():
                        return lg
                    x = x[:m]     # a class the rounding could flip: this chunk exactly
                    RECOMPUTED[0] += 1
            return forward(x)

        if n == 0:
            return torch.empty((0, getattr(net, "n_classes", 2)), dtype=torch.float32)
        first = one(0)  # also compiles (once per process) before any worker starts
        out = torch.empty((n, *first.shape[1:]), dtype=first.dtype)
        out[:first.shape[0]] = first

        def into(start: int) -> None:
            with torch.inference_mode():  # thread-local: a worker thread starts without it
                out[start:start + chunk] = one(start)

        workers = max(int(workers or 1), 1)
        if workers == 1 or len(starts) <= 2:
            for start in starts[1:]:
                into(start)
        else:
            with ThreadPoolExecutor(workers) as ex:
                for _ in ex.map(into, starts[1:]):
                    pass
    return out


def state_digest(module: nn.Module) -> str:
    """sha256 of a module's state dict (names and bytes, in order): the identity of its weights."""
    h = hashlib.sha256()
    for name, t in module.state_dict().items():
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()
