"""How long importing and printing SOP documents takes (engine/sopdoc), against deploy validation.

Figures: import of the DPMK text export, import of a DOCX (the DPMK SOP exported, and a
30-step SOP with 4 actors and 3 decisions), export of both as PDF and DOCX. Reference, in the
same run: validating the DPMK process folder as `lajur deploy` does (`load_process_folder`).
No database is needed. `--keep DIR` keeps the 30-step PDF and DOCX to look at.

    .venv/bin/python bench/bench_sopdoc.py [--repeat 5] [--keep DIR]
"""
from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from engine.bpmn import load_process_folder
from engine.sopdoc.deployed import document_from_bpmn
from engine.sopdoc.draft import import_sop
from engine.sopdoc.model import Decision, SopDocument, Step
from engine.sopdoc.render_docx import to_docx
from engine.sopdoc.render_pdf import to_pdf

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "sop" / "sop-dpmk-pemutakhiran-website.txt"


def long_sop(steps: int = 30) -> SopDocument:
    actors = ["Kepala Dinas", "Sekretaris", "Kasubbag Umum", "Pengadministrasi"]
    rows = []
    for n in range(1, steps + 1):
        decision = Decision(tidak_to=n - 2) if n % 10 == 5 else None
        rows.append(Step(no=n, text=f"Langkah {n}: memeriksa dan meneruskan berkas permohonan " * (1 + n % 3),
                         actor=actors[(n * 7) % 4], requirements="Berkas permohonan lengkap dan bernomor agenda",
                         time_text="15 menit", minutes=15, output="Berkas diteruskan", decision=decision))
    header = {"name": "SOP Uji Panjang", "number": "001/SOP/UJI/2026", "created": "2026-01-05",
              "legal_basis": ["Permenpan RB No. 35 Tahun 2012"], "office": {"name": "Dinas Uji"}}
    return SopDocument(header=header, actors=actors, steps=rows)


def timed(fn, repeat: int) -> tuple[float, float]:
    runs = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        runs.append((time.perf_counter() - t) * 1000)
    return statistics.median(runs), max(runs)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--keep", type=Path)
    args = parser.parse_args()
    folder = ROOT / "processes" / "dpmk-pemutakhiran-website"
    dpmk = document_from_bpmn((folder / "process.bpmn").read_text(), json.loads((folder / "sop.json").read_text()))
    big = long_sop()
    tmp = Path(tempfile.mkdtemp())
    (tmp / "dpmk.docx").write_bytes(to_docx(dpmk))
    (tmp / "big.docx").write_bytes(to_docx(big))
    counter = iter(range(10**6))

    def imp(path):
        return lambda: import_sop(path, tmp / f"out{next(counter)}", "dpmk", "DPMK", key="bench")

    cases = [("reference: deploy validation of processes/dpmk-pemutakhiran-website", lambda: load_process_folder(folder)),
             ("import DOCX, DPMK (5 steps)", imp(tmp / "dpmk.docx")),
             ("import DOCX, 30 steps", imp(tmp / "big.docx"))]
    if SHARED.exists():
        cases.append(("import text export, DPMK", imp(SHARED)))
    cases += [("export PDF, DPMK", lambda: to_pdf(dpmk)), ("export DOCX, DPMK", lambda: to_docx(dpmk)),
              ("export PDF, 30 steps", lambda: to_pdf(big)), ("export DOCX, 30 steps", lambda: to_docx(big))]
    print(f"{'case':72} {'median ms':>10} {'max ms':>8}")
    for name, fn in cases:
        median, worst = timed(fn, args.repeat)
        print(f"{name:72} {median:10.1f} {worst:8.1f}")
    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=True)
        (args.keep / "sop-30-steps.pdf").write_bytes(to_pdf(big))
        (args.keep / "sop-30-steps.docx").write_bytes(to_docx(big))


if __name__ == "__main__":
    main()
