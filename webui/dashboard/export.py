"""A page's Tables as files: XLSX (every table a sheet; the first choice) or CSV (one table).

Formula-safe by the OWASP rule (CSV injection): a text cell starting with `=`, `+`, `-`, `@`,
tab or carriage return would be run as a formula by a spreadsheet (`=HYPERLINK(...)` leaking
data, `+cmd|' /C calc'!A0` starting a program). In CSV such a cell gets a leading `'`; in XLSX
it is written as a string cell, never a formula. Numbers stay numbers.

CSV is written the way Excel in the user's locale reads it: for Indonesian a semicolon
separator and a decimal comma (Excel's list separator there is `;`, because `,` is the
decimal mark), for English a comma and a decimal point; always UTF-8 with a BOM, so Excel
does not read it as ANSI.
"""
from __future__ import annotations

import csv
import io
import re

from engine import dashboard

from .labels import labels, locale_name, titles, yes_no

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
XLSX_MIME = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
CSV_MIME = "text/csv; charset=utf-8"


def safe_text(value: str) -> str:
    """A text cell a spreadsheet will not run as a formula (for CSV)."""
    return "'" + value if value.startswith(FORMULA_START) else value


def header(table: dashboard.Table) -> list[str]:
    names = labels()
    return [names.get(c, c) for c in table.columns]


def _csv_cell(value, decimal_comma: bool) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return yes_no(value)
    if isinstance(value, float):
        return str(value).replace(".", ",") if decimal_comma else str(value)
    if isinstance(value, int):
        return str(value)
    return safe_text(str(value))


def to_csv(table: dashboard.Table) -> bytes:
    decimal_comma = not locale_name().startswith("en")
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";" if decimal_comma else ",", lineterminator="\r\n")
    writer.writerow([safe_text(h) for h in header(table)])
    for row in table.rows:
        writer.writerow([_csv_cell(v, decimal_comma) for v in row])
    return ("\ufeff" + out.getvalue()).encode("utf-8")  # BOM: Excel then reads UTF-8 correctly


def _sheet_title(title: str, used: set[str]) -> str:
    base = re.sub(r"[\[\]:*?/\\]", " ", title)[:31] or "Sheet"
    name, n = base, 2
    while name in used:
        name = f"{base[:28]} {n}"
        n += 1
    used.add(name)
    return name


def to_xlsx(tables: dict[str, dashboard.Table]) -> bytes:
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell

    wb = Workbook(write_only=True)
    names, used = titles(), set()
    for key, table in tables.items():
        ws = wb.create_sheet(_sheet_title(names.get(key, key), used))

        def cell(value, ws=ws):
            if isinstance(value, bool):
                value = yes_no(value)
            if not isinstance(value, str):
                return value  # numbers stay numbers, None an empty cell
            c = WriteOnlyCell(ws, value=value)
            c.data_type = "s"  # openpyxl makes "=..." a formula; text is text
            return c
        ws.append([cell(h) for h in header(table)])
        for row in table.rows:
            ws.append([cell(v) for v in row])
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def file_name(page: str, table: str | None, filters: dashboard.Filters, ext: str) -> str:
    period = f"{filters.start or 'awal'}_{filters.end or 'kini'}"
    return f"lajur-{page}{'-' + table if table and table != page else ''}-{period}.{ext}"
