"""The inputs of one edition's drawing (pipelines/stamps.py).

An edition is drawn again when the scores of its last month were rebuilt from
other inputs (the dbt stamp, chained, covers every earlier month its trend
charts read), or when bulletin.yaml, the analysts' marks on findings, the templates and stylesheet, the code
that draws it, or the chart and workbook libraries changed. Within a drawing, an
edition whose rows are byte for byte those of its current version is kept
as it is (pipelines/publish/assets.py).
"""

from __future__ import annotations

from pathlib import Path

from pipelines.publish.config import Edition
from pipelines.publish.finding_marks import current_marks
from pipelines.stamps import PACKAGE_ROOT, digest, files_digest, library_versions

STEP = "bulletins"
REPORTS = PACKAGE_ROOT.parent / "reports"
LIBRARIES = ("altair", "vl-convert-python", "openpyxl", "jinja2", "duckdb")


def edition_stamps(editions: list[Edition], dbt_stamps: dict[str, dict], reference_dir: Path) -> dict[str, dict]:
    shared = {
        "bulletin_settings": files_digest(reference_dir / "bulletin.yaml"),
        "layout": files_digest(REPORTS),
        "code": files_digest(PACKAGE_ROOT / "publish", PACKAGE_ROOT / "xlsx.py", PACKAGE_ROOT / "warehouse.py"),
        "libraries": library_versions(*LIBRARIES),
    }
    marks = current_marks()
    return {
        edition.key: shared
        | {
            "scores": digest(dbt_stamps.get(edition.last_month.isoformat())),
            # an analyst's mark shows beside its finding, in the annex of its period's edition
            "finding_marks": digest(
                sorted(
                    (key, mark)
                    for key, mark in marks.items()
                    if key[1:3] == (edition.period_type, edition.period.isoformat())
                )
            ),
        }
        for edition in editions
    }
