"""Personal data masking, applied before anything lands.

Every text value of an extract passes through here on its way into the lake:

* ID-card numbers (18 characters, the check digit verified with ISO 7064
  MOD 11-2; a random 18-digit number is left alone), mobile numbers and landline
  numbers are masked in every text field;
* personal names are masked in free text (comments, complaint content, remarks,
  reasons) and in the raw text kept in quarantine: jieba's part-of-speech tagger
  marks person names (tag ``nr``), and a few checks keep common words that its
  dictionary also tags ``nr`` (许可, 陈述, 顾客 …) from being masked;
* identifier columns (case and ticket numbers …) must stay unique and joinable,
  so a match inside one is replaced by a keyed hash (HMAC-SHA256) of the number:
  the same number gives the same token in every file, and nobody without the key
  can test a guessed number against it. The key comes from GOVPERF_MASKING_KEY,
  or from a random key file made once under the govperf home.

Free text and ordinary fields get fixed tokens: [身份证号] [手机号] [固话] [姓名].

Ingest cleans each extract in SQL in a private DuckDB. `mask_sql` wraps a column
in cheap regular-expression tests that DuckDB runs itself, and only the values
that can hold personal data reach the Python functions here (registered on the
connection by `register`). A value seen before is answered from a cache: extracts
repeat the same comments many times over.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import re
import secrets
import tempfile
import threading
from collections.abc import Callable
from functools import lru_cache

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

ID_TOKEN = "[身份证号]"
MOBILE_TOKEN = "[手机号]"
LANDLINE_TOKEN = "[固话]"
NAME_TOKEN = "[姓名]"
KEY_ENV = "GOVPERF_MASKING_KEY"

# ------------------------------------------------------------------ numbers

# Full-width digits and separators, as typed in Chinese input mode, are matched
# like their ASCII forms. One character for one, so positions do not move.
_NORMALISE = str.maketrans("０１２３４５６７８９－＋（）　ｘＸ", "0123456789-+() xX")

_ID_NUMBER = re.compile(
    r"(?<![0-9])[1-9][0-9]{5}(?:18|19|20)[0-9]{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12][0-9]|3[01])[0-9]{3}[0-9Xx](?![0-9])"
)
_MOBILE = re.compile(r"(?<![0-9])(?:(?:\+|00)?86[- ]?)?1[3-9][0-9](?:[- ]?[0-9]{4}){2}(?![0-9])")
_LANDLINE = re.compile(r"(?<![0-9])(?:\(0[1-9][0-9]{1,2}\)|0[1-9][0-9]{1,2})[- ]?[1-9][0-9]{6,7}(?![0-9])")

_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)  # 2^(17-i) mod 11
_ID_CHECK = "10X98765432"  # indexed by the weighted sum mod 11


def id_check_digit(first17: str) -> str:
    """The ISO 7064 MOD 11-2 check character of an ID number's first 17 digits."""
    return _ID_CHECK[sum(int(d) * w for d, w in zip(first17, _ID_WEIGHTS, strict=True)) % 11]


def is_id_number(value: str) -> bool:
    """An 18-character mainland ID number with a plausible birth date and a
    correct check digit."""
    value = value.translate(_NORMALISE)
    return bool(_ID_NUMBER.fullmatch(value)) and id_check_digit(value[:17]) == value[17].upper()


# (kind, pattern, token, canonical form for the keyed hash). Earlier kinds win
# where matches overlap: a phone-like run inside an ID number is part of the ID.
_NUMBER_KINDS: tuple[tuple[str, re.Pattern[str], str, Callable[[str], str]], ...] = (
    ("id", _ID_NUMBER, ID_TOKEN, lambda s: s.upper()),
    ("mobile", _MOBILE, MOBILE_TOKEN, lambda s: re.sub(r"[^0-9]", "", s)[-11:]),
    ("landline", _LANDLINE, LANDLINE_TOKEN, lambda s: re.sub(r"[^0-9]", "", s)),
)


def _number_spans(text: str) -> list[tuple[int, int, str, str]]:
    """(start, end, token, canonical number) of every ID, mobile and landline number."""
    normal = text.translate(_NORMALISE)
    spans: list[tuple[int, int, str, str]] = []
    for kind, pattern, token, canonical in _NUMBER_KINDS:
        for match in pattern.finditer(normal):
            start, end = match.span()
            if kind == "id" and id_check_digit(normal[start : start + 17]) != normal[end - 1].upper():
                continue
            if any(start < e and s < end for s, e, _, _ in spans):
                continue
            spans.append((start, end, token, f"{kind}:{canonical(match.group())}"))
    return spans


def _replace(text: str, spans: list[tuple[int, int, str]]) -> str:
    parts, position = [], 0
    for start, end, replacement in sorted(spans):
        parts += [text[position:start], replacement]
        position = end
    parts.append(text[position:])
    return "".join(parts)


# ------------------------------------------------------------------ names

# Common surnames (together they cover nearly every person in China), then the
# compound ones. A word tagged as a name that starts with none of them is not
# taken for one: jieba's dictionary tags many ordinary words `nr`.
SURNAMES = frozenset(
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢"
    "姜崔钟谭陆汪范金石廖贾夏韦付傅方白邹孟熊秦邱江尹薛闫阎段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤常"
    "温康施文牛樊葛邢安齐易乔伍庞颜倪庄聂章鲁岳翟殷詹申欧耿关兰焦俞左柳甘祝包宁尚符舒阮柯纪梅童凌毕单季裴霍"
    "涂成苗谷盛曲翁冉骆蓝路游辛靳管柴蒙鲍华喻祁蒲房滕屈饶解牟艾尤阳时穆农司卓古吉缪简车项连芦麦褚娄窦戚岑景"
    "党宫费卜冷晏席卫米柏宗瞿桂全佟应臧闵苟邬边卞姬师和仇栾隋商刁沙荣巫寇桑郎甄丛仲虞敖巩明佘池查麻苑迟邝官"
    "封谈匡鞠惠荆乐冀郁胥南班储原栗燕楚鄢劳谌奚皮粟冼蔺楼盘满闻位厉伊仝区郜海阚花权强帅屠豆朴盖练廉禹井祖漆"
    "巴丰支卿国狄平计索晋相初门云容敬来扈晁芮都普阙浦戈伏鹿薄邸雍辜羊乌母裘亓修邰赫杭况那宿鲜印逯隆茹诸战慕"
    "危玉银亢嵇公湛宾戎勾茅利於呼居揭干但尉冶元束檀衣信展阴昝智幸奉植衡富尧闭由赖萧洪"
)
COMPOUND_SURNAMES = frozenset(
    [
        "欧阳",
        "司马",
        "上官",
        "诸葛",
        "东方",
        "皇甫",
        "令狐",
        "慕容",
        "尉迟",
        "公孙",
        "夏侯",
        "长孙",
        "宇文",
        "司徒",
        "西门",
        "独孤",
        "南宫",
        "端木",
        "轩辕",
        "澹台",
        "呼延",
        "万俟",
        "申屠",
        "闻人",
        "太史",
        "钟离",
    ]
)
# Characters common in given names. A word tagged as a name whose given name has
# none of them (熊猫, 柳树, 林草) is an ordinary word.
GIVEN_NAME_CHARACTERS = frozenset(
    "伟刚勇毅俊峰强军平保东文辉力明永健世广志义兴良海山仁波宁贵福生龙元国胜学祥才发武新利清飞彬富顺杰涛昌成"
    "康星光达安岩茂林坚和彪博诚敬震振壮思豪邦承乐绍功松善厚庆磊友裕河哲江超浩亮政谦亨奇翰朗伯宏若鸣朋斌梁栋"
    "维启克伦翔旭鹏泽晨辰士建致炎德泰盛雄琛钧冠策腾楠榕风航弘宇轩睿皓铭昊宸奕硕凯帅鑫秀娟英华慧巧美娜静淑惠"
    "珠翠雅芝玉萍红娥玲芬芳燕彩春菊兰凤洁梅琳素云莲真环雪荣爱妹霞香月莺媛艳瑞凡佳嘉琼勤珍贞莉桂娣叶璧璐娅琦"
    "晶妍茜秋珊莎锦黛青倩婷姣婉娴瑾颖露瑶怡婵雁蓓仪荷丹蓉眉君琴蕊薇菁梦岚婕馨瑗琰韵艺咏卿聪澜纯毓悦昭冰爽琬"
    "茗羽希欣飘育滢馥筠柔竹凝晓欢霄枫芸菲寒伊亚宜可舒影荔丽阳妮宝贝梵罡恒鸿桦骅剑娇灵玛琪晴容烁唯威雯苇萱彦"
    "雨洋忠宗曼紫逸贤蝶菡敏杨柳洪涵梓诗思萌淼鹤帆畅坤蕾"
)
# Words around a name that make it one even when it looks like an ordinary word
# (工作人员许可, 林草同志).
_TITLES = frozenset(
    [
        "同志",
        "先生",
        "女士",
        "小姐",
        "老师",
        "师傅",
        "科长",
        "处长",
        "局长",
        "主任",
        "经理",
        "大姐",
        "大哥",
        "阿姨",
        "姐",
        "哥",
        "叔",
        "警官",
        "医生",
        "护士",
        "书记",
        "站长",
        "所长",
        "队长",
        "组长",
        "专员",
        "律师",
        "会计",
        "干事",
        "部长",
        "院长",
        "馆长",
    ]
)
_ROLES = frozenset(
    [
        "工作人员",
        "办事员",
        "经办人",
        "窗口人员",
        "柜员",
        "职员",
        "民警",
        "辅警",
        "网格员",
        "客服",
        "叫",
        "名叫",
        "姓名",
        "联系人",
        "申请人",
    ]
)
# A dictionary word tagged nr at least this frequent is an ordinary word used as
# a name now and then (许可 623, 陈述 763, 顾客 1365): a name only beside a title
# or role. Names of real people are mostly not in the dictionary, or rare in it.
COMMON_WORD_FREQUENCY = 300
# Government words jieba does not know and would take for names.
_GOVERNMENT_WORDS = ("史志", "史志办", "林草", "林草局", "卫健委", "高新区")
_HAN = re.compile(r"[\u4e00-\u9fd5]+")

_jieba_lock = threading.Lock()
_tagger = None


def tagger():
    """A jieba part-of-speech tagger of our own, loaded once per process and only
    when a value may hold a name: a few seconds (jieba's tables, and its dictionary
    cache, built once under the govperf home's cache folder). jieba's log lines
    are silenced."""
    global _tagger
    if _tagger is None:
        with _jieba_lock:
            if _tagger is None:
                import jieba
                import jieba.posseg

                from pipelines.settings import settings

                jieba.setLogLevel(logging.WARNING)
                tokenizer = jieba.Tokenizer()
                cache = settings().cache_dir
                try:
                    cache.mkdir(parents=True, exist_ok=True)
                    tokenizer.tmp_dir = str(cache)
                except OSError:
                    tokenizer.tmp_dir = tempfile.gettempdir()
                tokenizer.initialize()
                pos = jieba.posseg.POSTokenizer(tokenizer)
                for word in _GOVERNMENT_WORDS:
                    tokenizer.add_word(word, 1000, "n")
                _tagger = pos
    return _tagger


def _surname_length(word: str) -> int:
    return 2 if word[:2] in COMPOUND_SURNAMES else 1 if word[:1] in SURNAMES else 0


def _is_name(word: str, frequency: int, before: str, after: str) -> bool:
    if not 2 <= len(word) <= 4 or not _HAN.fullmatch(word):
        return False
    surname = _surname_length(word)
    if not surname or not 1 <= len(word) - surname <= 2:
        return False
    if after in _TITLES or before in _ROLES:
        return True
    return frequency < COMMON_WORD_FREQUENCY and any(c in GIVEN_NAME_CHARACTERS for c in word[surname:])


def _name_spans(text: str) -> list[tuple[int, int]]:
    """Where personal names are in `text`: words jieba tags as person names (nr),
    and a surname jieba cut off from its given name (王 + 桂兰, 吴 + 建国)."""
    pos = tagger()
    frequency = pos.tokenizer.FREQ
    words, position = [], 0
    for pair in pos.cut(text):
        start = text.find(pair.word, position)
        if start < 0:  # jieba gives back the text piece by piece; never expected
            continue
        position = start + len(pair.word)
        words.append((pair.word, pair.flag, start))
    spans = []
    i = 0
    while i < len(words):
        word, flag, start = words[i]
        before = words[i - 1][0] if i else ""
        width = 1
        if i + 1 < len(words) and _surname_length(word) == len(word):
            given, given_flag, given_start = words[i + 1]
            after = words[i + 2][0] if i + 2 < len(words) else ""
            in_context = after in _TITLES or before in _ROLES
            if (
                given_start == start + len(word)
                and 1 <= len(given) <= 2
                and _HAN.fullmatch(given)
                and (
                    # the given name tagged as a name: 张(q) + 秀英(nr)
                    (given_flag.startswith("nr") and frequency.get(given, 0) < COMMON_WORD_FREQUENCY)
                    # the surname tagged as one, and a given name of name characters: 王(nr) + 桂兰(ns)
                    or ((flag == "nr" or len(word) == 2) and all(c in GIVEN_NAME_CHARACTERS for c in given))
                    # beside a title or role: 工作人员 + 高(a) + 建军(n)
                    or (in_context and any(c in GIVEN_NAME_CHARACTERS for c in given))
                )
            ):
                word, flag, width = word + given, "nr", 2
        if flag in ("nr", "nrfg"):
            after = words[i + width][0] if i + width < len(words) else ""
            if _is_name(word, frequency.get(word, 0) if width == 1 else 0, before, after):
                spans.append((start, start + len(word)))
                i += width
                continue
        i += 1
    return spans


# ------------------------------------------------------------------ masking values


def mask_field(text: str | None) -> str | None:
    """ID, mobile and landline numbers replaced by fixed tokens."""
    if not text:
        return text
    return _replace(text, [(s, e, token) for s, e, token, _ in _number_spans(text)])


# A longer text is masked a segment at a time, cut after a punctuation mark or a
# space: jieba's tagger needs memory in proportion to the text it reads, and
# names and numbers do not run across a sentence's end.
MASK_SEGMENT_CHARS = 5_000
_SEGMENT_END = re.compile(r"[。！？；，、,.!?;:：\s]")


def _segments(text: str) -> list[str]:
    pieces, start = [], 0
    while len(text) - start > MASK_SEGMENT_CHARS:
        end = start + MASK_SEGMENT_CHARS
        ends = [m.end() for m in _SEGMENT_END.finditer(text, start + MASK_SEGMENT_CHARS // 2, end)]
        end = ends[-1] if ends else end
        pieces.append(text[start:end])
        start = end
    pieces.append(text[start:])
    return pieces


@lru_cache(maxsize=200_000)
def mask_free_text(text: str | None) -> str | None:
    """Numbers as in `mask_field`, and personal names replaced by [姓名]."""
    if not text:
        return text
    if len(text) > MASK_SEGMENT_CHARS:
        return "".join(_mask_free_text_segment(piece) for piece in _segments(text))
    return _mask_free_text_segment(text)


def _mask_free_text_segment(text: str) -> str:
    numbers = [(s, e, token) for s, e, token, _ in _number_spans(text)]
    names = [(s, e, NAME_TOKEN) for s, e in _name_spans(text) if not any(s < ne and ns < e for ns, ne, _ in numbers)]
    return _replace(text, numbers + names)


def keyed_token(token: str, canonical: str, key: bytes) -> str:
    """[手机号#…]: an HMAC-SHA256 of the number under the masking key, so equal
    numbers give equal tokens and the token does not reveal the number."""
    digest = hmac.new(key, canonical.encode(), hashlib.sha256).hexdigest()[:20]
    return f"{token[:-1]}#{digest}]"


def mask_identifier(text: str | None, key: bytes) -> str | None:
    """Numbers replaced by keyed-hash tokens, so the identifier stays unique and
    joinable across files and sources."""
    if not text:
        return text
    spans = _number_spans(text)
    return _replace(text, [(s, e, keyed_token(token, canonical, key)) for s, e, token, canonical in spans])


# ------------------------------------------------------------------ the key


def masking_key() -> bytes:
    """GOVPERF_MASKING_KEY if set; else the key file under the govperf home,
    made once with 32 random bytes and readable by its owner only."""
    value = os.environ.get(KEY_ENV)
    if value:
        return value.encode()
    from pipelines.settings import settings

    path = settings().masking_key_file
    if not path.exists():
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=".key-")  # mode 0600
        try:
            with os.fdopen(fd, "w") as handle:
                handle.write(secrets.token_hex(32) + "\n")
            os.link(temporary, path)  # atomic, and never replaces a key another process made first
        except FileExistsError:
            pass
        finally:
            os.unlink(temporary)
    key = path.read_text().strip()
    if not key:
        raise RuntimeError(f"the masking key file {path} is empty")
    return key.encode()


def key_fingerprint(key: bytes | None = None) -> str:
    """Tells keys apart without revealing them: files are landed again under a new key."""
    return hmac.new(key or masking_key(), b"govperf masking key fingerprint", hashlib.sha256).hexdigest()[:16]


# ------------------------------------------------------------------ SQL

# Every number pattern holds seven digits in a row, or three and four digits
# around a separator; most values have neither and skip the rest of the work.
_NUMBER_HINT = "[0-9０-９]{7}|[0-9０-９]{3}[-－ 　][0-9０-９]{4}"
# A superset of the patterns above in RE2, which has no lookaround: it spares
# Python the values such as case numbers that have long digit runs and no number.
_D, _NOT_D, _SEP = "[0-9０-９]", "[^0-9０-９]", "[-－ 　]"
_NUMBER_SHAPE = "|".join(
    [
        f"(^|{_NOT_D})[1-9１-９]{_D}{{16}}[0-9０-９XxＸｘ]($|{_NOT_D})",
        f"[1１][3-9３-９]{_D}({_SEP}?{_D}{{4}}){{2}}($|{_NOT_D})",
        f"(^|{_NOT_D})[(（]?[0０]{_D}{{2,3}}[)）]?{_SEP}?{_D}{{7,8}}($|{_NOT_D})",
    ]
)
# A name starts with a surname and has at least two Chinese characters.
_NAME_HINT = "[" + "".join(sorted(SURNAMES | {s[0] for s in COMPOUND_SURNAMES})) + "][\u4e00-\u9fd5]"

UDF_FIELD, UDF_FREE_TEXT, UDF_IDENTIFIER = "govperf_mask_field", "govperf_mask_free_text", "govperf_mask_identifier"


def _vectorised(function: Callable[[str], str | None]) -> Callable[[pa.Array], pa.Array]:
    """An Arrow UDF that calls `function` once per distinct value of a batch."""

    def apply(values: pa.Array | pa.ChunkedArray) -> pa.Array:
        if isinstance(values, pa.ChunkedArray):
            values = values.combine_chunks()
        encoded = values.dictionary_encode()
        masked = pa.array([function(v) for v in encoded.dictionary.to_pylist()], pa.string())
        return pc.take(masked, encoded.indices)

    return apply


def register(con: duckdb.DuckDBPyConnection, key: bytes | None = None) -> None:
    """Make the masking functions that `mask_sql` calls available on `con`."""
    key = key or masking_key()
    functions = {
        UDF_FIELD: mask_field,
        UDF_FREE_TEXT: mask_free_text,
        UDF_IDENTIFIER: lambda value: mask_identifier(value, key),
    }
    for name, function in functions.items():
        con.create_function(name, _vectorised(function), ["VARCHAR"], "VARCHAR", type="arrow", side_effects=False)


def _sql_str(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def mask_sql(expression: str, kind: str = "free_text") -> str:
    """A DuckDB SQL expression that masks personal data in `expression`.

    kind: "free_text" (numbers and names, fixed tokens), "field" (numbers, fixed
    tokens) or "identifier" (numbers, keyed-hash tokens). The connection needs
    `register`. DuckDB evaluates a CASE branch only for the rows that reach it,
    so only values that pass the cheap tests are handed to Python."""
    # A number to mask has at least seven characters; a name, two Chinese ones (six bytes).
    has_number = (
        f"(strlen({expression}) >= 7 and regexp_matches({expression}, {_sql_str(_NUMBER_HINT)}) "
        f"and regexp_matches({expression}, {_sql_str(_NUMBER_SHAPE)}))"
    )
    if kind == "free_text":
        condition = (
            f"({has_number} or (strlen({expression}) >= 6 and regexp_matches({expression}, {_sql_str(_NAME_HINT)})))"
        )
        function = UDF_FREE_TEXT
    elif kind == "field":
        condition, function = has_number, UDF_FIELD
    elif kind == "identifier":
        # Identifiers are mostly digits, so the cheap test would pass nearly all of them.
        condition = f"(strlen({expression}) >= 7 and regexp_matches({expression}, {_sql_str(_NUMBER_SHAPE)}))"
        function = UDF_IDENTIFIER
    else:
        raise ValueError(f"unknown masking kind {kind!r}")
    return f"(case when {condition} then {function}({expression}) else {expression} end)"
