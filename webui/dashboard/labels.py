"""Words of the dashboard: column headers, titles, states, and numbers in the user's locale.

The same headers go on screen and into the CSV and XLSX files.
"""
from __future__ import annotations

from babel.numbers import format_decimal
from flask_babel import get_locale

from ..i18n import _


def labels() -> dict[str, str]:
    """Column headers, the same on screen and in the exports."""
    return {
        "office": _("Kantor"), "office_name": _("Nama kantor"), "process": _("SOP"), "step_no": _("Kode langkah"),
        "step": _("Langkah"), "mutu_baku": _("Mutu Baku (menit)"), "open": _("Terbuka"),
        "due_soon": _("Jatuh tempo ≤ 1 jam"), "late_open": _("Terlambat (terbuka)"), "paused": _("Dijeda"),
        "completed": _("Selesai"), "on_time": _("Tepat waktu"), "late_completed": _("Selesai terlambat"),
        "on_time_pct": _("Tepat waktu (%)"), "median_minutes": _("Median (menit kerja)"),
        "p90_minutes": _("P90 (menit kerja)"), "per_week": _("Selesai per minggu"), "officer": _("Pegawai"),
        "held": _("Dipegang"), "held_late": _("Dipegang, terlambat"), "week": _("Minggu"),
        "week_start": _("Mulai minggu"), "instances_started": _("Instans dimulai"),
        "instances_completed": _("Instans selesai"), "mon": _("Sen"), "tue": _("Sel"), "wed": _("Rab"),
        "thu": _("Kam"), "fri": _("Jum"), "sat": _("Sab"), "sun": _("Min"), "total": _("Jumlah"),
        "started": _("Instans dimulai"), "returns": _("Pengembalian (TIDAK)"),
        "instances_returned": _("Instans dikembalikan"), "return_pct": _("Instans dikembalikan (%)"),
        "instance": _("Instans"), "subject": _("Perihal"), "state": _("Status"), "person": _("Pemegang / pelaksana"),
        "ready_at": _("Siap (waktu kantor)"), "due_at": _("Batas waktu (waktu kantor)"),
        "completed_at": _("Selesai (waktu kantor)"), "working_minutes": _("Durasi (menit kerja)"),
        "late": _("Terlambat"),
        "started_at": _("Dimulai (waktu kantor)"), "started_by": _("Dimulai oleh"),
        "repeats": _("Dikerjakan ulang (TIDAK)"), "repeat_pct": _("Dikerjakan ulang (%)"),
        "pauses": _("Jeda"), "assessment": _("Penilaian"), "proposed_mutu_baku": _("Usulan Mutu Baku (menit)"),
        "note": _("Catatan hasil penilaian"), "action": _("Tindakan yang harus diambil"),
        "criterion": _("Pertanyaan evaluasi"), "answer": _("Jawaban"), "basis": _("Dasar jawaban"),
        "incidents": _("Insiden"), "followed": _("Berjalan dengan baik"),
    }


def titles() -> dict[str, str]:
    return {
        "overview": _("Per langkah SOP"), "offices": _("Per kantor"), "officers": _("Per pegawai"),
        "officer_steps": _("Median per langkah per pegawai"), "trends": _("Per minggu"),
        "heatmap": _("Langkah terlambat per hari"), "rework": _("Pengembalian (TIDAK) per SOP"),
        "drill": _("Rincian"), "instances": _("Daftar instans"),
        "drill": _("Rincian"), "sop_summary": _("Ringkasan per SOP"),
        "monitoring": _("Formulir monitoring per langkah"), "evaluation": _("Formulir evaluasi"),
    }


def figure_titles() -> dict[str, str]:
    return {
        "open": _("Langkah terbuka"), "due_soon": _("Jatuh tempo dalam satu jam"),
        "late_open": _("Langkah terbuka yang terlambat"), "paused": _("Langkah dijeda"),
        "completed": _("Langkah selesai"), "on_time": _("Selesai tepat waktu"),
        "late_completed": _("Selesai terlambat"), "late": _("Langkah terlambat"),
        "returns": _("Pengembalian (TIDAK)"),
    }


def state_words() -> dict[str, str]:
    return {"ready": _("Terbuka"), "completed": _("Selesai"), "cancelled": _("Dibatalkan")}


def locale_name() -> str:
    return str(get_locale() or "id")


def yes_no(value: bool) -> str:
    return _("ya") if value else _("tidak")


def fmt(value) -> str:
    """A table cell on screen: the exported number in the user's locale (16.0 -> '16,0')."""
    if value is None:
        return "–"
    if isinstance(value, bool):
        return yes_no(value)
    if isinstance(value, float):
        return format_decimal(value, format="#,##0.0", locale=locale_name())
    if isinstance(value, int):
        return format_decimal(value, format="#,##0", locale=locale_name())
    return str(value)
