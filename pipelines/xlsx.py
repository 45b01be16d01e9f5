"""Writing XLSX files whose bytes depend only on their content.

openpyxl stamps docProps/core.xml with the clock on save, and zipfile stamps
every entry with the clock; both are replaced by a given time, so the same
content gives the same file (sample extracts, exports).
"""

from __future__ import annotations

import datetime as dt
import io
import zipfile
from pathlib import Path

from openpyxl import Workbook
from openpyxl.xml.functions import tostring


def save_workbook(workbook: Workbook, path: Path, stamp: dt.datetime, creator: str) -> None:
    workbook.properties.creator = creator
    workbook.properties.created = stamp
    buffer = io.BytesIO()
    workbook.save(buffer)
    workbook.properties.modified = stamp  # save() overwrote it with now()
    replacements = {"docProps/core.xml": tostring(workbook.properties.to_tree())}
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(buffer) as source, zipfile.ZipFile(path, "w") as target:
        for entry in source.infolist():
            fixed = zipfile.ZipInfo(entry.filename, date_time=stamp.timetuple()[:6])
            fixed.compress_type = zipfile.ZIP_DEFLATED
            fixed.external_attr = 0o644 << 16
            target.writestr(fixed, replacements.get(entry.filename) or source.read(entry))
