"""What every results table shares: the metrics it shows, their labels, ``k``, a cell's text.

Three tables show evaluations: the run folder's markdown (:func:`agents.evaluate.results_table`,
over users), the terminal's (:func:`agents.cli.results_text`, over users, as many columns as
fit) and the quality benchmark's (``benchmarks/quality.py``, over seeds). Each keeps its own
rows and extra columns; the metric columns, their order and labels, the slate size ``k`` in
the labels and the ``mean ± half-width`` cells come from here. Imports nothing heavy.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

#: The per-user metrics of an evaluation, in table order, with their labels (``{k}``: slate size).
LABELS = {
    "ndcg": "NDCG@{k}",
    "hr": "HR@{k}",
    "mrr": "MRR@{k}",
    "precision": "P@{k}",
    "return": "return",
}


def metric_labels(k: int | None) -> dict[str, str]:
    """Metric -> column label for slate size ``k`` (``None``: unknown, the label says ``k``).

    Examples:
        >>> metric_labels(10)["ndcg"], metric_labels(None)["hr"], metric_labels(5)["return"]
        ('NDCG@10', 'HR@k', 'return')
    """
    return {m: label.format(k="k" if k is None else k) for m, label in LABELS.items()}


def slate_size(sizes: Iterable[int | None]) -> int | None:
    """The one slate size of a table's results (``None`` entries, failed runs, are skipped).

    Returns:
        ``k``, or ``None`` when no result gives one.

    Raises:
        ValueError: If the results have different slate sizes: one table, one ``k``.

    Examples:
        >>> slate_size([10, None, 10]), slate_size([])
        (10, None)
    """
    found = sorted({int(k) for k in sizes if k is not None})
    if len(found) > 1:
        raise ValueError(
            f"The results have slate sizes {found}: a table compares one k. Evaluate every "
            "policy with the same slate_size."
        )
    return found[0] if found else None


def ci_cell(
    mean: float,
    low: float = math.nan,
    high: float = math.nan,
    digits: int = 4,
    sep: str = " ± ",
) -> str:
    """``mean ± half-width`` of a confidence interval; the mean alone without one; ``-`` if NaN.

    Examples:
        >>> ci_cell(0.012345, 0.01, 0.014691), ci_cell(0.5), ci_cell(float("nan"))
        ('0.0123 ± 0.0023', '0.5000', '-')
        >>> ci_cell(3.14159, 3.0, 3.28318, digits=2, sep=" ±")
        '3.14 ±0.14'
    """
    if math.isnan(mean):
        return "-"
    text = f"{mean:.{digits}f}"
    if math.isnan(low) or math.isnan(high):
        return text
    return f"{text}{sep}{(high - low) / 2:.{digits}f}"
