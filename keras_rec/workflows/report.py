"""Reports of a training run: result tables and PNG plots."""

import os

from keras_rec.io_utils import atomic_write


def markdown_table(rows, precision=4, columns=None):
    """A markdown table from a list of dicts (columns: given, or first row's order)."""
    if not rows:
        return ""
    if columns is None:
        columns = list(rows[0])
        for row in rows[1:]:
            columns += [c for c in row if c not in columns]

    def cell(value):
        if isinstance(value, float):
            return f"{value:.{precision}f}"
        return "" if value is None else str(value)

    lines = [
        "| " + " | ".join(columns) + " |",
        "|" + "|".join("---" for _ in columns) + "|",
    ]
    for row in rows:
        lines.append("| " + " | ".join(cell(row.get(c)) for c in columns) + " |")
    return "\n".join(lines)


def _save_figure(figure, path):
    # matplotlib writes to a file object, so the PNG lands atomically too.
    with atomic_write(path, "wb") as f:
        figure.savefig(f, format="png", dpi=100, bbox_inches="tight")


def plot_curves(curves, path, metrics=("loss",), title="training"):
    """Plots per-epoch values of `metrics` from a list of dicts with `epoch`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metrics = [m for m in metrics if curves and m in curves[0]]
    if not metrics:
        return None
    figure, axes = plt.subplots(1, len(metrics), figsize=(4.5 * len(metrics), 3.5))
    axes = [axes] if len(metrics) == 1 else list(axes)
    epochs = [c["epoch"] for c in curves]
    for axis, metric in zip(axes, metrics):
        axis.plot(epochs, [c[metric] for c in curves], marker="o")
        axis.set_xlabel("epoch")
        axis.set_title(metric)
        axis.grid(alpha=0.3)
    figure.suptitle(title, y=1.03)
    _save_figure(figure, path)
    plt.close(figure)
    return os.fspath(path)


def plot_recall_at_k(series, path, title="Recall@K"):
    """Plots Recall@K against K for several named methods.

    Args:
        series: dict label -> dict K -> value.
        path: str. PNG destination.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(5.5, 4))
    for label, values in series.items():
        ks = sorted(values)
        axis.plot(ks, [values[k] for k in ks], marker="o", label=label)
    axis.set_xlabel("K")
    axis.set_ylabel("Recall@K")
    axis.set_title(title)
    axis.grid(alpha=0.3)
    axis.legend()
    _save_figure(figure, path)
    plt.close(figure)
    return os.fspath(path)
