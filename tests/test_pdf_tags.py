"""Tagged PDFs (issue 15, item 12): every report and payer packet carries a structure tree in
reading order, the document language and a title viewers show; payer packets stay PDF/A-3b.

Read back with qpdf (`--json`: the catalog and every structure element; `--show-object`: the
XMP metadata stream), not with the library that wrote the files.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
from pypdf import PdfReader


def objects(pdf: Path) -> dict[str, Any]:
    out = subprocess.run(["qpdf", "--json", "--json-key=qpdf", str(pdf)], capture_output=True,
                         text=True, check=True).stdout
    return json.loads(out)["qpdf"][1]


def catalog(objs: dict[str, Any]) -> dict[str, Any]:
    return objs["obj:" + objs["trailer"]["value"]["/Root"]]["value"]


def resolve(objs: dict[str, Any], value: Any) -> Any:
    if isinstance(value, str) and re.fullmatch(r"\d+ \d+ R", value):
        return objs["obj:" + value]["value"]
    return value


def structure(objs: dict[str, Any]) -> list[str]:
    """The structure types (/S) of the tree, depth first in document order."""
    types: list[str] = []

    def walk(node: Any) -> None:
        node = resolve(objs, node)
        if isinstance(node, list):
            for child in node:
                walk(child)
        elif isinstance(node, dict):
            if "/S" in node:
                types.append(node["/S"])
            if "/K" in node:
                walk(node["/K"])

    walk(catalog(objs)["/StructTreeRoot"])
    return types


def xmp(pdf: Path, objs: dict[str, Any]) -> str:
    number = catalog(objs)["/Metadata"].split()[0]
    return subprocess.run(["qpdf", f"--show-object={number}", "--filtered-stream-data",
                           str(pdf)], capture_output=True, text=True, check=True).stdout


@pytest.fixture(scope="module")
def reports(small_demo_reports: dict[str, Any]) -> dict[str, Any]:
    """tests/test_long_text.py `render(huge=False)`, built once per run (tests/conftest.py)."""
    return small_demo_reports


@pytest.mark.slow
def test_every_pdf_is_tagged_with_language_title_and_a_structure_tree(reports):
    pdfs = [reports["monthly"], reports["evidence"], *reports["packets"]]
    for pdf in pdfs:
        objs = objects(pdf)
        root = catalog(objs)
        assert root["/Lang"] == "u:en", pdf.name
        assert root["/MarkInfo"]["/Marked"] is True, pdf.name
        assert root["/ViewerPreferences"]["/DisplayDocTitle"] is True, pdf.name
        title = PdfReader(pdf).metadata.title
        assert title and title.startswith(("Monthly quality report — October 2026",
                                           "Evidence comparison as of 2026-10-31",
                                           "Payer documentation packet – patient P00025")), title
        types = structure(objs)
        assert types[0] == "/Document", pdf.name
        for kind in ("/H1", "/H2", "/P", "/Table", "/TR", "/TD"):
            assert kind in types, (pdf.name, kind)
        # reading order: the report's title is the first heading
        assert [t for t in types if re.fullmatch(r"/H\d", t)][0] == "/H1", pdf.name


@pytest.mark.slow
def test_the_structure_tree_follows_the_html(reports):
    for pdf in reports["packets"]:
        html = pdf.with_suffix(".html").read_text(encoding="utf-8")
        types = structure(objects(pdf))
        # one heading element per heading of the page, in the same order
        headings = re.findall(r"<(h[1-3])\b", html)
        assert [t for t in types if t in {"/H1", "/H2", "/H3"}] == [
            "/" + h.upper() for h in headings], pdf.name
        # a table broken across pages is two Table elements
        assert types.count("/Table") >= html.count("<table") >= 1, pdf.name


@pytest.mark.slow
def test_packets_stay_pdf_a_3b(reports):
    for pdf in reports["packets"]:
        objs = objects(pdf)
        assert catalog(objs)["/OutputIntents"][0]["/S"] == "/GTS_PDFA1"
        metadata = xmp(pdf, objs)
        assert re.search(r"pdfaid:part(?:>|=\")3", metadata), pdf.name
        assert re.search(r"pdfaid:conformance(?:>|=\")B", metadata), pdf.name
