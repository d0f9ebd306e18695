"""Refresh the translation catalogue of the staff app (maintainer tool, not imported by the app).

    .venv/bin/python webui/translations/extract.py   # extract, merge into en/messages.po, compile .mo

msgids are the Indonesian source texts. Every Python module and template of webui/ is
scanned (the dashboard and notification parts share this catalogue), so running it never
drops another part's strings. New strings appear with an empty translation; fill them in
en/LC_MESSAGES/messages.po and run this again.
"""
from __future__ import annotations

from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po, write_po

WEBUI = Path(__file__).resolve().parent.parent
SKIP = ("translations/", "static/")
METHODS = [("**.py", "python"), ("templates/**.html", "jinja2")]
OPTIONS = {"templates/**.html": {"extensions": "jinja2.ext.do"}}
KEYWORDS = {"_": None, "gettext": None, "lazy_gettext": None, "ngettext": (1, 2)}


def main() -> None:
    template = Catalog(locale=None, project="Lajur", charset="utf-8")
    for filename, lineno, message, comments, context in extract_from_dir(
            WEBUI, METHODS, OPTIONS, keywords=KEYWORDS, strip_comment_tags=True):
        if filename.startswith(SKIP):
            continue
        template.add(message, None, [(filename, lineno)], auto_comments=comments, context=context)
    po_path = WEBUI / "translations" / "en" / "LC_MESSAGES" / "messages.po"
    if po_path.exists():
        with po_path.open("rb") as f:
            catalog = read_po(f, locale="en")
    else:
        catalog = Catalog(locale="en", project="Lajur", charset="utf-8")
    catalog.update(template, no_fuzzy_matching=True)
    catalog.obsolete.clear()
    with po_path.open("wb") as f:
        write_po(f, catalog, width=100, omit_header=False, sort_output=True, include_lineno=False)
    with (po_path.with_suffix(".mo")).open("wb") as f:
        write_mo(f, catalog)
    missing = [m.id for m in catalog if m.id and not m.string]
    print(f"{len(catalog)} messages, {len(missing)} without translation")
    for m in missing:
        print("  missing:", m if isinstance(m, str) else m[0])


if __name__ == "__main__":
    main()
