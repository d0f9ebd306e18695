"""Printing the SOP document of a deployed version (PDF and DOCX) and importing it back.

The PDF pages are turned into PNGs with poppler's `pdftoppm` and kept in test-artifacts/
(look at them); the text on the pages is read back with `pdftotext`. The DOCX is imported
again with `lajur import-sop` and deployed: it must give the same process.
"""
from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from engine.sopdoc.deployed import document_from_bpmn
from engine.sopdoc.flowchart import lay_out
from engine.sopdoc.model import DECISION, TERMINATOR

from .conftest import service_missing
from .sopdocs import ROOT, deployed_document
from .test_cli import run  # noqa: F401 (the CLI fixture: migrated, demo seeded)

KEYS = {"dpmk-pemutakhiran-website": "dpmk", "dinsos-website-medsos": "dinsos"}


def _poppler(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        service_missing(tool, "install Debian poppler-utils (scripts/test.sh does)")
    return path


def _words(text: str) -> str:
    return re.sub(r"\s+", " ", text)


@pytest.mark.slow
@pytest.mark.parametrize("key", sorted(KEYS))
def test_pdf_prints_the_header_card_and_the_flowchart(key, run, tmp_path, artifacts_dir):
    pdf = artifacts_dir / f"sop-export-{key}.pdf"
    assert "PDF written" in run("export-sop", key, "--format", "pdf", "--out", str(pdf)).stdout
    for old in artifacts_dir.glob(f"sop-export-{key}-*.png"):
        old.unlink()
    subprocess.run([_poppler("pdftoppm"), "-png", "-r", "110", str(pdf), str(artifacts_dir / f"sop-export-{key}")],
                   check=True, timeout=120)
    pages = sorted(artifacts_dir.glob(f"sop-export-{key}-*.png"))
    assert len(pages) == 2                      # header card, then the flowchart table
    text = _words(subprocess.run([_poppler("pdftotext"), "-layout", str(pdf), "-"], check=True, timeout=60,
                                 capture_output=True, text=True).stdout)
    doc = deployed_document(tmp_path, key, 1)
    for words in ["STANDAR OPERASIONAL PROSEDUR", "Dasar Hukum", "Disahkan Oleh", "Uraian Prosedur",
                  "Pelaksana", "Mutu Baku", "Persyaratan/", "Waktu", "Output", "Halaman 2 dari 2",
                  "TIDAK: kembali ke langkah 1", doc["header"]["name"]]:
        assert words in text, words
    for no, step_text, actor, minutes, *_ in doc["steps"]:
        assert f"{minutes} menit" in text
        assert step_text.split()[0] in text


def test_flowchart_draws_symbols_connectors_and_the_tidak_loop():
    key = "dpmk-pemutakhiran-website"
    import json
    sop = json.loads((ROOT / "processes" / key / "sop.json").read_text())
    doc = document_from_bpmn((ROOT / "processes" / key / "process.bpmn").read_text(), sop)
    cells = lay_out(doc, 24.0, [22.0] * len(doc.steps))
    symbols = {(r, c): cell.symbol for (r, c), cell in cells.items() if cell.symbol}
    # Sekdin=0 Kasubbag=1 Operator=2 Petugas=3; terminators first and last, a diamond at step 3
    assert symbols == {(0, 3): TERMINATOR, (1, 1): "activity", (2, 0): DECISION, (3, 2): "activity",
                       (4, 3): TERMINATOR}
    arrows_into = {(r, c) for (r, c), cell in cells.items() for _, arrow in cell.lines if arrow}
    assert arrows_into == {(1, 1), (2, 0), (3, 2), (4, 3), (0, 3)}     # each step entered; (0, 3) by TIDAK
    assert [label for label in cells[(2, 0)].labels if label[2] == "TIDAK"]
    assert all(cells[(1, 3)].lines), "the TIDAK loop runs up through step 2's Petugas cell"


@pytest.mark.slow
@pytest.mark.parametrize("key", sorted(KEYS))
def test_exported_docx_imports_back_to_the_same_process(key, run, tmp_path, artifacts_dir):
    docx = artifacts_dir / f"sop-export-{key}.docx"
    run("export-sop", key, "--version", "1", "--format", "docx", "--out", str(docx))
    out = tmp_path / "again"
    printed = run("import-sop", str(docx), "--office", KEYS[key], "--out", str(out), "--key", key).stdout
    assert "problem" not in printed and (out / "problems.json").read_text().strip() == "[]"
    assert "deployed version 2" in run("deploy", str(out)).stdout
    first, again = deployed_document(tmp_path, key, 1), deployed_document(tmp_path, key, 2)
    assert again["steps"] == first["steps"] and again["actors"] == first["actors"]
    assert {k: v for k, v in again["header"].items() if k != "office"} == \
        {k: v for k, v in first["header"].items() if k != "office"}


def test_export_errors_are_one_line(run, tmp_path):
    proc = run("export-sop", "dpmk-pemutakhiran-website", "--version", "9", "--format", "pdf",
                 "--out", str(tmp_path / "x.pdf"), ok=False)
    assert proc.returncode == 1 and proc.stderr == "error: process 'dpmk-pemutakhiran-website' has no version 9\n"
    proc = run("export-sop", "tidak-ada", "--format", "docx", "--out", str(tmp_path / "x.docx"), ok=False)
    assert proc.stderr == "error: process 'tidak-ada' is not deployed\n"
    assert not (tmp_path / "x.pdf").exists() and not (tmp_path / "x.docx").exists()
