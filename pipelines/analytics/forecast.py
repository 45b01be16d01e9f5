"""Forecasts of target attainment (趋势预测): will a department meet its indicator's target?

A pure function library (pandas in, pandas out; no Dagster, no dbt) on statsmodels'
exponential smoothing state-space models (ETS, Hyndman et al. 2008). The choices below
were measured by benchmarks/forecast_backtest.py (Baltimore 311 and the sample city):

- Models: ETS(A,N,N) (level only) and, from MIN_MONTHS_TREND months on, ETS(A,Ad,N)
  (damped trend); the lower AICc wins. No seasonal model: it needs two full years. The
  damping (phi <= 0.98) flattens a steady trend on purpose: 9 months ahead a straight
  line is forecast a few per cent short, a trend that stops is not carried on.
  From MIN_MONTHS_TREND months on the initial states are statsmodels' heuristic (a
  regression on the first 10 months) rather than fitted: half the time, same accuracy.
- Horizon: the month forecast is December of the year of the data's last month (the
  year-end value), or the March after it when that last month is December (the next
  3 months). All series of one call forecast the same month; a series whose last value
  is older takes more steps, and so gets a wider interval.
- Distribution: statsmodels' analytic forecast variance, widened for the fitted
  parameters as in a regression, by n / (n - k) with a Student t of n - k degrees of
  freedom (k: smoothing parameters and initial states). Without it the 80 % intervals
  held 72 % on the sample's 6-14 month histories, 76 % on Baltimore's 15-month ones.
  The interval is its 10 % and 90 % quantiles; P(meet) is P(Y >= target) when higher is
  better, P(Y <= target) when lower.
- Bounds: a value bounded on both sides (a rate in [0, 100]) has its quantiles clipped to
  the bounds; they are then exactly the quantiles of the bounded value, and P(meet) does
  not change (the mass past a bound stays on its side). A value bounded below only (a
  count, a duration, a deviation) is modelled as log1p(y - lower): its noise grows with
  its level and its interval stays above the bound; the point is then the median.
- Fewer than MIN_MONTHS observed months: status 'too_short' and a reason, no forecast.
  Gaps inside a series are filled by linear interpolation before the fit. A constant
  history has no spread: the forecast is that value and P(meet) is exactly 0 or 1.

Stored figures are rounded to DECIMALS; the fits (L-BFGS-B from fixed start values) are
deterministic, so a rerun gives the same bytes. Speed: the sample city's 340 series in
about 3.5 s, 6 s in a fresh process with the imports (statsmodels compiles nothing at run time).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.stats import t as student_t
from statsmodels.tools.eval_measures import aicc
from statsmodels.tsa.exponential_smoothing.ets import ETSModel
from threadpoolctl import threadpool_limits

LEVEL = 0.80  # the interval's coverage
MIN_MONTHS = 6  # fewer observed months: no forecast
MIN_MONTHS_TREND = 10  # fewer: no trend model, and initial states fitted (the heuristic needs 10)
DECIMALS = 4
HIGHER, LOWER = "higher", "lower"
_DIRECTIONS = {"higher": HIGHER, "higher_is_better": HIGHER, "lower": LOWER, "lower_is_better": LOWER}
# name, ETSModel arguments, k: smoothing parameters + initial states fitted to the data
_CANDIDATES = [("ETS(A,N,N)", {}, 2), ("ETS(A,Ad,N)", {"trend": "add", "damped_trend": True}, 5)]

OUTPUT_COLUMNS = [
    "department_id",
    "indicator_id",
    "last_period",  # the series' last observed month
    "forecast_period",  # the month forecast: year-end, or 3 months on
    "horizon_months",  # steps from last_period to forecast_period
    "n_months",  # observed (non-missing) months of history
    "model",  # 'ETS(A,N,N)', 'ETS(A,Ad,N)' or 'constant'; None without a forecast
    "forecast",  # the forecast month's value (the median of its distribution)
    "lo80",
    "hi80",
    "target",
    "direction",  # 'higher' or 'lower' is better
    "p_meet",  # probability that the forecast month's value meets the target
    "status",  # 'ok', 'too_short' or 'no_fit'
    "reason",  # why there is no forecast, else None
]


@dataclass(frozen=True)
class SeriesForecast:
    """Forecast of one series, steps 1..h after its last value: a Student t per step on the
    model's scale (log1p(y - lower) when `lower` is set, else y)."""

    model: str
    loc: np.ndarray
    scale: np.ndarray  # 0: no spread (a constant history)
    df: int
    lower: float | None = None

    def _to_y(self, z: np.ndarray) -> np.ndarray:
        # expm1 reaches down to -1: what falls below the bound is held at it (a censored value)
        return z if self.lower is None else self.lower + np.maximum(np.expm1(z), 0.0)

    @property
    def point(self) -> np.ndarray:
        return self._to_y(self.loc)

    def interval(self, level: float = LEVEL) -> tuple[np.ndarray, np.ndarray]:
        q = student_t.ppf(0.5 + level / 2, self.df)
        return self._to_y(self.loc - q * self.scale), self._to_y(self.loc + q * self.scale)

    def probability(self, target: float, higher: bool, step: int = -1) -> float:
        """P(Y >= target) when higher is better, else P(Y <= target), at a step (default: the last)."""
        if self.lower is None:
            z = target
        elif target < self.lower or (target == self.lower and higher):
            return float(higher)  # Y never falls below its bound
        else:
            z = np.log1p(target - self.lower)
        loc, scale = self.loc[step], self.scale[step]
        if scale <= 0:
            return float(loc >= z if higher else loc <= z)
        u = (z - loc) / scale
        return float(student_t.sf(u, self.df) if higher else student_t.cdf(u, self.df))


def forecast_series(y: np.ndarray, steps: int, lower: float | None = None) -> SeriesForecast:
    """Fit the candidate models to y (monthly, oldest first) and forecast `steps` months ahead;
    `lower` set: modelled as log1p(y - lower). NaN gaps inside y are interpolated; the first
    and last values must be observed."""
    y = pd.Series(np.asarray(y, dtype=float)).interpolate(limit_area="inside").to_numpy()
    if lower is not None and (y < lower).any():
        lower = None  # values below the stated bound: the log scale cannot hold them
    z = y if lower is None else np.log1p(y - lower)
    n = len(z)
    if np.ptp(z) == 0:
        return SeriesForecast("constant", np.full(steps, z[-1]), np.zeros(steps), max(n - 1, 1), lower)
    init = "heuristic" if n >= MIN_MONTHS_TREND else "estimated"
    best = None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence chatter on short series; the AICc judges the fit
        for name, spec, k in _CANDIDATES[: 2 if n >= MIN_MONTHS_TREND else 1]:
            model = ETSModel(pd.Series(z), error="add", initialization_method=init, **spec)
            params = model.fit(disp=False, return_params=True)  # results only for the winner: a third faster
            score = aicc(model.loglike(params), n, model.k_params + 1)  # as ETSResults.aicc: + 1 for sigma
            if np.isfinite(score) and (best is None or score < best[0]):
                best = (score, name, model, params, k)
        if best is None:
            raise ValueError("no candidate model could be fitted")
        _, name, model, params, k = best
        prediction = model.smooth(params).get_prediction(start=n, end=n + steps - 1)
    variance = np.maximum(np.asarray(prediction.forecast_variance, dtype=float), 0.0) * n / (n - k)
    return SeriesForecast(name, np.asarray(prediction.predicted_mean, dtype=float), np.sqrt(variance), n - k, lower)


def forecast_period(last_period: pd.Timestamp) -> pd.Timestamp:
    """December of last_period's year; the March after it when last_period is December."""
    last_period = pd.Timestamp(last_period)
    if last_period.month == 12:
        return pd.Timestamp(year=last_period.year + 1, month=3, day=1)
    return pd.Timestamp(year=last_period.year, month=12, day=1)


def forecast_attainment(values: pd.DataFrame, targets: pd.DataFrame) -> pd.DataFrame:
    """Forecast of every (department_id, indicator_id) series with a target, one row each.

    values: department_id, indicator_id, period (a month's first day), value (NaN allowed).
    targets: indicator_id (and department_id, for targets of their own), target, direction
    ('higher'/'higher_is_better' or 'lower'/'lower_is_better'), and optionally lower_bound,
    upper_bound (NaN: unbounded). Series without a target are left out.
    Returns OUTPUT_COLUMNS, sorted by department_id, indicator_id.
    """
    keys = ["department_id", "indicator_id"]
    target_keys = [k for k in keys if k in targets.columns]
    targets = targets.dropna(subset=["target"]).copy()
    for bound in ("lower_bound", "upper_bound"):
        if bound not in targets.columns:
            targets[bound] = np.nan
    targets["direction"] = targets["direction"].map(_direction)
    targets = targets[[*target_keys, "target", "direction", "lower_bound", "upper_bound"]]
    data = values[[*keys, "period", "value"]].copy()
    data["period"] = pd.to_datetime(data["period"]).dt.to_period("M").dt.to_timestamp()
    data = data.merge(targets[target_keys], on=target_keys)
    if data.empty:
        return pd.DataFrame(columns=OUTPUT_COLUMNS)  # no series with a target
    # one row per series, one column per month (absent months: NaN); a month given twice counts once
    wide = data.groupby([*keys, "period"], sort=True)["value"].mean().unstack("period")
    months = pd.date_range(wide.columns.min(), wide.columns.max(), freq="MS")
    wide = wide.reindex(columns=months)
    info = wide.index.to_frame(index=False).merge(targets, on=target_keys, how="left")
    end = forecast_period(months[-1])
    with one_blas_thread():
        rows = [
            _forecast_one(meta, y, months, end)
            for meta, y in zip(info.itertuples(index=False), wide.to_numpy(dtype=float))
        ]
    return pd.DataFrame(rows, columns=OUTPUT_COLUMNS).astype({"horizon_months": "Int64", "n_months": "Int64"})


def _forecast_one(meta, y: np.ndarray, months: pd.DatetimeIndex, end: pd.Timestamp) -> dict:
    observed = np.flatnonzero(~np.isnan(y))
    row = dict.fromkeys(OUTPUT_COLUMNS)
    row.update(department_id=meta.department_id, indicator_id=meta.indicator_id, target=float(meta.target))
    row.update(direction=meta.direction, n_months=len(observed), forecast_period=end.date())
    if len(observed):
        row["last_period"] = months[observed[-1]].date()
    if len(observed) < MIN_MONTHS:
        return row | {"status": "too_short", "reason": f"{len(observed)} months observed, {MIN_MONTHS} needed"}
    # from the first to the last observed month; NaN between them are gaps
    y, last = y[observed[0] : observed[-1] + 1], months[observed[-1]]
    bounds = (meta.lower_bound, meta.upper_bound)
    steps = (end.year - last.year) * 12 + end.month - last.month
    row["horizon_months"] = steps
    try:
        fc = forecast_series(y, steps, log_scale_bound(*bounds))
    except ValueError as exc:
        return row | {"status": "no_fit", "reason": str(exc)}
    p_meet = fc.probability(row["target"], higher=row["direction"] == HIGHER)
    lo, hi = fc.interval()
    point, lo, hi = (clip(v, *bounds) for v in (fc.point[-1], lo[-1], hi[-1]))
    row.update(model=fc.model, status="ok")
    row.update(forecast=_round(point), lo80=_round(lo), hi80=_round(hi), p_meet=_round(p_meet))
    return row


def log_scale_bound(lower: float, upper: float) -> float | None:
    """The bound a series is modelled above on the log1p scale: its lower bound when it has
    no upper one (a count, a duration), else None (linear scale)."""
    return float(lower) if pd.notna(lower) and pd.isna(upper) else None


def backtest(
    y: np.ndarray,
    first_origin: int,
    horizon: int = 3,
    window: int | None = None,
    bounds: tuple[float, float] = (np.nan, np.nan),
) -> pd.DataFrame:
    """Rolling-origin backtest of forecast_series on one monthly series (oldest first).

    From each origin t >= first_origin, fit on y[:t] (its last `window` months if given)
    and forecast steps 1..horizon; one row per (origin, step) whose actual is known:
    actual, forecast, lo, hi (clipped to bounds, as stored) and naive (the last value).
    """
    y = np.asarray(y, dtype=float)
    rows = []
    with one_blas_thread():
        for t in range(first_origin, len(y)):
            train = y[max(0, t - window) if window else 0 : t]
            observed = np.flatnonzero(~np.isnan(train))
            if len(observed) < MIN_MONTHS or observed[-1] != len(train) - 1:
                continue  # too short, or the origin's own month is missing
            train = train[observed[0] :]
            steps = min(horizon, len(y) - t)
            fc = forecast_series(train, steps, log_scale_bound(*bounds))
            lo, hi = fc.interval()
            for h in range(steps):
                if not np.isnan(y[t + h]):
                    clipped = [clip(v, *bounds) for v in (fc.point[h], lo[h], hi[h])]
                    rows.append((t, h + 1, y[t + h], *clipped, train[-1], fc.model))
    return pd.DataFrame(rows, columns=["origin", "step", "actual", "forecast", "lo", "hi", "naive", "model"])


def one_blas_thread():
    """OpenBLAS threads on the fits' tiny matrices only wait for each other: on a busy
    2-core machine the city took 22 s instead of 5 s. One thread, for the forecasts only."""
    return threadpool_limits(limits=1, user_api="blas")


def clip(x: float, lower: float, upper: float) -> float:
    """x within [lower, upper]; a NaN bound is no bound."""
    if pd.notna(lower):
        x = max(x, lower)
    if pd.notna(upper):
        x = min(x, upper)
    return float(x)


def _round(x: float) -> float:
    return round(float(x), DECIMALS) + 0.0  # + 0.0: no '-0.0' in the stored bytes


def _direction(direction: str) -> str:
    try:
        return _DIRECTIONS[str(direction).strip().lower()]
    except KeyError:
        raise ValueError(f"direction {direction!r}: expected one of {sorted(_DIRECTIONS)}") from None
