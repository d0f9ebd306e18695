"""Reader for the SOP registry's text export: one line per table row, cells split by tabs,
some HTML left in the cells (see ../shared/sop/). The flowchart symbols are lost in this
export; only the YA/TIDAK connector labels survive, so every step's actor is a problem.
"""
from __future__ import annotations

from .model import MAX_CELLS, Cell


def read_text(data: bytes) -> list[list[Cell]]:
    text = data.decode("utf-8-sig", errors="replace").replace("\r\n", "\n")
    rows = [[Cell(part) for part in line.split("\t")] for line in text.split("\n")]
    if sum(len(r) for r in rows) > MAX_CELLS:
        raise ValueError(f"dokumen terlalu besar (lebih dari {MAX_CELLS} sel)")
    return rows
