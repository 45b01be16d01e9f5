"""The Great Expectations suites as one blocking Dagster check over every ingest asset.

One check node runs all suites, so GX is imported once per run rather than once
per source. Its outcomes are also stored in the gate, so later runs see them.
"""

from collections.abc import Iterator

import dagster as dg

from pipelines.checks import gate
from pipelines.checks.per_month import MonthlyCheckResults, monthly_check_spec
from pipelines.checks.suites import LandedFile, load_suites, run_suite
from pipelines.ingest.assets import ingest_key
from pipelines.ingest.canonical import CANONICAL
from pipelines.ingest.stamps import step_name
from pipelines.ingest.submissions import register_path
from pipelines.ledger import events
from pipelines.partitions import months_of
from pipelines.settings import QUALITY_DIR, settings
from pipelines.stamps import StampStore

CHECK_NAME = "quality_suite"


def build_quality_suite_check(sources: list[str]) -> dg.AssetChecksDefinition:
    suites = {source: suite for source, suite in load_suites(QUALITY_DIR).items() if source in sources}
    specs = [
        monthly_check_spec(
            CHECK_NAME,
            asset=ingest_key(source),
            blocking=True,
            description=f"Great Expectations suite quality/{source}.yaml on every landed file, in full.",
        )
        for source in suites
    ]

    @dg.multi_asset_check(specs=specs, name="great_expectations_suites", can_subset=True)
    def great_expectations_suites(context: dg.AssetCheckExecutionContext) -> Iterator[dg.AssetCheckEvaluation]:
        s = settings()
        months = months_of(context)
        results = MonthlyCheckResults(context)  # one result per month: pipelines/checks/per_month.py says why
        for check_key in sorted(context.selected_asset_check_keys, key=lambda k: k.asset_key.to_user_string()):
            source = check_key.asset_key.path[-1]
            files = [
                LandedFile(month, path.stem, path, register_path(s.lake, source, month), CANONICAL[source].slice_column)
                for month in months
                for path in sorted((s.lake / source / f"{month:%Y-%m}").glob("*.parquet"))
            ]
            outcomes = run_suite(suites[source], files)
            yield results.output(check_key.asset_key, CHECK_NAME)
            for month in months:
                of_month = [o for o in outcomes if o.period == month]
                gate.record(s.lake, source, month, CHECK_NAME, of_month)
                errors = [o for o in of_month if o.blocks]
                warnings = [o for o in of_month if not o.passed and o.severity == "warning"]
                shown = errors + warnings
                yield results.evaluation(
                    check_key.asset_key,
                    CHECK_NAME,
                    month,
                    passed=not errors,
                    severity=dg.AssetCheckSeverity.ERROR,
                    description=f"{month:%Y-%m}: {len(errors)} error(s), {len(warnings)} warning(s) "
                    f"in {len(of_month)} expectation(s)",
                    # Signed once the source's last month is recorded: the event log pins the head.
                    metadata=(_recorded_and_signed(s, source) if month == months[-1] else {})
                    | {
                        "expectations_run": len(of_month),
                        "errors": len(errors),
                        "warnings": len(warnings),
                        "failures": dg.MetadataValue.md(
                            "\n".join(
                                f"- [{o.severity}] {o.period:%Y-%m} {o.check_name}: {o.details}" for o in shown[:50]
                            )
                            or "none"
                        ),
                    },
                )
            # Landed and checked: the months' ingest is done (pipelines/stamps.py).
            StampStore(s.home).promote(step_name(source), [month.isoformat() for month in months])

    return great_expectations_suites


def _recorded_and_signed(s, source: str) -> dict:
    """The check results written, in the ledger's record of the lake; then a signed head."""
    events.record_lake_files(s.home, [gate.check_results_dir(s.lake) / source])
    return events.checkpoint_metadata(s.home)
