"""Comment sentiment: the shipped model, scoring landed comments, and the points an
edition names from it.

The model's accuracy is measured by benchmarks/sentiment_accuracy.py, not here.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipelines.analytics import comments, train_sentiment
from pipelines.analytics.sentiment import MODEL_PATH, ModelError, load_model, shipped_model
from pipelines.ingest.assets import ensure_lake_schemas
from pipelines.publish.findings import _flag_high_negative


def test_the_shipped_model_is_what_the_training_script_builds_from_the_labelled_data():
    """Same data, same bytes: the shipped .npz is a rebuild from tests/data/real/zh_sentiment."""
    assert train_sentiment.build() == MODEL_PATH.read_bytes(), (
        "rebuild it: python -m pipelines.analytics.train_sentiment"
    )


def test_the_model_is_plain_arrays_loaded_without_pickle(tmp_path):
    with np.load(MODEL_PATH, allow_pickle=False) as arrays:
        assert sorted(arrays.files) == ["coefficients", "intercept", "settings"]
        assert arrays["coefficients"].dtype == np.float16
    damaged = tmp_path / "model.npz"
    damaged.write_bytes(MODEL_PATH.read_bytes()[:1000])
    with pytest.raises(ModelError, match=str(damaged)):
        load_model(damaged)
    with pytest.raises(ModelError, match="not a readable"):
        load_model(tmp_path / "missing.npz")


def test_clear_comments_score_on_the_right_side_and_probabilities_are_rounded():
    model = shipped_model()
    negative = ["等了两个小时还没办好，态度很差", "窗口人员不耐烦，推来推去", "电话一直打不通，没人管"]
    positive = ["办事效率高，一次就办好了", "非常满意，服务很周到", "流程简便，点赞"]
    scores = model.negative_probability(negative + positive + ["", "   "])
    assert all(scores[:3] > 0.5), scores
    assert all(scores[3:6] < 0.5), scores
    assert np.isnan(scores[6:]).all()  # no text, no score
    assert all(round(float(s), 4) == float(s) for s in scores[:6])
    assert (model.negative_probability(["ＡＢＣ很差"]) == model.negative_probability(["ABC很差"])).all()  # NFKC


def _landed(lake: Path, source: str, month: str, name: str, texts: list[str | None]) -> Path:
    column = comments.TEXT_COLUMNS[source]
    path = lake / source / month / f"{name}.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    import datetime as dt

    period = dt.date.fromisoformat(f"{month}-01")
    pq.write_table(
        pa.table(
            {
                column: texts,
                "_file_hash": [name] * len(texts),
                "_period": pa.array([period] * len(texts), pa.date32()),
                "_line": pa.array(range(2, 2 + len(texts)), pa.int64()),
            }
        ),
        path,
    )
    return path


def test_landed_files_are_scored_once_per_model_and_landing(tmp_path):
    lake = tmp_path / "lake"
    model = shipped_model()
    first = _landed(lake, "service_transactions", "2025-07", "a" * 64, ["排队太久，态度很差", None, "", "很满意"])
    _landed(lake, "survey_responses", "2025-07", "b" * 64, ["[姓名]同志热情周到", "[姓名]同志热情周到"])
    ensure_lake_schemas(lake)
    done = comments.score_source(model, lake, "service_transactions")
    assert (done.files_scored, done.files_current, done.comments) == (1, 0, 2)
    target = comments.score_folder(lake) / "service_transactions" / f"2025-07_{'a' * 64}.parquet"
    table = pq.read_table(target)
    assert table.column("_line").to_pylist() == [2, 5]  # lines without a text are not scored
    assert table.column("_source").to_pylist() == ["service_transactions"] * 2
    before = table.replace_schema_metadata(None)

    again = comments.score_source(model, lake, "service_transactions")
    assert (again.files_scored, again.files_current) == (0, 1)
    # Touched, same bytes: nothing to do, and the score file is the same in any home.
    os.utime(first, ns=(first.stat().st_atime_ns, first.stat().st_mtime_ns + 1_000_000_000))
    assert comments.score_source(model, lake, "service_transactions").files_scored == 0
    elsewhere = tmp_path / "elsewhere"
    shutil.copytree(lake / "service_transactions", elsewhere / "service_transactions")  # new mtimes
    comments.score_source(model, elsewhere, "service_transactions")
    assert (comments.score_folder(elsewhere) / target.relative_to(comments.score_folder(lake))).read_bytes() == (
        target.read_bytes()
    )
    # The landing rewritten (new landing rules): scored again.
    _landed(lake, "service_transactions", "2025-07", "a" * 64, ["排队太久，态度很差", None, "", "很满意", "还行"])
    rescored = comments.score_source(model, lake, "service_transactions")
    assert (rescored.files_scored, rescored.comments) == (1, 3)
    assert pq.read_table(target).replace_schema_metadata(None).slice(0, 2).equals(before)

    # Masking tokens carry no tone: the survey text is scored as if the name were not there.
    comments.score_source(model, lake, "survey_responses")
    survey = pq.read_table(next((comments.score_folder(lake) / "survey_responses").glob("*.parquet")))
    assert survey.column("negative_p").to_pylist() == list(model.negative_probability([" 同志热情周到"] * 2))

    # dbt reads the folder with the same glob as every lake source, the schema file included.
    con = duckdb.connect()
    count = con.execute(
        f"select count(*) from read_parquet('{comments.score_folder(lake)}/*/*.parquet', union_by_name = true)"
    ).fetchone()[0]
    assert count == 5


def test_a_file_withdrawn_while_scoring_is_skipped_not_fatal(tmp_path, monkeypatch):
    lake = tmp_path / "lake"
    _landed(lake, "hotline_complaints", "2025-07", "c" * 64, ["反映办事难"])
    real = comments.score_file

    def withdrawn(model, source, landed, target):
        shutil.rmtree(landed.parent)
        return real(model, source, landed, target)

    monkeypatch.setattr(comments, "score_file", withdrawn)
    done = comments.score_source(shipped_model(), lake, "hotline_complaints")
    assert (done.files_scored, done.comments) == (0, 0)


def _department(department_id, n, negative, others_share):
    return {
        "department_id": department_id,
        "source": "service_transactions",
        "n_scored": n,
        "n_negative": negative,
        "negative_share": 100.0 * negative / n,
        "others_share": others_share,
    }


def test_only_a_department_clearly_above_the_others_is_named_with_its_p_and_q_values():
    by_department = {f"D{i:03d}": [_department(f"D{i:03d}", 100, 30 + (i % 5), 31.0)] for i in range(40)}
    by_department["D900"] = [_department("D900", 100, 55, 31.0)]  # planted
    by_department["D901"] = [_department("D901", 10, 9, 31.0)]  # too few comments to be named
    flagged = _flag_high_negative(by_department, fdr=0.05, min_comments=30)
    assert [row["department_id"] for row in flagged] == ["D900"]
    assert flagged[0]["p_value"] < 1e-5 and flagged[0]["q_value"] <= 0.05
    assert "p_value" not in by_department["D901"][0]
