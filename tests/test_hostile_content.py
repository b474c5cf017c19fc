"""Hostile export text (issue 9, part 3): markup, CSS, URLs, Jinja syntax, very long strings,
right-to-left overrides, emoji, control characters and path-like ids in the text fields of an
export print literally in every report, fetch nothing, execute nothing, and only wrap.

The export is `outcomes demo --patients 30` with values rewritten through the csv module (so
quoting stays valid, one value even holds a newline). A TCP listener on 127.0.0.1 stands in for
every URL in the payloads: it must see no connection. Each report is rendered once per module
and read back with pdftotext (`-raw`: content order, a wrapped cell's lines stay together;
`-bbox`: word boxes against the page margins), pypdf (metadata) and pdftoppm (every page
rasterises).
"""

from __future__ import annotations

import csv
import hashlib
import re
import socket
import subprocess
import threading
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from matplotlib.ticker import FixedFormatter, FixedLocator
from pypdf import PdfReader

from pipeline.charts import MAX_LABEL_CHARS, chart_label, figure, to_svg
from pipeline.config import load_config
from pipeline.ingest import ingest
from pipeline.metrics_files import run_metrics
from pipeline.render import (
    FIELD_CHARS,
    FULL_TEXT_IN_CSV,
    FULL_TEXT_IN_JSON,
    cut_text,
    isolate_bidi,
    printable,
    soft_break_long_runs,
)
from pipeline.reports.evidence.write import write_evidence_report
from pipeline.reports.payer.names import file_stem, safe_id
from pipeline.reports.payer.write import write_payer_packets
from tests.conftest import cli, query

LOAD_DAY = date(2026, 11, 28)
AS_OF = date(2026, 10, 31)
MONTH = "2026-10"  # monthly report: sites, providers, adverse events of the rolling year
PAYER_MONTH = "2026-07"  # 3 packets: ../../etc/x, a/b and the 400-character id

LONG = "".join(f"Long{i % 10}" for i in range(400))  # 2 000 characters, no space
assert len(LONG) == 2000
RLO = "\u202e"  # RIGHT-TO-LEFT OVERRIDE
RTL = f"{RLO}שלום עולם مرحبا بالعالم"
# the words of RTL and its tail as poppler extracts them ("&amp; &lt;" in a right-to-left line
# shows its edge punctuation on the other side, as Unicode bidi puts it)
RTL_WORDS = ["שלום", "עולם", "مرحبا", "بالعالم", "U+1F489", "U+1F9E0", "amp;", "&lt"]
EMOJI = "💉🧠"  # not in the bundled DejaVu Sans
EMOJI_PRINTED = "[U+1F489][U+1F9E0]"
BELL = "bell\x07here"
BELL_PRINTED = "bell\ufffdhere"

# The 30-patient demo (seed 7) puts these patients in PAYER_MONTH / the --patient run.
PATIENT_IDS = {
    "P00020": "../../etc/x",
    "P00021": "a/b",
    "P00024": "P24 (x)\\ {{ 7*7 }} <b>",
    "P00025": "L" + LONG[:399],
}
# Ingest rejects ids holding invisible characters (bidi controls, line breaks), so ids carry
# path and markup payloads, and the override goes into names.
HOSTILE_PATIENT = PATIENT_IDS["P00024"]
PROTOCOL_IDS = {"TW4": "TW4 $x^{$ <i>"}  # unbalanced mathtext for matplotlib, markup for HTML
CLINIC_NAME = "Clinic <i>&amp;</i> {{ 7*7 }}"
CONFIG = f"""\
[clinic]
name = "{CLINIC_NAME}"
"""


def payloads(port: int) -> dict[str, str]:
    return {
        "img": '<img src="file:///etc/passwd">',
        "script": "<script>alert(1)</script>",
        "bold": "<b>bold</b>",
        "table": "</td></tr></table>",
        "link": f'<link rel=stylesheet href="http://127.0.0.1:{port}/x.css">',
        "style": f"<style>@import url(http://127.0.0.1:{port}/y.css); body{{display:none}}</style>",
        "url": "url(file:///etc/passwd)",
        "jinja": "{{ 7*7 }}",
        "include": "{% include 'x' %}",
        "dollar": "${7*7}",
        "amp": "&amp; &lt;",
    }


# --- helpers ---------------------------------------------------------------------------------


def squash(text: str) -> str:
    """Text without white space, soft hyphens, zero-width spaces or bidi marks, so a value
    wrapped over lines (or marked by poppler as right-to-left) still matches."""
    return re.sub(r"[\s\u00ad\u200b\u200e\u200f\u202a-\u202e\u2066-\u2069]+", "", text)


def printed(value: str, text: str) -> bool:
    """Whether `value` prints in `text` (pdftotext -raw), allowing for wrapping and for a long
    value split over pages (running header, footer and repeated table head in between)."""
    value = squash(value)
    if value in squash(text):
        return True
    parts = [squash(line) for line in text.splitlines()]
    return value in "".join(part for part in parts if part and part in value)


def rewrite(path: Path, change: Callable[[dict[str, str]], None]) -> None:
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        columns = list(reader.fieldnames or [])
        rows = list(reader)
    for row in rows:
        change(row)
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


def hostile_export(folder: Path, port: int) -> dict[str, Any]:
    """`outcomes demo` output with hostile values written into every free-text field."""
    result = cli("demo", folder, "--patients", "30", "--seed", "7", "--end", AS_OF.isoformat())
    assert result.exit_code == 0, result.output
    p = payloads(port)
    sites = {"Riverside": p["link"], "Lakeview": RTL}
    providers = {
        "Dr Chen": f"Dr {p['bold']} {p['jinja']} {p['dollar']} {p['include']}",
        "Dr Haddad": f"{p['url']} {p['amp']} {EMOJI} {BELL}",
        "NP Rivera": "NP Line\nBreak",  # a newline inside a quoted field
        "NP Kowalski": f"NP {RLO}Kowalski",  # would print "NP ikswolaK, <next provider reversed>"
        "Dr Okafor": "Okafor" + LONG,
    }
    adverse = {"headache": p["script"], "dizziness": p["jinja"], "nausea": p["table"]}
    names = {
        "IND6": f"{p['img']} {p['script']} {p['jinja']} {p['include']}",
        "TW4": f"{p['style']} {p['link']}",
        "SINGLE": LONG,
        "MAINT": f"{RTL} {EMOJI} {p['amp']}",
    }

    def protocol(row: dict[str, str]) -> None:
        row["name"] = names[row["protocol_id"]]
        row["indication"] = p["url"]
        row["protocol_id"] = PROTOCOL_IDS.get(row["protocol_id"], row["protocol_id"])

    def patient(row: dict[str, str]) -> None:
        row["site"] = sites.get(row["site"], row["site"])
        if row["patient_id"] == "P00020":
            row["payer"], row["member_id"] = p["style"], p["img"]
        if row["patient_id"] == "P00001":
            row["diagnosis_code"] = "F33.1<script>"  # not ICD-10: rejected with its sessions
        row["patient_id"] = PATIENT_IDS.get(row["patient_id"], row["patient_id"])

    def session(row: dict[str, str]) -> None:
        row["site"] = sites.get(row["site"], row["site"])
        row["provider"] = providers.get(row["provider"], row["provider"])
        if row["adverse_events"]:
            row["adverse_events"] = ";".join(adverse.get(a, a)
                                             for a in row["adverse_events"].split(";"))
        row["protocol_id"] = PROTOCOL_IDS.get(row["protocol_id"], row["protocol_id"])
        if row["patient_id"] == "P00021":  # export course ids that climb out of a folder
            row["course_id"] = "../C/1" if row["protocol_id"] == "IND6" else "..\\C2"
        row["patient_id"] = PATIENT_IDS.get(row["patient_id"], row["patient_id"])

    def assessment(row: dict[str, str]) -> None:
        row["patient_id"] = PATIENT_IDS.get(row["patient_id"], row["patient_id"])

    rewrite(folder / "protocols.csv", protocol)
    rewrite(folder / "patients.csv", patient)
    rewrite(folder / "sessions.csv", session)
    rewrite(folder / "assessments.csv", assessment)
    return {"payloads": p, "providers": providers, "names": names, "sites": sites}


def pdf_text(pdf: Path, *options: str) -> str:
    return subprocess.run(["pdftotext", *options, str(pdf), "-"], capture_output=True,
                          text=True, check=True).stdout


WORD = re.compile(r'<word xMin="([\d.]+)" yMin="([\d.]+)" xMax="([\d.]+)" yMax="([\d.]+)">'
                  r"([^<]*)</word>")
MARGIN_X = 15 / 25.4 * 72  # report.css: 15 mm left and right


def words_outside_margins(pdf: Path) -> list[tuple[int, str, float, float]]:
    """(page, word, x min, x max) of every word box not inside the left/right page margins or
    not on the page vertically."""
    layout = pdf_text(pdf, "-bbox")
    bad = []
    for number, page in enumerate(layout.split("<page ")[1:], 1):
        width = float(re.search(r'width="([\d.]+)"', page).group(1))  # type: ignore[union-attr]
        height = float(re.search(r'height="([\d.]+)"', page).group(1))  # type: ignore[union-attr]
        for x0, y0, x1, y1, word in WORD.findall(page):
            if (float(x0) < MARGIN_X - 1 or float(x1) > width - MARGIN_X + 1
                    or float(y0) < 0 or float(y1) > height):
                bad.append((number, word[:40], float(x0), float(x1)))
    return bad


def read_index(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


# --- fixtures --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def listener() -> Iterator[dict[str, Any]]:
    """A TCP server every payload URL points at; it records any connection made to it."""
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    server.settimeout(0.2)
    state: dict[str, Any] = {"port": server.getsockname()[1], "connections": [], "stop": False}

    def serve() -> None:
        while not state["stop"]:
            try:
                conn, address = server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            state["connections"].append(address)
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield state
    state["stop"] = True
    thread.join(timeout=2)
    server.close()


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory, listener: dict[str, Any]) -> dict[str, Any]:
    """demo -> hostile rewrite -> ingest -> metrics -> monthly (CLI), evidence, payer month and
    payer --patient (CLI, with --html): every report once."""
    root = tmp_path_factory.mktemp("hostile")
    export = root / "export"
    values = hostile_export(export, listener["port"])
    config_file = root / "clinic.toml"
    config_file.write_text(CONFIG, encoding="utf-8")
    config = load_config(config_file)
    db = root / "out" / "clinic.duckdb"
    ingest(export, db, config, today=LOAD_DAY)
    run_metrics(db, AS_OF, root / "out" / "metrics", config)

    reports = root / "out" / "reports"
    result = cli("report", "monthly", "--db", db, "--month", MONTH, "--out", reports, "--config",
                 config_file)
    assert result.exit_code == 0, result.output
    write_evidence_report(db, AS_OF, reports, config)
    payer_month = root / "out" / "payer" / "month"
    write_payer_packets(db, payer_month, config, month=PAYER_MONTH, jobs=1)
    payer_patient = root / "out" / "payer" / "patient"
    result = cli("report", "payer", "--db", db, "--patient", HOSTILE_PATIENT, "--out",
                 payer_patient, "--html", "--jobs", "1", "--config", config_file)
    assert result.exit_code == 0, result.output

    pdfs = {
        "monthly": reports / f"monthly-{MONTH}.pdf",
        "evidence": reports / f"evidence-{AS_OF.isoformat()}.pdf",
    }
    month_index = read_index(payer_month / "index.csv")
    patient_index = read_index(payer_patient / "index.csv")
    for row in month_index:
        pdfs[f"payer {row['patient_id'][:20]} {row['course_id'][-20:]}"] = payer_month / row["file"]
    for row in patient_index:
        pdfs[f"payer --patient {row['course_id'][-20:]}"] = payer_patient / row["file"]
    texts = {name: pdf_text(pdf, "-raw") for name, pdf in pdfs.items()}
    return {"root": root, "db": db, "values": values, "pdfs": pdfs, "texts": texts,
            "text_of": {pdf: texts[name] for name, pdf in pdfs.items()},
            "flat": {name: squash(text) for name, text in texts.items()},
            "payer_month": payer_month, "payer_patient": payer_patient,
            "month_index": month_index, "patient_index": patient_index}


def payer_flat(run: dict[str, Any], patient_id: str) -> str:
    """Squashed text of every packet of one patient."""
    rows = [(run["payer_month"], r) for r in run["month_index"]]
    rows += [(run["payer_patient"], r) for r in run["patient_index"]]
    text_of = run["text_of"]  # pdftotext -raw of each PDF, read once
    for folder, r in rows:
        if folder / r["file"] not in text_of:
            text_of[folder / r["file"]] = pdf_text(folder / r["file"], "-raw")
    return "".join(squash(text_of[folder / r["file"]])
                   for folder, r in rows if r["patient_id"] == patient_id)


# --- nothing fetched, nothing executed, everything rendered ----------------------------------


@pytest.mark.slow
def test_every_report_rendered_and_nothing_connected_to_the_payload_urls(run, listener):
    for name, pdf in run["pdfs"].items():
        assert pdf.is_file() and pdf.stat().st_size > 10_000, name
    assert len(run["month_index"]) == 3 and len(run["patient_index"]) == 1
    assert listener["connections"] == []


@pytest.mark.slow
def test_no_local_file_was_read_or_attached(run):
    for name, pdf in run["pdfs"].items():
        assert "root:x:0:0" not in run["texts"][name], name
        attached = subprocess.run(["pdfdetach", "-list", str(pdf)], capture_output=True,
                                  text=True, check=True).stdout
        names = re.findall(r"^\d+: (.*)$", attached, flags=re.M)
        if name.startswith("payer"):
            stem = pdf.stem
            assert sorted(names) == [f"{stem}_outcomes.csv", f"{stem}_source.csv"], name
        else:
            assert names == [], name


@pytest.mark.slow
def test_a_non_icd10_diagnosis_code_is_rejected_not_printed(run):
    rows = query(run["db"], "SELECT value, reason FROM rejects WHERE \"column\" = 'diagnosis_code'")
    assert rows == [("F33.1<script>", "not an ICD-10 code; use the form F33.2")]
    for name, flat in run["flat"].items():
        assert "F33.1<script>" not in flat, name


# --- payloads print literally ----------------------------------------------------------------


@pytest.mark.slow
def test_monthly_prints_sites_providers_and_adverse_events_literally(run):
    flat, p = run["flat"]["monthly"], run["values"]["payloads"]
    providers = run["values"]["providers"]
    expected = [
        p["link"],  # a site
        *RTL_WORDS[:4],  # the right-to-left site, its override dropped
        providers["Dr Chen"],  # <b>, {{ 7*7 }}, ${7*7}, {% include %}
        f"{p['url']} {p['amp']} {EMOJI_PRINTED} {BELL_PRINTED}",
        "NP Line Break",  # the newline inside the quoted field is white space
        # 2 006 characters: the first FIELD_CHARS, then the marker (full text in the JSON)
        cut_text(providers["Dr Okafor"], FIELD_CHARS, FULL_TEXT_IN_JSON),
        p["script"], p["jinja"], p["table"],  # adverse-event types
        PROTOCOL_IDS["TW4"],
    ]
    for value in expected:
        assert printed(value, run["texts"]["monthly"]), value[:60]
    assert "Dr<b>bold</b>49" not in flat and "$49" not in flat  # nothing was evaluated


@pytest.mark.slow
def test_monthly_tables_continue_after_a_hostile_cell(run):
    text = squash(run["texts"]["monthly"])
    p = run["values"]["payloads"]
    # adverse-event table: the closing-tags row, then the rows after it, then the note below
    table_row = text.index(squash(p["table"] + "1/8"))
    assert table_row < text.index(squash(p["jinja"] + "1/8")) < text.index(
        squash("Infusions with at least one event of the type"))
    # site table: the <link> site, then the other sites and the total row
    site = text.index(squash("Site — October 2026"))
    assert site < text.index(squash(p["link"]), site) < text.index("All", site)


@pytest.mark.slow
def test_evidence_prints_protocol_names_literally(run):
    flat, names = run["flat"]["evidence"], run["values"]["names"]
    for protocol_id in ("IND6", "TW4", "SINGLE"):  # SINGLE: 2 000 characters, cut
        shown = cut_text(names[protocol_id], FIELD_CHARS, FULL_TEXT_IN_JSON)
        assert printed(shown, run["texts"]["evidence"]), protocol_id
    # MAINT's name starts with right-to-left script: printed as a right-to-left island, so
    # poppler lists its words in visual order; each word is there
    for word in RTL_WORDS:
        assert word in flat, word
    # the protocol id with a `$` pair prints as typed, in the text and in the forest plot label
    assert squash(f"This clinic, {PROTOCOL_IDS['TW4']}") in flat
    assert squash(f"{CLINIC_NAME} · outcomes as of") in flat
    assert "49}" not in flat and "{%include'x'%}" in flat


@pytest.mark.slow
def test_payer_packets_print_ids_and_record_values_literally(run):
    p = run["values"]["payloads"]
    etc = payer_flat(run, "../../etc/x")
    for value in ["../../etc/x", p["style"], p["img"], p["link"]]:  # id, payer, member id, site
        assert squash(value) in etc, value
    maint = etc[etc.index("MAINT–"):][:200]
    for word in RTL_WORDS:
        assert word in maint, word
    assert squash("a/b") in payer_flat(run, "a/b")
    long_id = PATIENT_IDS["P00025"]  # 400 characters: cut, whole in the attached CSV
    assert squash(cut_text(long_id, FIELD_CHARS, FULL_TEXT_IN_CSV)) in payer_flat(run, long_id)


@pytest.mark.slow
def test_ids_print_in_place_in_header_and_title(run):
    (row,) = run["patient_index"]
    assert row["patient_id"] == HOSTILE_PATIENT  # index.csv keeps the raw id
    text = pdf_text(run["payer_patient"] / row["file"], "-raw")
    assert f"Patient {HOSTILE_PATIENT} · course {row['course_id']}" in text


@pytest.mark.slow
def test_a_bidi_override_reorders_nothing(run):
    # "NP <RLO>Kowalski" printed "NP ikswolaK" and reversed whatever followed in its line
    monthly = run["texts"]["monthly"]
    assert "NP Kowalski" in monthly
    a_b = payer_flat(run, "a/b")
    assert "NPKowalski" in a_b
    for name, text in run["texts"].items():
        assert "ikswolaK" not in text and RLO not in text, name
    # the same override before Hebrew and Arabic: the words print, nothing else moves
    evidence = run["texts"]["evidence"]
    assert ";tl& ;pma&" not in evidence and "מולש" not in evidence


@pytest.mark.slow
def test_pdf_metadata_holds_the_values_as_text(run):
    (row,) = run["patient_index"]
    info = PdfReader(run["payer_patient"] / row["file"]).metadata
    course = row["course_id"].replace(RLO, "")
    assert info.title == (f"Payer documentation packet – patient {HOSTILE_PATIENT} – "
                          f"course {course}")
    assert info.author == CLINIC_NAME
    assert info.subject.startswith(f"Dates of service, scale scores, outcomes and payer "
                                   f"criteria for patient {HOSTILE_PATIENT}, course {course}")
    monthly = PdfReader(run["pdfs"]["monthly"]).metadata
    assert monthly.author == CLINIC_NAME


@pytest.mark.slow
def test_payer_html_is_escaped(run):
    (html_file,) = run["payer_patient"].glob("*.html")
    html = html_file.read_text(encoding="utf-8")
    p = run["values"]["payloads"]
    for raw in [p["img"], p["script"], p["link"], "<b>bold</b>"]:
        assert raw not in html, raw
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "{{ 7*7 }}" in html and "{% include &#39;x&#39; %}" in html


# --- layout ----------------------------------------------------------------------------------


@pytest.mark.slow
def test_no_word_leaves_the_page_margins(run):
    for name, pdf in run["pdfs"].items():
        assert words_outside_margins(pdf) == [], name


@pytest.mark.slow
def test_every_page_rasterises(run, tmp_path):
    for number, pdf in enumerate(run["pdfs"].values()):
        result = subprocess.run(["pdftoppm", "-r", "12", "-png", str(pdf),
                                 str(tmp_path / f"r{number}")], capture_output=True, text=True)
        assert result.returncode == 0 and result.stderr == "", (pdf.name, result.stderr)
        pages = len(PdfReader(pdf).pages)
        assert len(list(tmp_path.glob(f"r{number}-*.png"))) == pages


# --- payer file names ------------------------------------------------------------------------


SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*\.(pdf|html|csv)")


@pytest.mark.slow
def test_payer_files_stay_in_the_output_folder_with_safe_names(run):
    root = run["root"]
    for folder in (run["payer_month"], run["payer_patient"]):
        for path in folder.rglob("*"):
            assert path.parent == folder, path  # no sub-folder was created
            assert SAFE_NAME.fullmatch(path.name), path.name
            assert len(path.name) <= 100
    assert not (root / "etc").exists() and not (root / "out" / "etc").exists()
    assert not (run["payer_month"].parent / "C").exists()


@pytest.mark.slow
def test_payer_index_maps_each_file_to_its_raw_ids(run):
    rows = run["month_index"] + run["patient_index"]
    assert {r["patient_id"] for r in rows} == {"../../etc/x", "a/b", PATIENT_IDS["P00025"],
                                               HOSTILE_PATIENT}
    for row in rows:
        assert row["file"] == file_stem(row["patient_id"], row["course_id"]) + ".pdf"
    files = [r["file"] for r in rows]
    assert len(set(files)) == len(files)


def digest(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()[:10]


@pytest.mark.parametrize(("raw", "expected"), [
    ("P00002", "P00002"),
    ("P00002-IND6-20250602", "P00002-IND6-20250602"),
    ("../../etc/x", f"etc-x-{digest('../../etc/x')}"),
    ("a/b", f"a-b-{digest('a/b')}"),
    ("a\\b", f"a-b-{digest('a/b'.replace('/', chr(92)))}"),
    ("-rf", f"rf-{digest('-rf')}"),
    ("..", f"id-{digest('..')}"),
    (f"{RLO}abc.fdp", f"abc-fdp-{digest(RLO + 'abc.fdp')}"),
    ("x" * 41, f"{'x' * 24}-{digest('x' * 41)}"),
    ("line\nbreak", f"line-break-{digest('line' + chr(10) + 'break')}"),
])
def test_safe_id_keeps_plain_ids_and_slugs_the_rest_with_a_digest(raw, expected):
    assert safe_id(raw) == expected


def test_ids_that_slug_alike_get_different_names():
    assert safe_id("a/b") != safe_id("a\\b") != safe_id("a b")
    assert file_stem("a/b", "c") != file_stem("a b", "c")


# --- the pieces: text filter, soft breaks, chart labels --------------------------------------


def test_printable_drops_bidi_overrides_and_isolates_right_to_left_text():
    assert printable(f"{RLO}abc") == "abc"
    assert printable("שלום") == "\u2068שלום\u2069"
    assert printable(BELL) == BELL_PRINTED
    assert printable(f"Dr {EMOJI}") == f"Dr {EMOJI_PRINTED}"
    assert printable("<b>") == "<b>"  # escaping is autoescape's job, after this
    assert isolate_bidi(isolate_bidi("x שלום")) == isolate_bidi("x שלום")
    assert isolate_bidi("a\u2069b\u2068c") == "ab\u2068c\u2069"  # stray PDI dropped, FSI closed


def test_soft_breaks_go_into_long_body_text_only():
    html = (f"<head><title>{'t' * 200}</title></head><body><p title=\"{'a' * 200}\">"
            + "ab&lt;" * 50 + " short</p></body>")
    out = soft_break_long_runs(html)
    assert f"<title>{'t' * 200}</title>" in out and f"title=\"{'a' * 200}\"" in out
    body_text = out.split('">', 1)[1]
    assert "\u200b" in body_text
    assert body_text.replace("\u200b", "") == "ab&lt;" * 50 + " short</p></body>"
    assert "&l\u200b" not in body_text and "&lt\u200b;" not in body_text  # entities intact


def test_chart_labels_are_escaped_truncated_and_never_mathtext():
    fig, ax = figure(170, 60)
    ax.plot([1, 2], [1, 2], label="<script>alert(1)</script>")
    ax.plot([1, 2], [2, 1], label="TW4 $x^{$ <i>")  # unbalanced mathtext: would raise
    ax.plot([1, 2], [1, 1], label="$x^2$ " + LONG)
    ax.set_xticks([1, 2], [LONG, f"{RLO}abc {EMOJI} {BELL}"])
    ax.yaxis.set_major_locator(FixedLocator([1.5]))
    ax.yaxis.set_major_formatter(FixedFormatter(["a" * 300]))
    ax.set_title(RTL)
    ax.legend()
    svg = str(to_svg(fig))
    assert "<script>" not in svg and "&lt;script&gt;alert(1)&lt;/script&gt;" in svg
    assert "TW4 $x^{$ &lt;i&gt;" in svg  # the dollars print as typed
    texts = [t for t in re.findall(r"<text[^>]*>([^<]*)</text>", svg)]
    assert max(len(t) for t in texts) <= MAX_LABEL_CHARS
    assert any(t.startswith("$x^2$ Long0") and "…" in t for t in texts)
    assert f"abc {EMOJI_PRINTED} {BELL_PRINTED}" in texts
    assert RLO not in svg and "\x07" not in svg


def test_chart_label_keeps_both_ends_of_a_long_label():
    label = chart_label(f"This clinic, {LONG} (PHQ-9) · n 12")
    assert len(label) == MAX_LABEL_CHARS
    assert label.startswith("This clinic, Long0") and label.endswith("(PHQ-9) · n 12")
    assert chart_label("severe\n20–27") == "severe\n20–27"
