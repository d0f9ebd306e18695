"""The SOP process folders (processes/<key>/) parse, match their sop.json, have valid
forms, and run end to end in SpiffWorkflow 3.2.0 (approve path and reject-then-approve
path, plus the non-interrupting Mutu Baku timers).

SpiffWorkflow 3.2.0 quirks met here:
- A timer's text is evaluated as a Python expression: the bare ISO duration `PT120M`
  (what bpmn.io / Camunda Modeler write, used in the DPMK file) raises NameError when the
  timer is first refreshed; the quoted `"PT60M"` (Dinas Sosial file) works. The engine
  normalises after parsing; here `_normalise_timers` does the same.
- `UserTask.add_data_from_form` deep-merges (DeepMerge.merge_array): a list submitted
  again, e.g. the evidence files when step1 is revised after TIDAK, is merged with the old
  list and then cut to the new length, so `[old]` + `[new]` gives `[old]`: the revision
  is silently lost. Forms here are flat, so `_complete` uses `task.data.update(data)`
  (replace per field) instead; see test_add_data_from_form_keeps_old_list_items.
- Process `name` lands in `spec.description`; lane names are plain strings on
  `task_spec.lane`; `spiffworkflow:properties` values are strings (`paraf` is "true").
- Both "TIDAK flow to an exclusive merge gateway before step1" (used here) and "TIDAK flow
  straight into step1" parse and loop correctly.
"""
from __future__ import annotations

import json
import keyword
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path

import jsonschema
import pytest
from lxml import etree
from SpiffWorkflow.bpmn.specs.event_definitions.timer import (
    DurationTimerEventDefinition,
    TimerEventDefinition,
)
from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
from SpiffWorkflow.spiff.parser import VALIDATOR
from SpiffWorkflow.spiff.parser.process import SpiffBpmnParser
from SpiffWorkflow.spiff.specs.defaults import UserTask
from SpiffWorkflow.util.task import TaskState

ROOT = Path(__file__).resolve().parent.parent
PROCESSES = ROOT / "processes"
KEYS = ["dpmk-pemutakhiran-website", "dinsos-website-medsos"]
NS = {
    "bpmn": "http://www.omg.org/spec/BPMN/20100524/MODEL",
    "bpmndi": "http://www.omg.org/spec/BPMN/20100524/DI",
    "dc": "http://www.omg.org/spec/DD/20100524/DC",
    "di": "http://www.omg.org/spec/DD/20100524/DI",
    "spiffworkflow": "http://spiffworkflow.org/bpmn/schema/1.0/core",
}
FLOW_NODE_TAGS = {
    "startEvent", "endEvent", "userTask", "exclusiveGateway", "boundaryEvent",
    "intermediateCatchEvent", "intermediateThrowEvent", "parallelGateway", "task",
    "scriptTask", "serviceTask", "manualTask", "inclusiveGateway", "eventBasedGateway",
    "subProcess", "callActivity", "businessRuleTask", "sendTask", "receiveTask",
}

H = "ab" * 32  # a valid sha256 hex
H2 = "cd" * 32
H3 = "ef" * 32

# Realistic form data per step (what the web form would submit).
VALID = {
    "dpmk-pemutakhiran-website": {
        "step1": {
            "nomor_agenda": "012/2025",
            "tanggal_berita": "2025-01-06",
            "jenis_berita": "Kalurahan",
            "judul_berita": "Pelatihan BUMKal di Kalurahan Panggungharjo",
            "isi_berita": "DPMK Bantul menyelenggarakan pelatihan pengelolaan BUMKal bagi pengurus.",
            "bukti_multimedia": [H, H2],
        },
        "step2": {"paraf_kabid_ada": True, "klasifikasi_arsip": "400.14.1.3"},
        "step3": {"persetujuan_sekdin": "YA"},
        "step4": {
            "url_berita": "https://dpmk.bantulkab.go.id/berita/pelatihan-bumkal",
            "tanggal_tayang": "2025-01-06",
            "bukti_tayang": [H3],
        },
        "step5": {"nomor_arsip": "PR/2025/012", "lokasi_filing": "Filing kabinet A, laci 2"},
    },
    "dinsos-website-medsos": {
        "step1": {
            "judul": "Penyaluran bantuan sosial lansia",
            "apa": "Penyaluran bantuan permakanan lansia",
            "siapa": "Dinas Sosial bersama TKSK Kapanewon Sewon",
            "kapan": "2024-11-20",
            "dimana": "Balai Kalurahan Timbulharjo",
            "mengapa": "Memenuhi kebutuhan gizi lansia terlantar",
            "bagaimana": "Bantuan dibagikan langsung kepada 40 penerima",
            "narasi_singkat": "Dinas Sosial menyalurkan bantuan permakanan kepada 40 lansia di Timbulharjo.",
            "foto_video": [H, H2],
        },
        "step2": {
            "materi_terpilih": [H],
            "kanal": ["Website", "Instagram"],
            "judul_rilis": "Dinsos Bantul Salurkan Bantuan Permakanan Lansia",
            "naskah_rilis": "Bantul - Dinas Sosial menyalurkan bantuan permakanan kepada 40 lansia.",
        },
        "step3": {"persetujuan_ketua": "YA"},
        "step4": {
            "url_website": "https://sosial.bantulkab.go.id/berita/bantuan-lansia",
            "tautan_medsos": ["https://www.instagram.com/p/abc123/"],
            "tanggal_tayang": "2024-11-21",
        },
    },
}

REJECT = {
    "dpmk-pemutakhiran-website": {"persetujuan_sekdin": "TIDAK", "alasan_penolakan": "Foto kurang jelas, ganti."},
    "dinsos-website-medsos": {"persetujuan_ketua": "TIDAK", "alasan_penolakan_ketua": "Narasi belum memuat 5W+1H."},
}
DECISION = {
    "dpmk-pemutakhiran-website": ("step3", "persetujuan_sekdin"),
    "dinsos-website-medsos": ("step3", "persetujuan_ketua"),
}
PARAF_STEPS = {
    "dpmk-pemutakhiran-website": {"step2", "step3"},
    "dinsos-website-medsos": {"step3"},
}


def _drop(d, k):
    return {x: y for x, y in d.items() if x != k}


# (step, data, why) that each schema must reject.
INVALID = {
    "dpmk-pemutakhiran-website": [
        ("step1", _drop(VALID["dpmk-pemutakhiran-website"]["step1"], "jenis_berita"), "missing jenis_berita"),
        ("step1", {**VALID["dpmk-pemutakhiran-website"]["step1"], "bukti_multimedia": []}, "no evidence"),
        ("step1", {**VALID["dpmk-pemutakhiran-website"]["step1"], "bukti_multimedia": ["ABC"]}, "bad hash"),
        ("step1", {**VALID["dpmk-pemutakhiran-website"]["step1"], "nomor_agenda": "dua belas"}, "bad agenda no"),
        ("step1", {**VALID["dpmk-pemutakhiran-website"]["step1"], "tanggal_berita": "06/01/2025"}, "bad date"),
        ("step1", {**VALID["dpmk-pemutakhiran-website"]["step1"], "jenis_berita": "Gosip"}, "bad enum"),
        ("step1", {**VALID["dpmk-pemutakhiran-website"]["step1"], "isi_berita": "pendek"}, "too short"),
        ("step1", {**VALID["dpmk-pemutakhiran-website"]["step1"], "extra": 1}, "additional property"),
        ("step2", {"paraf_kabid_ada": False, "klasifikasi_arsip": "400.14.1.3"}, "no paraf Kabid"),
        ("step2", {"paraf_kabid_ada": True, "klasifikasi_arsip": "400.14.x"}, "bad classification"),
        ("step3", {"persetujuan_sekdin": "TIDAK"}, "TIDAK without reason"),
        ("step3", {"persetujuan_sekdin": "TIDAK", "alasan_penolakan": ""}, "TIDAK with empty reason"),
        ("step3", {"persetujuan_sekdin": "ya"}, "bad decision value"),
        ("step4", {"url_berita": "dpmk.bantulkab.go.id/x", "tanggal_tayang": "2025-01-06"}, "url without scheme"),
        ("step4", {"url_berita": "https://dpmk.bantulkab.go.id/x"}, "missing tanggal_tayang"),
        ("step5", {"lokasi_filing": "Filing kabinet A"}, "missing nomor_arsip"),
    ],
    "dinsos-website-medsos": [
        ("step1", _drop(VALID["dinsos-website-medsos"]["step1"], "mengapa"), "missing 5W+1H field"),
        ("step1", {**VALID["dinsos-website-medsos"]["step1"], "bagaimana": ""}, "empty 5W+1H field"),
        ("step1", {**VALID["dinsos-website-medsos"]["step1"], "foto_video": []}, "no photos"),
        ("step1", {**VALID["dinsos-website-medsos"]["step1"], "foto_video": [H.upper()]}, "bad hash"),
        ("step1", {**VALID["dinsos-website-medsos"]["step1"], "kapan": "kemarin"}, "bad date"),
        ("step2", {**VALID["dinsos-website-medsos"]["step2"], "kanal": []}, "no channel"),
        ("step2", {**VALID["dinsos-website-medsos"]["step2"], "kanal": ["Website", "Website"]}, "duplicate channel"),
        ("step2", {**VALID["dinsos-website-medsos"]["step2"], "kanal": ["Friendster"]}, "unknown channel"),
        ("step3", {"persetujuan_ketua": "TIDAK"}, "TIDAK without reason"),
        ("step3", {}, "no decision"),
        ("step4", {**VALID["dinsos-website-medsos"]["step4"], "tautan_medsos": ["instagram.com/p/x"]}, "bad link"),
        ("step4", _drop(VALID["dinsos-website-medsos"]["step4"], "url_website"), "missing url_website"),
    ],
}


# --------------------------------------------------------------------------- helpers

def _sop(key):
    return json.loads((PROCESSES / key / "sop.json").read_text(encoding="utf-8"))


def _xml(key):
    return etree.parse(str(PROCESSES / key / "process.bpmn"))


def _schema(key, step):
    return json.loads((PROCESSES / key / "forms" / f"{step}.schema.json").read_text(encoding="utf-8"))


def _validator(key, step):
    return jsonschema.Draft202012Validator(
        _schema(key, step), format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )


def _normalise_timers(spec):
    """Quote bare ISO timer texts (PT120M -> 'PT120M') so SpiffWorkflow can eval them."""
    for ts in spec.task_specs.values():
        ed = getattr(ts, "event_definition", None)
        if isinstance(ed, TimerEventDefinition):
            expr = ed.expression.strip()
            if re.match(r"^P(T?\d)", expr):
                ed.expression = repr(expr)
    return spec


def _parse(key, normalise=True):
    parser = SpiffBpmnParser(validator=VALIDATOR)
    parser.add_bpmn_file(str(PROCESSES / key / "process.bpmn"))
    spec = parser.get_spec(_sop(key)["process_id"])
    return _normalise_timers(spec) if normalise else spec


def _user_tasks(spec):
    return {ts.bpmn_id: ts for ts in spec.task_specs.values() if isinstance(ts, UserTask)}


def _minutes(text):
    expr = text.strip().strip('"').strip("'")
    parsed = TimerEventDefinition.parse_iso_duration(expr)
    start = datetime(2025, 1, 6, tzinfo=timezone.utc)
    return TimerEventDefinition.get_timedelta_from_start(parsed, start) / timedelta(minutes=1)


# The paper SOPs' Pelaksana and Mutu Baku per step (in /work/shared/sop): the BPMN must say the
# same; sop.json no longer restates them (one source for each fact).
PAPER = {
    "dpmk-pemutakhiran-website": {"step1": ("Petugas Penerima Berita/Informasi", 120), "step2": ("Kasubbag", 15),
                                  "step3": ("Sekdin", 15), "step4": ("Operator Website", 5),
                                  "step5": ("Petugas Penerima Berita/Informasi", 5)},
    "dinsos-website-medsos": {"step1": ("Admin Bidang/Petugas Lapangan", 60), "step2": ("Pengelola Website", 30),
                              "step3": ("Ketua Tim Kerja", 15), "step4": ("Pengelola Website", 5)},
}


def _ready(wf):
    return wf.get_tasks(state=TaskState.READY, manual=True)


def _complete(wf, key, step, data):
    (task,) = _ready(wf)
    assert task.task_spec.bpmn_id == step
    assert task.task_spec.lane == PAPER[key][step][0]
    _validator(key, step).validate(data)  # what the engine does before accepting a form
    task.data.update(data)  # not add_data_from_form: see the module docstring
    task.run()
    wf.do_engine_steps()
    return task


def _start(key):
    wf = BpmnWorkflow(_parse(key))
    wf.do_engine_steps()
    return wf


# --------------------------------------------------------------------------- structure

@pytest.mark.parametrize("key", KEYS)
def test_parses_with_xsd_validation_and_names(key):
    sop = _sop(key)
    assert sop["key"] == key
    spec = _parse(key)
    assert spec.name == sop["process_id"]
    assert spec.description and spec.description == sop["name"]  # process name attribute
    root = _xml(key).getroot()
    procs = root.findall("bpmn:process", NS)
    assert len(procs) == 1 and procs[0].get("isExecutable") == "true"
    parts = root.findall("bpmn:collaboration/bpmn:participant", NS)
    assert len(parts) == 1 and parts[0].get("processRef") == sop["process_id"]


@pytest.mark.parametrize("key", KEYS)
def test_user_tasks_match_sop_steps_lanes_forms(key):
    sop = _sop(key)
    tasks = _user_tasks(_parse(key))
    assert set(tasks) == set(sop["steps"])
    assert sorted(tasks) == [f"step{i}" for i in range(1, len(tasks) + 1)]
    lane_names = {lane.get("name") for lane in _xml(key).iterfind(".//bpmn:lane", NS)}
    assert set(sop["supervisor_lanes"]) <= lane_names
    for sid, ts in tasks.items():
        step = sop["steps"][sid]
        assert ts.lane == PAPER[key][sid][0] and ts.lane in lane_names
        assert step["text"] and step["output"] and step["requirements_text"]  # the checklist only lists what the form does not ask
        props = ts.extensions["properties"]
        assert props["formJsonSchemaFilename"] == f"forms/{sid}.schema.json"
        assert (props.get("paraf") == "true") == (sid in PARAF_STEPS[key])
        form = PROCESSES / key / props["formJsonSchemaFilename"]
        assert form.is_file()
        schema = json.loads(form.read_text(encoding="utf-8"))
        jsonschema.Draft202012Validator.check_schema(schema)
        assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
        assert schema["type"] == "object" and schema["additionalProperties"] is False
        assert schema["title"] and all(p.get("title") for p in schema["properties"].values())
        assert set(schema["required"]) <= set(schema["properties"])


@pytest.mark.parametrize("key", KEYS)
def test_every_flow_node_in_exactly_one_lane_and_drawn(key):
    root = _xml(key).getroot()
    proc = root.find("bpmn:process", NS)
    nodes = [el.get("id") for el in proc if etree.QName(el).localname in FLOW_NODE_TAGS]
    refs = [r.text for r in proc.iterfind(".//bpmn:lane/bpmn:flowNodeRef", NS)]
    assert sorted(refs) == sorted(nodes)
    flows = [f.get("id") for f in proc.iterfind("bpmn:sequenceFlow", NS)]
    lanes = [lane.get("id") for lane in proc.iterfind(".//bpmn:lane", NS)]
    pool = root.find("bpmn:collaboration/bpmn:participant", NS).get("id")
    shapes = {s.get("bpmnElement") for s in root.iterfind(".//bpmndi:BPMNShape", NS)}
    edges = {e.get("bpmnElement"): e for e in root.iterfind(".//bpmndi:BPMNEdge", NS)}
    assert shapes == set(nodes) | set(lanes) | {pool}
    assert set(edges) == set(flows)
    for e in edges.values():
        assert len(e.findall("di:waypoint", NS)) >= 2
    # one start event and one normal end event (besides the Mutu Baku ends)
    assert len(proc.findall("bpmn:startEvent", NS)) == 1
    ends = [e.get("id") for e in proc.findall("bpmn:endEvent", NS) if not e.get("id").endswith("_mutu_baku_end")]
    assert ends == ["end"]


@pytest.mark.parametrize("key", KEYS)
def test_one_non_interrupting_mutu_baku_timer_per_step(key):
    sop = _sop(key)
    spec = _parse(key, normalise=False)
    proc = _xml(key).getroot().find("bpmn:process", NS)
    lane_of = {r.text: lane.get("name") for lane in proc.iterfind(".//bpmn:lane", NS)
               for r in lane.iterfind("bpmn:flowNodeRef", NS)}
    for sid, step in sop["steps"].items():
        bes = proc.findall(f"bpmn:boundaryEvent[@attachedToRef='{sid}']", NS)
        assert len(bes) == 1, sid
        be = bes[0]
        assert be.get("id") == f"{sid}_mutu_baku"
        assert be.get("cancelActivity") == "false"
        assert be.get("name") == f"Mutu Baku {PAPER[key][sid][1]} menit"
        dur = be.find("bpmn:timerEventDefinition/bpmn:timeDuration", NS).text
        assert _minutes(dur) == PAPER[key][sid][1]
        # the form used in the file: DPMK bare (as bpmn.io writes), Dinsos quoted
        if key == "dpmk-pemutakhiran-website":
            assert re.fullmatch(r"PT\d+M", dur)
        else:
            assert re.fullmatch(r'"PT\d+M"', dur)
        ts = spec.task_specs[f"{sid}_mutu_baku"]
        assert ts.cancel_activity is False
        assert isinstance(ts.event_definition, DurationTimerEventDefinition)
        (out,) = [f for f in proc.iterfind("bpmn:sequenceFlow", NS) if f.get("sourceRef") == be.get("id")]
        end = proc.find(f"bpmn:endEvent[@id='{out.get('targetRef')}']", NS)
        assert end is not None and end.get("id") == f"{sid}_mutu_baku_end"
        assert end.get("name") == "Mutu Baku terlampaui"
        assert lane_of[sid] == lane_of[be.get("id")] == lane_of[end.get("id")] == PAPER[key][sid][0]


@pytest.mark.parametrize("key", KEYS)
def test_field_names_unique_identifiers_and_gateway_conditions(key):
    sop = _sop(key)
    seen = {}
    for sid in sop["steps"]:
        for name in _schema(key, sid)["properties"]:
            assert name.isidentifier() and not keyword.iskeyword(name), name
            assert name not in seen, f"{name} in {seen.get(name)} and {sid}"
            seen[name] = sid
    step, field = DECISION[key]
    assert seen[field] == step
    assert _schema(key, step)["properties"][field]["enum"] == ["YA", "TIDAK"]
    proc = _xml(key).getroot().find("bpmn:process", NS)
    conds = {f.get("name"): f.find("bpmn:conditionExpression", NS).text
             for f in proc.iterfind("bpmn:sequenceFlow", NS)
             if f.find("bpmn:conditionExpression", NS) is not None}
    assert conds == {"YA": f'{field} == "YA"', "TIDAK": f'{field} == "TIDAK"'}
    for flow in proc.iterfind("bpmn:sequenceFlow", NS):
        if flow.get("name") == "TIDAK":  # loops back to step1 (directly or via a merge gateway)
            target = flow.get("targetRef")
            assert target == "step1" or [
                f.get("targetRef") for f in proc.iterfind("bpmn:sequenceFlow", NS) if f.get("sourceRef") == target
            ] == ["step1"]


# --------------------------------------------------------------------------- forms

@pytest.mark.parametrize("key", KEYS)
def test_forms_accept_valid_examples(key):
    for sid, data in VALID[key].items():
        _validator(key, sid).validate(data)
    step, _ = DECISION[key]
    _validator(key, step).validate(REJECT[key])


@pytest.mark.parametrize("key,step,data,why", [(k, s, d, w) for k in KEYS for (s, d, w) in INVALID[k]],
                         ids=lambda v: v if isinstance(v, str) else None)
def test_forms_reject_invalid_examples(key, step, data, why):
    errors = list(_validator(key, step).iter_errors(data))
    assert errors, f"{key}/{step} accepted: {why}"


@pytest.mark.parametrize("key", KEYS)
def test_evidence_fields_follow_convention(key):
    found = 0
    for sid in _sop(key)["steps"]:
        for name, prop in _schema(key, sid)["properties"].items():
            if prop.get("x-lajur-widget") == "files":
                found += 1
                assert prop["type"] == "array"
                assert prop["items"] == {"type": "string", "pattern": "^[0-9a-f]{64}$"}
                assert prop["x-lajur-accept"] == ["image/jpeg", "image/png", "video/mp4", "application/pdf"]
    assert found >= 2


# --------------------------------------------------------------------------- running

@pytest.mark.parametrize("key", KEYS)
def test_approve_path_completes(key):
    wf = _start(key)
    for sid, data in VALID[key].items():
        _complete(wf, key, sid, data)
    assert wf.is_completed()
    assert not _ready(wf) and not wf.waiting_events()
    done = [t.task_spec.bpmn_id for t in wf.get_tasks(state=TaskState.COMPLETED)]
    assert "end" in done and not any(b and b.endswith("_mutu_baku_end") for b in done)


@pytest.mark.parametrize("key", KEYS)
def test_reject_returns_to_step1_then_approve_completes(key):
    wf = _start(key)
    dstep, field = DECISION[key]
    steps = list(VALID[key])
    before = steps[: steps.index(dstep)]
    for sid in before:
        _complete(wf, key, sid, VALID[key][sid])
    _complete(wf, key, dstep, REJECT[key])
    (task,) = _ready(wf)
    assert task.task_spec.bpmn_id == "step1"
    assert task.data[field] == "TIDAK"  # the reason is visible to the reviser
    # revise and resubmit, then approve
    revised = dict(VALID[key]["step1"])
    revised[next(k for k in revised if k.startswith("judul"))] += " (revisi)"
    evidence = next(k for k, v in revised.items() if isinstance(v, list))
    revised[evidence] = [H3]
    _complete(wf, key, "step1", revised)
    for sid in before[1:]:
        _complete(wf, key, sid, VALID[key][sid])
    for sid in steps[steps.index(dstep):]:
        _complete(wf, key, sid, VALID[key][sid])
    assert wf.is_completed()
    last = wf.last_task.data
    assert last[field] == "YA"
    assert last[next(k for k in revised if k.startswith("judul"))].endswith("(revisi)")
    assert last[evidence] == [H3]


@pytest.mark.parametrize("key", KEYS)
def test_mutu_baku_timer_is_non_interrupting(key):
    sop = _sop(key)
    wf = _start(key)
    (pending,) = wf.waiting_events()
    fire_at = datetime.fromisoformat(pending.value)
    expect = datetime.now(timezone.utc) + timedelta(minutes=PAPER[key]["step1"][1])
    assert abs((fire_at - expect).total_seconds()) < 60
    (timer,) = [t for t in wf.get_tasks(state=TaskState.WAITING) if t.task_spec.bpmn_id == "step1_mutu_baku"]
    # pretend the Mutu Baku has passed
    timer._set_internal_data(event_value=(datetime.now(timezone.utc) - timedelta(seconds=1)).isoformat())
    wf.refresh_timers()
    wf.do_engine_steps()
    assert [t.task_spec.bpmn_id for t in _ready(wf)] == ["step1"]  # still open
    assert [t.task_spec.bpmn_id for t in wf.get_tasks(state=TaskState.COMPLETED)
            if t.task_spec.bpmn_id == "step1_mutu_baku_end"] == ["step1_mutu_baku_end"]
    assert not wf.is_completed()
    for sid, data in VALID[key].items():
        _complete(wf, key, sid, data)
    assert wf.is_completed()


def test_bare_iso_duration_needs_normalising():
    """Documents the quirk the engine works around: bare PT120M fails to evaluate."""
    wf = BpmnWorkflow(_parse("dpmk-pemutakhiran-website", normalise=False))
    with pytest.raises(Exception, match="PT120M"):
        wf.do_engine_steps()


def test_add_data_from_form_keeps_old_list_items():
    """Documents a quirk: resubmitting a list via add_data_from_form keeps the OLD items
    (merge appends the new ones, then truncates to the new length)."""
    key = "dinsos-website-medsos"
    wf = _start(key)
    (task,) = _ready(wf)
    task.task_spec.add_data_from_form(task, {"foto_video": [H]})
    task.task_spec.add_data_from_form(task, {"foto_video": [H2]})
    assert task.data["foto_video"] == [H]  # not [H2]
    task.task_spec.add_data_from_form(task, {"foto_video": [H2, H3]})
    assert task.data["foto_video"] == [H, H2]  # not [H2, H3]
