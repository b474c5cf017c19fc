"""The one report renderer: Jinja2 (autoescaped) -> HTML -> WeasyPrint PDF, with a locked fetcher.

Every report goes (context built in Python from metrics) -> (template). Templates format
numbers, they never compute them. Nothing a template renders may reach outside the project's
own assets: the URL fetcher serves report_templates/ and the bundled fonts, and raises a fatal
error for anything else (file:// elsewhere, http(s)://, data from patient fields).
"""

from __future__ import annotations

import atexit
import contextlib
import datetime as dt  # noqa: F401  (attachment dates)
import functools
import gc
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import CodeType
from typing import Any
from urllib.parse import unquote, urlparse

import jinja2
from jinja2.bccache import Bucket
from markupsafe import Markup
from weasyprint import CSS, HTML, Attachment
from weasyprint.text.fonts import FontConfiguration
from weasyprint.urls import FatalURLFetchingError, URLFetcher, URLFetcherResponse

from pipeline import formatting
from pipeline.fonts import FONT_DIR, drawable
from pipeline.outputs import atomic_path
from pipeline.paths import TEMPLATES_DIR

# The bundled DejaVu Sans (pipeline/fonts.py) is served under report_templates/fonts/.
FONT_URL_DIR = TEMPLATES_DIR / "fonts"


class LockedFetcher(URLFetcher):
    """Serves only the project's template assets and bundled fonts; anything else is fatal."""

    def fetch(self, url: str, headers: Any = None) -> URLFetcherResponse:
        parsed = urlparse(url)
        if parsed.scheme != "file":
            raise FatalURLFetchingError(f"blocked fetch of {url!r}: reports use local assets only")
        path = Path(unquote(parsed.path)).resolve()
        if path.is_relative_to(FONT_URL_DIR):
            target = (FONT_DIR / path.relative_to(FONT_URL_DIR)).resolve()
            allowed = target.is_relative_to(FONT_DIR) and target.suffix == ".ttf"
        else:
            target = path
            allowed = path.is_relative_to(TEMPLATES_DIR.resolve()) and path.suffix in {
                ".css", ".svg", ".png", ".icc"}
        if not allowed or not target.is_file():
            raise FatalURLFetchingError(f"blocked fetch of {url!r}: not a report asset")
        return URLFetcherResponse(url, target.read_bytes())


# Export text is printed as typed, but some characters cannot be "typed" on paper: C0/C1
# controls (no glyph; PDF/A forbids .notdef) print as U+FFFD, characters the bundled fonts
# lack as [U+XXXX] (fonts.drawable), and explicit bidi controls
# (U+202E RIGHT-TO-LEFT OVERRIDE in a patient id turned "abc.fdp · course X" into
# "pdf.cba · X esruoc") are dropped. WeasyPrint 70 ignores CSS unicode-bidi, so a value holding
# right-to-left script is isolated in the text itself (FSI … PDI, what <bdi> does in a browser).
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
# LRE RLE PDF LRO RLO LRI RLI: dropped. FSI/PDI are kept when paired (ours, or harmless).
_EMBEDDING = re.compile(r"[\u202a-\u202e\u2066\u2067]")
_RTL = re.compile(r"[\u0590-\u08ff\ufb1d-\ufdff\ufe70-\ufefc\U00010800-\U00010fff\U0001e800-\U0001efff]")
_FSI, _PDI = "\u2068", "\u2069"


def _balance_isolates(text: str) -> tuple[str, bool]:
    """(text with every FSI closed and every stray PDI dropped, whether one isolate spans it)."""
    out, depth, spans = [], 0, text.startswith(_FSI)
    for i, char in enumerate(text):
        if char == _PDI:
            if depth == 0:
                continue
            depth -= 1
            if depth == 0 and i < len(text) - 1:
                spans = False
        elif char == _FSI:
            depth += 1
        out.append(char)
    return "".join(out) + _PDI * depth, spans and depth == 0 and text.endswith(_PDI)


def isolate_bidi(text: str) -> str:
    """`text` as a bidi island: embeddings and overrides removed (so no Latin letter or digit is
    ever shown reversed, and no mirrored `<`/`>` glyph confuses the PDF's text layer), and text
    holding right-to-left script wrapped in FSI…PDI so its natural reordering cannot move the
    words printed before or after it. Hebrew and Arabic still read right to left. Text with
    neither is returned unchanged; isolating twice changes nothing."""
    text = _EMBEDDING.sub("", text)
    spans = False
    if _FSI in text or _PDI in text:
        text, spans = _balance_isolates(text)
    return _FSI + text + _PDI if _RTL.search(text) and not spans else text


# Long free text is cut where it is printed (a 100,000-character provider name on 16 sessions made
# a 1,683-page payer packet that WeasyPrint was still laying out after 500 s): every value a
# template prints is cut to FIELD_CHARS, our own sentences and joined lists (the `prose` filter)
# to PROSE_CHARS, each with a visible marker giving the full length and where the full text is
# (the attached CSV of a payer packet, the JSON beside a report). Contexts, JSON and CSV keep the
# full value (README "Outputs", long text in the PDFs).
FIELD_CHARS = 200  # ~12 lines in the narrowest data column; real names, ids and events are shorter
PROSE_CHARS = 3000  # our longest sentence is under 1,000; it may quote export text
FULL_TEXT_IN_JSON = "the report's JSON file"
FULL_TEXT_IN_CSV = "the attached CSV"


class Prose(str):
    """A sentence of our own (methods, captions, notes): printed whole up to PROSE_CHARS."""


def prose(value: Any) -> Any:
    """Jinja filter `prose`: mark text built by our code, so the field limit does not cut it."""
    return Prose(value) if isinstance(value, str) and not isinstance(value, Markup) else value


def cut_text(text: str, limit: int, full_text_in: str) -> str:
    """`text`, or its first `limit` characters and "… [cut: N characters; full text in …]"."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]} … [cut: {len(text):,} characters; full text in {full_text_in}]"


def printable(value: Any, full_text_in: str = FULL_TEXT_IN_JSON) -> Any:
    """Jinja `finalize`: every `{{ value }}` of data text goes through here before escaping: cut
    when long, then made printable. Our own Markup (charts, macro output) is left alone."""
    if isinstance(value, str) and not isinstance(value, Markup):
        limit = PROSE_CHARS if isinstance(value, Prose) else FIELD_CHARS
        text = cut_text(value, limit, full_text_in)
        return isolate_bidi(drawable(_CONTROL.sub("\ufffd", text)))
    return value


# WeasyPrint breaks a word that does not fit (overflow-wrap) by re-laying out the rest of the
# text at every break: quadratic, 0.6 s for one 2 000-character name in a table cell and 48 s
# for 20 000. A zero-width space every few characters of such a run gives the line breaker
# ordinary break opportunities (linear again); the text reads and extracts the same.
LONG_RUN_CHARS = 120  # runs without white space longer than this get soft breaks (a SHA-256 is 64)
SOFT_BREAK_EVERY = 8  # fewer characters than the narrowest data column holds
_TEXT_NODE = re.compile(r">([^<]+)<")
_CHAR = r"(?:&#?\w+;|[^\s&<>])"  # one character of escaped HTML text: an entity or a character
_LONG_RUN = re.compile(f"{_CHAR}{{{LONG_RUN_CHARS + 1},}}")
_UNIT = re.compile(f"{_CHAR}{{1,{SOFT_BREAK_EVERY}}}")


def soft_break_long_runs(html: str) -> str:
    """Insert U+200B into very long runs of body text (never into tags, attributes or <head>)."""
    head, body_tag, body = html.partition("<body")
    if not body_tag:
        return html

    def run(match: re.Match[str]) -> str:
        return "\u200b".join(_UNIT.findall(match.group()))

    def text(match: re.Match[str]) -> str:
        return ">" + _LONG_RUN.sub(run, match.group(1)) + "<"

    return head + body_tag + _TEXT_NODE.sub(text, body)


class CompiledTemplates(jinja2.BytecodeCache):
    """Compiled templates kept in memory and shared by the environments of one `full_text_in`:
    compiling monthly.html.j2 and the templates it includes takes ~50 ms, once per process now
    instead of once per report. A template is looked up by its name, file, source checksum and
    the names of the environment's filters (Jinja checks filters, and folds constant
    expressions through them and `finalize`, when it compiles), so an environment only ever
    runs code compiled from the same source in an environment set up like it: a filter of a
    given name is the same function in every environment (make_environment's, and the payer
    batch's `score`); one that is not must get its own `full_text_in`."""

    def __init__(self) -> None:
        self._code: dict[str, CodeType] = {}
        self._lock = threading.Lock()

    def get_bucket(self, environment: jinja2.Environment, name: str, filename: str | None,
                   source: str) -> Bucket:
        key = "|".join([self.get_cache_key(name, filename), *sorted(environment.filters)])
        bucket = Bucket(environment, key, self.get_source_checksum(source))
        self.load_bytecode(bucket)
        return bucket

    def load_bytecode(self, bucket: Bucket) -> None:
        with self._lock:
            bucket.code = self._code.get(f"{bucket.key}|{bucket.checksum}")

    def dump_bytecode(self, bucket: Bucket) -> None:
        if bucket.code is not None:
            with self._lock:
                self._code[f"{bucket.key}|{bucket.checksum}"] = bucket.code


@functools.cache
def compiled_templates(full_text_in: str) -> CompiledTemplates:
    """The compiled templates of every environment whose cut values point to `full_text_in`."""
    return CompiledTemplates()


def make_environment(full_text_in: str = FULL_TEXT_IN_JSON) -> jinja2.Environment:
    """The Jinja environment; `full_text_in` names where a cut value is printed whole."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
        bytecode_cache=compiled_templates(full_text_in),
        autoescape=jinja2.select_autoescape(enabled_extensions=("html", "j2", "xml"),
                                            default_for_string=True, default=True),
        undefined=jinja2.StrictUndefined,
        finalize=functools.partial(printable, full_text_in=full_text_in),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(formatting.FILTERS)
    env.filters["prose"] = prose
    # for the parts of a composed value (`a ~ " – " ~ b`, `names | map("isolate") | join`):
    # each part is cut like a field, the composed value is then marked `prose`
    env.filters["isolate"] = lambda value: (
        isolate_bidi(cut_text(str(value), FIELD_CHARS, full_text_in)) if value is not None
        else value)
    return env


# WeasyPrint builds several hundred thousand Python objects per document (boxes, styles, layout
# copies per page attempt) and keeps most of them until the PDF is written: the collector's
# full passes over the whole heap found almost nothing to free and took ~1.3 s of a 12-page
# report's ~3 s in WeasyPrint. The young generations are still collected (they hold the
# short-lived cycles), so memory stays where it was; a full pass runs again after the document.
FULL_PASS_THRESHOLD = 1_000_000  # young-generation passes before a full pass: in effect none


_pause_lock = threading.Lock()
_pause: dict[str, Any] = {"depth": 0, "thresholds": None}  # nested or concurrent renders


@contextlib.contextmanager
def no_full_collections() -> Iterator[None]:
    """Python's cyclic garbage collector without its full (oldest-generation) passes; the
    thresholds come back when the last of any nested or concurrent pauses ends."""
    with _pause_lock:
        if _pause["depth"] == 0:
            _pause["thresholds"] = young, middle, old = gc.get_threshold()
            gc.set_threshold(young, middle, max(old, FULL_PASS_THRESHOLD))
        _pause["depth"] += 1
    try:
        yield
    finally:
        with _pause_lock:
            _pause["depth"] -= 1
            if _pause["depth"] == 0:
                gc.set_threshold(*_pause["thresholds"])


@dataclass(frozen=True)
class PageStyles:
    """report.css and the page size parsed, with the fonts report.css loads (its @font-face
    rules, written to a temporary folder and added to a fontconfig/Pango font map): built once
    per process and page size, and shared by every Renderer of that size. Rebuilding them for
    each report cost ~20 ms, and a fresh font map made Pango open and measure every face and
    size again (~0.1 s more per payer packet). The same document renders to the same bytes
    with fresh or shared styles (tests/test_render.py). `lock`: one document at a time uses
    them (Pango's font map is not thread-safe); payer workers are processes, each with its own.
    A document's own @font-face rule would add its face to the shared font map: our templates
    have none, and export text cannot add one (it is escaped).
    """

    fetcher: LockedFetcher
    fonts: FontConfiguration
    stylesheets: list[CSS]
    lock: threading.Lock


_page_styles: dict[str, PageStyles] = {}
_page_styles_lock = threading.Lock()


def page_styles(page_size: str) -> PageStyles:
    """The shared PageStyles of `page_size` ("Letter", any case, or A4 for anything else)."""
    size = "Letter" if page_size.lower() == "letter" else "A4"
    with _page_styles_lock:
        if size not in _page_styles:
            fetcher, fonts = LockedFetcher(), FontConfiguration()
            base = (TEMPLATES_DIR / "report.css").read_text(encoding="utf-8")
            _page_styles[size] = PageStyles(fetcher, fonts, [
                CSS(string=base, base_url=str(TEMPLATES_DIR) + "/", url_fetcher=fetcher,
                    font_config=fonts),
                CSS(string=f"@page {{ size: {size}; }}", url_fetcher=fetcher, font_config=fonts),
            ], threading.Lock())
        return _page_styles[size]


# dropped before the interpreter tears its modules down, so each font map's temporary folder
# of font files is removed (FontConfiguration.__del__) on every normal exit
atexit.register(_page_styles.clear)


@dataclass
class Renderer:
    """The Jinja environment, and the stylesheets, fonts and fetcher shared by the process
    (page_styles). Cheap to build: the costly parts are built once per process.
    """

    page_size: str = "A4"
    full_text_in: str = FULL_TEXT_IN_JSON  # where a value cut in the PDF is whole
    env: jinja2.Environment = field(init=False)
    fetcher: LockedFetcher = field(init=False)
    fonts: FontConfiguration = field(init=False)
    _stylesheets: list[CSS] = field(init=False)
    _lock: threading.Lock = field(init=False)

    def __post_init__(self) -> None:
        self.env = make_environment(self.full_text_in)
        styles = page_styles(self.page_size)
        self.fetcher, self.fonts = styles.fetcher, styles.fonts
        self._stylesheets, self._lock = styles.stylesheets, styles.lock

    def html(self, template: str, context: dict[str, Any]) -> str:
        return self.env.get_template(template).render(**context)

    def pdf(
        self,
        html: str,
        target: Path,
        created: dt.datetime,
        pdf_variant: str | None = None,
        attachments: list[tuple[str, bytes, str]] | None = None,
    ) -> None:
        """Write the PDF, tagged (README "Tagged PDFs"). Title, author, subject, language and
        dates come from the HTML head
        (<title>, <meta name=author/description>, <html lang>, dcterms.created), so the same
        input gives byte-identical output.

        attachments: (file name, bytes, description); built fresh per render (single-use).
        """
        with self._lock, no_full_collections():  # parsing the HTML is WeasyPrint's work too
            self._pdf(html, target, created, pdf_variant, attachments)

    def _pdf(self, html: str, target: Path, created: dt.datetime, pdf_variant: str | None,
             attachments: list[tuple[str, bytes, str]] | None) -> None:
        document = HTML(string=soft_break_long_runs(html), base_url=str(TEMPLATES_DIR) + "/",
                        url_fetcher=self.fetcher)
        files = [
            Attachment(string=data, name=name, description=description, url_fetcher=self.fetcher,
                       created=created, modified=created, relationship="Source")
            for name, data, description in (attachments or [])
        ]
        # tagged PDF: a structure tree in reading order, the document language (<html lang>)
        # and the title shown by viewers; kept with the PDF/A variant of payer packets
        options: dict[str, Any] = {"attachments": files, "pdf_tags": True}
        if pdf_variant:
            options["pdf_variant"] = pdf_variant
        # written beside the target and renamed: a full disk or a crash never leaves a
        # truncated PDF under the report's name
        with atomic_path(target) as partial:
            document.write_pdf(partial, stylesheets=self._stylesheets, font_config=self.fonts,
                               uncompressed_pdf=False, **options)
