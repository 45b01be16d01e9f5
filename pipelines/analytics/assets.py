"""Dagster assets of the analytics group: Python models between the lake and dbt.

lake (ingest/<source>) ─▶ analytics/comment_sentiment ─▶ dbt staging (lake.comment_sentiment)

Their outputs are lake Parquet that dbt reads as sources, so the same dbt models
could run on another engine, and the lineage shows them between ingest and staging.
"""

import dagster as dg

from pipelines.analytics import comments
from pipelines.ledger import events
from pipelines.partitions import monthly
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
