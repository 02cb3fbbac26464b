"""Fig. 1 of van Groeningen et al. (2023): the sets of one cluster in four panels.

Members (blue; "training members" by default, or what ``member_label`` says they are),
candidates (orange) and non-members (grey) in

* sky position (Galactic l, b; top left),
* parallax against G (top right),
* proper motion (bottom left),
* the colour-magnitude diagram G against G - G_RP with the isochrone (bottom right),

with the "zero-uncertainty boundaries" dashed in red: the circle of radius
:math:`\\Delta_\\mu` around the mean proper motion (Eq. 3 with zero errors),
the parallax interval :math:`[\\varpi_c - \\Delta_{\\varpi,+},
\\varpi_c + \\Delta_{\\varpi,-}]` (Eq. 4; the ``+`` Delta applies below the mean
parallax, as in :func:`ocmembers.method.selection.candidate_conditions`), and the
isochrone band :math:`d_{ic} = 1` of Eq. 17 (Eq. 5 with zero errors), drawn as
the contour of the scaled distance to the curve on a grid.

With ``probabilities`` the candidates are coloured by their membership
probability instead (the layout of the paper's Fig. 4).

Only the object-oriented matplotlib API is used (``matplotlib.figure.Figure``
with the Agg canvas): no pyplot state, no display needed.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Circle

__all__ = ["plot_cluster_sets", "save_cluster_plot", "PANELS"]

#: (x, y) of the four panels, row by row.
PANELS: tuple[tuple[str, str], ...] = (("l", "b"), ("phot_g_mean_mag", "parallax"),
                                       ("pmra", "pmdec"), ("g_rp", "phot_g_mean_mag"))
_LABELS = {"l": r"$l$ [deg]", "b": r"$b$ [deg]", "parallax": r"$\varpi$ [mas]",
           "phot_g_mean_mag": r"$G$ [mag]", "pmra": r"$\mu_{\alpha*}$ [mas/yr]",
           "pmdec": r"$\mu_\delta$ [mas/yr]", "g_rp": r"$G - G_{RP}$ [mag]"}
_BOUNDARY = dict(color="red", ls="--", lw=1.2, zorder=4)


def _parts(sets: Any) -> dict[str, Any]:
    if isinstance(sets, Mapping):
        d = dict(sets)
    else:  # ocmembers.stages.sets.ClusterSets
        d = {k: getattr(sets, k) for k in ("members", "candidates", "non_members", "params")}
        d["isochrone"] = getattr(sets, "curve", None)
    for k in ("members", "candidates", "non_members"):
        if k not in d or d[k] is None:
            d[k] = pd.DataFrame()
    d.setdefault("params", None)
    d.setdefault("isochrone", None)
    return d


def _xy(df: pd.DataFrame, x: str, y: str) -> tuple[np.ndarray, np.ndarray]:
    if len(df) == 0 or x not in df.columns or y not in df.columns:
        return np.empty(0), np.empty(0)
    return df[x].to_numpy(float), df[y].to_numpy(float)


def _probabilities(candidates: pd.DataFrame, probabilities: Any) -> np.ndarray | None:
    if probabilities is None:
        return None
    if isinstance(probabilities, pd.DataFrame):
        p = probabilities.drop_duplicates("source_id").set_index("source_id")["probability"]
        return candidates["source_id"].map(p).to_numpy(float)
    p = np.asarray(probabilities, dtype=float)
    if p.shape != (len(candidates),):
        raise ValueError(f"{p.shape[0]} probabilities for {len(candidates)} candidates")
    return p


def _isochrone_band(ax: Axes, curve_frame: pd.DataFrame, params: Any) -> None:
    """Contour d_ic = 1 (Eq. 17) of the scaled distance to the curve."""
    from ocmembers.method.features import nearest_on_curve
    from ocmembers.method.isochrones import IsochroneCurve
    curve = IsochroneCurve.from_frame(curve_frame)
    x0, x1 = ax.get_xlim()
    y0, y1 = ax.get_ylim()
    xs = np.linspace(min(x0, x1), max(x0, x1), 160)
    ys = np.linspace(min(y0, y1), max(y0, y1), 240)
    xx, yy = np.meshgrid(xs, ys)
    _, _, d = nearest_on_curve(xx.ravel(), yy.ravel(), curve, params.delta_c, params.delta_g)
    ax.contour(xx, yy, d.reshape(xx.shape), levels=[1.0], colors="red", linestyles="dashed",
               linewidths=1.2, zorder=4)


def plot_cluster_sets(sets: Any, probabilities: Any = None, ax: Any = None, *,
                      title: str | None = None, boundaries: bool = True,
                      member_label: str = "training members") -> Figure:
    """Draw Fig. 1 (or, with probabilities, a Fig. 4-like panel set) for one cluster.

    Parameters
    ----------
    sets : ocmembers.stages.sets.ClusterSets or mapping
        ``members``, ``candidates``, ``non_members`` (DataFrames with ``l, b,
        parallax, pmra, pmdec, phot_g_mean_mag, g_rp``), optionally ``params``
        (:class:`~ocmembers.method.selection.ClusterParams`, for the boundaries) and
        ``isochrone`` (the curve frame of ``sets/<cluster>/isochrone.parquet``).
    probabilities : DataFrame (source_id, probability) or array, optional
        Colour the candidates by membership probability.
    ax : sequence of 4 Axes, optional
        Panels to draw in (row by row); default a new 2 x 2 figure.
    title : str, optional
    boundaries : bool
        Draw the zero-uncertainty boundaries (needs ``params``).
    member_label : str
        The legend of the members: what they are for this cluster (``"validation members"``
        for a validation cluster; the figures stage reads the role from ``samples.json``).

    Returns
    -------
    matplotlib.figure.Figure
    """
    d = _parts(sets)
    if ax is None:
        fig = Figure(figsize=(11, 10), layout="constrained")
        FigureCanvasAgg(fig)
        axes = list(fig.subplots(2, 2).ravel())
    else:
        axes = list(np.ravel(ax))
        if len(axes) != 4:
            raise ValueError(f"plot_cluster_sets needs 4 axes, got {len(axes)}")
        fig = axes[0].figure
    cand = d["candidates"]
    p = _probabilities(cand, probabilities) if len(cand) else None
    order = np.argsort(p) if p is not None else None
    sc = None
    for a, (x, y) in zip(axes, PANELS):
        nx, ny = _xy(d["non_members"], x, y)
        a.scatter(nx, ny, s=2, c="0.6", alpha=0.5, lw=0, rasterized=True, zorder=0, label="non-members")
        cx, cy = _xy(cand, x, y)
        if p is None:
            a.scatter(cx, cy, s=3, c="tab:orange", lw=0, rasterized=True, zorder=1, label="candidates")
        elif cx.size:
            sc = a.scatter(cx[order], cy[order], s=4, c=p[order], cmap="viridis", vmin=0, vmax=1, lw=0,
                           rasterized=True, zorder=1, label="candidates")
        mx, my = _xy(d["members"], x, y)
        if p is None:
            a.scatter(mx, my, s=8, c="tab:blue", lw=0, zorder=2, label=member_label)
        else:  # open red circles, so that they do not read as a probability
            a.scatter(mx, my, s=14, facecolors="none", edgecolors="tab:red", lw=0.6, zorder=2,
                      label=member_label)
        a.set_xlabel(_LABELS[x])
        a.set_ylabel(_LABELS[y])
    cmd, plx_ax, pm_ax = axes[3], axes[1], axes[2]
    # the CMD shows the sources, not the whole isochrone (which reaches G = 25)
    cx_all = np.concatenate([_xy(d[k], "g_rp", "phot_g_mean_mag")[0] for k in ("members", "candidates", "non_members")])
    cy_all = np.concatenate([_xy(d[k], "g_rp", "phot_g_mean_mag")[1] for k in ("members", "candidates", "non_members")])
    ok = np.isfinite(cx_all) & np.isfinite(cy_all)
    if ok.any():
        xl, xh = np.min(cx_all[ok]), np.max(cx_all[ok])
        yl, yh = np.min(cy_all[ok]), np.max(cy_all[ok])
        cmd.set_xlim(xl - 0.1 - 0.05 * (xh - xl), xh + 0.1 + 0.05 * (xh - xl))
        cmd.set_ylim(yl - 0.5, yh + 0.5)
    cmd.set_autoscale_on(False)
    iso = d["isochrone"]
    if iso is not None and len(iso):
        seg = iso["segment"].to_numpy() if "segment" in iso.columns else np.zeros(len(iso), int)
        for s in np.unique(seg):
            part = iso.loc[seg == s]
            cmd.plot(part["g_rp"].to_numpy(float), part["phot_g_mean_mag"].to_numpy(float),
                     color="tab:blue", lw=1.0, zorder=3)
    params = d["params"]
    if boundaries and params is not None:
        pm_ax.add_patch(Circle((params.pmra, params.pmdec), params.delta_pm, fill=False, **_BOUNDARY))
        plx_ax.axhline(params.parallax - params.delta_plx_plus, **_BOUNDARY)
        plx_ax.axhline(params.parallax + params.delta_plx_minus, **_BOUNDARY)
        if iso is not None and len(iso) and np.isfinite(params.delta_c) and np.isfinite(params.delta_g):
            _isochrone_band(cmd, iso, params)
    cmd.invert_yaxis()
    handles, labels = axes[0].get_legend_handles_labels()
    if boundaries and params is not None:
        handles.append(Line2D([], [], **_BOUNDARY))
        labels.append("zero-uncertainty boundary")
    axes[0].legend(handles, labels, loc="best", fontsize=8, markerscale=2)
    if sc is not None:
        fig.colorbar(sc, ax=axes, shrink=0.6, label="membership probability")
    if title:
        fig.suptitle(title.replace("_", " "))
    return fig


def save_cluster_plot(sets: Any, probabilities: Any, path: str | Path, *, title: str | None = None,
                      dpi: int = 120, member_label: str = "training members") -> Path:
    """Draw :func:`plot_cluster_sets` and write it atomically (format from the suffix)."""
    from ocmembers.sources.cache import atomic_path
    path = Path(path)
    fig = plot_cluster_sets(sets, probabilities, title=title, member_label=member_label)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format=path.suffix.lstrip(".") or "png", dpi=dpi)
    return path


def save_pdf_png(fig: Any, out: str | Path, *, dpi: int = 150) -> Path:
    """Write ``fig`` as vector PDF at ``out`` and as PNG beside it, atomically, and close it."""
    import matplotlib.pyplot as plt

    from ocmembers.sources.cache import atomic_path
    out = Path(out)
    fig.tight_layout()
    for path, kw in ((out, {}), (out.with_suffix(".png"), {"dpi": dpi})):
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format=path.suffix.lstrip("."), **kw)
    plt.close(fig)
    return out
