"""`govperf verify` against twelve tampers, on copies of one real home.

The home saw a whole run of a tiny city, an approval of 2025-07, a department's
corrected resubmission of its July transactions, a second run, and a second
revision of 2025-07 approved with a note. Each tamper is applied to a fresh copy
of that home and must be named by the same verification path `govperf verify`
uses; the untouched copy must give no mismatch at all. These run whole pipelines:
slow stage.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest

from pipelines.sample.generator import generate_city
from pipelines.settings import PROJECT_ROOT, settings
from tests.conftest import drafted_on, use_home

pytestmark = pytest.mark.slow

FIRST, LAST = "2025-07", "2025-08"
GOVPERF = str(Path(sys.executable).with_name("govperf"))
EDITION = Path("bulletins/published/monthly/2025-07")


def _govperf(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run([GOVPERF, *args], capture_output=True, text=True, env=dict(os.environ), timeout=1800)
    if check:
        assert done.returncode == 0, f"govperf {' '.join(args)}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


def _resubmit_july(inbox: Path) -> None:
    """D001 sends its July transactions again, every rated case now rated 非常不满意, a day later."""
    original = inbox / "service_transactions" / "好差评明细_202507.csv"
    rows = list(csv.reader(io.StringIO(original.read_bytes().decode("gbk"))))
    header, body = rows[0], rows[1:]
    rating = header.index("评价等级")
    mine = [r[:rating] + ["非常不满意" if r[rating] else ""] + r[rating + 1 :] for r in body if r[1] == "D001"]
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerows([header, *mine])
    correction = original.with_name("好差评明细_202507_更正.csv")
    correction.write_bytes(buffer.getvalue().encode("gbk"))
    later = original.stat().st_mtime + 86400
    os.utime(correction, (later, later))


@pytest.fixture(scope="module")
def audited(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("audited")
    generate_city(
        base / "inbox",
        departments_yaml=PROJECT_ROOT / "sources" / "reference" / "departments.yaml",
        seed=11,
        first_month=FIRST,
        last_month=LAST,
        transactions=2000,
    )
    with pytest.MonkeyPatch.context() as patch:
        use_home(patch, base / "home", base / "inbox")
        _govperf("run", "--from", FIRST, "--to", LAST)
        drafted_on(base / "home", "2025-08-01 09:00")  # appeal windows closed before the approvals below
        _govperf("approve", "--period", "2025-07", "--by", "张三", "--at", "2025-08-10 09:00")
        _resubmit_july(base / "inbox")
        _govperf("run", "--from", FIRST, "--to", LAST)
        _govperf(
            "approve",
            "--period",
            "2025-07",
            "--by",
            "张三",
            "--at",
            "2025-08-12 09:00",
            "--note",
            "市发改委重报7月数据",
        )
    return base


@pytest.fixture
def home_copy(audited: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh copy of the audited home (and its inbox), which settings() now point at."""
    shutil.copytree(audited / "inbox", tmp_path / "inbox")
    shutil.copytree(audited / "home", tmp_path / "home", symlinks=True)
    use_home(monkeypatch, tmp_path / "home", tmp_path / "inbox")
    return tmp_path / "home"


def _verify() -> list[tuple[str, str]]:
    from pipelines.audit.verify import verify_home

    report = verify_home(settings())
    return [(f.where, f.what) for f in report.mismatches]


def _writable(path: Path) -> Path:
    """Published revisions are read-only; a tamperer (or root, as in CI) writes anyway."""
    for p in (path, *path.parents):
        if p.name == "published":
            break
        os.chmod(p, p.stat().st_mode | stat.S_IWUSR)
    return path


def _ledger_lines(home: Path) -> list[bytes]:
    return (home / "ledger" / "entries.jsonl").read_bytes().splitlines(keepends=True)


def _write_ledger(home: Path, lines: list[bytes]) -> None:
    (home / "ledger" / "entries.jsonl").write_bytes(b"".join(lines))


def _mentions(found: list[tuple[str, str]], *words: str) -> bool:
    return any(all(w in f"{where} {what}" for w in words) for where, what in found)


def test_the_untouched_home_after_a_resubmission_and_a_revision_verifies_clean(audited, home_copy):
    assert (home_copy / EDITION / "r2" / "manifest.json").is_file(), "the home has its second revision"
    assert _verify() == []
    done = _govperf("verify", "--json", check=False)
    report = json.loads(done.stdout)
    assert done.returncode == 0 and report["ok"] and report["checked"]["published revisions"] == 2


def test_1_a_byte_of_a_published_html(home_copy):
    page = _writable(home_copy / EDITION / "r2" / "bulletin_2025-07.html")
    text = page.read_bytes()
    at = text.index(b"</td>") - 1  # the last character of the first table cell
    page.write_bytes(text[:at] + (b"8" if text[at : at + 1] != b"8" else b"7") + text[at + 1 :])
    assert _mentions(_verify(), "r2", "bulletin_2025-07.html", "edited")


def test_1b_a_byte_of_the_published_pdf(home_copy):
    pdf = _writable(home_copy / EDITION / "r1" / "bulletin_2025-07.pdf")
    data = bytearray(pdf.read_bytes())
    data[len(data) // 2] ^= 0x01
    pdf.write_bytes(bytes(data))
    assert _mentions(_verify(), "r1", "bulletin_2025-07.pdf", "edited")
    pdf.unlink()
    assert _mentions(_verify(), "r1", "bulletin_2025-07.pdf", "deleted")


def test_2_a_department_page_deleted(home_copy):
    pages = home_copy / EDITION / "r1" / "bulletin_2025-07_departments"
    victim = sorted(pages.glob("*.html"))[0]
    _writable(victim).unlink()
    assert _mentions(_verify(), "r1", victim.name, "deleted")


def test_3_a_manifest_field_edited(home_copy):
    manifest = _writable(home_copy / EDITION / "r1" / "manifest.json")
    record = json.loads(manifest.read_text(encoding="utf-8"))
    record["approved_by"] = "伪造签发人"
    manifest.write_text(json.dumps(record, ensure_ascii=False, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    assert _mentions(_verify(), "r1", "manifest.json")


def test_4_a_mart_row_changed_in_duckdb(home_copy):
    con = duckdb.connect(str(settings().duckdb_path))
    department, indicator = con.execute(
        "select department_id, indicator_id from marts.fct_indicator_values "
        "where period = '2025-08-01' and period_type = 'month' and raw_value is not null order by all limit 1"
    ).fetchone()
    con.execute(
        "update marts.fct_indicator_values set raw_value = raw_value + 0.05 where department_id = ? "
        "and indicator_id = ? and period = '2025-08-01' and period_type = 'month'",
        [department, indicator],
    )
    con.close()
    found = _verify()
    assert _mentions(found, "fct_indicator_values", "month:2025-08-01")
    assert not _mentions(found, "fct_indicator_values", "month:2025-07-01")
    # And an approval refuses: a hand-edited mart never becomes a revision.
    done = _govperf("approve", "--period", "2025-08", "--by", "张三", check=False)
    assert done.returncode != 0 and "fct_indicator_values" in done.stderr
    assert not (home_copy / "bulletins" / "published" / "monthly" / "2025-08").exists()


def test_5_a_lake_parquet_row_changed(home_copy):
    victim = sorted((home_copy / "lake" / "service_transactions" / "2025-08").glob("*.parquet"))[0]
    table = pq.read_table(victim)
    column = table.column_names.index("rating")
    values = table.column(column).to_pylist()
    values[0] = 1 if values[0] != 1 else 5
    pq.write_table(table.set_column(column, table.field(column), [values]), victim)
    assert _mentions(_verify(), victim.name, "rows changed")


def test_6_an_archived_original_edited(home_copy):
    victim = sorted((home_copy / "archive").rglob("*.csv"))[0]
    data = bytearray(victim.read_bytes())
    data[-3] = data[-3] ^ 0x01
    victim.write_bytes(bytes(data))
    assert _mentions(_verify(), victim.name, "edited")


def test_7_a_ledger_entry_edited(home_copy):
    from pipelines.ledger.canonical import canonical_bytes

    lines = _ledger_lines(home_copy)
    index = next(i for i, line in enumerate(lines) if b'"file_landed"' in line)
    entry = json.loads(lines[index])
    entry["body"]["rows_quarantined"] += 1
    lines[index] = canonical_bytes(entry) + b"\n"
    _write_ledger(home_copy, lines)
    assert _mentions(_verify(), f"entry {index}")


def test_8_a_ledger_entry_deleted(home_copy):
    lines = _ledger_lines(home_copy)
    index = len(lines) // 2
    _write_ledger(home_copy, lines[:index] + lines[index + 1 :])
    assert _mentions(_verify(), f"entry {index}")


def test_9_two_ledger_entries_swapped(home_copy):
    lines = _ledger_lines(home_copy)
    index = len(lines) // 3
    lines[index], lines[index + 1] = lines[index + 1], lines[index]
    _write_ledger(home_copy, lines)
    assert _mentions(_verify(), f"entry {index}")


def test_10_the_ledger_truncated_at_its_end(home_copy):
    """Cut after the first approval, with the checkpoints beyond it: the ledger alone looks
    whole, but the second revision's proof pins a larger signed tree."""
    lines = _ledger_lines(home_copy)
    keep = 1 + max(i for i, line in enumerate(lines) if b'"approval"' in line and b'"revision":1' in line)
    _write_ledger(home_copy, lines[:keep])
    checkpoints = home_copy / "ledger" / "checkpoints.jsonl"
    kept = [c for c in checkpoints.read_bytes().splitlines(keepends=True) if json.loads(c)["tree_size"] <= keep]
    checkpoints.write_bytes(b"".join(kept))
    assert _mentions(_verify(), "truncated")


def test_11_the_signing_key_replaced(home_copy):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key_file = settings().signing_key_file
    key_file.write_bytes(
        Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    assert _mentions(_verify(), "signing key", "pinned")


def test_12_a_published_revision_folder_replaced_by_an_older_copy(home_copy):
    edition = home_copy / EDITION
    for path in [edition / "r2", *(edition / "r2").rglob("*")]:
        os.chmod(path, 0o755 if path.is_dir() else 0o644)
    os.chmod(edition, 0o755)
    shutil.rmtree(edition / "r2")
    shutil.copytree(edition / "r1", edition / "r2")
    assert _mentions(_verify(), "r2", "manifest.json")


def test_published_revisions_are_read_only_and_carry_the_tree_head(audited):
    revision = audited / "home" / EDITION / "r2"
    for path in [revision, *revision.rglob("*")]:
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode & 0o222 == 0, f"{path} is writable ({oct(mode)})"
    manifest = json.loads((revision / "manifest.json").read_text(encoding="utf-8"))
    head = manifest["built_from"]["tree_head"]
    html = (revision / "bulletin_2025-07.html").read_text(encoding="utf-8")
    assert head["root_hash"] in html and manifest["built_from"]["public_key"] in html
    proof = json.loads((revision / "proof.json").read_text(encoding="utf-8"))
    assert proof["tree_head"]["tree_size"] > head["tree_size"]
    checked = subprocess.run(
        [sys.executable, str(PROJECT_ROOT / "docs" / "verify_proof.py"), str(revision / "proof.json")],
        capture_output=True,
        text=True,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


# ---------------------------------------------------------------- beyond the twelve (found in review)


def test_a_forged_lake_file_no_landing_names_is_caught_even_where_dbt_reads_schema_files(home_copy):
    # A source no file of this city lands (dbt reads its folder all the same).
    landed = sorted((home_copy / "lake" / "service_transactions" / "2025-07").glob("*.parquet"))[0]
    forged = home_copy / "lake" / "indicator_observations" / "2025-08" / "forged.parquet"
    forged.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(landed, forged)
    schema = next((home_copy / "lake" / "service_transactions" / "_schema").rglob("*.parquet"))
    shutil.copy(sorted((home_copy / "lake" / "service_transactions" / "2025-07").glob("*.parquet"))[0], schema)
    found = _verify()
    assert _mentions(found, "forged.parquet", "no ledger entry")
    assert _mentions(found, schema.name, "schema file")


def test_a_stored_check_result_edited_is_caught(home_copy):
    stored = home_copy / "lake" / "check_results" / "service_transactions" / "2025-07" / "ingest.parquet"
    table = pq.read_table(stored)
    column = table.column_names.index("passed")
    pq.write_table(table.set_column(column, table.field(column), [[True] * table.num_rows]), stored)
    assert _mentions(_verify(), "check_results/service_transactions/2025-07/ingest.parquet", "changed")


def test_the_next_run_does_not_launder_a_hand_edited_mart(home_copy):
    con = duckdb.connect(str(settings().duckdb_path))
    con.execute(
        "update marts.fct_indicator_values set raw_value = raw_value + 5 where period = '2025-07-01' "
        "and period_type = 'month' and indicator_id = 'good_review_rate' and department_id = 'D002'"
    )
    con.close()
    done = _govperf("run", "--job", "scoring", "--from", "2025-08", "--to", "2025-08", check=False)
    assert done.returncode != 0 and "changed outside dbt" in done.stdout + done.stderr
    assert _mentions(_verify(), "fct_indicator_values", "month:2025-07-01")


def test_a_build_entry_appended_by_hand_is_not_vouched_for_by_an_approval(home_copy):
    from pipelines.ledger import events
    from pipelines.ledger.mart_digest import mart_digests

    con = duckdb.connect(str(settings().duckdb_path))
    con.execute(
        "update marts.fct_indicator_values set raw_value = raw_value + 5 where period = '2025-08-01' "
        "and period_type = 'month' and indicator_id = 'good_review_rate'"
    )
    digests = mart_digests(con)
    con.close()
    events.record_build(home_copy, "forged", [dt.date(2025, 8, 1)], True, [], digests)
    done = _govperf("approve", "--period", "2025-08", "--by", "伪造", check=False)
    assert done.returncode != 0 and "no signed checkpoint" in done.stderr
    assert not (home_copy / "bulletins" / "published" / "monthly" / "2025-08").exists()


def test_a_proof_re_signed_with_another_key_is_caught_against_the_manifest_beside_it(home_copy):
    from pipelines.ledger import SignedTreeHead, SigningKey

    revision = home_copy / EDITION / "r2"
    proof_file = _writable(revision / "proof.json")
    proof = json.loads(proof_file.read_text(encoding="utf-8"))
    head = proof["tree_head"]
    forger = SigningKey.generate()
    proof["tree_head"] = SignedTreeHead.sign(forger, head["tree_size"], head["root_hash"], head["timestamp"]).to_dict()
    proof_file.write_text(json.dumps(proof), encoding="utf-8")
    done = _govperf("verify", "--proof", str(proof_file), check=False)
    assert done.returncode == 1 and "the edition's manifest prints" in done.stdout
