"""The bundled fonts, and export text made drawable in them (report text and chart labels alike).

DejaVu Sans ships inside the pinned matplotlib wheel: the same font bytes on every machine, for
the PDF text and for the chart text, without committing font binaries. This module finds the
files without importing matplotlib (payer workers never import it) and reads their character
maps with fontTools, which WeasyPrint imports anyway.
"""

from __future__ import annotations

import functools
import importlib.util
import re
import unicodedata
from pathlib import Path
from typing import Any


def _matplotlib_fonts() -> Path:
    spec = importlib.util.find_spec("matplotlib")  # finds the package; does not import it
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("matplotlib is not installed: reinstall the project (make .venv/.installed)")
    return Path(next(iter(spec.submodule_search_locations))) / "mpl-data" / "fonts" / "ttf"


FONT_DIR = _matplotlib_fonts()
FONT_FILES = ("DejaVuSans.ttf", "DejaVuSans-Bold.ttf", "DejaVuSans-Oblique.ttf",
              "DejaVuSans-BoldOblique.ttf")  # the faces report.css loads


@functools.cache
def font_coverage() -> frozenset[int]:
    """Code points some bundled face can draw (reports and charts use only these fonts; the
    oblique faces lack Arabic, which Pango then takes from an upright face)."""
    return frozenset().union(*(_character_map(name) for name in FONT_FILES))


def _open(name: str) -> Any:
    """One bundled face, read lazily by fontTools, its glyphs named by their index: the face's
    own glyph names (its 'post' table) are never needed and took half the time to read."""
    from fontTools.ttLib import TTFont

    font = TTFont(str(FONT_DIR / name), lazy=True)
    font.setGlyphOrder([f"glyph{index:05d}" for index in range(font["maxp"].numGlyphs)])
    return font


@functools.cache
def _character_map(name: str) -> dict[int, str]:
    """Code point -> glyph of one bundled face (read once per process: ~4 ms a face)."""
    with _open(name) as font:
        return font["cmap"].getBestCmap()


@functools.cache
def _advances(name: str) -> dict[int, float]:
    """Code point -> advance width in em of one bundled face (read once per process)."""
    with _open(name) as font:
        metrics, per_em = font["hmtx"].metrics, font["head"].unitsPerEm
        return {code: metrics[glyph][0] / per_em for code, glyph in _character_map(name).items()}


def drawable(text: str) -> str:
    """Characters the bundled fonts cannot draw (emoji, CJK) as a visible `[U+1F489]`: an
    empty box would hide what was there, its text layer would repeat whichever missing
    character came first, and PDF/A forbids references to the .notdef glyph. Format
    characters (zero-width joiners, variation selectors, bidi isolates) are left alone."""
    if text.isascii():
        return text
    covered = font_coverage()
    return "".join(
        c if ord(c) in covered or unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp")
        else f"[U+{ord(c):04X}]"
        for c in text)


MAX_LABEL_CHARS = 80  # per line; the longest built-in label (a forest-plot row) has 63
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_BIDI_CONTROL = re.compile(r"[\u202a-\u202e\u2066-\u2069]")


def chart_label(text: str, limit: int = MAX_LABEL_CHARS) -> str:
    """Export text as a chart label: each line at most `limit` characters (the middle elided
    with "…", so the start and the "· n 12" tail stay readable), control characters shown as
    U+FFFD, explicit bidi embeddings/overrides dropped (one would reverse the rest of a composed
    label such as "This clinic, <id> (PHQ-9) · n 12"). The report's tables print the full text.
    """
    text = drawable(_BIDI_CONTROL.sub("", _CONTROL.sub("\ufffd", str(text))))
    lines = []
    for line in text.split("\n"):
        if len(line) > limit:
            head = (limit - 1) * 2 // 3
            line = line[:head] + "…" + line[len(line) - (limit - 1 - head):]
        lines.append(line)
    return "\n".join(lines)


def text_width(text: str, size: float, bold: bool = False) -> float:
    """Width of one line of `text` set at `size` in DejaVu Sans (no kerning; a character the
    face lacks counts as 0.6 em), in the unit of `size`: for laying out chart labels."""
    advances = _advances(FONT_FILES[1] if bold else FONT_FILES[0])
    return size * sum(advances.get(ord(c), 0.6) for c in text)
