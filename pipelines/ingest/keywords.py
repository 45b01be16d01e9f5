"""Keywords of citizens' free-text comments, for the complaint themes (诉求主题) of
the bulletin's "citizen voice".

At ingest, every comment of a service transaction (好差评) and of a survey
response (万人评机关) gets its keywords, stored in the canonical column
``comment_keywords`` as one string, the keywords joined by ``,`` in order of
weight (NULL when there are none). A string rather than a list keeps the lake's
columns plain types that every engine reads alike; dbt splits it
(``string_split`` in DuckDB, ``split`` in Spark).

How the keywords are taken:

* from the MASKED text only (after `masking`), so a personal name can never be
  one; the masking tokens ([姓名] [手机号] [身份证号] [固话], keyed or not) are cut
  out of the text before it is read;
* with jieba's TF-IDF extractor (``extract_tags``) on the part-of-speech
  tagger the masking module already loaded, so jieba's tables and dictionary
  cache (under the govperf home's cache folder) are loaded once per process;
* words of the parts of speech in the configuration only (nouns, verb-nouns,
  verbs, adjectives, place words such as 窗口 …; never person names ``nr``);
* a keyword has at least two characters, one of them Chinese (no numbers,
  punctuation, markup such as ``<script>``, or Latin words), and is not one of the
  configuration's stopwords (generic words such as 问题, 办理, 工作人员);
* at most ``top_k`` per text, highest TF-IDF weight first, ties by the word;
* from a text's first ``KEYWORD_TEXT_CHARS`` characters: a comment of a million
  characters is kept whole, but its themes are read from its beginning (jieba's
  tagger needs memory in proportion to the text it reads).

Each distinct text is read once: the SQL function is vectorised over the distinct
values of a batch, and answers from a cache across batches and files.

The configuration is ``reference/keywords.yaml`` under GOVPERF_CONFIG, or the
project's own (sources/reference/keywords.yaml) when a configuration has none.
"""

from __future__ import annotations

import hashlib
import re
import threading
from functools import lru_cache
from pathlib import Path

import duckdb
from pydantic import Field, field_validator

from pipelines.ingest import masking
from pipelines.reference import _Strict, load_yaml_model
from pipelines.settings import PROJECT_ROOT, settings

SEPARATOR = ","
UDF_KEYWORDS = "govperf_comment_keywords"
DEFAULT_CONFIG = PROJECT_ROOT / "sources" / "reference" / "keywords.yaml"

# The masking tokens, fixed ([姓名]) or keyed ([手机号#0a1b…]): cut out before reading.
_TOKEN = re.compile(r"\[(?:姓名|手机号|身份证号|固话)(?:#[0-9a-f]*)?\]")
# Words that name a masking token never make a keyword, whatever the configuration says.
_TOKEN_WORDS = frozenset({"姓名", "手机号", "手机", "身份证号", "身份证", "固话", "号码"})
_HAN = re.compile(r"[\u4e00-\u9fff]")
KEYWORD_TEXT_CHARS = 20_000
_PERSON_TAGS = ("nr",)  # nr, nrfg, nrt: person names


class KeywordConfig(_Strict):
    """sources/reference/keywords.yaml."""

    top_k: int = Field(ge=1, le=10)
    allow_pos: tuple[str, ...] = Field(min_length=1)
    stopwords: tuple[str, ...]

    @field_validator("allow_pos")
    @classmethod
    def _no_person_names(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for tag in value:
            if not re.fullmatch(r"[a-z]{1,4}", tag):
                raise ValueError(f"{tag!r} is not a jieba part-of-speech tag")
            if tag.startswith(_PERSON_TAGS):
                raise ValueError(f"{tag!r} tags person names, which must never be keywords")
        return value

    @field_validator("stopwords")
    @classmethod
    def _words(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for word in value:
            if not word.strip() or word != word.strip():
                raise ValueError(f"stopword {word!r} is empty or has spaces around it")
        duplicates = sorted({w for w in value if value.count(w) > 1})
        if duplicates:
            raise ValueError(f"stopwords listed twice: {', '.join(duplicates)}")
        return value


def config_path() -> Path:
    own = settings().reference_dir / "keywords.yaml"
    return own if own.exists() else DEFAULT_CONFIG


def load_config(path: Path | None = None) -> KeywordConfig:
    return load_yaml_model(path or config_path(), KeywordConfig)  # type: ignore[return-value]


def config_fingerprint() -> str:
    """Changes when the configuration does, so files are landed again."""
    return hashlib.sha256(load_config().model_dump_json().encode()).hexdigest()[:16]


_lock = threading.Lock()
_extractor = None
_config: KeywordConfig | None = None


def extractor():
    """jieba's TF-IDF extractor on the masking module's tagger (one jieba load)."""
    global _extractor, _config
    if _extractor is None:
        with _lock:
            if _extractor is None:
                import jieba.analyse

                config = load_config()
                tagger = masking.tagger()
                tfidf = jieba.analyse.TFIDF()
                tfidf.tokenizer = tagger.tokenizer
                tfidf.postokenizer = tagger
                tfidf.stop_words = set(tfidf.stop_words) | set(config.stopwords) | _TOKEN_WORDS
                _config = config
                _extractor = tfidf
    return _extractor


def _is_keyword(word: str) -> bool:
    return len(word) >= 2 and bool(_HAN.search(word)) and word not in _TOKEN_WORDS


@lru_cache(maxsize=200_000)
def comment_keywords(text: str | None) -> str | None:
    """The keywords of an already masked text, joined by SEPARATOR; None if none."""
    if not text or not _HAN.search(text):
        return None
    tfidf = extractor()
    assert _config is not None
    cleaned = _TOKEN.sub("，", text[:KEYWORD_TEXT_CHARS])
    weighted = tfidf.extract_tags(cleaned, topK=None, withWeight=True, allowPOS=_config.allow_pos)
    words = [(w, weight) for w, weight in weighted if _is_keyword(w) and SEPARATOR not in w]
    words.sort(key=lambda pair: (-round(pair[1], 9), pair[0]))
    chosen = [w for w, _ in words[: _config.top_k]]
    return SEPARATOR.join(chosen) or None


def reset() -> None:
    """Forget the loaded configuration (tests that change it)."""
    global _extractor, _config
    with _lock:
        _extractor = _config = None
    comment_keywords.cache_clear()


def register(con: duckdb.DuckDBPyConnection) -> None:
    """Make `keywords_sql`'s function available on `con`."""
    con.create_function(
        UDF_KEYWORDS,
        masking._vectorised(comment_keywords),
        ["VARCHAR"],
        "VARCHAR",
        type="arrow",
        null_handling="special",
        side_effects=False,
    )


def keywords_sql(masked_text: str) -> str:
    """A DuckDB expression: the keywords of the masked text expression."""
    return f"(case when {masked_text} is null then null::varchar else {UDF_KEYWORDS}({masked_text}) end)"
