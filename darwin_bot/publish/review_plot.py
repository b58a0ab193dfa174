"""The picture in an agent's PR: its lineage's perplexity, trusted curves, reported loss.

Left, the held-out perplexity of each agent along the lineage, with error bars
from its repeat runs, against the seed's noise band (its mean ± 1 sd), on whole
generations. In the middle (when the runs have one), the trusted learning
curves of the agent and the seed: held-out loss the harness measured on the
checkpoints, over the share of the budget by the harness's clock, with the
seed's final loss as the line time to loss is measured against. Right, the
training-loss curves the programs printed (a claim, labelled so), drawn only
where there are enough logged points to be a curve.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

MIN_CURVE_POINTS = 3  # two logged losses draw a straight line that says nothing about the curve


def review_figure(
    lineage: Sequence[tuple[str, int, float]],
    curves: Mapping[str, Sequence[tuple[int, float]]],
    baseline_ppl: float | None,
    *,
    errors: Mapping[str, float] | None = None,
    baseline_sd: float | None = None,
    held_out: Mapping[str, Sequence[tuple[float, float]]] | None = None,
    target: float | None = None,
) -> Any:
    """The figure of :func:`review_plot` (a matplotlib ``Figure``, drawn, not saved)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    panels = 3 if held_out else 2
    fig = Figure(figsize=(4.5 * panels, 3.4), dpi=90)
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, panels)
    _lineage_panel(axes[0], lineage, baseline_ppl, errors or {}, baseline_sd)
    if held_out:
        _held_out_panel(axes[1], held_out, target)
    _loss_panel(axes[-1], curves)
    fig.tight_layout()
    return fig


def _lineage_panel(
    ax: Any,
    lineage: Sequence[tuple[str, int, float]],
    baseline_ppl: float | None,
    errors: Mapping[str, float],
    baseline_sd: float | None,
) -> None:
    from matplotlib.ticker import MaxNLocator

    if baseline_ppl is not None:
        if baseline_sd:
            ax.axhspan(
                baseline_ppl - baseline_sd,
                baseline_ppl + baseline_sd,
                color="grey",
                alpha=0.2,
                label="the seed's noise (± 1 sd)",
            )
        ax.axhline(baseline_ppl, color="grey", linestyle="--", label="baseline (seed)")
    if lineage:
        ax.errorbar(
            [g for _, g, _ in lineage],
            [p for _, _, p in lineage],
            yerr=[errors.get(name) or 0.0 for name, _, _ in lineage],
            fmt="o-",
            color="C0",
            capsize=3,
            label="mean ± 1 sd of the repeat runs",
        )
        for name, g, p in lineage:
            ax.annotate(name, (g, p), fontsize=7, textcoords="offset points", xytext=(3, 3))
    if lineage or baseline_ppl is not None:
        ax.legend(fontsize=7)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # generations are whole numbers
    ax.set(title="held-out perplexity along the lineage", xlabel="generation", ylabel="perplexity")


def _held_out_panel(
    ax: Any, held_out: Mapping[str, Sequence[tuple[float, float]]], target: float | None
) -> None:
    if target is not None:
        ax.axhline(target, color="grey", linestyle="--", label="the seed's final loss")
    for n, (label, pts) in enumerate(held_out.items()):
        if pts:
            ax.plot([f for f, _ in pts], [v for _, v in pts], "o-", label=label, color=f"C{n + 1}")
    ax.set(title="held-out loss (trusted curve)", xlabel="share of the budget", ylabel="loss")
    ax.legend(fontsize=7)


def _loss_panel(ax: Any, curves: Mapping[str, Sequence[tuple[int, float]]]) -> None:
    drawn = 0
    for n, (label, pts) in enumerate(curves.items()):
        if len(pts) >= MIN_CURVE_POINTS:
            ax.plot([i for i, _ in pts], [v for _, v in pts], label=label, color=f"C{n + 1}")
            drawn += 1
    ax.set(title="training loss (reported by the program)", xlabel="iteration", ylabel="loss")
    if drawn:
        ax.legend(fontsize=7)
        return
    ax.text(
        0.5,
        0.5,
        f"fewer than {MIN_CURVE_POINTS} loss lines logged:\nno curve to show",
        ha="center",
        va="center",
        transform=ax.transAxes,
    )


def review_plot(
    path: Path,
    lineage: Sequence[tuple[str, int, float]],
    curves: Mapping[str, Sequence[tuple[int, float]]],
    baseline_ppl: float | None,
    *,
    errors: Mapping[str, float] | None = None,
    baseline_sd: float | None = None,
    held_out: Mapping[str, Sequence[tuple[float, float]]] | None = None,
    target: float | None = None,
) -> Path:
    """Lineage perplexity over generations, with error bars from the repeat runs (``errors``:
    agent -> sd) against the seed's noise band; the trusted held-out curves (``held_out``:
    label -> (budget share, loss), ``target`` the seed's final loss), when there are any;
    reported training-loss curves."""
    fig = review_figure(
        lineage,
        curves,
        baseline_ppl,
        errors=errors,
        baseline_sd=baseline_sd,
        held_out=held_out,
        target=target,
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    # No metadata: the same data gives the same bytes, so a rerun commits nothing.
    fig.savefig(path, format="png", metadata={"Software": None})
    return path
