"""The studio in Chromium (issue 11): a process owner edits DPMK's SOP, publishes version 2,
reads the diff, moves the running instances after the dry run, and the staff then see the new
field and the new due time; an invalid change is marked and refused; a .bpmn from another modeler is uploaded, fixed in
the editor and published. Screenshots at 1,280 and 390 px go to test-artifacts/studio-*.png."""
from __future__ import annotations

from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from engine.db import as_utc
from engine.models import User
from engine.sla import due_of

from .helpers import open_task, work_step
from .sopdata import DPMK
from .test_browser import browser, server, sign_in  # noqa: F401  (fixtures)

pytestmark = pytest.mark.browser
FIXTURES = Path(__file__).parent / "fixtures" / "modelers"


def _page(browser, width=1280):  # noqa: F811
    context = browser.new_context(viewport={"width": width, "height": 900}, locale="id-ID",
                                  is_mobile=width < 500, has_touch=width < 500, accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(15_000)
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    return context, page, errors


def _open_editor(page, base, key):
    page.goto(f"{base}/studio/{key}")
    page.wait_for_selector("#studio[data-ready='1']")


def _saved(page):
    """Wait until the last change is saved and checked."""
    page.wait_for_function("() => { const s = window.LajurStudio && window.LajurStudio.state;"
                           " return s && !s.saving && !s.again && "
                           " document.getElementById('save-status').textContent.startsWith('Tersimpan'); }")


def _click_element(page, element_id):
    box = page.locator(f".djs-element[data-element-id='{element_id}'] .djs-hit").first.bounding_box()
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)


INSERT_TASK = """() => {
  // What dropping the palette's task on the flow step4 -> step5 does (the drag itself is not
  // driven here: diagram-js sees no hover from synthetic mouse moves in headless Chromium).
  const m = window.LajurStudio.modeler, reg = m.get('elementRegistry'), modeling = m.get('modeling');
  const flow = reg.get('flow_step4_step5'), s4 = reg.get('step4'), s5 = reg.get('step5');
  const shape = modeling.createShape({type: 'bpmn:Task'}, {x: s4.x + s4.width / 2, y: s4.y - 60}, s4.parent);
  modeling.reconnectEnd(flow, shape, {x: shape.x, y: shape.y + shape.height / 2});
  modeling.connect(shape, s5);
  m.get('selection').select(shape);
  return shape.id;
}"""


def test_owner_edits_dpmk_and_publishes_version_2(server, browser, artifacts_dir):  # noqa: F811
    base, services, _tmp = server
    # two instances running on version 1: one at step 1 (its starter holds it), one at step 2
    with services.sessions() as db:
        users = {u.username: u.id for u in db.scalars(select(User))}
    at_step1 = services.runtime.start(users["dpmk.penerima"], DPMK, "Berita sebelum revisi (langkah 1)")
    at_step2 = services.runtime.start(users["dpmk.penerima"], DPMK, "Berita sebelum revisi (langkah 2)")
    work_step(services, users, DPMK, at_step2, "step1")
    due_before = as_utc(open_task(services, at_step2).due_at)

    context, page, errors = _page(browser)
    try:
        sign_in(page, base, "dpmk.pemilik")
        page.goto(f"{base}/studio/")
        page.screenshot(path=str(artifacts_dir / "studio-index-1280.png"), full_page=True)
        page.locator(f"#sop-{DPMK} a:has-text('Ubah')").click()
        page.wait_for_selector("#studio[data-ready='1']")
        assert page.locator("#problem-count").inner_text() == "0"

        # step 2's Mutu Baku 15 -> 20 minutes
        _click_element(page, "step2")
        assert page.locator("#lp-mutu-baku").input_value() == "15"
        page.fill("#lp-mutu-baku", "20")
        page.locator("#lp-mutu-baku").press("Tab")
        _saved(page)

        # a required field on step 1's form, shown in the server-rendered preview
        _click_element(page, "step1")
        page.click("#ff-add")
        row = page.locator("#form-designer fieldset.form-field").last
        row.locator(".ff-label").fill("Nomor Surat Pengantar")
        row.locator(".ff-label").press("Tab")
        row = page.locator("#form-designer fieldset.form-field").last
        row.locator(".ff-name").fill("nomor_surat_pengantar")
        row.locator(".ff-name").press("Tab")
        row = page.locator("#form-designer fieldset.form-field").last
        row.locator(".ff-required").check()
        page.wait_for_selector("#form-preview label:has-text('Nomor Surat Pengantar')")
        _saved(page)

        # a new step dropped on the flow step4 -> step5, made a user task, in its lane
        page.evaluate(INSERT_TASK)
        page.click(".djs-context-pad [data-action='replace']")
        page.click(".djs-popup [data-id='replace-with-user-task']")
        page.wait_for_selector("#lp-name")
        new_id = page.evaluate("() => window.LajurStudio.modeler.get('selection').get()[0].id")
        page.fill("#lp-name", "Memeriksa tampilan berita")
        page.locator("#lp-name").press("Tab")
        _saved(page)
        page.select_option("#lp-lane", "Operator Website")
        _saved(page)
        page.fill("#lp-mutu-baku", "30")
        page.locator("#lp-mutu-baku").press("Tab")
        _saved(page)
        page.wait_for_function("() => document.getElementById('problem-count').textContent === '0'")
        page.screenshot(path=str(artifacts_dir / "studio-editor-1280.png"), full_page=True)

        page.fill("#note", "Mutu Baku langkah 2 menjadi 20 menit; nomor surat pengantar; langkah periksa tampilan")
        page.click("#publish")
        page.wait_for_selector("text=Versi 2 diterbitkan")
        assert page.locator("#migrate-link").get_attribute("href") == f"/processes/{DPMK}/migrate"
        page.screenshot(path=str(artifacts_dir / "studio-published-1280.png"), full_page=True)

        from engine.models import ProcessVersion
        with services.sessions() as db:
            v2 = db.scalar(select(ProcessVersion).where(ProcessVersion.version == 2))
            assert v2.steps["step2"]["mutu_baku_minutes"] == 20
            assert v2.steps[new_id]["lane"] == "Operator Website" and v2.steps[new_id]["mutu_baku_minutes"] == 30
            assert "nomor_surat_pengantar" in v2.forms["forms/step1.schema.json"]["required"]
            assert v2.facts["steps"].index(new_id) == v2.facts["steps"].index("step4") + 1

        # the diff of 1 and 2 on the diagrams, beside the list
        page.goto(f"{base}/studio/{DPMK}/diff?a=1&b=2")
        page.wait_for_selector("#diff[data-ready='1']")
        assert new_id in page.locator("#diff").get_attribute("data-added").split()
        lines = page.locator("#diff-lines").inner_text()
        assert "~ Mutu Baku step2: 15 min -> 20 min" in lines and f"+ step {new_id}" in lines
        assert "+ field step1.nomor_surat_pengantar" in lines
        assert page.locator(f"#diff-b-canvas .djs-element.diff-added[data-element-id='{new_id}']").count() == 1
        page.screenshot(path=str(artifacts_dir / "studio-diff-1280.png"), full_page=True)

        # the running instances move to version 2, after the owner has read the dry run
        page.goto(f"{base}/processes/{DPMK}/migrate?from=1&to=2")
        page.click("#check-form button[type=submit]")
        page.wait_for_selector("#apply-form")
        report = page.locator("#report").inner_text()
        assert "2 dari 2 instans dapat dipindahkan" in report
        assert "Mutu Baku 15 → 20 menit" in report and "formulir berubah" in report
        page.screenshot(path=str(artifacts_dir / "studio-migrate-dry-run-1280.png"), full_page=True)
        page.click("#apply-form button[type=submit]")
        page.wait_for_selector("text=Hasil pemindahan v1 → v2")
        assert page.locator("#report .badge:has-text('dipindahkan')").count() == 2
        page.screenshot(path=str(artifacts_dir / "studio-migrate-applied-1280.png"), full_page=True)
    finally:
        context.close()
    assert not errors, errors

    # the Kasubbag's step 2 now runs on 20 minutes: the due time counted again from when it was ready
    step2 = open_task(services, at_step2)
    with services.sessions() as db:
        calendar = services.runtime.calendars.get(db, step2.office_id)
    due = due_of(calendar, as_utc(step2.ready_at), 20, 1.0, 0)
    assert (step2.mutu_baku_minutes, as_utc(step2.due_at)) == (20, due) and due > due_before
    local = due.astimezone(ZoneInfo("Asia/Jakarta"))
    context, page, errors = _page(browser)
    try:
        sign_in(page, base, "dpmk.kasubbag")
        page.goto(f"{base}/tasks/{step2.id}")
        shown = page.locator("#due-at").inner_text()
        assert f" {local.day} " in shown and f"{local.hour:02d}.{local.minute:02d} WIB" in shown, shown
        page.screenshot(path=str(artifacts_dir / "studio-migrated-step2-1280.png"), full_page=True)
    finally:
        context.close()
    assert not errors, errors

    # a staff member starting the SOP now gets version 2's form with the new field
    context, page, errors = _page(browser)
    try:
        sign_in(page, base, "dpmk.penerima")
        page.click("nav >> text=Mulai SOP")
        card = page.locator(f"#sop-{DPMK}")
        card.locator("input[name=subject]").fill("Berita setelah revisi")
        card.locator("button[type=submit]").click()
        page.wait_for_selector("#step-form")
        assert page.locator("label:has-text('Nomor Surat Pengantar')").count() == 1
        # and the moved instance's step 1 asks for it too
        page.goto(f"{base}/tasks/{open_task(services, at_step1).id}")
        assert page.locator("label:has-text('Nomor Surat Pengantar')").count() == 1
        page.screenshot(path=str(artifacts_dir / "studio-migrated-step1-1280.png"), full_page=True)
    finally:
        context.close()
    assert not errors, errors


def test_an_invalid_change_is_marked_and_publish_refused(server, browser, artifacts_dir):  # noqa: F811
    base, _services, _tmp = server
    key = "dinsos-website-medsos"
    context, page, errors = _page(browser)
    try:
        sign_in(page, base, "dinsos.pemilik")
        _open_editor(page, base, key)
        # a condition on a field that no longer exists: remove the decision's field from step 3's form
        _click_element(page, "step3")
        page.locator("#form-designer fieldset[data-field='persetujuan_ketua'] .ff-remove").click()
        _saved(page)
        page.wait_for_selector("#problems li.problem")
        problem = page.locator("#problems li.problem").first
        flow = problem.get_attribute("data-element")
        assert flow and "persetujuan_ketua" in problem.inner_text()
        assert page.locator(f".djs-element.lajur-problem[data-element-id='{flow}']").count() == 1
        assert page.locator("#publish").is_disabled()
        page.screenshot(path=str(artifacts_dir / "studio-invalid-condition-1280.png"), full_page=True)
        # the refusal on the server too, past the disabled button
        page.fill("#note", "tidak boleh")
        page.evaluate("() => document.getElementById('publish-form').submit()")
        page.wait_for_selector("text=Belum dapat diterbitkan")
        page.wait_for_selector("#studio[data-ready='1']")
        page.click("button:has-text('Buang draf')")
        page.wait_for_selector("text=Draf dibuang.")
        _open_editor(page, base, key)
        # a lane with no group: renamed in the generic BPMN properties panel (Lajur's own lane
        # panel offers only the office's groups)
        lane = page.locator(".djs-element[data-element-id='lane_ketua_tim_kerja'] .djs-hit").first.bounding_box()
        page.mouse.click(lane["x"] + 8, lane["y"] + lane["height"] / 2)
        page.wait_for_selector("#lp-lane-group")
        page.click("summary:has-text('Properti BPMN lainnya')")
        if not page.locator("#bio-properties-panel-name").is_visible():
            page.click("#props .bio-properties-panel-group-header:has-text('General')")
        page.fill("#bio-properties-panel-name", "Ketua Tim")
        page.locator("#bio-properties-panel-name").press("Tab")
        _saved(page)
        page.wait_for_selector(".djs-element.lajur-problem[data-element-id='lane_ketua_tim_kerja']")
        assert "Ketua Tim" in page.locator("#problems li[data-element='lane_ketua_tim_kerja']").inner_text()
        assert page.locator("#publish").is_disabled()
        page.screenshot(path=str(artifacts_dir / "studio-invalid-lane-1280.png"), full_page=True)
        page.fill("#note", "tidak boleh")
        page.evaluate("() => document.getElementById('publish-form').submit()")  # bypass the disabled button
        page.wait_for_selector("text=Belum dapat diterbitkan")
    finally:
        context.close()
    assert not errors, errors


def test_phone_layout_of_the_editor(server, browser, artifacts_dir):  # noqa: F811
    base, _services, _tmp = server
    context, page, errors = _page(browser, 390)
    try:
        sign_in(page, base, "dpmk.pemilik")
        page.goto(f"{base}/studio/")
        page.screenshot(path=str(artifacts_dir / "studio-index-390.png"), full_page=True)
        _open_editor(page, base, DPMK)
        _click_element(page, "step5")  # the palette covers the left of the small diagram on a phone
        page.wait_for_selector("#form-preview .field", state="attached")
        page.locator("#form-designer").scroll_into_view_if_needed()
        size = page.evaluate("() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]")
        assert size[0] <= size[1], size
        page.screenshot(path=str(artifacts_dir / "studio-editor-390.png"), full_page=True)
    finally:
        context.close()
    assert not errors, errors


def test_a_bpmn_from_camunda_modeler_is_uploaded_fixed_and_published(server, browser, artifacts_dir):  # noqa: F811
    """Only the .bpmn (no forms, no sop.json), into an office whose groups it does not name."""
    base, services, _tmp = server
    context, page, errors = _page(browser)
    try:
        sign_in(page, base, "dpmk.pemilik")
        page.goto(f"{base}/studio/")
        page.set_input_files("#up-file", str(FIXTURES / "camunda-modeler-5" / "process.bpmn"))
        page.fill("#up-key", "surat-domisili")
        page.click("#h-upload ~ form button[type=submit]")
        page.wait_for_selector("#studio[data-ready='1']")
        # the condition's field is on no form (the upload had no forms): marked on its flow
        problem = page.locator("#problems li.problem").first
        assert "keputusan_lurah" in problem.inner_text()
        flow = problem.get_attribute("data-element")
        assert page.locator(f".djs-element.lajur-problem[data-element-id='{flow}']").count() == 1
        page.screenshot(path=str(artifacts_dir / "studio-upload-problems-1280.png"), full_page=True)

        # fixed in the editor: the decision's field on the approval step's form ...
        _click_element(page, "setujui")
        page.click("#ff-add")
        row = page.locator("#form-designer fieldset.form-field").last
        row.locator(".ff-name").fill("keputusan_lurah")
        row.locator(".ff-name").press("Tab")
        row = page.locator("#form-designer fieldset.form-field").last
        row.locator(".ff-type").select_option("yesno")
        row = page.locator("#form-designer fieldset.form-field").last
        row.locator(".ff-required").check()
        _saved(page)
        # ... and the lanes named after this office's groups (now the lanes are the problems)
        page.wait_for_selector("#problems li[data-element='lane_pelayanan']")
        for lane, group in (("lane_pelayanan", "Petugas Penerima Berita/Informasi"), ("lane_lurah", "Sekdin")):
            box = page.locator(f".djs-element[data-element-id='{lane}'] .djs-hit").first.bounding_box()
            page.mouse.click(box["x"] + 8, box["y"] + box["height"] / 2)
            page.select_option("#lp-lane-group", group)
            _saved(page)
        page.wait_for_function("() => document.getElementById('problem-count').textContent === '0'")
        page.fill("#note", "Diimpor dari Camunda Modeler")
        page.click("#publish")
        page.wait_for_selector("text=Versi 1 diterbitkan")
        page.screenshot(path=str(artifacts_dir / "studio-upload-published-1280.png"), full_page=True)
    finally:
        context.close()
    assert not errors, errors
    from engine.models import ProcessDefinition, ProcessVersion
    with services.sessions() as db:
        d = db.scalar(select(ProcessDefinition).where(ProcessDefinition.key == "surat-domisili"))
        v = db.get(ProcessVersion, d.latest_version_id)
        assert v.steps["setujui"]["lane"] == "Sekdin" and v.steps["terima"]["mutu_baku_minutes"] == 30


def test_the_decision_picker_offers_earlier_fields_and_writes_the_condition(server, browser, artifacts_dir):  # noqa: F811
    base, _services, _tmp = server
    context, page, errors = _page(browser)
    try:
        sign_in(page, base, "dpmk.pemilik")
        _open_editor(page, base, DPMK)
        _click_element(page, "step3_decision")
        branch = page.locator("#lajur-panel fieldset.branch[data-flow='flow_step3_decision_ya']")
        assert branch.locator(".cond").input_value() == 'persetujuan_sekdin == "YA"'
        options = branch.locator(".pick-field option").all_inner_texts()
        assert any("(persetujuan_sekdin)" in o for o in options) and any("(jenis_berita)" in o for o in options)
        branch.locator(".pick-field").select_option("jenis_berita")
        branch.locator(".pick-value").select_option("Pengumuman")
        branch.locator(".pick-use").click()
        _saved(page)
        page.screenshot(path=str(artifacts_dir / "studio-decision-1280.png"), full_page=True)
        xml = page.evaluate("() => window.LajurStudio.state.files['process.bpmn']")
        assert 'jenis_berita == "Pengumuman"' in xml
        assert page.locator("#problem-count").inner_text() == "0"  # a field filled on every path before it
        page.click("button:has-text('Buang draf')")
        page.wait_for_selector("text=Draf dibuang.")
    finally:
        context.close()
    assert not errors, errors
