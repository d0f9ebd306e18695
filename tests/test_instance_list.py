"""The instance list's one query (engine/instance_list.py), on both databases: who sees what,
every filter, the three sorts with keyset pages, and the export Table (issue 14, finding 5)."""
from __future__ import annotations

import pytest
from sqlalchemy import update

from engine.errors import Forbidden
from engine.instance_list import (InstanceFilters, cursor_of, instances_table, list_instances, open_steps)
from engine.models import ProcessInstance

from .helpers import open_task, work_step
from .sopdata import DINSOS, DPMK
from .test_sla import at, wib

F = InstanceFilters


@pytest.fixture
def office(services, demo):
    """DPMK: A (step 2, late), B (step 1, on time), C (step 1, started a day later), D (completed),
    E (incident, step 1, paused past its due: held, not late); Dinas Sosial: S."""
    rt = services.runtime
    at(services, wib(2026, 11, 23, 8, 0))  # Monday
    ids = {"A": rt.start(demo["dpmk.penerima"], DPMK, "Berita Musrenbang A")}
    work_step(services, demo, DPMK, ids["A"], "step1")  # step 2 (Kasubbag) opens at 08:00
    ids["D"] = rt.start(demo["dpmk.penerima"], DPMK, "Berita selesai D")
    for step in ("step1", "step2", "step3", "step4", "step5"):
        work_step(services, demo, DPMK, ids["D"], step)
    at(services, wib(2026, 11, 23, 9, 0))
    ids["E"] = rt.start(demo["dpmk.penerima"], DPMK, "Insiden E")
    rt.pause(demo["dpmk.kasubbag"], open_task(services, ids["E"]).id, "Server mati")
    at(services, wib(2026, 11, 23, 9, 30))
    ids["B"] = rt.start(demo["dpmk.penerima"], DPMK, "Berita posyandu B")
    ids["S"] = rt.start(demo["dinsos.petugas"], DINSOS, "Rilis bansos S")
    at(services, wib(2026, 11, 24, 8, 0))
    ids["C"] = rt.start(demo["dpmk.penerima"], DPMK, "Berita posyandu C")
    with services.sessions.begin() as s:  # the incidents helper's contract: an open incident sets the status
        s.execute(update(ProcessInstance).where(ProcessInstance.id == ids["E"]).values(status="incident"))
    return ids


def names(services, user, filters=F(), now=None, sort="new", **kw):
    with services.sessions() as s:
        rows = list_instances(s, user, filters, now or wib(2026, 11, 24, 8, 30), sort=sort, **kw)
    return [r.subject.split()[-1] for r in rows]


def test_scope_supervisor_office_staff_own_admin_all(services, demo, office):
    every = ["C", "B", "E", "D", "A"]
    assert names(services, demo["dpmk.kasubbag"]) == every
    assert names(services, demo["dpmk.penerima"]) == every  # started them all
    # the operator took part only in D (its step 4); the Sekdin (a supervisor) sees the office
    assert names(services, demo["dpmk.operator"]) == ["D"]
    assert names(services, demo["dpmk.sekdin"]) == every
    assert names(services, demo["dinsos.ketua"]) == ["S"]
    assert names(services, demo["dinsos.pengelola"]) == []  # nothing of theirs yet
    assert names(services, demo["admin"]) == ["C", "S", "B", "E", "D", "A"]
    assert names(services, demo["admin"], F(office_id=open_task(services, office["S"]).office_id)) == ["S"]
    # a supervisor's office filter cannot reach another office
    assert names(services, demo["dpmk.kasubbag"], F(office_id=open_task(services, office["S"]).office_id)) == every


def test_every_filter(services, demo, office):
    boss = demo["dpmk.kasubbag"]
    assert names(services, boss, F(status="running")) == ["C", "B", "A"]
    assert names(services, boss, F(status="completed")) == ["D"]
    assert names(services, boss, F(status="incident")) == ["E"]
    # late: A's step 2 was due 08:15 Monday; B's step 1 11:30 Monday; C's is due 10:00 Tuesday;
    # E is paused (held, never late)
    assert names(services, boss, F(late=True)) == ["B", "A"]
    assert names(services, boss, F(late=False)) == ["C", "E", "D"]
    assert names(services, boss, F(step="step2")) == ["A"]
    assert names(services, boss, F(step="step1")) == ["C", "B", "E"]
    assert names(services, boss, F(step="step1", late=True)) == ["B"]
    assert names(services, boss, F(process=DINSOS)) == []
    assert names(services, boss, F(subject="POSYANDU")) == ["C", "B"]
    assert names(services, boss, F(subject="100%_")) == []  # LIKE wildcards are text
    assert names(services, boss, F(officer="dpmk.operator")) == ["D"]
    assert names(services, boss, F(officer="dpmk.kasubbag")) == ["D"]  # A's step 2 waits unclaimed
    assert names(services, boss, F(officer="nobody")) == []
    monday, tuesday = wib(2026, 11, 23, 0, 0), wib(2026, 11, 24, 0, 0)
    assert names(services, boss, F(started_from=tuesday)) == ["C"]
    assert names(services, boss, F(started_from=monday, started_to=tuesday)) == ["B", "E", "D", "A"]


def test_sorts_and_keyset_pages(services, demo, office):
    boss = demo["dpmk.kasubbag"]
    assert names(services, boss, sort="old") == ["A", "D", "E", "B", "C"]
    # soonest due first: A (08:15 Mon), E (11:00 Mon, as stored while paused), B (11:30), C (Tue); D none
    assert names(services, boss, sort="due") == ["A", "E", "B", "C", "D"]
    for sort in ("new", "old", "due"):
        seen, after = [], None
        while True:
            with services.sessions() as s:
                page = list_instances(s, boss, F(), wib(2026, 11, 24, 8, 30), limit=2, sort=sort, after=after)
            seen += [r.subject.split()[-1] for r in page]
            if len(page) < 2:
                break
            after = cursor_of(page[-1], sort)
        assert seen == names(services, boss, sort=sort), sort
    with pytest.raises(ValueError):
        names(services, boss, sort="random")


def test_open_steps_and_the_export_table(services, demo, office):
    boss = demo["dpmk.kasubbag"]
    now = wib(2026, 11, 24, 8, 30)
    with services.sessions() as s:
        rows = list_instances(s, boss, F(step="step1", late=True), now)
        steps = open_steps(s, [r.id for r in rows], now)
    table = instances_table(rows, steps)
    assert table.columns[:4] == ("instance", "process", "subject", "state")
    (row,) = table.rows
    assert row[0] == office["B"] and row[2] == "Berita posyandu B" and row[3] == "running"
    assert row[7] is True and row[6] == "2026-11-23 11:30"  # late; due in WIB


def test_inactive_user_is_refused(services, demo, office):
    from engine.models import User
    with services.sessions.begin() as s:
        s.get(User, demo["dpmk.operator"]).active = False
    with pytest.raises(Forbidden):
        names(services, demo["dpmk.operator"])
