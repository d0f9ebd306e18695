"""The studio with a 50-step SOP on PostgreSQL (issue 11): the editor page's load and the
validation round trip (a save of the whole folder answered with deploy's problems).

Deploys a generated 50-step SOP (one chain of user tasks, each with its Mutu Baku timer and a
two-field form, laid out for the diagram) into DPMK in a throw-away database, signs in as the
process owner through the real login form and times, through the WSGI app in process:
- the editor page: GET /studio/<key> and the draft it loads (GET draft.json);
- the validation round trip: POST /studio/<key>/draft with the whole folder (what the browser
  sends after every change), checked by deploy's validator, saved, answered with problems; once
  with the same files (a change to a form or the card leaves process.bpmn as it was, so
  SpiffWorkflow's remembered parse is used), with a shape moved on every save (a new
  process.bpmn each time: its schema check runs, the specs of the same process part are reused)
  and with step 1's Mutu Baku changed on every save (a new process: SpiffWorkflow's full parse);
- in Chromium (if installed): from navigation until the modeler has drawn the diagram.
Reference in the same run: deploy's validator alone on the same folder (load_process_folder),
the floor under any round trip that checks with it.

Run: .venv/bin/python bench/bench_studio.py [--steps 50] [--repeat 40]
"""
from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import machine, percentile, scratch_database, summary, timed  # noqa: E402
from engine.bpmn import load_process_folder  # noqa: E402
from engine.config import Settings  # noqa: E402
from engine.demo import seed_demo  # noqa: E402
from engine.deploy import deploy_folder  # noqa: E402
from engine.migrate import upgrade  # noqa: E402
from engine.services import Services, tune_gc  # noqa: E402
from engine.studio.files import write_folder  # noqa: E402

KEY = "sop-50-langkah"
LANES = ["Petugas Penerima Berita/Informasi", "Kasubbag", "Sekdin", "Operator Website"]


def big_sop(steps: int) -> dict[str, str]:
    """A process folder with `steps` user tasks in a chain across DPMK's four lanes."""
    pid, lane_h, w = "sop_50", 160, 150
    nodes, flows, shapes, edges, refs = [], [], [], [], {lane: [] for lane in LANES}
    x = 200

    def shape(eid, x, y, wd, ht):
        shapes.append(f'<bpmndi:BPMNShape id="{eid}_di" bpmnElement="{eid}"><dc:Bounds x="{x}" y="{y}" '
                      f'width="{wd}" height="{ht}" /></bpmndi:BPMNShape>')

    def flow(fid, a, b, pts):
        flows.append(f'<bpmn:sequenceFlow id="{fid}" sourceRef="{a}" targetRef="{b}" />')
        edges.append(f'<bpmndi:BPMNEdge id="{fid}_di" bpmnElement="{fid}">'
                     + "".join(f'<di:waypoint x="{px}" y="{py}" />' for px, py in pts) + "</bpmndi:BPMNEdge>")

    nodes.append('<bpmn:startEvent id="start" name="Mulai" />')
    refs[LANES[0]].append("start")
    shape("start", 120, 62, 36, 36)
    prev, prev_out = "start", (156, 80)
    forms, sop_steps = {}, {}
    for i in range(1, steps + 1):
        sid, lane = f"step{i}", LANES[(i - 1) % len(LANES)]
        y = 40 + LANES.index(lane) * lane_h
        nodes.append(f'<bpmn:userTask id="{sid}" name="Langkah {i}"><bpmn:extensionElements><spiffworkflow:properties>'
                     f'<spiffworkflow:property name="formJsonSchemaFilename" value="forms/{sid}.schema.json" />'
                     f'</spiffworkflow:properties></bpmn:extensionElements></bpmn:userTask>')
        nodes.append(f'<bpmn:boundaryEvent id="{sid}_mb" name="Mutu Baku 30 menit" cancelActivity="false" '
                     f'attachedToRef="{sid}"><bpmn:timerEventDefinition id="{sid}_t"><bpmn:timeDuration>PT30M'
                     f'</bpmn:timeDuration></bpmn:timerEventDefinition></bpmn:boundaryEvent>')
        nodes.append(f'<bpmn:endEvent id="{sid}_late" name="Mutu Baku terlampaui" />')
        refs[lane] += [sid, f"{sid}_mb", f"{sid}_late"]
        shape(sid, x, y, 100, 80)
        shape(f"{sid}_mb", x + 82, y + 62, 36, 36)
        shape(f"{sid}_late", x + 112, y + 110, 36, 36)
        flow(f"f{i}", prev, sid, [prev_out, (x, y + 40)])
        flow(f"f{i}_late", f"{sid}_mb", f"{sid}_late", [(x + 100, y + 98), (x + 100, y + 128), (x + 112, y + 128)])
        prev, prev_out, x = sid, (x + 100, y + 40), x + w
        forms[f"forms/{sid}.schema.json"] = {
            "$schema": "https://json-schema.org/draft/2020-12/schema", "title": f"Langkah {i}", "type": "object",
            "properties": {"catatan": {"type": "string", "title": "Catatan", "maxLength": 2000},
                           "selesai": {"type": "string", "title": "Selesai", "enum": ["YA", "TIDAK"]}},
            "required": ["selesai"], "additionalProperties": False}
        sop_steps[sid] = {"text": f"Langkah {i}"}
    nodes.append('<bpmn:endEvent id="end" name="Selesai" />')
    refs[LANES[(steps - 1) % len(LANES)]].append("end")
    ey = 40 + LANES.index(LANES[(steps - 1) % len(LANES)]) * lane_h
    shape("end", x, ey + 22, 36, 36)
    flow("f_end", prev, "end", [prev_out, (x, ey + 40)])
    width = x + 100
    lanes_xml = "".join(f'<bpmn:lane id="lane_{n}" name="{lane}">' + "".join(
        f"<bpmn:flowNodeRef>{r}</bpmn:flowNodeRef>" for r in refs[lane]) + "</bpmn:lane>" for n, lane in enumerate(LANES))
    for n in range(len(LANES)):
        shapes.insert(0, f'<bpmndi:BPMNShape id="lane_{n}_di" bpmnElement="lane_{n}" isHorizontal="true"><dc:Bounds '
                         f'x="60" y="{n * lane_h}" width="{width}" height="{lane_h}" /></bpmndi:BPMNShape>')
    shapes.insert(0, f'<bpmndi:BPMNShape id="pool_di" bpmnElement="pool" isHorizontal="true"><dc:Bounds x="30" y="0" '
                     f'width="{width + 30}" height="{lane_h * len(LANES)}" /></bpmndi:BPMNShape>')
    xml = ('<?xml version="1.0" encoding="UTF-8"?>\n<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" '
           'xmlns:bpmndi="http://www.omg.org/spec/BPMN/20100524/DI" xmlns:dc="http://www.omg.org/spec/DD/20100524/DC" '
           'xmlns:di="http://www.omg.org/spec/DD/20100524/DI" xmlns:spiffworkflow="http://spiffworkflow.org/bpmn/schema/1.0/core" '
           f'id="defs" targetNamespace="urn:lajur:bench"><bpmn:collaboration id="collab"><bpmn:participant id="pool" '
           f'name="SOP 50 langkah" processRef="{pid}" /></bpmn:collaboration><bpmn:process id="{pid}" isExecutable="true">'
           f'<bpmn:laneSet id="ls">{lanes_xml}</bpmn:laneSet>' + "".join(nodes) + "".join(flows) +
           '</bpmn:process><bpmndi:BPMNDiagram id="d"><bpmndi:BPMNPlane id="p" bpmnElement="collab">'
           + "".join(shapes) + "".join(edges) + "</bpmndi:BPMNPlane></bpmndi:BPMNDiagram></bpmn:definitions>\n")
    sop = {"key": KEY, "office": "dpmk", "name": "SOP 50 langkah", "steps": sop_steps}
    files = {"process.bpmn": xml, "sop.json": json.dumps(sop, indent=2)}
    files.update({k: json.dumps(v, indent=2) for k, v in forms.items()})
    return files


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=40)
    parser.add_argument("--no-tune-gc", action="store_true", help="A/B: CPython's default collector settings")
    args = parser.parse_args()
    print(f"machine: {machine()}; a {args.steps}-step SOP, PostgreSQL")
    with scratch_database("lajur_bench_studio") as url, tempfile.TemporaryDirectory() as tmp:
        upgrade(url)
        svc = Services.from_settings(Settings(database_url=url, broker_url="memory://", data_dir=Path(tmp) / "data",
                                              base_url="http://127.0.0.1"))
        files = big_sop(args.steps)
        folder = write_folder(Path(tmp) / KEY, files)
        with svc.sessions.begin() as session:
            logins = seed_demo(session, svc.runtime.store, Path(tmp) / "logins.json")
            deploy_folder(session, folder, svc.runtime.store)
        print(f"process.bpmn {len(files['process.bpmn']):,} bytes, {len(files)} files")

        from webui import create_app
        app = create_app(services=svc)
        client = app.test_client()
        page = client.get("/login").get_data(as_text=True)
        token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
        client.post("/login", data={"username": "dpmk.pemilik", "password": logins["dpmk.pemilik"],
                                    "csrf_token": token})

        if not args.no_tune_gc:
            tune_gc()  # as each gunicorn worker does once it has loaded the app (webui/wsgi.py)

        def load():
            assert client.get(f"/studio/{KEY}").status_code == 200
            assert client.get(f"/studio/{KEY}/draft.json").status_code == 200
        page_ms = timed(load, args.repeat)
        draft = client.get(f"/studio/{KEY}/draft.json").get_json()
        csrf = re.search(r'name="csrf-token" content="([^"]+)"', client.get(f"/studio/{KEY}").get_data(as_text=True)).group(1)
        state = {"lock": draft["lock_version"]}

        def save(files):
            r = client.post(f"/studio/{KEY}/draft", json={"files": files, "lock_version": state["lock"]},
                            headers={"X-CSRFToken": csrf})
            body = r.get_json()
            assert r.status_code == 200 and body["problems"] == [], body
            state["lock"] = body["lock_version"]
        save_ms = timed(lambda: save(draft["files"]), args.repeat)
        bpmn, n = draft["files"]["process.bpmn"], iter(range(1, 10**6))
        assert '<dc:Bounds x="120" y="62"' in bpmn and "<bpmn:timeDuration>PT30M" in bpmn

        def round_trip_changed():  # a shape moved: process.bpmn differs on every save, its process part does not
            save(dict(draft["files"], **{"process.bpmn": bpmn.replace(
                '<dc:Bounds x="120" y="62"', f'<dc:Bounds x="{120 + next(n)}" y="62"', 1)}))
        changed_ms = timed(round_trip_changed, args.repeat)

        def round_trip_property():  # step 1's Mutu Baku changed: the process itself differs on every save
            save(dict(draft["files"], **{"process.bpmn": bpmn.replace(
                "<bpmn:timeDuration>PT30M", f"<bpmn:timeDuration>PT{30 + next(n)}M", 1)}))
        property_ms = timed(round_trip_property, args.repeat)
        validator_ms = timed(lambda: load_process_folder(folder, svc.settings.deploy_limits), args.repeat)
        print(f"editor page + draft.json   {summary(page_ms)}")
        print(f"validation round trip      {summary(save_ms)}")
        print(f"  ... a shape moved        {summary(changed_ms)}")
        print(f"  ... a Mutu Baku changed  {summary(property_ms)}")
        print(f"reference: validator alone {summary(validator_ms)}")
        browser_ms = _chromium(app, logins["dpmk.pemilik"], max(5, args.repeat // 4))
        if browser_ms:
            print(f"Chromium: editor drawn     {summary(browser_ms)}")
        verdict = all(percentile(ms, 0.95) <= 200 for ms in (page_ms, save_ms, changed_ms, property_ms))
        print(f"verdict: p95 <= 200 ms for the page and every round trip: {'met' if verdict else 'MISSED'}")
        svc.dispose()


def _chromium(app, password: str, repeat: int) -> list[float]:
    """Navigation until the modeler has drawn the 50-step diagram, in Debian's Chromium."""
    if not os.path.exists("/usr/bin/chromium"):
        return []
    from playwright.sync_api import sync_playwright
    from werkzeug.serving import WSGIRequestHandler, make_server

    class Quiet(WSGIRequestHandler):  # the figures, not a line per request
        def log_request(self, *args, **kwargs):
            pass
    httpd = make_server("127.0.0.1", 0, app, threaded=True, request_handler=Quiet)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{httpd.server_port}"
    out = []
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", headless=True,
                                        args=["--no-sandbox", "--disable-gpu", "--no-first-run"])
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(f"{base}/login")
            page.fill("#username", "dpmk.pemilik")
            page.fill("#password", password)
            page.click("button[type=submit]")
            page.wait_for_url(f"{base}/inbox")
            for n in range(repeat + 1):
                t0 = time.perf_counter()
                page.goto(f"{base}/studio/{KEY}")
                page.wait_for_selector("#studio[data-ready='1']", timeout=30_000)
                if n:  # the first load fills the browser cache
                    out.append((time.perf_counter() - t0) * 1000)
            browser.close()
    finally:
        httpd.shutdown()
    return out


if __name__ == "__main__":
    main()
