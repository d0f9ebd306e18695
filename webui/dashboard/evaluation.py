"""The SOP monitoring and evaluation page: words for the engine's figures, and the forms as PDF.

engine.dashboard.evaluation fills Permenpan RB 35/2012's monitoring and evaluation forms
with figures and codes; this module turns them into the sentences an evaluator writes
("catatan hasil penilaian", "tindakan yang harus diambil") in the user's language, for the
screen, the exports (the same Tables, codes replaced by words) and the printed forms.
"""
from __future__ import annotations

from datetime import datetime

from flask import render_template

from engine import dashboard
from engine.sopdoc.render_pdf import html_to_pdf

from ..i18n import _
from .labels import fmt as _fmt


def fmt(value) -> str:
    """A figure in a sentence: whole minutes without decimals ("15", not "15,0")."""
    return _fmt(int(value) if isinstance(value, float) and value.is_integer() else value)


def criterion_words() -> dict[str, str]:
    """The evaluation form's questions (Permenpan RB 35/2012, annex: formulir evaluasi SOP)."""
    return {
        "performance": _("SOP mampu mendorong peningkatan kinerja"),
        "understandable": _("SOP mudah dipahami"),
        "workable": _("SOP mudah dilaksanakan"),
        "roles": _("Semua orang dapat menjalankan perannya masing-masing"),
        "problems": _("SOP mampu mengatasi permasalahan yang berkaitan dengan proses"),
        "needs": _("SOP mampu menjawab kebutuhan peningkatan kinerja organisasi"),
        "synergy": _("Sistem dan prosedur yang ada dapat bersinergi satu dengan lainnya"),
    }


def criterion_basis(c: dashboard.Criterion, e: dashboard.SopEvaluation) -> str:
    """What answered a question: the figure and the rule, or why the evaluator must judge."""
    figure = fmt(round(c.figure * 100, 1)) if c.figure is not None else None
    if c.code == "performance":
        if c.answer is None:
            return _("Belum dapat dinilai dari data: salah satu paruh periode tidak punya langkah selesai.")
        first, second = (fmt(round(x * 100, 1)) for x in e.on_time_halves)
        return _("Tepat waktu %(a)s%% pada paruh pertama periode, %(b)s%% pada paruh kedua.", a=first, b=second)
    if c.code == "understandable":
        if c.answer is None:
            return _("Belum dapat dinilai dari data: tidak ada instans yang dimulai dalam periode.")
        return _("%(p)s%% instans dikembalikan dengan keputusan TIDAK (batas %(t)s%%).", p=figure,
                 t=fmt(round(dashboard.evaluation.RETURN_TARGET * 100)))
    if c.code == "workable":
        if c.answer is None:
            return _("Belum dapat dinilai dari data: tidak ada langkah selesai yang punya batas waktu.")
        return _("%(p)s%% langkah selesai dalam Mutu Baku (target %(t)s%%).", p=figure,
                 t=fmt(round(dashboard.evaluation.ON_TIME_TARGET * 100)))
    if c.code == "roles":
        if c.answer is None:
            return _("Belum dapat dinilai dari data: tidak ada langkah yang berjalan dalam periode.")
        if c.answer:
            return _("Setiap langkah yang berjalan diselesaikan oleh pelaksananya.")
        late = [s.row.step_name for s in e.steps if s.row.late_open]
        undone = [s.row.step_name for s in e.steps if s.row.open and not s.row.completed]
        parts = []
        if late:
            parts.append(_("Langkah terbuka melewati batas waktu: %(s)s.", s=", ".join(late)))
        if undone:
            parts.append(_("Langkah yang belum pernah selesai dalam periode: %(s)s.", s=", ".join(undone)))
        return " ".join(parts)
    if c.code == "problems":
        if c.answer is None:
            return _("Belum dapat dinilai dari data: tidak ada langkah yang berjalan dalam periode.")
        return _("%(i)s instans dalam insiden, %(l)s langkah terbuka terlambat.", i=fmt(e.incidents),
                 l=fmt(sum(s.row.late_open for s in e.steps)))
    return _("Tidak dapat dinilai dari data pelaksanaan; diisi oleh tim evaluasi.")


def answer_word(answer: bool | None) -> str:
    return _("Ya") if answer is True else _("Tidak") if answer is False else _("Dinilai evaluator")


def assessment_word(code: str) -> str:
    return {"ok": _("Berjalan dengan baik"), "not_ok": _("Belum berjalan dengan baik"),
            "no_data": _("Belum ada data")}[code]


def step_note(s: dashboard.StepEvaluation) -> str:
    """Catatan hasil penilaian: the figures of one step in a sentence."""
    r = s.row
    if r.completed == 0:
        return _("Tidak ada langkah selesai dalam periode.")
    parts = [_("%(n)s selesai, %(p)s%% tepat waktu; median %(m)s, p90 %(q)s menit kerja (Mutu Baku %(mb)s).",
               n=fmt(r.completed), p=fmt(None if r.on_time_rate is None else round(r.on_time_rate * 100, 1)),
               m=fmt(r.median_minutes), q=fmt(r.p90_minutes), mb=fmt(r.mutu_baku_minutes))]
    if s.repeats:
        parts.append(_("%(n)s kali dikerjakan ulang setelah keputusan TIDAK.", n=fmt(s.repeats)))
    if s.pauses:
        parts.append(_("%(n)s kali dijeda.", n=fmt(s.pauses)))
    return " ".join(parts)


def step_action(s: dashboard.StepEvaluation) -> str:
    """Tindakan yang harus diambil: a proposed Mutu Baku, or what to look into."""
    p = s.proposal
    if p is not None:
        halves = " / ".join(fmt(x) for x in p.p90_halves)
        if p.direction == "raise":
            return _("Usulan: naikkan Mutu Baku dari %(a)s menjadi %(b)s menit (p90 %(q)s menit, per paruh periode "
                     "%(h)s, dari %(n)s langkah).", a=fmt(p.current_minutes), b=fmt(p.proposed_minutes),
                     q=fmt(p.p90_minutes), h=halves, n=fmt(p.samples))
        return _("Usulan: turunkan Mutu Baku dari %(a)s menjadi %(b)s menit (p90 %(q)s menit, per paruh periode "
                 "%(h)s, dari %(n)s langkah).", a=fmt(p.current_minutes), b=fmt(p.proposed_minutes),
                 q=fmt(p.p90_minutes), h=halves, n=fmt(p.samples))
    if s.assessment == "not_ok":
        if s.row.completed < dashboard.evaluation.MIN_SAMPLES:
            return _("Telusuri langkah yang terlambat; data belum cukup (kurang dari %(n)s) untuk mengusulkan "
                     "Mutu Baku baru.", n=fmt(dashboard.evaluation.MIN_SAMPLES))
        return _("Telusuri penyebab keterlambatan bersama pelaksana; p90 tidak konsisten di atas Mutu Baku.")
    if s.repeats and s.row.completed and s.repeats / s.row.completed > dashboard.evaluation.RETURN_TARGET:
        return _("Perjelas persyaratan langkah ini: banyak pekerjaan dikembalikan.")
    return _("Tidak ada.")


def tables(evaluations: list[dashboard.SopEvaluation]) -> dict[str, dashboard.Table]:
    """The page's Tables with codes replaced by words (screen, CSV and XLSX alike)."""
    mon = dashboard.monitoring_table(evaluations)
    ai = mon.columns.index("assessment")
    steps = [s for e in evaluations for s in e.steps]
    mon = dashboard.Table(mon.name, (*mon.columns, "note", "action"),
                          [(*row[:ai], assessment_word(row[ai]), *row[ai + 1:], step_note(s), step_action(s))
                           for row, s in zip(mon.rows, steps)])
    ev = dashboard.evaluation_table(evaluations)
    questions = criterion_words()
    crits = [(c, e) for e in evaluations for c in e.criteria]
    ev = dashboard.Table(ev.name, ("office", "process", "criterion", "answer", "basis"),
                         [(row[0], row[1], questions[row[2]], answer_word(row[3]), criterion_basis(c, e))
                          for row, (c, e) in zip(ev.rows, crits)])
    return {"sop_summary": dashboard.summary_table(evaluations), "monitoring": mon, "evaluation": ev}


def local_stamp(now: datetime, evaluations: list[dashboard.SopEvaluation]) -> str:
    """When the forms were made, in the office's own time (UTC for several offices' forms)."""
    zones = {e.tz for e in evaluations}
    if len(zones) == 1:
        tz = zones.pop()
        return f"{now.astimezone(dashboard.zones.zone(tz)):%Y-%m-%d %H:%M} ({tz})"
    return f"{now:%Y-%m-%d %H:%M} UTC"


def pdf(evaluations: list[dashboard.SopEvaluation], filters: dashboard.Filters, now: datetime,
        office_name: str | None) -> bytes:
    """The monitoring and evaluation forms, printed (A4 landscape, as the annex lays them out)."""
    html = render_template("dashboard/evaluation_print.html", evaluations=evaluations, filters=filters, num=fmt,
                           made=local_stamp(now, evaluations),
                           office_name=office_name, questions=criterion_words(), basis=criterion_basis,
                           answer_word=answer_word, assessment_word=assessment_word, step_note=step_note,
                           step_action=step_action)
    return html_to_pdf(html)
