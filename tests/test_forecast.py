"""Forecasts of target attainment (pipelines/analytics/forecast.py): real fits, no mocks.

The accuracy and the coverage at full scale are measured by benchmarks/forecast_backtest.py;
here a smaller backtest on the real Baltimore 311 series checks the 80 % intervals' coverage.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipelines.analytics.forecast import (
    MIN_MONTHS,
    OUTPUT_COLUMNS,
    backtest,
    forecast_attainment,
    forecast_period,
    forecast_series,
)
from pipelines.settings import PROJECT_ROOT

BALTIMORE = PROJECT_ROOT / "tests" / "data" / "real" / "baltimore311" / "311_sample.csv"


def series(values, first="2025-01", department="D1", indicator="rate") -> pd.DataFrame:
    periods = pd.date_range(first, periods=len(values), freq="MS")
    return pd.DataFrame({"department_id": department, "indicator_id": indicator, "period": periods, "value": values})


def target(value, direction="higher", indicator="rate", lower=np.nan, upper=np.nan) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "indicator_id": [indicator],
            "target": [value],
            "direction": [direction],
            "lower_bound": [lower],
            "upper_bound": [upper],
        }
    )


def noisy_trend(n=15, level=50.0, slope=2.0, sd=1.0, seed=1) -> np.ndarray:
    return level + slope * np.arange(n) + np.random.default_rng(seed).normal(0, sd, n)


def test_linear_trend_is_followed_and_its_interval_covers_the_trend():
    # 18 months, 2025-04..2026-09: year-end is 3 months on
    y = noisy_trend(18)
    row = forecast_attainment(series(y, first="2025-04"), target(60.0)).iloc[0]
    truth = 50.0 + 2.0 * 20  # December 2026, month index 20
    assert row["model"] == "ETS(A,Ad,N)"
    assert (row["last_period"], row["forecast_period"], row["horizon_months"]) == (
        pd.Timestamp("2026-09-01").date(),
        pd.Timestamp("2026-12-01").date(),
        3,
    )
    assert row["lo80"] <= truth <= row["hi80"]
    assert abs(row["forecast"] - truth) < 0.02 * truth
    assert row["p_meet"] > 0.99  # the target of 60 lies far below the whole interval


def test_trend_nine_months_ahead_is_damped_but_still_rising():
    # 15 months, 2025-01..2026-03: year-end is 9 months on. The damped trend (phi <= 0.98)
    # flattens a straight line on purpose: it forecasts below it, by a few per cent.
    y = noisy_trend(15)
    row = forecast_attainment(series(y), target(60.0)).iloc[0]
    truth = 50.0 + 2.0 * 23
    assert row["horizon_months"] == 9
    assert y[-1] + 5 < row["forecast"] < truth
    assert abs(row["forecast"] - truth) < 0.05 * truth
    assert row["hi80"] - row["lo80"] > 2 * 1.2816 * 1.0  # wider than the noise alone


def test_constant_series_gives_probability_zero_or_one():
    values = series([95.0] * 12)
    met = forecast_attainment(values, target(90.0, "higher")).iloc[0]
    missed = forecast_attainment(values, target(98.0, "higher")).iloc[0]
    lower_met = forecast_attainment(values, target(98.0, "lower")).iloc[0]
    assert (met["model"], met["forecast"], met["lo80"], met["hi80"]) == ("constant", 95.0, 95.0, 95.0)
    assert (met["p_meet"], missed["p_meet"], lower_met["p_meet"]) == (1.0, 0.0, 1.0)
    at_bound = forecast_attainment(series([0.0] * 8), target(0.0, "lower", lower=0.0)).iloc[0]
    assert (at_bound["model"], at_bound["forecast"], at_bound["p_meet"]) == ("constant", 0.0, 1.0)


def test_too_short_series_gives_the_reason_and_no_forecast():
    row = forecast_attainment(series([90.0, 92.0, 91.0, 93.0, 95.0]), target(90.0)).iloc[0]
    assert row["status"] == "too_short"
    assert row["reason"] == f"5 months observed, {MIN_MONTHS} needed"
    assert row["n_months"] == 5
    assert pd.isna(row["forecast"]) and pd.isna(row["p_meet"]) and row["model"] is None


def test_two_calls_give_the_same_bytes():
    rng = np.random.default_rng(7)
    values = pd.concat(
        series(80 + rng.normal(0, 3, 15).cumsum() * 0.3, department=f"D{i}", indicator=ind)
        for i in range(6)
        for ind in ("a", "b")
    )
    targets = pd.concat([target(85.0, indicator="a", lower=0, upper=100), target(5.0, "lower", indicator="b")])
    first = forecast_attainment(values, targets)
    second = forecast_attainment(values.sample(frac=1, random_state=3), targets)  # rows in another order
    assert list(first.columns) == OUTPUT_COLUMNS and len(first) == 12
    assert first.to_csv(index=False).encode() == second.to_csv(index=False).encode()
    figures = first[["forecast", "lo80", "hi80", "p_meet"]].to_numpy()
    assert np.array_equal(figures, np.round(figures, 4))


def test_direction_decides_which_side_meets_the_target():
    y = 90 + np.random.default_rng(3).normal(0, 2, 15)
    values = series(y)
    middle = float(np.mean(y))
    higher = forecast_attainment(values, target(middle, "higher_is_better")).iloc[0]
    lower = forecast_attainment(values, target(middle, "lower_is_better")).iloc[0]
    assert higher["direction"] == "higher" and lower["direction"] == "lower"
    assert 0.05 < higher["p_meet"] < 0.95
    assert higher["p_meet"] + lower["p_meet"] == pytest.approx(1.0, abs=2e-4)
    easy = forecast_attainment(values, target(middle - 10, "higher")).iloc[0]["p_meet"]
    hard = forecast_attainment(values, target(middle - 10, "lower")).iloc[0]["p_meet"]
    assert easy > 0.99 and hard < 0.01
    with pytest.raises(ValueError, match="direction 'up'"):
        forecast_attainment(values, target(90.0, "up"))


def test_gaps_bounds_and_a_year_already_ended():
    y = list(94 + np.random.default_rng(5).normal(0, 3, 12).clip(-10, 5))
    y[4] = np.nan  # a month reported empty
    values = series(y).drop(index=7)  # and a month not reported at all
    row = forecast_attainment(values, target(100.0, lower=0, upper=100)).iloc[0]
    assert row["status"] == "ok" and row["n_months"] == 10
    assert row["hi80"] <= 100.0 and row["lo80"] >= 0.0
    assert 0.0 < row["p_meet"] < 0.5  # at the bound: the mass past 100, not 0
    assert forecast_period(pd.Timestamp("2025-12-01")) == pd.Timestamp("2026-03-01")
    assert row["forecast_period"] == pd.Timestamp("2026-03-01").date() and row["horizon_months"] == 3


def test_series_without_a_target_are_left_out():
    values = pd.concat([series([1.0] * 8, indicator="a"), series([2.0] * 8, indicator="b")])
    targets = pd.concat([target(1.0, indicator="a"), target(np.nan, indicator="b")])
    assert forecast_attainment(values, targets)["indicator_id"].tolist() == ["a"]


def test_log_scale_interval_stays_above_the_lower_bound():
    counts = np.array([3, 1, 0, 4, 2, 6, 1, 0, 2, 5, 3, 1], dtype=float)
    fc = forecast_series(counts, 3, lower=0.0)
    lo, hi = fc.interval()
    assert (lo >= 0).all() and (hi > lo).all() and (fc.point > 0).all()
    assert fc.probability(0.0, higher=True) == 1.0  # never below its bound
    assert 0.0 < fc.probability(0.0, higher=False) < 0.5  # exactly 0: the mass held at the bound
    assert fc.probability(-1.0, higher=False) == 0.0


def baltimore_monthly_counts(min_per_month: float = 3.0) -> dict[str, np.ndarray]:
    """Requests per agency and month, 2014-01..2019-01 (2019-02 ends on the 13th);
    duplicates and transfers are not requests of their own."""
    df = pd.read_csv(BALTIMORE, usecols=["Agency", "CreatedDate", "SRStatus"])
    df = df[~df["SRStatus"].str.contains("Duplicate|Transferred")]
    month = pd.to_datetime(df["CreatedDate"], format="%m/%d/%Y %I:%M:%S %p").dt.to_period("M")
    months = pd.period_range("2014-01", "2019-01", freq="M")
    counts = df.groupby([df["Agency"], month]).size().unstack(0).reindex(months).fillna(0)
    return {a: counts[a].to_numpy(float) for a in counts.columns if counts[a].sum() >= min_per_month * len(months)}


def test_baltimore_intervals_cover_about_80_percent_and_beat_naive():
    series_by_agency = baltimore_monthly_counts()
    assert len(series_by_agency) >= 6
    results = pd.concat(
        backtest(y, first_origin=24, window=15, bounds=(0.0, np.nan)) for y in series_by_agency.values()
    )
    assert len(results) > 700
    coverage = ((results["actual"] >= results["lo"]) & (results["actual"] <= results["hi"])).mean()
    assert 0.70 <= coverage <= 0.90, f"80 % intervals held {coverage:.1%}"
    nonzero = results[results["actual"] > 0]
    mape = ((nonzero["forecast"] - nonzero["actual"]).abs() / nonzero["actual"]).mean()
    naive = ((nonzero["naive"] - nonzero["actual"]).abs() / nonzero["actual"]).mean()
    assert mape < naive, f"MAPE {mape:.1%} against the naive forecast's {naive:.1%}"
