"""Personal data masking, applied in SQL before anything lands.

Free text from citizens (comments, complaint content, remarks) and the raw text
kept in quarantine pass through `mask_sql`. Identity-card numbers (18 digits, the
last may be X) and mainland mobile and landline numbers are replaced by fixed
tokens, so that no later step, log or bulletin can reveal them.
"""

from __future__ import annotations

# Order matters: ID numbers first, so that a phone-like run inside one is not
# masked half-way.
_PATTERNS: list[tuple[str, str]] = [
    (r"(^|[^0-9])[1-9][0-9]{5}(18|19|20)[0-9]{2}(0[1-9]|1[0-2])(0[1-9]|[12][0-9]|3[01])[0-9]{3}[0-9Xx]($|[^0-9])",
     r"\1[身份证号]\5"),
    (r"(^|[^0-9])(\+?86[- ]?)?1[3-9][0-9]{9}($|[^0-9])", r"\1[手机号]\3"),
    (r"(^|[^0-9])0[1-9][0-9]{1,2}-?[0-9]{7,8}($|[^0-9])", r"\1[固话]\2"),
]


def mask_sql(expression: str) -> str:
    """A DuckDB SQL expression that masks personal data in `expression`.

    Each pattern consumes the character around a match (RE2 has no lookaround),
    so two numbers separated by one character need a second pass."""
    masked = expression
    for pattern, replacement in _PATTERNS:
        for _ in range(2):
            masked = f"regexp_replace({masked}, '{pattern}', '{replacement}', 'g')"
    # Every pattern needs seven digits in a row; most text has none, and skips the work.
    return f"(case when regexp_matches({expression}, '[0-9]{{7}}') then {masked} else {expression} end)"
