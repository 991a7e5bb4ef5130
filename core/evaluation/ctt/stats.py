"""Per-model mean and Student-t confidence interval of CTT scores (the paper's CTT column)."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable

__all__ = ["ModelScore", "summarize", "t_quantile"]


def _t_log_norm(df: int) -> float:
    return math.lgamma((df + 1) / 2) - math.lgamma(df / 2) - 0.5 * math.log(df * math.pi)


def _t_pdf(t: float, df: int) -> float:
    return math.exp(_t_log_norm(df) - (df + 1) / 2 * math.log1p(t * t / df))


def _t_cdf_upper_half(x: float, df: int) -> float:
    """P(0 <= T <= x) for Student's t with ``df`` degrees of freedom (Simpson's rule)."""
    n = 2000  # even; the integrand is smooth, so Simpson's error stays below 1e-9 here
    h = x / n
    total = _t_pdf(0.0, df) + _t_pdf(x, df)
    total += sum((4 if i % 2 else 2) * _t_pdf(i * h, df) for i in range(1, n))
    return total * h / 3


def t_quantile(p: float, df: int) -> float:
    """The ``p`` quantile (0.5 < p < 1) of Student's t with ``df`` >= 1 degrees of freedom.

    Newton's method from 0: the CDF is concave on [0, inf), so the iterates rise monotonically
    to the root without overshooting.
    """
    if not 0.5 < p < 1 or not isinstance(df, int) or df < 1:
        raise ValueError(f"t_quantile: need 0.5 < p < 1 and an int df >= 1, got p={p}, df={df}")
    target, x = p - 0.5, 0.0
    for _ in range(100):
        step = (target - _t_cdf_upper_half(x, df)) / _t_pdf(x, df)
        x += step
        if abs(step) < 1e-10 * max(1.0, x):
            break
    return x


@dataclasses.dataclass(frozen=True)
class ModelScore:
    """Mean score of one model with a two-sided confidence interval (None below 2 ratings)."""

    model: str
    ratings: int
    raters: int
    mean: float
    ci_low: float | None
    ci_high: float | None


def summarize(ratings: Iterable[tuple[str, str, str, int]],
              confidence: float = 0.95) -> list[ModelScore]:
    """(rater, video, model, score) rows -> one :class:`ModelScore` per model, best mean first.

    The interval is ``mean +- t_{(1+c)/2, n-1} s / sqrt(n)`` over the model's individual ratings.
    """
    by_model: dict[str, list[tuple[str, int]]] = {}
    for rater, _video, model, score in ratings:
        by_model.setdefault(model, []).append((rater, score))
    out = []
    for model, rows in by_model.items():
        scores = [s for _, s in rows]
        n = len(scores)
        mean = sum(scores) / n
        low = high = None
        if n >= 2:
            sd = math.sqrt(sum((s - mean) ** 2 for s in scores) / (n - 1))
            half = t_quantile((1 + confidence) / 2, n - 1) * sd / math.sqrt(n)
            low, high = mean - half, mean + half
        out.append(ModelScore(model, n, len({r for r, _ in rows}), mean, low, high))
    return sorted(out, key=lambda m: (-m.mean, m.model))
