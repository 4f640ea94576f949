"""IoU-vs-clicks curves of evaluation results (matplotlib, Agg backend: no display needed)."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from napari_ritm.evaluation.noc import miou_per_click


def plot_iou_curves(
    curves: Mapping[str, Sequence[Sequence[float]]],
    path: str | Path,
    *,
    max_clicks: int = 20,
    title: str = "",
) -> Path:
    """Write a PNG of mean IoU after each click, one line per entry of ``curves``.

    ``curves`` maps a legend label (e.g. ``"dsb2018"`` or ``"model / dsb2018"``) to the per-sample
    IoU lists of the evaluation JSON; samples that stopped early keep their last IoU. Returns the
    path written.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.4, 4.4), dpi=120)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    clicks = range(1, max_clicks + 1)
    for label, all_ious in curves.items():
        if all_ious:
            ax.plot(clicks, miou_per_click(all_ious, max_clicks), marker="o", ms=3,
                    label=f"{label} ({len(all_ious)})")
    for level in (0.85, 0.90):
        ax.axhline(level, color="0.7", lw=0.8, ls="--")
    ax.set(xlabel="number of clicks", ylabel="mean IoU", xlim=(1, max_clicks), ylim=(0, 1),
           title=title)
    ax.set_xticks(range(1, max_clicks + 1, max(1, max_clicks // 10)))
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize="small")
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    return path
