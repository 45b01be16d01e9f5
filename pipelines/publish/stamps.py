"""The inputs of one edition's drawing (pipelines/stamps.py).

An edition is drawn again when the scores of its last month were rebuilt from
other inputs (the dbt stamp, chained, covers every earlier month its trend
charts read), or when bulletin.yaml, the templates and stylesheet, the code
that draws it, or the chart and workbook libraries changed. Within a drawing, an
edition whose rows are byte for byte those of its current version is kept
as it is (pipelines/publish/assets.py).
"""

from __future__ import annotations

from pathlib import Path

from pipelines.publish.config import Edition
from pipelines.stamps import PACKAGE_ROOT, digest, files_digest, library_versions

STEP = "bulletins"
REPORTS = PACKAGE_ROOT.parent / "reports"
LIBRARIES = ("altair", "vl-convert-python", "openpyxl", "jinja2", "duckdb")


def last_month_of(edition: Edition) -> str:
    """The month whose run draws the edition (a quarter's third), ISO first day."""
    index = edition.period.year * 12 + edition.period.month - 1 + edition.months - 1
    return f"{index // 12:04d}-{index % 12 + 1:02d}-01"


def edition_stamps(editions: list[Edition], dbt_stamps: dict[str, dict], reference_dir: Path) -> dict[str, dict]:
    shared = {
        "bulletin_settings": files_digest(reference_dir / "bulletin.yaml"),
        "layout": files_digest(REPORTS),
        "code": files_digest(PACKAGE_ROOT / "publish", PACKAGE_ROOT / "xlsx.py", PACKAGE_ROOT / "warehouse.py"),
        "libraries": library_versions(*LIBRARIES),
    }
    return {edition.key: shared | {"scores": digest(dbt_stamps.get(last_month_of(edition)))} for edition in editions}
