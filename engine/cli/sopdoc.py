"""SOP documents in and out: `lajur import-sop`, `lajur export-sop` (engine/sopdoc registers them)."""
from __future__ import annotations

from ..sopdoc.cli import register
from .app import main

register(main)
