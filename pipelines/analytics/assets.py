"""Dagster assets of the analytics group: Python models between the lake and dbt.

lake (ingest/<source>) ─▶ analytics/comment_sentiment ─▶ dbt staging (lake.comment_sentiment)

Their outputs are lake Parquet that dbt reads as sources, so the same dbt models
could run on another engine, and the lineage shows them between ingest and staging.
"""

import dagster as dg

from pipelines.analytics import comments
from pipelines.ledger import events
from pipelines.partitions import monthly, months_of
from pipelines.settings import settings

SENTIMENT_KEY = dg.AssetKey(["analytics", "comment_sentiment"])


@dg.asset(
    key=SENTIMENT_KEY,
    deps=[dg.AssetKey(["ingest", source]) for source in comments.TEXT_COLUMNS],
    partitions_def=monthly,
    backfill_policy=dg.BackfillPolicy.single_run(),
    group_name="analytics",
    kinds={"python", "parquet"},
    description="Comment sentiment (文本情感分析): P(negative) of every landed free-text comment, by the shipped "
    "model (pipelines/analytics/sentiment.py). Scores every landed file not yet scored by this model, "
    "whatever the months of the run.",
)
def comment_sentiment(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
    from pipelines.analytics.sentiment import shipped_model

    s = settings()
    model = shipped_model()
    results = [comments.score_source(model, s.lake, source) for source in comments.TEXT_COLUMNS]
    for r in results:
        context.log.info(
            f"{r.source}: {r.comments} comments of {r.files_scored} files scored; "
            f"{r.files_current} files already scored by model {model.version}"
        )
    events.record_lake_files(s.home, [comments.score_folder(s.lake)])
    return dg.MaterializeResult(
        metadata={
            "model_version": model.version,
            "files_scored": sum(r.files_scored for r in results),
            "comments_scored": sum(r.comments for r in results),
        }
    )


FORECASTS_KEY = dg.AssetKey(["analytics", "target_forecasts"])


@dg.asset(
    key=FORECASTS_KEY,
    deps=[dg.AssetKey(["marts", "fct_indicator_values"]), dg.AssetKey(["marts", "dim_indicator"])],
    partitions_def=monthly,
    backfill_policy=dg.BackfillPolicy.single_run(),
    group_name="analytics",
    kinds={"python", "parquet"},
    description="Forecasts of target attainment (趋势预测): for each month of the run, the year-end value of every "
    "department's indicator with a target, an 80% interval and P(meet), from the reported values through that "
    "month (pipelines/analytics/forecast.py). A month whose inputs did not change is left as it was.",
)
def target_forecasts(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
    from pipelines.analytics import target_forecasts as lake_forecasts
    from pipelines.warehouse import read_warehouse

    s = settings()
    months = months_of(context)
    with read_warehouse(s.duckdb_path) as con:
        done = lake_forecasts.forecast_months(con, s.lake, months)
    context.log.info(
        f"{len(done.months_forecast)} months forecast ({done.series} series, {done.at_risk} with P(meet) < 0.5); "
        f"{len(done.months_current)} unchanged"
    )
    events.record_lake_files(s.home, [lake_forecasts.folder(s.lake)])
    return dg.MaterializeResult(
        metadata={
            "months_forecast": len(done.months_forecast),
            "months_unchanged": len(done.months_current),
            "series_forecast": done.series,
            "at_risk": done.at_risk,
        }
    )
