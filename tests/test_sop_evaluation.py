"""SOP monitoring and evaluation (Permenpan RB 35/2012) from a history made by the engine.

Nothing is inserted by hand: DPMK's staff start, claim and complete steps through the
Runtime with an injected clock, so the working minutes and due times are the engine's own.
All times WIB, in working hours before the lunch break. The period is 2 .. 15 March 2026;
its halves are 2 .. 8 and 9 .. 15 March.

- 12 instances, 6 in each half (Mon-Wed, 08:00 and 10:00): step1 30 min (Mutu Baku 120),
  step2 25 min (Mutu Baku 15: late every time), step3 5 (15), step4 3 (5), step5 3 (5).
- Instance A (Thursday 5 March 08:00): the same, but Sekdin answers TIDAK once, so step1,
  step2 and step3 run twice; its step4 is paused for a minute.

Expected, per step: step1 14 done, 1 repeat, p90 30 < 60 in both halves: lower to 30;
step2 14 done, all late, p90 25 > 15 in both halves: raise to 25; step3 p90 5 < 7.5:
lower to 5; step4 and step5 (3 of 5 minutes) keep their Mutu Baku.
"""
from __future__ import annotations

import json
import re
import shutil
import subprocess
from datetime import date, datetime, timedelta, timezone

import pytest
from openpyxl import load_workbook
from sqlalchemy import select

from engine import dashboard
from engine.dashboard import Filters
from engine.models import HumanTask, Office

from .conftest import service_missing
from .sopdata import ACTORS, DPMK, REJECT, STEP_DATA

WIB = timezone(timedelta(hours=7))
PERIOD = dict(start=date(2026, 3, 2), end=date(2026, 3, 15))
NOW = datetime(2026, 3, 16, 10, 0, tzinfo=WIB)
MINUTES = {"step1": 30, "step2": 25, "step3": 5, "step4": 3, "step5": 3}


@pytest.fixture
def evaluated(services, demo):
    rt = services.runtime
    clock = {"t": None}
    rt.clock = lambda: clock["t"].astimezone(timezone.utc)

    def open_step(iid) -> HumanTask:
        with services.sessions() as s:
            return s.scalar(select(HumanTask).where(HumanTask.instance_id == iid, HumanTask.state == "ready"))

    def work(iid, t, data=None, pause=False) -> datetime:
        task = open_step(iid)
        user = demo[ACTORS[task.lane]]
        clock["t"] = t
        rt.claim(user, task.id)
        done = t + timedelta(minutes=MINUTES[task.bpmn_id])
        if pause:
            clock["t"] = t + timedelta(minutes=1)
            rt.pause(user, task.id, "Menunggu listrik menyala kembali")
            clock["t"] = t + timedelta(minutes=2)
            rt.resume(user, task.id)
            done += timedelta(minutes=1)
        clock["t"] = done
        rt.complete(user, task.id, data or STEP_DATA[(DPMK, task.bpmn_id)])
        return done

    def run(t, reject=False):
        clock["t"] = t
        iid = rt.start(demo["dpmk.penerima"], DPMK, f"Berita {t:%d %H}")
        t = work(iid, t)
        t = work(iid, t)
        if reject:
            t = work(iid, t, REJECT[(DPMK, "step3")])
            t = work(iid, t)
            t = work(iid, t)
        t = work(iid, t)
        t = work(iid, work(iid, t, pause=reject))
        return iid

    for week in (0, 7):
        for day in (2, 3, 4):
            for hour in (8, 10):
                run(datetime(2026, 3, day + week, hour, 0, tzinfo=WIB))
    run(datetime(2026, 3, 5, 8, 0, tzinfo=WIB), reject=True)
    with services.sessions() as s:
        office_id = s.scalar(select(Office.id).where(Office.code == "dpmk"))
        return dashboard.evaluate(s, Filters(office_id=office_id, process_key=DPMK, **PERIOD), NOW), office_id


def test_figures_assessments_and_proposals(evaluated):
    evaluations, _ = evaluated
    assert len(evaluations) == 1
    e = evaluations[0]
    steps = {s.row.step: s for s in e.steps}
    assert list(steps) == ["step1", "step2", "step3", "step4", "step5"]
    got = {k: (s.row.completed, s.repeats, s.row.median_minutes, s.row.p90_minutes, s.assessment)
           for k, s in steps.items()}
    assert got == {"step1": (14, 1, 30.0, 30.0, "ok"), "step2": (14, 1, 25.0, 25.0, "not_ok"),
                   "step3": (14, 1, 5.0, 5.0, "ok"), "step4": (13, 0, 3.0, 3.0, "ok"),
                   "step5": (13, 0, 3.0, 3.0, "ok")}
    assert [steps[k].pauses for k in steps] == [0, 0, 0, 1, 0]
    proposals = {k: (s.proposal.direction, s.proposal.current_minutes, s.proposal.proposed_minutes,
                     s.proposal.p90_halves) for k, s in steps.items() if s.proposal}
    assert proposals == {"step1": ("lower", 120, 30, (30.0, 30.0)), "step2": ("raise", 15, 25, (25.0, 25.0)),
                         "step3": ("lower", 15, 5, (5.0, 5.0))}
    assert e.followed is False  # step2 is late every time
    assert (e.started, e.instances_returned, e.incidents) == (13, 1, 0)
    # 68 steps with a due time, the 14 of step2 late; halves: 30 of 38, then 24 of 30
    assert e.on_time_rate == pytest.approx(54 / 68)
    assert e.on_time_halves == (pytest.approx(30 / 38), pytest.approx(24 / 30))
    answers = {c.code: c.answer for c in e.criteria}
    assert answers == {"performance": True, "understandable": True, "workable": False, "roles": True,
                       "problems": True, "needs": None, "synergy": None}


def test_no_proposal_below_the_sample_floor_or_when_the_halves_disagree():
    row = dashboard.StepRow(1, "dpmk", "DPMK", DPMK, "SOP", "step2", "Periksa", 15, completed=9, with_due=9,
                            on_time_rate=0.0, median_minutes=25.0, p90_minutes=25.0)
    assert dashboard.evaluation.propose(row, (25.0, 25.0), (5, 4)) is None  # 9 < MIN_SAMPLES
    row = dashboard.StepRow(1, "dpmk", "DPMK", DPMK, "SOP", "step2", "Periksa", 15, completed=12, with_due=12,
                            on_time_rate=0.5, median_minutes=16.0, p90_minutes=25.0)
    assert dashboard.evaluation.propose(row, (30.0, 12.0), (6, 6)) is None  # below Mutu Baku in one half
    p = dashboard.evaluation.propose(row, (30.0, 12.0), (9, 3))  # a half with too few steps does not count
    assert (p.direction, p.proposed_minutes) == ("raise", 25)


@pytest.fixture
def client(services, evaluated):
    from webui import create_app
    services.runtime.clock = lambda: NOW.astimezone(timezone.utc)
    app = create_app(services=services, config={"TESTING": True, "WTF_CSRF_ENABLED": False,
                                                 "RATELIMIT_ENABLED": False})
    passwords = json.loads((services.settings.data_dir / "demo-logins.json").read_text())

    def login(username):
        c = app.test_client()
        assert c.post("/login", data={"username": username, "password": passwords[username]}).status_code == 302
        return c
    return login


Q = "start=2026-03-02&end=2026-03-15&process=" + DPMK


def test_the_dashboard_page_and_its_exports(client, artifacts_dir):
    c = client("dpmk.kasubbag")
    page = c.get(f"/dashboard/evaluation?{Q}")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    (artifacts_dir / "sop-evaluation.html").write_text(html)
    assert "Usulan: naikkan Mutu Baku dari 15 menjadi 25 menit" in html
    assert "Usulan: turunkan Mutu Baku dari 120 menjadi 30 menit" in html
    assert "SOP belum berjalan dengan baik" in html
    assert 'href="/dashboard/export/evaluation.pdf?' in html

    xlsx = c.get(f"/dashboard/export/evaluation.xlsx?{Q}")
    assert xlsx.status_code == 200
    path = artifacts_dir / "sop-evaluation.xlsx"
    path.write_bytes(xlsx.get_data())
    wb = load_workbook(path)
    monitoring = list(wb["Formulir monitoring per langkah"].values)
    header = monitoring[0]
    step2 = next(r for r in monitoring[1:] if r[header.index("Kode langkah")] == "step2")
    assert step2[header.index("Usulan Mutu Baku (menit)")] == 25
    assert step2[header.index("Penilaian")] == "Belum berjalan dengan baik"
    evaluation = list(wb["Formulir evaluasi"].values)
    assert [r[3] for r in evaluation[1:]] == ["Ya", "Ya", "Tidak", "Ya", "Ya", "Dinilai evaluator",
                                              "Dinilai evaluator"]

    pdf = c.get(f"/dashboard/export/evaluation.pdf?{Q}")
    assert pdf.status_code == 200 and pdf.mimetype == "application/pdf"
    out = artifacts_dir / "sop-evaluation.pdf"
    out.write_bytes(pdf.get_data())
    tools = {t: shutil.which(t) for t in ("pdftoppm", "pdftotext")}
    if None in tools.values():
        service_missing("poppler-utils", "install Debian poppler-utils (scripts/test.sh does)")
    subprocess.run([tools["pdftoppm"], "-png", "-r", "80", str(out), str(artifacts_dir / "sop-evaluation")],
                   check=True, timeout=60)
    text = re.sub(r"\s+", " ", subprocess.run([tools["pdftotext"], str(out), "-"], check=True,
                                              capture_output=True, text=True, timeout=60).stdout)
    assert "FORMULIR MONITORING PELAKSANAAN SOP" in text and "FORMULIR EVALUASI PENERAPAN SOP" in text
    assert "naikkan Mutu Baku dari 15 menjadi 25 menit" in text
    assert "Pemutakhiran" in text or "Website" in text


def test_staff_and_other_offices_see_nothing_of_it(client):
    assert client("dpmk.penerima").get(f"/dashboard/evaluation?{Q}").status_code == 403
    other = client("dinsos.ketua").get("/dashboard/evaluation?start=2026-03-02&end=2026-03-15")
    assert other.status_code == 200
    assert "naikkan Mutu Baku" not in other.get_data(as_text=True)
