"""The report's figures as SVG text, drawn by matplotlib on its Agg backend (never a GUI backend).

matplotlib is imported only when a figure is drawn, so that importing the analysis (or starting a
web process) stays light.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

WIDTH, HEIGHT = 5.6, 3.2  # inches; at 100 dpi, a figure fits a column of the admin's pages


def _figure(width: float = WIDTH, height: float = HEIGHT) -> tuple[Figure, Axes]:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    # A Figure of its own rather than pyplot's global state: requests drawing at once do not share one.
    figure = Figure(figsize=(width, height), dpi=100, layout="constrained")
    return figure, figure.add_subplot()


def _svg(figure: Figure) -> str:
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", metadata={"Date": None})
    text = buffer.getvalue()
    # Inline in HTML: the <svg> element alone, without the XML prolog and DOCTYPE.
    return text[text.index("<svg"):]


def model_scores(groups: Sequence[Mapping[str, Any]], method: str = "percentile") -> str:
    """Each group's model score (mean of unit scores) with its bootstrap CI; groups are to_json() entries."""
    figure, axes = _figure(WIDTH, max(HEIGHT * 0.6, 0.45 * len(groups) + 0.9))
    names = [group["name"] for group in groups]
    means = np.array([group["model_score"]["mean"] for group in groups], dtype=float)
    bounds = np.array([group["model_score"]["ci"][method] for group in groups], dtype=float).reshape(-1, 2)
    errors = np.abs(np.vstack([means - bounds[:, 0], bounds[:, 1] - means]))
    positions = np.arange(len(groups))
    axes.errorbar(means, positions, xerr=np.nan_to_num(errors), fmt="o", color="#2b6c9e", capsize=4)
    axes.set_yticks(positions, names)
    axes.invert_yaxis()
    axes.set_xlabel(f"model score, 95% CI ({method})")
    axes.grid(axis="x", alpha=0.3)
    return _svg(figure)


def layer_depth(group: Mapping[str, Any]) -> str:
    """Unit scores (dots) and layer means (line) against the layers' relative depth."""
    figure, axes = _figure()
    units = [u for u in group["units"] if u.get("relative_depth") is not None and u["score"] is not None]
    layers = [layer for layer in group["layers"] if layer.get("relative_depth") is not None]
    if units:
        axes.scatter([u["relative_depth"] for u in units], [u["score"] for u in units], s=12, alpha=0.35,
                     color="#7a9cc6", label="units")
    if layers:
        axes.plot([layer["relative_depth"] for layer in layers], [layer["score"] for layer in layers], "o-",
                  color="#c2571a", label="layer mean")
        axes.legend(loc="lower right", fontsize=8)
    else:
        axes.text(0.5, 0.5, "no relative depths recorded", ha="center", va="center", transform=axes.transAxes)
    correlation = group["depth_correlation"]
    if correlation["rho"] is not None and not np.isnan(correlation["rho"]):
        axes.set_title(f"Spearman rho = {correlation['rho']:.2f} (p = {correlation['p']:.3g}, "
                       f"{correlation['n']} layers)", fontsize=9)
    axes.set_xlabel("relative layer depth (0 first, 1 last)")
    axes.set_ylabel("score")
    axes.set_xlim(-0.05, 1.05)
    return _svg(figure)


def score_distribution(group: Mapping[str, Any]) -> str:
    figure, axes = _figure()
    scores = np.array([u["score"] for u in group["units"] if u["score"] is not None], dtype=float)
    low = min(0.0, float(scores.min())) if len(scores) else 0.0
    axes.hist(scores, bins=np.linspace(low, 1.0, 21).tolist(), color="#2b6c9e", edgecolor="white")
    axes.axvline(group["model_score"]["mean"], color="#c2571a", label="model score")
    axes.legend(fontsize=8)
    axes.set_xlabel("unit score")
    axes.set_ylabel("units")
    return _svg(figure)


def posthoc_matrix(names: Sequence[str], p: Mapping[str, Mapping[str, float]]) -> str:
    """The Conover-Holm p-values, groups by groups, as a heat map with each value written in."""
    size = max(3.2, 0.7 * len(names) + 1.8)
    figure, axes = _figure(size + 1.0, size)
    matrix = np.array([[p[a][b] for b in names] for a in names], dtype=float)
    image = axes.imshow(matrix, cmap="viridis_r", vmin=0, vmax=1)
    for i in range(len(names)):
        for j in range(len(names)):
            axes.text(j, i, f"{matrix[i, j]:.2g}", ha="center", va="center", fontsize=7,
                      color="white" if matrix[i, j] < 0.5 else "black")
    axes.set_xticks(range(len(names)), names, rotation=45, ha="right", fontsize=7)
    axes.set_yticks(range(len(names)), names, fontsize=7)
    figure.colorbar(image, ax=axes, label="p (Conover, Holm)")
    return _svg(figure)
