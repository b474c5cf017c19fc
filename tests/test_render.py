"""The shared renderer: locked URL fetcher, autoescaping, font subsetting and embedding."""

from __future__ import annotations

import gc
import re
import subprocess
import sys
import threading
from datetime import datetime
from pathlib import Path
from typing import Any

import jinja2
import pytest
from weasyprint import HTML
from weasyprint.urls import FatalURLFetchingError

from pipeline.paths import TEMPLATES_DIR
from pipeline.render import FONT_URL_DIR, FULL_TEXT_IN_CSV, LockedFetcher, Renderer, no_full_collections

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
    # 600 rows: ~37 passes of generation 1 and 2 full ones with the default thresholds
    rows = "".join(f"<tr><td>{i}</td><td>row {i}</td></tr>" for i in range(600))
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


# The stylesheets and fonts are parsed and loaded once per process and shared by every Renderer
# (render.page_styles), and compiled templates are kept (render.CompiledTemplates): the bytes of
# a document must not depend on what the process rendered before.
SVG_TEXT = ('<svg xmlns="http://www.w3.org/2000/svg" width="200" height="40" viewBox="0 0 200 40">'
            '<text x="4" y="16" font-family="DejaVu Sans" font-size="11">PHQ-9 · n 12</text>'
            '<text x="4" y="34" font-family="DejaVu Sans" font-weight="bold" font-size="7">'
            'Week 4</text></svg>')
SHARED_DOCS = {
    # sizes, weights, slant, non-ASCII, a chart's SVG text (the "DejaVu Sans" faces)
    "a": ('<h1>Monthly</h1><p>Text <b>bold</b> <i>italic</i> <b><i>both</i></b> 53.6% (45.1–61.9)'
          '</p><table><tr><th>Unit</th><td class="num">12</td></tr></table><div class="chart">'
          + SVG_TEXT + '</div>', None),
    # PDF/A-3b with an attachment, as payer packets are written; other sizes and characters
    "b": ('<h2>Packet</h2><p class="note">Ünïcode — ≥ 11 · “quoted” שלום</p><h3>Scores</h3>'
          '<p><b>18</b> → <i>7</i></p>', "pdf/a-3b"),
}


def shared_doc_html(name: str) -> str:
    body, _ = SHARED_DOCS[name]
    html = Renderer().html("base.html.j2", {"doc": doc(title=f"Shared {name}")})
    return html.replace("</body>", body + "</body>")


def render_shared_doc(name: str, target: Path, renderer: Renderer | None = None) -> None:
    _, variant = SHARED_DOCS[name]
    (renderer or Renderer()).pdf(shared_doc_html(name), target, created=CREATED,
                                 pdf_variant=variant,
                                 attachments=[("rows.csv", b"a,b\n1,2\n", "rows")] if variant else None)


def test_renders_after_other_renders_give_the_bytes_of_a_fresh_process(tmp_path: Path) -> None:
    for order in (("a", "b"), ("b", "a")):  # each document first and second in a process
        for name in order:
            render_shared_doc(name, tmp_path / f"{order[0]}-then-{name}.pdf")
    render_shared_doc("a", tmp_path / "again-a.pdf", Renderer(page_size="Letter"))  # other styles
    render_shared_doc("a", tmp_path / "again-a.pdf")
    for name in SHARED_DOCS:  # each document alone in a new Python process
        fresh = tmp_path / f"fresh-{name}.pdf"
        subprocess.run([sys.executable, "-c", "import sys, test_render as t; from pathlib import "
                        "Path; t.render_shared_doc(sys.argv[1], Path(sys.argv[2]))", name, fresh],
                       check=True, cwd=Path(__file__).parent)
        assert (tmp_path / f"a-then-{name}.pdf").read_bytes() == fresh.read_bytes(), name
        assert (tmp_path / f"b-then-{name}.pdf").read_bytes() == fresh.read_bytes(), name
    assert (tmp_path / "again-a.pdf").read_bytes() == (tmp_path / "fresh-a.pdf").read_bytes()


def test_renderers_share_the_parsed_stylesheets_and_fonts_of_their_page_size() -> None:
    first, second = Renderer(), Renderer(page_size="a4", full_text_in=FULL_TEXT_IN_CSV)
    letter = Renderer(page_size="LETTER")
    assert second.fonts is first.fonts and second._stylesheets is first._stylesheets
    assert letter.fonts is not first.fonts and letter._stylesheets is not first._stylesheets
    assert letter._stylesheets is Renderer(page_size="letter")._stylesheets
    assert second.env is not first.env  # each Renderer still has its own environment


def test_letter_and_a4_renderers_print_their_own_page_size(tmp_path: Path) -> None:
    for size, points in (("A4", (595.28, 841.89)), ("Letter", (612, 792)), ("A4", (595.28, 841.89))):
        target = tmp_path / f"{size}.pdf"
        renderer = Renderer(page_size=size)
        renderer.pdf(renderer.html("base.html.j2", {"doc": doc()}), target, created=CREATED)
        info = subprocess.run(["pdfinfo", str(target)], capture_output=True, text=True,
                              check=True).stdout
        width, height = (float(v) for v in re.search(r"Page size:\s+([\d.]+) x ([\d.]+)",
                                                     info).groups())
        assert (round(width, 2), round(height, 2)) == points, size


def test_a_template_is_compiled_once_per_process_and_only_reused_by_a_like_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    compiled: list[str | None] = []
    real_compile = jinja2.Environment.compile

    def counting_compile(self: jinja2.Environment, source: Any, name: str | None = None,
                         *args: Any, **kwargs: Any) -> Any:
        compiled.append(name)
        return real_compile(self, source, name, *args, **kwargs)

    monkeypatch.setattr(jinja2.Environment, "compile", counting_compile)
    context = {"doc": doc(title="Compiled once")}
    first = Renderer(full_text_in="compiled-once test").html("base.html.j2", context)
    again = Renderer(full_text_in="compiled-once test").html("base.html.j2", context)
    assert compiled == ["base.html.j2"] and again == first
    # payer.html.j2 uses the `score` filter the payer batch adds: an environment without it
    # never runs the code compiled where it existed (Jinja checks filters when compiling)
    payer = Renderer(full_text_in="compiled-once test")
    payer.env.filters["score"] = str
    payer.env.get_template("payer.html.j2")
    with pytest.raises(jinja2.TemplateAssertionError, match="No filter named 'score'"):
        Renderer(full_text_in="compiled-once test").env.get_template("payer.html.j2")


def test_documents_rendered_from_two_threads_at_once_are_those_of_one_thread(
    tmp_path: Path,
) -> None:
    for name in SHARED_DOCS:
        render_shared_doc(name, tmp_path / f"alone-{name}.pdf")
    errors: list[BaseException] = []

    def render(name: str, round_: int) -> None:
        try:
            render_shared_doc(name, tmp_path / f"thread-{name}-{round_}.pdf")
        except BaseException as exc:  # noqa: BLE001  (reported by the assertion below)
            errors.append(exc)

    threads = [threading.Thread(target=render, args=(name, i)) for i in range(2)
               for name in SHARED_DOCS]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    for name in SHARED_DOCS:
        for i in range(2):
            assert ((tmp_path / f"thread-{name}-{i}.pdf").read_bytes()
                    == (tmp_path / f"alone-{name}.pdf").read_bytes()), (name, i)
