"""Text bound for the terminal, with no control sequence left in it.

A file name, a CSV header or a value from an export can hold terminal control sequences
(`ESC ] 0;title BEL` retitles the window, `ESC [ 2J` clears it, a carriage return or a
right-to-left override rewrites what the line seems to say). The CLI prints every line through
`console_text` (pipeline/cli.py): each control character is shown as its code point, `[U+001B]`,
so no sequence can start and the analyst still sees what the file held (README "Running
safely").
"""

from __future__ import annotations

import re

# C0 controls but line feed and tab (carriage return included), DEL, C1 controls (8-bit CSI,
# OSC, ST ...), and the characters that reorder or break a line: direction marks, embeddings,
# overrides and isolates, line and paragraph separators.
_CONTROL = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]"
)


def console_text(text: str) -> str:
    """`text` with every control character written as `[U+XXXX]`; line breaks and tabs kept."""
    return _CONTROL.sub(lambda m: f"[U+{ord(m.group()):04X}]", text)
