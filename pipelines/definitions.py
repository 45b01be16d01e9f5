"""The Dagster code location: every asset, check, job, schedule and sensor.

extract files ─▶ ingest/<source> (Parquet) ─▶ dbt staging ─▶ intermediate ─▶ marts
                       └▶ analytics/comment_sentiment ─┘                        │
                          marts ─▶ analytics/target_forecasts ─▶ marts.fct_target_forecasts
reference YAML ─▶ reference/reference_data ───────┘                            │
                                   publishable (blocking check) ─▶ publish/bulletins
marts ─▶ publish/published_editions (one partition per edition; `govperf approve`'s approval_job)
"""

from __future__ import annotations

import dagster as dg

from pipelines.analytics.assets import comment_sentiment, target_forecasts
from pipelines.automation import (
    annual_appraisal_schedule,
    daily_ingest_schedule,
    full_pipeline_job,
    ingest_job,
    monthly_scoring_schedule,
    new_extract_sensor,
    quarterly_bulletin_schedule,
    scoring_and_bulletin_job,
)
from pipelines.checks.assets import build_quality_suite_check
from pipelines.ingest.assets import build_ingest_assets, reference_data
from pipelines.ingest.mapping import load_mappings
from pipelines.publish.approval import approval_job, published_editions
from pipelines.publish.assets import bulletins, publishable
from pipelines.settings import settings
from pipelines.transform.assets import dbt_manifest, govperf_dbt_forecast_models, govperf_dbt_models
from pipelines.transform.project import dbt_cli
from pipelines.transform.translator import lake_source_specs


def build_definitions() -> dg.Definitions:
    sources = list(load_mappings(settings().mappings_dir))
    assets = [
        reference_data,
        *build_ingest_assets(),
        comment_sentiment,
        govperf_dbt_models,
        target_forecasts,
        govperf_dbt_forecast_models,
        bulletins,
    ]
    defined = {key for assets_def in assets for key in assets_def.keys}
    return dg.Definitions(
        assets=[*assets, published_editions, *lake_source_specs(dbt_manifest(), defined)],
        asset_checks=[build_quality_suite_check(sources), publishable],
        jobs=[ingest_job, scoring_and_bulletin_job, full_pipeline_job, approval_job],
        schedules=[
            daily_ingest_schedule,
            monthly_scoring_schedule,
            quarterly_bulletin_schedule,
            annual_appraisal_schedule,
        ],
        sensors=[new_extract_sensor],
        resources={"dbt": dbt_cli()},
    )


defs = build_definitions()
