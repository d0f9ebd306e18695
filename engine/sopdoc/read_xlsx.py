"""Reader for SOPs kept in Excel (XLSX, openpyxl).

Every sheet is read in order, row by row; a merged range keeps its text in its top-left cell
and the covered cells are empty. openpyxl does not keep drawn shapes, so an actor mark is
text ("X", "√", "◇") or a cell filled with a colour (how SOP tables are often drawn in Excel).
"""
from __future__ import annotations

import io
import zipfile

from openpyxl import load_workbook
from openpyxl.utils.exceptions import InvalidFileException

from .model import ACTIVITY, MAX_CELLS, Cell
from .read_docx import MAX_UNCOMPRESSED

MAX_ROWS, MAX_COLS = 2000, 60


def _filled(cell) -> bool:
    fill = cell.fill
    if fill is None or fill.fill_type != "solid":
        return False
    rgb = getattr(fill.fgColor, "rgb", None)
    return not (isinstance(rgb, str) and rgb.upper() in ("FFFFFFFF", "00FFFFFF", "00000000"))


def read_xlsx(data: bytes) -> list[list[Cell]]:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            if sum(i.file_size for i in z.infolist()) > MAX_UNCOMPRESSED:
                raise ValueError("XLSX terlalu besar setelah dibuka")
        book = load_workbook(io.BytesIO(data), data_only=True)
    except (zipfile.BadZipFile, KeyError, OSError, InvalidFileException) as exc:
        raise ValueError(f"XLSX tidak terbaca: {exc}") from None
    rows: list[list[Cell]] = []
    for sheet in book.worksheets:
        if sheet.max_row > MAX_ROWS or sheet.max_column > MAX_COLS:
            raise ValueError(f"lembar {sheet.title!r} terlalu besar ({sheet.max_row} baris, {sheet.max_column} kolom)")
        covered = {(r, c) for rng in sheet.merged_cells.ranges
                   for r in range(rng.min_row, rng.max_row + 1) for c in range(rng.min_col, rng.max_col + 1)
                   if (r, c) != (rng.min_row, rng.min_col)}
        for r, line in enumerate(sheet.iter_rows(), start=1):
            row = []
            for cell in line:
                if (r, cell.column) in covered:
                    row.append(Cell(merged=True))
                    continue
                value = cell.value
                text = "" if value is None else str(value)
                row.append(Cell(text, shape=ACTIVITY if _filled(cell) and not text.strip() else None))
            while row and not row[-1].text and not row[-1].shape:
                row.pop()
            rows.append(row)
            if sum(len(x) for x in rows) > MAX_CELLS:
                raise ValueError(f"dokumen terlalu besar (lebih dari {MAX_CELLS} sel)")
    return rows
