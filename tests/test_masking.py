"""Masking personal data: ID numbers (check digit verified), mobile and landline
numbers, personal names in free text, and keyed-hash tokens in identifiers.
Fast unit tests of the functions, and of the SQL that applies them in ingest."""

from __future__ import annotations

import stat

import duckdb
import pyarrow as pa
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipelines.ingest import masking
from pipelines.ingest.masking import (
    ID_TOKEN,
    LANDLINE_TOKEN,
    MOBILE_TOKEN,
    NAME_TOKEN,
    id_check_digit,
    is_id_number,
    mask_field,
    mask_free_text,
    mask_identifier,
)
from pipelines.sample import generator
from pipelines.settings import PROJECT_ROOT

VALID_IDS = ["110101199003074514", "11010519491231002X", "440308199901011234", "32010620001231001X"]
KEY = b"test key one"


# ------------------------------------------------------------------ ID numbers


@pytest.mark.parametrize("number", VALID_IDS)
def test_an_id_number_with_a_correct_check_digit_is_masked(number):
    assert is_id_number(number)
    assert mask_field(f"身份证号{number}，请核实") == f"身份证号{ID_TOKEN}，请核实"
    assert mask_field(number.lower()) == ID_TOKEN  # a lower-case x


def test_the_check_digit_is_iso_7064_mod_11_2():
    assert id_check_digit("11010119900307451") == "4"
    assert id_check_digit("11010519491231002") == "X"


@pytest.mark.parametrize(
    "number",
    [
        "110101199003074515",  # the check digit is wrong
        "11010119900307451X",  # so is this one
        "123456789012345678",  # 18 random digits: no valid birth date, no valid check
        "110101199013074514",  # month 13
    ],
)
def test_an_18_digit_number_that_is_not_an_id_is_left_alone(number):
    assert not is_id_number(number)
    assert mask_field(f"编号{number}") == f"编号{number}"


def test_full_width_digits_are_masked_too():
    assert mask_field("身份证１１０１０１１９９００３０７４５１４") == f"身份证{ID_TOKEN}"
    assert mask_field("电话１３８１２３４５６７８") == f"电话{MOBILE_TOKEN}"


# ------------------------------------------------------------------ phone numbers


@pytest.mark.parametrize(
    "text",
    [
        "13812345678",
        "138-1234-5678",
        "138 1234 5678",
        "+86 13812345678",
        "+8613812345678",
        "008613812345678",
        "86-13812345678",
        "19912345678",
    ],
)
def test_mobile_numbers_in_their_usual_forms(text):
    assert mask_field(f"联系{text}。") == f"联系{MOBILE_TOKEN}。"


@pytest.mark.parametrize(
    "text",
    ["010-62345678", "01062345678", "(010)62345678", "（010）62345678", "0755-2345678", "0571 87654321", "021-6234567"],
)
def test_landline_numbers_with_their_area_code(text):
    assert mask_field(f"座机{text}转") == f"座机{LANDLINE_TOKEN}转"


@pytest.mark.parametrize(
    "text",
    [
        "12812345678",  # no mobile prefix 12
        "138123456789",  # twelve digits: not a mobile number
        "2025-03-03 09:00:00",
        "1,200.50",
        "SX202503000001",  # a case number
        "市政办〔2025〕12号",
        "20250301",
    ],
)
def test_numbers_that_are_not_phone_numbers_are_left_alone(text):
    assert mask_field(text) == text


def test_every_number_in_a_text_is_masked():
    text = "电话13812345678，13912345678；身份证110101199003074514、座机010-62345678"
    assert mask_field(text) == f"电话{MOBILE_TOKEN}，{MOBILE_TOKEN}；身份证{ID_TOKEN}、座机{LANDLINE_TOKEN}"


# ------------------------------------------------------------------ names


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("办事员王小明态度很好，电话13812345678", f"办事员{NAME_TOKEN}态度很好，电话{MOBILE_TOKEN}"),
        ("感谢张伟同志的耐心解答", f"感谢{NAME_TOKEN}同志的耐心解答"),
        ("投诉工作人员赵磊推诿扯皮", f"投诉工作人员{NAME_TOKEN}推诿扯皮"),
        ("请表扬王秀英", f"请表扬{NAME_TOKEN}"),
        ("刘芳态度恶劣", f"{NAME_TOKEN}态度恶劣"),
        ("李强主任办事效率高", f"{NAME_TOKEN}主任办事效率高"),
        ("欧阳娜娜办事认真", f"{NAME_TOKEN}办事认真"),
    ],
)
def test_personal_names_in_a_sentence_are_masked(text, expected):
    assert mask_free_text(text) == expected


def _departments() -> list[str]:
    registry = yaml.safe_load((PROJECT_ROOT / "sources" / "reference" / "departments.yaml").read_text(encoding="utf-8"))
    names = []
    for department in registry["departments"]:
        names += [department["name"], *department.get("aliases", [])]
    return names


def _sample_texts() -> list[str]:
    items = [item.split("/")[0] for items in generator.SERVICE_ITEMS.values() for item in items.split(", ")]
    texts = [
        *generator.PRAISE,
        *generator.NEUTRAL,
        *generator.COMPLAINTS,
        *generator.SURVEY_GOOD,
        *generator.SURVEY_NEUTRAL,
        *generator.SURVEY_BAD,
        *generator.BONUS_REASONS,
        *generator.PENALTY_REASONS,
        *generator.VETO_REASONS.values(),
        *items,
    ]
    texts += [remark for _, remarks in generator.LEADER_REMARKS for remark in remarks]
    texts += [
        template.format(item=item)
        for templates in generator.HOTLINE_TEMPLATES.values()
        for template in templates
        for item in items
    ]
    return texts


def test_department_names_are_not_taken_for_names():
    names = _departments() + ["市场监管局", "市委宣传部", "市史志办", "市林草局", "市卫健委", "高新区管委会"]
    assert len(names) > 60
    assert [n for n in names if mask_free_text(n) != n] == []


def test_service_items_and_the_sample_citys_texts_are_not_taken_for_names():
    """jieba's dictionary tags 许可, 陈述, 养老, 林木 … as person names; none of the
    sample city's comments, complaints, remarks, reasons or service items changes."""
    texts = _sample_texts()
    assert "林草种子生产经营许可" in texts and "行政处罚陈述申辩受理" in texts
    changed = {t: mask_free_text(t) for t in texts if mask_free_text(t) != t}
    assert changed == {}


def test_a_word_that_is_also_a_name_is_masked_beside_a_title_or_role():
    assert mask_free_text("食品生产许可办理很快") == "食品生产许可办理很快"
    assert mask_free_text("工作人员许可态度很好") == f"工作人员{NAME_TOKEN}态度很好"


def test_fields_that_are_not_free_text_keep_names():
    assert mask_field("王小明，13812345678") == f"王小明，{MOBILE_TOKEN}"


def test_empty_and_missing_values():
    assert mask_free_text(None) is None and mask_free_text("") == ""
    assert mask_field(None) is None and mask_identifier(None, KEY) is None


# ------------------------------------------------------------------ identifiers


def test_identifier_tokens_are_a_keyed_hash_stable_for_a_key_and_different_for_another():
    first = mask_identifier("SX13812345678", KEY)
    assert first.startswith("SX[手机号#") and first.endswith("]") and "13812345678" not in first
    assert mask_identifier("SX13812345678", KEY) == first
    assert mask_identifier("SX138-1234-5678", KEY) == first  # the same number, written otherwise
    assert mask_identifier("SX13812345678", b"another key") != first
    assert mask_identifier("SX13912345678", KEY) != first  # another number, another token
    assert mask_identifier("GD110101199003074514", KEY).startswith("GD[身份证号#")


def test_identifiers_without_personal_data_are_unchanged():
    for value in ("SX202503000001", "GD-2025-000123", "XM0001", "D041"):
        assert mask_identifier(value, KEY) == value


def test_the_key_comes_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("GOVPERF_HOME", str(tmp_path))
    monkeypatch.setenv("GOVPERF_MASKING_KEY", "from the environment")
    assert masking.masking_key() == b"from the environment"
    assert not (tmp_path / "keys").exists()


def test_without_it_a_random_key_file_is_made_once_readable_by_its_owner_only(monkeypatch, tmp_path):
    monkeypatch.setenv("GOVPERF_HOME", str(tmp_path))
    monkeypatch.delenv("GOVPERF_MASKING_KEY", raising=False)
    key = masking.masking_key()
    path = tmp_path / "keys" / "masking.key"
    assert path.exists() and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(key) == 64
    assert masking.masking_key() == key  # made once, then read
    monkeypatch.setenv("GOVPERF_HOME", str(tmp_path / "elsewhere"))
    assert masking.masking_key() != key


# ------------------------------------------------------------------ in SQL


@pytest.fixture(scope="module")
def con():
    connection = duckdb.connect()
    masking.register(connection, KEY)
    yield connection
    connection.close()


def _sql(con, kind: str, values: list[str | None]) -> list[str | None]:
    con.register("vals", pa.table({"i": list(range(len(values))), "v": pa.array(values, pa.string())}))
    try:
        return [r[0] for r in con.execute(f"select {masking.mask_sql('v', kind)} from vals order by i").fetchall()]
    finally:
        con.unregister("vals")


def test_sql_masks_like_the_functions(con):
    values = [
        "办事员王小明态度很好，电话13812345678",
        "身份证110101199003074514",
        "SX13812345678",
        "SX202503000001",
        "座机010-62345678",
        "工作人员热情耐心",
        None,
        "110101199003074515",
    ]
    assert _sql(con, "free_text", values) == [mask_free_text(v) for v in values]
    assert _sql(con, "field", values) == [mask_field(v) for v in values]
    assert _sql(con, "identifier", values) == [mask_identifier(v, KEY) for v in values]


PIECES = [
    "13812345678",
    "138-1234-5678",
    "+86 139 1234 5678",
    "010-62345678",
    "(0755)2345678",
    "01062345678",
    "110101199003074514",
    "11010519491231002X",
    "110101199003074515",
    "１３８１２３４５６７８",
    "王小明",
    "张伟同志",
    "SX2025",
    "12345",
    "0",
    "-",
    " ",
    "，",
    "x",
    "许可",
    "工作人员",
    "2025-03-03 09:00:00",
    "１２３",
]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.sampled_from(PIECES), min_size=1, max_size=6))
def test_the_sql_prefilter_never_skips_a_value_python_would_mask(con, pieces):
    """The cheap regular expressions DuckDB runs first must let through every value
    the Python functions would change."""
    text = "".join(pieces)
    assert _sql(con, "free_text", [text]) == [mask_free_text(text)]
    assert _sql(con, "field", [text]) == [mask_field(text)]
    assert _sql(con, "identifier", [text]) == [mask_identifier(text, KEY)]
