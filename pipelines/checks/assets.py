"""The Great Expectations suites as one blocking Dagster check over every ingest asset.

One check node runs all suites, so GX is imported once per run rather than once
per source. Its outcomes are also stored in the gate, so later runs see them.
"""

from collections.abc import Iterator

import dagster as dg

from pipelines.checks import gate
from pipelines.checks.suites import LandedFile, load_suites, run_suite
from pipelines.ingest.assets import ingest_key
from pipelines.ingest.canonical import CANONICAL
from pipelines.ingest.submissions import register_path
from pipelines.ledger import events
from pipelines.partitions import months_of
from pipelines.settings import QUALITY_DIR, settings

CHECK_NAME = "quality_suite"


def build_quality_suite_check(sources: list[str]) -> dg.AssetChecksDefinition:
    suites = {source: suite for source, suite in load_suites(QUALITY_DIR).items() if source in sources}
    specs = [
        dg.AssetCheckSpec(
            CHECK_NAME,
            asset=ingest_key(source),
            blocking=True,
            description=f"Great Expectations suite quality/{source}.yaml on every landed file, in full.",
        )
        for source in suites
    ]

    @dg.multi_asset_check(specs=specs, name="great_expectations_suites", can_subset=True)
    def great_expectations_suites(context: dg.AssetCheckExecutionContext) -> Iterator[dg.AssetCheckResult]:
        s = settings()
        months = months_of(context)
        for check_key in sorted(context.selected_asset_check_keys, key=lambda k: k.asset_key.to_user_string()):
            source = check_key.asset_key.path[-1]
            files = [
                LandedFile(month, path.stem, path, register_path(s.lake, source, month), CANONICAL[source].slice_column)
                for month in months
                for path in sorted((s.lake / source / f"{month:%Y-%m}").glob("*.parquet"))
            ]
            outcomes = run_suite(suites[source], files)
            for month in months:
                gate.record(s.lake, source, month, CHECK_NAME, [o for o in outcomes if o.period == month])
            errors = [o for o in outcomes if o.blocks]
            warnings = [o for o in outcomes if not o.passed and o.severity == "warning"]
            shown = errors + warnings
            yield dg.AssetCheckResult(
                asset_key=check_key.asset_key,
                check_name=CHECK_NAME,
                passed=not errors,
                severity=dg.AssetCheckSeverity.ERROR,
                metadata=events.checkpoint_metadata(s.home)
                | {
                    "months": ", ".join(f"{m:%Y-%m}" for m in months),
                    "expectations_run": len(outcomes),
                    "errors": len(errors),
                    "warnings": len(warnings),
                    "failures": dg.MetadataValue.md(
                        "\n".join(f"- [{o.severity}] {o.period:%Y-%m} {o.check_name}: {o.details}" for o in shown[:50])
                        or "none"
                    ),
                },
            )

    return great_expectations_suites
