"""PNG figures for frontiers and schedules, made with matplotlib (headless, byte-deterministic).

    >>> plot_frontier({"ECAD": [(1.0, 0.93), (1.52, 0.92), (2.68, 0.88)]}, "frontier.png",
    ...               highlight=[(1.52, 0.92)], ylabel="ImageReward")
    >>> plot_mask_heatmap(frontier["ecad-2.68x"], "heatmaps/ecad-2.68x.png")

Figures are drawn on a bare :class:`matplotlib.figure.Figure` with the Agg canvas (no pyplot,
no display, no global figure registry) under matplotlib's default style, and saved by
:func:`save_png_deterministic` without the ``Software`` text chunk or any timestamp, so the
same data always gives the same bytes with the same matplotlib and fonts (a Hub push of an
unchanged frontier then changes nothing).
"""

from __future__ import annotations

import io
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterable, Iterator, Mapping, Sequence

import numpy as np

from .utils.io import atomic_write_bytes

Point = tuple[float, float]

_DPI = 100
_COMPUTE, _REUSE, _ABSENT = "#1f4e79", "#e8eef5", "#bdbdbd"


@contextmanager
def plot_style() -> Iterator[None]:
    """matplotlib's default style whatever the user's matplotlibrc, on the Agg backend."""
    import matplotlib
    import matplotlib.style

    with matplotlib.rc_context():
        matplotlib.style.use("default")
        matplotlib.rcParams.update({"svg.hashsalt": "ecad-hub", "path.simplify": True})
        yield


def new_figure(width: float, height: float):
    """A bare Agg figure. Layout is fixed (no constrained/tight layout: they draw twice and are slow)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=_DPI)
    FigureCanvasAgg(fig)
    return fig


def png_bytes(fig) -> bytes:
    """The figure as PNG bytes without metadata (no ``Software`` chunk, no timestamp)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=_DPI, metadata={"Software": None})
    return buf.getvalue()


def save_png_deterministic(fig, path: str | os.PathLike) -> Path:
    """Write ``fig`` to ``path`` as a metadata-free PNG, atomically. Returns the path."""
    path = Path(path)
    atomic_write_bytes(path, png_bytes(fig))
    return path


def _sorted_points(points: Iterable[Sequence[float]]) -> np.ndarray:
    arr = np.array([(float(x), float(y)) for x, y in points], dtype=float).reshape(-1, 2)
    return arr[np.lexsort((arr[:, 1], arr[:, 0]))] if len(arr) else arr


def frontier_figure(
    series: Mapping[str, Iterable[Point]],
    *,
    highlight: str | Iterable[Point] | None = None,
    faded: Mapping[str, Iterable[Point]] | None = None,
    xlabel: str = "MAC speedup (x)",
    ylabel: str = "quality",
    title: str | None = None,
):
    """The figure :func:`plot_frontier` saves (for callers that want to add to it)."""
    with plot_style():
        fig = new_figure(6.4, 4.4)
        fig.subplots_adjust(left=0.12, right=0.97, bottom=0.12, top=0.9 if title else 0.96)
        ax = fig.add_subplot()
        for label, points in (faded or {}).items():
            arr = _sorted_points(points)
            if len(arr):
                ax.plot(arr[:, 0], arr[:, 1], "o-", color="0.6", alpha=0.3, markersize=3, linewidth=0.8,
                        label=label)
        for label, points in series.items():
            arr = _sorted_points(points)
            if not len(arr):
                continue
            bold = isinstance(highlight, str) and highlight == label
            ax.plot(arr[:, 0], arr[:, 1], "o-", markersize=6 if bold else 4, linewidth=2.4 if bold else 1.4,
                    label=label, zorder=3 if bold else 2)
        if highlight is not None and not isinstance(highlight, str):
            arr = _sorted_points(highlight)
            if len(arr):
                ax.plot(arr[:, 0], arr[:, 1], "*", color="#d62728", markersize=14, zorder=4, label="default")
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        if title:
            ax.set_title(title)
        ax.grid(True, alpha=0.3)
        if ax.get_legend_handles_labels()[1]:
            ax.legend(fontsize="small", loc="best")
    return fig


def plot_frontier(
    series: Mapping[str, Iterable[Point]],
    path: str | os.PathLike,
    *,
    highlight: str | Iterable[Point] | None = None,
    faded: Mapping[str, Iterable[Point]] | None = None,
    xlabel: str = "MAC speedup (x)",
    ylabel: str = "quality",
    title: str | None = None,
) -> Path:
    """Plot quality against speedup for one or more frontiers and save a deterministic PNG.

    Args:
        series: label -> ``(speedup, quality)`` points; each is drawn as a line through its
            points sorted by speedup.
        path: the PNG file to write (atomically).
        highlight: a series label to draw bold, or points to mark with a star (e.g. the
            default schedule).
        faded: label -> points drawn light grey behind the series (e.g. earlier generations
            of a search).
        xlabel, ylabel, title: axis labels and title.

    Example::

        >>> plot_frontier({"user/pixart-ecad": [(1.0, 0.93), (2.68, 0.88)]}, "frontier.png",
        ...               faded={"generation 3": [(1.4, 0.90), (2.1, 0.85)]}, ylabel="ImageReward")
        PosixPath('frontier.png')
    """
    return save_png_deterministic(
        frontier_figure(series, highlight=highlight, faded=faded, xlabel=xlabel, ylabel=ylabel, title=title), path
    )


#: One frontier of an overlay plot: ``(label, metric or None, [(speedup, quality or None), ...])``.
OverlaySeries = tuple[str, "str | None", Sequence[tuple[float, "float | None"]]]

NO_QUALITY_LABEL = "no quality scores"


def overlay_figure(frontiers: Sequence[OverlaySeries], *, title: str | None = None,
                   xlabel: str = "MAC speedup (x)"):
    """The figure :func:`plot_overlay` saves: several frontiers on one speedup axis.

    One panel per quality metric (its y axis labelled with the metric's name), each frontier a
    line through its scored points; points without a quality score (a frontier without a metric,
    or schedules not scored) are drawn in a strip under the panels, on the same speedup axis,
    one row per frontier, labelled "no quality scores". Colours are the same for a frontier in
    every panel and the strip; the legend names each one.
    """
    from matplotlib.lines import Line2D

    clean = []
    for label, metric, points in frontiers:
        pts = [(float(x), None if y is None else float(y)) for x, y in points if x is not None]
        if pts:
            clean.append((str(label), metric, pts))
    if not clean:
        raise ValueError("nothing to plot: no frontier records a MAC speedup")
    metrics = sorted({m or "quality" for _, m, pts in clean if any(y is not None for _, y in pts)})
    strip = [(label, [x for x, y in pts if y is None]) for label, _, pts in clean if any(y is None for _, y in pts)]
    panel_h, strip_h = 3.3, 0.45 + 0.28 * len(strip)
    heights = [panel_h] * len(metrics) + ([strip_h] if strip else [])
    top_pad, bottom_pad = (0.55 if title else 0.25), 0.6
    legend_h = 0.22 * len(clean) + 0.3
    height = sum(heights) + 0.35 * (len(heights) - 1) + top_pad + bottom_pad + legend_h
    colours = {label: f"C{i % 10}" for i, (label, _, _) in enumerate(clean)}
    with plot_style():
        fig = new_figure(7.2, height)
        fig.subplots_adjust(left=0.13, right=0.97, top=1 - top_pad / height, bottom=(bottom_pad + legend_h) / height,
                            hspace=0.35 / (sum(heights) / len(heights)))
        grid = fig.add_gridspec(len(heights), 1, height_ratios=heights)
        axes = []
        for i in range(len(heights)):
            axes.append(fig.add_subplot(grid[i], sharex=axes[0] if axes else None))
        for ax, metric in zip(axes, metrics):
            for label, m, pts in clean:
                if (m or "quality") != metric:
                    continue
                arr = _sorted_points([(x, y) for x, y in pts if y is not None])
                if len(arr):
                    ax.plot(arr[:, 0], arr[:, 1], "o-", color=colours[label], markersize=4, linewidth=1.4)
            ax.set_ylabel(metric)
            ax.grid(True, alpha=0.3)
        if strip:
            ax = axes[-1]
            for row, (label, xs) in enumerate(strip):
                ax.plot(xs, [row] * len(xs), "|", color=colours[label], markersize=12, markeredgewidth=2)
            ax.set_ylim(-0.7, len(strip) - 0.3)
            ax.set_yticks([])
            ax.set_ylabel(NO_QUALITY_LABEL.replace(" quality ", " quality\n"), rotation=0, ha="right", va="center",
                          fontsize="small")
            ax.grid(True, axis="x", alpha=0.3)
        for ax in axes[:-1]:
            ax.tick_params(labelbottom=False)
        axes[-1].set_xlabel(xlabel)
        if title:
            fig.suptitle(title, fontsize="medium")
        handles = [Line2D([], [], color=colours[label], marker="o", linewidth=1.4, markersize=4,
                          label=label + ("" if any(y is not None for _, y in pts) else f" ({NO_QUALITY_LABEL})")
                          + (f" [{m}]" if m and len(metrics) > 1 else ""))
                   for label, m, pts in clean]
        fig.legend(handles=handles, loc="lower center", fontsize="small", frameon=False, ncols=1,
                   bbox_to_anchor=(0.5, 0.0))
    return fig


def plot_overlay(frontiers: Sequence[OverlaySeries], path: str | os.PathLike, *, title: str | None = None,
                 xlabel: str = "MAC speedup (x)") -> Path:
    """Overlay several frontiers (``(label, metric, [(speedup, quality or None), ...])``) and save a
    deterministic PNG: one panel per metric, unscored points in a "no quality scores" strip.

    Example::

        >>> plot_overlay([("user/a", "image_reward", [(1.0, 0.93), (2.68, 0.88)]),
        ...               ("user/paper", None, [(1.0, None), (2.68, None), (3.93, None)])], "browse.png")
        PosixPath('browse.png')
    """
    return save_png_deterministic(overlay_figure(frontiers, title=title, xlabel=xlabel), path)


def mask_heatmap_figure(schedule, *, title: str | None = None):
    """The figure :func:`plot_mask_heatmap` saves."""
    from matplotlib.colors import ListedColormap
    from matplotlib.patches import Patch
    from matplotlib.ticker import MaxNLocator

    arch = schedule.architecture
    effective = schedule.effective_masks()
    ncols = max(len(g.components) for g in arch.groups)
    steps = schedule.num_inference_steps
    widest = max(g.num_blocks for g in arch.groups)
    panel_w = min(max(1.4, 0.1 * widest), 5.0)  # inches of image per panel
    panel_h = min(max(1.2, 0.1 * steps), 4.0)
    pad_l, pad_r, pad_b, pad_t, gap_w, gap_h = 0.55, 0.15, 0.85, 0.75, 0.55, 0.7
    width = pad_l + pad_r + ncols * panel_w + (ncols - 1) * gap_w
    height = pad_b + pad_t + len(arch.groups) * panel_h + (len(arch.groups) - 1) * gap_h
    cmap = ListedColormap([_REUSE, _COMPUTE, _ABSENT])
    with plot_style():
        fig = new_figure(width, height)
        fig.subplots_adjust(left=pad_l / width, right=1 - pad_r / width, bottom=pad_b / height,
                            top=1 - pad_t / height, wspace=gap_w / panel_w, hspace=gap_h / panel_h)
        axes = fig.subplots(len(arch.groups), ncols, squeeze=False)
        for gi, group in enumerate(arch.groups):
            present = group.present()
            for ci in range(ncols):
                ax = axes[gi][ci]
                if ci >= len(group.components):
                    ax.set_axis_off()
                    continue
                image = effective[group.name][:, :, ci].astype(np.int8)
                image[:, ~present[:, ci]] = 2
                ax.imshow(image, cmap=cmap, vmin=0, vmax=2, aspect="auto", interpolation="nearest")
                ax.set_title(f"{group.name}.{group.components[ci]}", fontsize="small")
                ax.set_xlabel("block", fontsize="small")
                ax.set_ylabel("step", fontsize="small")
                ax.xaxis.set_major_locator(MaxNLocator(5, integer=True))
                ax.yaxis.set_major_locator(MaxNLocator(5, integer=True))
                ax.tick_params(labelsize="x-small")
        handles = [Patch(color=_COMPUTE, label="recompute"), Patch(color=_REUSE, label="reuse cached")]
        if any(g.absent for g in arch.groups):
            handles.append(Patch(color=_ABSENT, label="absent"))
        fig.legend(handles=handles, loc="lower center", ncols=len(handles), fontsize="small", frameon=False)
        speedup = schedule.mac_speedup
        fig.suptitle(title or (f"{schedule.name}" + (f"  ({speedup:.2f}x MACs)" if speedup else "")
                               + f"  {100 * schedule.fraction_computed():.1f}% computed"), fontsize="medium")
    return fig


def plot_mask_heatmap(schedule, path: str | os.PathLike, *, title: str | None = None) -> Path:
    """Save a heatmap of ``schedule``'s mask: one panel per (block group, component), steps x blocks.

    Dark cells are recomputed, light cells reuse the cached output, grey cells are sub-modules
    the architecture does not have (e.g. SD3's last ``ff_context``). Step 0 is drawn as what
    runs: always computed.
    """
    return save_png_deterministic(mask_heatmap_figure(schedule, title=title), path)
