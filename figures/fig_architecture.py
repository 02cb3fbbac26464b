"""Appendix A (Fig. A.2): the Deep Sets network, drawn from the model definition.

The boxes are the modules of :class:`ocmembers.method.network.DeepSetsNet` as built
from the configuration, in order, with the tensor shape after each one
(batch dimension left out) and the number of trainable parameters, so that
the diagram cannot drift from the code.

Usage: python figures/fig_architecture.py OUT.pdf
"""

from __future__ import annotations

import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402


def layers(net, n_support: int) -> list[tuple[str, tuple[int, ...], int]]:
    """(label, output shape, parameters) of every module, by running a dummy set through them."""
    from ocmembers.method.network import PermutationEquivariantLayer
    x = torch.zeros(1, n_support, net.n_in)
    out = [(f"input set\n[{n_support} x {net.n_in}]", tuple(x.shape[1:]), 0)]
    with torch.no_grad():
        for m in net.phi:
            x = m(x)
            n = sum(p.numel() for p in m.parameters())
            if isinstance(m, PermutationEquivariantLayer):
                label = f"PEL {m.gamma.in_features} -> {m.gamma.out_features}"
            else:
                label = type(m).__name__
            out.append((label, tuple(x.shape[1:]), n))
        x = x.mean(dim=1)
        out.append(("mean over set", tuple(x.shape[1:]), 0))
        for m in net.rho:
            x = m(x)
            n = sum(p.numel() for p in m.parameters())
            label = (f"Linear {m.in_features} -> {m.out_features}" if isinstance(m, nn.Linear)
                     else f"Dropout {m.p:g}" if isinstance(m, nn.Dropout) else type(m).__name__)
            out.append((label, tuple(x.shape[1:]), n))
    out.append(("softmax\n[non-member, member]", tuple(x.shape[1:]), 0))
    return out


def plot(net, n_support: int, out: Path) -> None:
    rows = layers(net, n_support)
    fig, ax = plt.subplots(figsize=(4.2, 0.42 * len(rows) + 0.6))
    colours = {"PEL": "tab:blue", "ELU": "tab:gray", "mean": "tab:orange", "Linear": "tab:green",
               "Dropout": "tab:purple", "softmax": "tab:red", "input": "white"}
    for i, (label, shape, n) in enumerate(rows):
        y = len(rows) - i
        colour = next((c for k, c in colours.items() if label.startswith(k)), "white")
        ax.add_patch(plt.Rectangle((0.05, y - 0.38), 0.55, 0.76, fc=colour, alpha=0.25, ec="k", lw=0.6))
        ax.text(0.325, y, label.replace("\n", " "), ha="center", va="center", fontsize=7)
        ax.text(0.64, y, f"{list(shape)}" + (f"  {n:,} par." if n else ""), ha="left", va="center", fontsize=6.5)
        if i:
            ax.annotate("", xy=(0.325, y + 0.38), xytext=(0.325, y + 0.62), arrowprops=dict(arrowstyle="->", lw=0.6))
    total = sum(p.numel() for p in net.parameters())
    ax.set_title(f"Deep Sets network: {total:,} parameters", fontsize=8)
    ax.set_xlim(0, 1.05)
    ax.set_ylim(0.3, len(rows) + 0.7)
    ax.axis("off")
    from ocmembers.stages.plots import save_pdf_png
    save_pdf_png(fig, out)


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        raise SystemExit(__doc__)
    from ocmembers.config import load_config
    from ocmembers.method.network import DeepSetsNet
    cfg = load_config()
    m = cfg.model
    net = DeepSetsNet(hidden=m.hidden, n_blocks=m.n_blocks, dropout=m.dropout, n_classes=m.n_classes)
    plot(net, m.n_support, Path(argv[0]))


if __name__ == "__main__":
    main()
