"""Text from outside (file names above all) made safe to put in a log line.

A department names its own files. A name holding a newline would otherwise start
a second, forged line in the run's log, in a check's details or in a message;
a carriage return or an escape sequence would rewrite what a terminal shows.
"""

from __future__ import annotations

import re

# C0 controls, DEL, C1 controls, and the Unicode line and paragraph separators.
_CONTROLS = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    if char in _NAMED:
        return _NAMED[char]
    code = ord(char)
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def printable(text: object) -> str:
    """`text` on one line, its control characters written as Python escapes
    (a newline becomes the two characters \\n); other text is unchanged."""
    return _CONTROLS.sub(_escape, str(text))
