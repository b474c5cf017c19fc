"""The shared renderer: locked URL fetcher, autoescaping, font subsetting and embedding."""

from __future__ import annotations

import gc
import subprocess
import threading
from datetime import datetime
from pathlib import Path

import pytest
from weasyprint import HTML
from weasyprint.urls import FatalURLFetchingError

from pipeline.paths import TEMPLATES_DIR
from pipeline.render import FONT_URL_DIR, LockedFetcher, Renderer, no_full_collections

CREATED = datetime(2026, 10, 31, 12, 0)
PAYLOAD = '<link rel="attachment" href="file:///etc/passwd">'


@pytest.fixture(scope="module")
def renderer() -> Renderer:
    return Renderer()


def doc(**override: str) -> dict[str, str]:
    values = {"title": "Test", "author": "Clinic", "subject": "s", "keywords": "k", "version": "0",
              "created": CREATED.astimezone().isoformat(), "clinic_name": "Clinic", "header_right": "h",
              "footer": "f"}
    values.update(override)
    return values


def test_fetcher_blocks_file_urls_outside_the_assets() -> None:
    with pytest.raises(FatalURLFetchingError):
        LockedFetcher().fetch("file:///etc/passwd")
    with pytest.raises(FatalURLFetchingError):
        LockedFetcher().fetch((TEMPLATES_DIR / ".." / "pyproject.toml").as_uri())


def test_fetcher_blocks_http() -> None:
    with pytest.raises(FatalURLFetchingError):
        LockedFetcher().fetch("http://127.0.0.1:9/style.css")
    with pytest.raises(FatalURLFetchingError):
        LockedFetcher().fetch("https://example.org/font.ttf")


def test_fetcher_serves_the_stylesheet_and_bundled_fonts() -> None:
    assert LockedFetcher().fetch((TEMPLATES_DIR / "report.css").as_uri())
    assert LockedFetcher().fetch((FONT_URL_DIR / "DejaVuSans.ttf").as_uri())


def test_autoescape_is_on_for_j2_templates(renderer: Renderer) -> None:
    assert renderer.env.autoescape("monthly.html.j2") is True  # type: ignore[operator]
    assert renderer.env.autoescape("base.html.j2") is True  # type: ignore[operator]


def test_injected_link_in_a_value_renders_as_text_and_embeds_nothing(
    renderer: Renderer, tmp_path: Path
) -> None:
    html = renderer.html("base.html.j2", {"doc": doc(title=PAYLOAD, clinic_name=PAYLOAD)})
    assert PAYLOAD not in html
    assert "&lt;link rel=&#34;attachment&#34;" in html
    target = tmp_path / "escaped.pdf"
    renderer.pdf(html, target, created=CREATED)
    attachments = subprocess.run(["pdfdetach", "-list", str(target)], capture_output=True,
                                 text=True, check=True).stdout
    assert attachments.strip().startswith("0 embedded files")
    text = subprocess.run(["pdftotext", str(target), "-"], capture_output=True, text=True,
                          check=True).stdout
    assert '<link rel="attachment"' in text
    assert "root:" not in text


@pytest.mark.parametrize("markup", [
    '<link rel="attachment" href="file:///etc/passwd">',
    '<link rel="stylesheet" href="http://127.0.0.1:9/x.css">',
    '<img src="file:///etc/hostname">',
])
def test_raw_markup_reaching_outside_fails_the_render(
    renderer: Renderer, tmp_path: Path, markup: str
) -> None:
    html = f"<!doctype html><html><head>{markup}</head><body><p>x</p>{markup}</body></html>"
    with pytest.raises(FatalURLFetchingError, match="blocked fetch"):
        renderer.pdf(html, tmp_path / "blocked.pdf", created=CREATED)


def test_harfbuzz_subsetting_is_available() -> None:
    from weasyprint.text.ffi import harfbuzz_subset

    assert harfbuzz_subset is not None


def test_fonts_are_embedded(renderer: Renderer, tmp_path: Path) -> None:
    html = renderer.html("base.html.j2", {"doc": doc(title="Fonts")})
    html = html.replace("</body>", "<p>Text <b>bold</b> <i>italic</i> 53.6% (45.1–61.9)</p></body>")
    target = tmp_path / "fonts.pdf"
    renderer.pdf(html, target, created=CREATED)
    listing = subprocess.run(["pdffonts", str(target)], capture_output=True, text=True,
                             check=True).stdout.splitlines()[2:]
    assert listing, "no fonts in the PDF"
    for line in listing:
        columns = line.split()
        assert "Report-Sans" in columns[0] or "DejaVu" in columns[0], line
        assert columns[-5] == "yes", line  # the "emb" column


def test_no_full_collection_runs_while_a_document_renders(renderer: Renderer,
                                                          tmp_path: Path) -> None:
    """WeasyPrint renders without the collector's full passes (each walked the whole heap and
    found almost nothing); young passes still run, and the thresholds come back after, also
    when the render fails."""
    before = gc.get_threshold()
    passes: list[int] = []

    def count(phase: str, info: dict[str, int]) -> None:
        # passes in this thread: another thread's explicit gc.collect() is not the render's
        if phase == "start" and threading.get_ident() == render_thread:
            passes.append(info["generation"])

    render_thread = threading.get_ident()

    html = renderer.html("base.html.j2", {"doc": doc(title="Collector")})
    rows = "".join(f"<tr><td>{i}</td><td>row {i}</td></tr>" for i in range(1500))
    html = html.replace("</body>", f"<table>{rows}</table></body>")
    heap = [[i] for i in range(200_000)]  # a report's context and modules: full passes walk it
    gc.callbacks.append(count)
    try:
        # the same document through WeasyPrint directly, with the default thresholds
        HTML(string=html, base_url=str(TEMPLATES_DIR) + "/", url_fetcher=renderer.fetcher
             ).write_pdf(tmp_path / "direct.pdf", stylesheets=renderer._stylesheets,
                         font_config=renderer.fonts)
        assert 2 in passes  # without the pause a render this size has full passes
        passes.clear()
        renderer.pdf(html, tmp_path / "collector.pdf", created=CREATED)
    finally:
        gc.callbacks.remove(count)
    assert 0 in passes and 2 not in passes
    assert gc.get_threshold() == before
    with no_full_collections():
        assert gc.get_threshold()[:2] == before[:2] and gc.get_threshold()[2] >= 10**6
        with no_full_collections():  # nested (or a second thread): restored by the outer one
            pass
        assert gc.get_threshold()[2] >= 10**6
    with pytest.raises(FatalURLFetchingError):
        renderer.pdf(html.replace("</body>", PAYLOAD + "</body>"), tmp_path / "x.pdf",
                     created=CREATED)
    assert gc.get_threshold() == before
    del heap
