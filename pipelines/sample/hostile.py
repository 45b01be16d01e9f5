"""Files built to break ingest: to exhaust its memory, or to slip a row past it.
Used by tests/test_hostile_files.py and benchmarks/hostile_files.py.

Each file is a service-transactions extract (the GBK/UTF-8 CSV or an XLSX), written
in chunks so that building it costs no memory. `land_in_child` lands one in a
fresh Python process and returns the landing with that process's peak RSS, read
from the kernel's accounting of the child (os.wait4), not sampled.

    python -m pipelines.sample.hostile land FILE LAKE_DIR [LIMITS_JSON]
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

SOURCE = "service_transactions"
HEADER = (
    "办件编号,部门编码,部门名称,事项名称,办理渠道,受理时间,办结时间,承诺时限,应交材料数,实交材料数,"
    "评价等级,评价内容,是否整改,整改时间,是否申诉,申诉结果"
)


def row(case_id: str, comment: str = "") -> str:
    return (
        f"{case_id},D001,市政务服务和数据管理局,营业执照设立登记,网办,2025-03-03 09:00:00,2025-03-04 10:00:00,"
        f"5,4,3,满意,{comment},,,,"
    )


def _write_comment_row(handle, case_id: str, size: int, unit: bytes, encoding: str = "utf-8") -> None:
    """A row whose comment is `size` bytes of `unit` repeated, written a MiB at a time."""
    before, after = row(case_id, "\0").encode(encoding).split(b"\0")
    handle.write(before)
    block = unit * ((1 << 20) // len(unit))
    left = size
    while left >= len(block):
        handle.write(block)
        left -= len(block)
    handle.write(unit * (left // len(unit)) + b"x" * (left % len(unit)))
    handle.write(after + b"\r\n")


def long_line_csv(path: Path, line_bytes: int, encoding: str = "utf-8") -> Path:
    """A CSV whose third line holds a comment of `line_bytes` bytes, between two good rows."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as handle:
        handle.write(f"{HEADER}\r\n{row('SX1')}\r\n".encode(encoding))
        _write_comment_row(handle, "SX2", line_bytes, "很好".encode(encoding), encoding)
        handle.write(f"{row('SX3')}\r\n".encode(encoding))
    return path


def many_fields_line_csv(path: Path, line_bytes: int) -> Path:
    """A CSV whose third line is `line_bytes` bytes of short fields ("a,a,a,…"): no
    field is long, the record is; between two good rows."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as handle:
        handle.write(f"{HEADER}\r\n{row('SX1')}\r\nSX2".encode())
        block = b",a" * (1 << 19)  # 1 MiB
        left = line_bytes
        while left >= len(block):
            handle.write(block)
            left -= len(block)
        handle.write(b",a" * (left // 2) + f"\r\n{row('SX3')}\r\n".encode())
    return path


def field_limit_csv(path: Path, limit: int, kept_chars: int = 1_000_000) -> Path:
    """Good rows around a comment one byte over `limit` (line 3) and a comment
    of `kept_chars` Chinese characters, which must be kept (line 4)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as handle:
        handle.write(f"{HEADER}\r\n{row('SX1')}\r\n".encode())
        _write_comment_row(handle, "SX2", limit + 1, b"a")
        _write_comment_row(handle, "SX3", 3 * kept_chars, "办".encode())
        handle.write(f"{row('SX4')}\r\n".encode())
    return path


def nul_csv(path: Path) -> Path:
    """A GBK CSV whose second row's comment ends in two NUL bytes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(f"{HEADER}\r\n{row('SX1')}\r\n{row('SX2', '办事很快' + chr(0) * 2)}\r\n".encode("gbk"))
    return path


_XLSX_PARTS = {
    "[Content_Types].xml": (
        '<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
        '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
        '<Default Extension="xml" ContentType="application/xml"/>'
        '<Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
        '<Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
        "</Types>"
    ),
    "_rels/.rels": (
        '<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
        '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/>'
        "</Relationships>"
    ),
    "xl/workbook.xml": (
        '<?xml version="1.0" encoding="UTF-8"?><workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
        'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">'
        '<sheets><sheet name="Sheet1" sheetId="1" r:id="rId1"/></sheets></workbook>'
    ),
    "xl/_rels/workbook.xml.rels": (
        '<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
        '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/>'
        "</Relationships>"
    ),
}


def _xml_row(number: int, values: list[str]) -> str:
    cells = "".join(f'<c t="inlineStr"><is><t>{v}</t></is></c>' for v in values)
    return f'<row r="{number}">{cells}</row>'


def xlsx_bomb(path: Path, rows: int, sheet_part: str = "xl/worksheets/sheet1.xml") -> Path:
    """An XLSX whose one sheet repeats a good row `rows` times: the sheet XML is
    about 600 bytes a row and compresses about a hundredfold. `sheet_part` is where
    the sheet sits in the zip (the workbook's relationships point there)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = row("SX1").split(",")
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        for name, text in _XLSX_PARTS.items():
            text = text.replace("/xl/worksheets/sheet1.xml", f"/{sheet_part}")
            archive.writestr(name, text.replace('Target="worksheets/sheet1.xml"', f'Target="/{sheet_part}"'))
        with archive.open(sheet_part, "w", force_zip64=True) as sheet:
            sheet.write(
                b'<?xml version="1.0" encoding="UTF-8"?>'
                b'<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>'
            )
            sheet.write(_xml_row(1, HEADER.split(",")).encode())
            for first in range(2, rows + 2, 10_000):
                block = "".join(_xml_row(n, [f"SX{n}", *data[1:]]) for n in range(first, min(first + 10_000, rows + 2)))
                sheet.write(block.encode())
            sheet.write(b"</sheetData></worksheet>")
    return path


# Linux counts a new process's memory from its parent's: at exec, the high-water
# mark of the address space it was forked (or vforked) from is kept in its
# ru_maxrss. A 1 GB pytest process would make every child it starts look 1 GB
# large. So the measured command is started by a small launcher, and its peak is
# read by that launcher, whose own few MiB are then the floor.
_LAUNCHER = """
import os, subprocess, sys
child = subprocess.Popen(sys.argv[2:])
_pid, status, usage = os.wait4(child.pid, 0)
with open(sys.argv[1], "w") as out:
    out.write(str(usage.ru_maxrss * 1024))  # KiB on Linux
sys.exit(os.waitstatus_to_exitcode(status) & 0xFF)
"""


def run_measured(command: list[str], **popen) -> tuple[int, int]:
    """Run `command` to its end; its exit code and its peak RSS in bytes, from the
    kernel's resource usage of the reaped process (not sampled)."""
    with tempfile.TemporaryDirectory() as scratch:
        peak_file = Path(scratch) / "peak"
        child = subprocess.Popen([sys.executable, "-c", _LAUNCHER, str(peak_file), *command], **popen)
        code = child.wait()
        return code, int(peak_file.read_text())


def land_in_child(path: Path, lake_dir: Path, limits: dict | None = None) -> tuple[dict, int]:
    """Land `path` in a new Python process; its landing (as a dict) and its peak
    RSS in bytes, from the kernel's resource usage of the reaped child."""
    command = [sys.executable, "-m", "pipelines.sample.hostile", "land", str(path), str(lake_dir)]
    if limits:
        command.append(json.dumps(limits))
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        code, peak = run_measured(command, stdout=out, stderr=err)
        out.seek(0)
        err.seek(0)
        if code != 0:
            text = err.read().decode(errors="replace")[-3000:]
            raise RuntimeError(f"landing in a child failed ({code}):\n{text}")
        landing = json.loads(out.read().decode().strip().splitlines()[-1])
    return landing, peak


def _land_here(path: Path, lake_dir: Path, limits: dict | None) -> None:
    from pipelines.ingest.land import land_file
    from pipelines.ingest.mapping import load_mappings
    from pipelines.reference import load_departments
    from pipelines.settings import PROJECT_ROOT

    mapping = load_mappings(PROJECT_ROOT / "sources" / "mappings")[SOURCE]
    if path.suffix.lower() == ".xlsx":
        mapping = mapping.model_copy(update={"format": "xlsx", "encoding": "auto"})
    if limits:
        mapping = mapping.model_copy(update={"limits": mapping.limits.model_copy(update=limits)})
    registry = load_departments(PROJECT_ROOT / "sources" / "reference")
    landing = land_file(path, f"{SOURCE}/{path.name}", mapping, registry, lake_dir / "lake", lake_dir / "archive")
    summary = {k: getattr(landing, k) for k in ("rows_read", "rows_accepted", "rows_quarantined", "file_error")}
    print(json.dumps(summary, ensure_ascii=False))


if __name__ == "__main__":
    if len(sys.argv) >= 4 and sys.argv[1] == "land":
        _land_here(Path(sys.argv[2]), Path(sys.argv[3]), json.loads(sys.argv[4]) if len(sys.argv) > 4 else None)
    else:
        raise SystemExit(__doc__)
