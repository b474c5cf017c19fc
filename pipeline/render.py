"""The one report renderer: Jinja2 (autoescaped) -> HTML -> WeasyPrint PDF, with a locked fetcher.

Every report goes (context built in Python from metrics) -> (template). Templates format
numbers, they never compute them. Nothing a template renders may reach outside the project's
own assets: the URL fetcher serves report_templates/ and the bundled fonts, and raises a fatal
error for anything else (file:// elsewhere, http(s)://, data from patient fields).
"""

from __future__ import annotations

import datetime as dt  # noqa: F401  (attachment dates)
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import jinja2
import matplotlib
from weasyprint import CSS, HTML, Attachment
from weasyprint.text.fonts import FontConfiguration
from weasyprint.urls import FatalURLFetchingError, URLFetcher, URLFetcherResponse

from pipeline import formatting
from pipeline.paths import TEMPLATES_DIR

# DejaVu Sans ships inside the pinned matplotlib wheel: the same font bytes on every machine,
# for the PDF text and for the chart text alike, without committing font binaries.
FONT_DIR = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
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


def make_environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
        autoescape=jinja2.select_autoescape(enabled_extensions=("html", "j2", "xml"),
                                            default_for_string=True, default=True),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(formatting.FILTERS)
    return env


@dataclass
class Renderer:
    """Holds what is costly to build once: Jinja environment, fonts, stylesheet, fetcher.

    One Renderer per process; reuse it for every document (payer batches render hundreds).
    """

    page_size: str = "A4"
    env: jinja2.Environment = field(default_factory=make_environment)
    fetcher: LockedFetcher = field(default_factory=LockedFetcher)
    fonts: FontConfiguration = field(default_factory=FontConfiguration)
    _stylesheets: list[CSS] = field(default_factory=list)

    def __post_init__(self) -> None:
        base = (TEMPLATES_DIR / "report.css").read_text(encoding="utf-8")
        page = f"@page {{ size: {'Letter' if self.page_size.lower() == 'letter' else 'A4'}; }}"
        self._stylesheets = [
            CSS(string=base, base_url=str(TEMPLATES_DIR) + "/", url_fetcher=self.fetcher,
                font_config=self.fonts),
            CSS(string=page, url_fetcher=self.fetcher, font_config=self.fonts),
        ]

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
        """Write the PDF. Title, author, subject, language and dates come from the HTML head
        (<title>, <meta name=author/description>, <html lang>, dcterms.created), so the same
        input gives byte-identical output.

        attachments: (file name, bytes, description); built fresh per render (single-use).
        """
        document = HTML(string=html, base_url=str(TEMPLATES_DIR) + "/", url_fetcher=self.fetcher)
        files = [
            Attachment(string=data, name=name, description=description, url_fetcher=self.fetcher,
                       created=created, modified=created, relationship="Source")
            for name, data, description in (attachments or [])
        ]
        options: dict[str, Any] = {"attachments": files}
        if pdf_variant:
            options["pdf_variant"] = pdf_variant
        target.parent.mkdir(parents=True, exist_ok=True)
        document.write_pdf(target, stylesheets=self._stylesheets, font_config=self.fonts,
                           uncompressed_pdf=False, **options)
