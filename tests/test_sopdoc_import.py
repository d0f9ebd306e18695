"""Importing SOP documents (Permenpan RB 35/2012 layout) into draft process folders.

Documents are built in several layouts (tests/sopdocs.py) and the two source exports in
../shared/sop/ are imported; each gives its lanes, steps, minutes, decision and problems.
The drafts of the shared SOPs are resolved the way a process owner would in the editor
(lanes, decision, TIDAK target), deployed with `lajur deploy`, and compared with the
hand-written processes/ folders deployed by the demo seed.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from lxml import etree
from sqlalchemy import select

from engine.bpmn import NS, load_process_folder
from engine.errors import DeployError
from engine.models import ProcessInstance, User
from engine.sopdoc.draft import import_sop
from engine.sopdoc.layout import read_layout
from engine.sopdoc.model import parse_minutes
from engine.sopdoc.read_docx import read_docx
from engine.sopdoc.read_html import read_html
from engine.sopdoc.read_xlsx import read_xlsx

from . import sopdocs
from .helpers import open_task
from .sopdata import ACTORS
from .sopdocs import cli_services, deployed_document
from .test_cli import run  # noqa: F401 (the CLI fixture: migrated, demo seeded)

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "sop"
BPMN = NS["bpmn"]


@pytest.mark.parametrize("text,minutes", [
    ("120 menit", 120), ("2 jam", 120), ("1 hari", 450), ("15'", 15), ("15 '", 15), ("30 mnt", 30),
    ("1,5 jam", 90), ("1 jam 30 menit", 90), ("2 x 24 jam", 900), ("5 Menit", 5), ("45 detik", 1),
    ("10-15 menit", None), ("sesuai kebutuhan", None), ("60", None), ("", None), ("2 jam atau lebih", None),
])
def test_minutes_as_sops_write_them(text, minutes):
    assert parse_minutes(text) == minutes


def _summary(doc):
    return ([(s.no, s.actor, s.minutes, s.decision.tidak_to if s.decision else "-") for s in doc.steps],
            [str(p) for p in doc.problems])


EXPECTED = [(1, "Pengadministrasi Umum", 120, "-"), (2, "Pengadministrasi Umum", 15, "-"),
            (3, "Sekretaris", 450, 2), (4, "Kepala Dinas", 30, "-"), (5, "Pengadministrasi Umum", 90, "-")]


@pytest.mark.parametrize("layout,data,reader", [
    ("docx, marks as text, merged headings", lambda: sopdocs.build_docx(), read_docx),
    ("docx, DrawingML shapes and connectors, column-number row",
     lambda: sopdocs.build_docx(marks="shapes", numbers_row=True), read_docx),
    ("docx, legacy VML shapes", lambda: sopdocs.build_docx(marks="vml"), read_docx),
    ("xlsx, marks as text, merged headings", lambda: sopdocs.build_xlsx(), read_xlsx),
    ("xlsx, marks as filled cells", lambda: sopdocs.build_xlsx(marks="fill"), read_xlsx),
    ("html, rowspan/colspan, symbols as images", lambda: sopdocs.build_html(), read_html),
])
def test_layouts_give_the_same_sop(layout, data, reader):
    doc = read_layout(reader(data()))
    assert doc.actors == sopdocs.ACTORS
    steps, problems = _summary(doc)
    assert steps == EXPECTED and problems == []
    assert [s.text for s in doc.steps] == [s[0] for s in sopdocs.STEPS]
    assert doc.steps[2].requirements == "Lembar disposisi" and doc.steps[2].output == "Surat diperiksa"
    h = doc.header
    assert (h["number"], h["name"], h["created"], h["revised"], h["approved"]) == (
        "045/SOP/DISKOMINFO/2025", "Pelayanan Surat Masuk", "2025-03-05", None, "2025-03-10")
    assert h["legal_basis"] == ["Permenpan RB No. 35 Tahun 2012", "Perbup Bantul No. 51 Tahun 2012"]
    assert h["equipment"] == ["Komputer", "Buku Agenda"] and h["warning"].startswith("Surat tidak diagendakan")


def _with(changes):
    steps = [list(s) for s in sopdocs.STEPS]
    for index, column, value in changes:
        steps[index][column] = value
    return [tuple(s) for s in steps]


@pytest.mark.parametrize("build", [sopdocs.build_docx, lambda steps: sopdocs.build_docx(steps, marks="shapes")])
def test_what_is_not_clear_is_listed_not_guessed(build):
    steps = _with([(0, 1, None),              # no mark at all
                   (1, 1, [0, 2]),            # marks in two columns
                   (2, 6, ""),                # decision without a TIDAK target
                   (3, 3, "sesuai kebutuhan")])  # time that is not a duration
    doc = read_layout(read_docx(build(steps)))
    got, problems = _summary(doc)
    assert got == [(1, None, 120, "-"), (2, None, 15, "-"), (3, "Sekretaris", 450, None),
                   (4, "Kepala Dinas", None, "-"), (5, "Pengadministrasi Umum", 90, "-")]
    assert problems == [
        "[actor] langkah 1: tidak ada tanda simbol di kolom Pelaksana mana pun",
        "[actor] langkah 2: tanda simbol di lebih dari satu kolom Pelaksana: Kepala Dinas, Pengadministrasi Umum",
        "[decision] langkah 3: keputusan YA/TIDAK: langkah tujuan TIDAK tidak jelas",
        "[minutes] langkah 4: waktu 'sesuai kebutuhan' tidak terbaca sebagai durasi",
    ]


def test_text_marks_that_are_not_symbols_are_problems():
    doc = read_layout(read_docx(sopdocs.build_docx(_with([(1, 1, None)]))))
    assert [str(p) for p in doc.problems] == ["[actor] langkah 2: tidak ada tanda simbol di kolom Pelaksana mana pun"]


@pytest.mark.parametrize("name,expected_lanes,expected_steps,expected_problems", [
    ("dpmk-pemutakhiran-website",
     ["Sekdin", "Kasubbag", "Operator Website", "Petugas Penerima Berita/Informasi"],
     [(1, None, 120, "-"), (2, None, 15, "-"), (3, None, 15, None), (4, None, 5, "-"), (5, None, 5, "-")],
     ["[actor] langkah 1: tidak ada tanda simbol di kolom Pelaksana mana pun; label YA di kolom Kasubbag",
      "[actor] langkah 2: tidak ada tanda simbol di kolom Pelaksana mana pun",
      "[actor] langkah 3: tidak ada tanda simbol di kolom Pelaksana mana pun; label YA di kolom Sekdin, "
      "TIDAK di kolom Petugas Penerima Berita/Informasi",
      "[decision] langkah 3: keputusan YA/TIDAK: langkah tujuan TIDAK tidak jelas (label TIDAK ada di kolom "
      "Petugas Penerima Berita/Informasi)",
      "[actor] langkah 4: tidak ada tanda simbol di kolom Pelaksana mana pun; label YA di kolom "
      "Petugas Penerima Berita/Informasi",
      "[actor] langkah 5: tidak ada tanda simbol di kolom Pelaksana mana pun"]),
    ("dinsos-website-medsos",
     ["Admin Bidang/Petugas Lapangan (Tim Kerja)", "Pengelola Website (Tim Kerja)", "Ketua Tim Kerja"],
     [(1, None, 60, "-"), (2, None, 30, "-"), (3, None, 15, "-"), (4, None, 5, "-")],
     [f"[actor] langkah {n}: tidak ada tanda simbol di kolom Pelaksana mana pun" for n in (1, 2, 3, 4)]
     + ["[decision] label YA/TIDAK ada di luar baris langkah: langkah keputusan dan tujuan TIDAK tidak jelas"]),
])
def test_shared_sop_exports_import_with_their_problems(name, expected_lanes, expected_steps, expected_problems,
                                                       tmp_path):
    source = SHARED / f"sop-{name}.txt"
    if not source.exists():
        pytest.skip(f"{source} is not here")
    out = tmp_path / name
    doc = import_sop(source, out, name.split("-")[0], "Dinas", key=name)
    assert doc.actors == expected_lanes
    steps, problems = _summary(doc)
    assert steps == expected_steps and problems == expected_problems
    assert json.loads((out / "problems.json").read_text())[0]["kind"] == "actor"
    hand = json.loads((ROOT / "processes" / name / "sop.json").read_text())
    card = json.loads((out / "sop.json").read_text())
    for field in ("number", "created", "approved", "legal_basis", "related_sops", "warning"):
        assert card[field] == hand[field], field
    for sid, step in hand["steps"].items():
        assert card["steps"][sid]["text"] == step["text"]
        assert card["steps"][sid]["requirements_text"] == step["requirements_text"]
    # the Mutu Baku is the BPMN's: the draft's timers say what the hand-written process says
    shipped = load_process_folder(ROOT / "processes" / name).steps
    assert {f"step{s.no}": s.minutes for s in doc.steps} == {sid: s["mutu_baku_minutes"] for sid, s in shipped.items()}
    # unresolved, the draft does not deploy: the first step has no lane
    with pytest.raises(DeployError, match="step1.*in no lane"):
        load_process_folder(out)


# -- resolving a draft the way a process owner does in the editor --------------------------

def _tree(folder: Path):
    return etree.parse(str(folder / "process.bpmn"))


def _lane(tree, name):
    return next(l for l in tree.iter(f"{{{BPMN}}}lane") if l.get("name") == name)


def resolve(folder: Path, lanes: dict[str, str], rename: dict[str, str], decision: tuple[str, str],
            add_gateway: bool) -> None:
    """Put steps in lanes, rename lanes to the office's groups, and wire the decision."""
    tree = _tree(folder)
    process = tree.find(f"{{{BPMN}}}process")
    for step, lane_name in lanes.items():
        lane = _lane(tree, lane_name)
        for suffix in ("", "_mutu_baku", "_mutu_baku_end", "_decision", "_tidak_end"):
            if process.find(f"*[@id='{step}{suffix}']") is not None:
                etree.SubElement(lane, f"{{{BPMN}}}flowNodeRef").text = step + suffix
    for old, new in rename.items():
        _lane(tree, old).set("name", new)
    step, back_to = decision
    field = f"{step}_keputusan"
    if add_gateway:  # the document lost which row decides: draw the gateway after the step
        flow = process.find(f"{{{BPMN}}}sequenceFlow[@sourceRef='{step}']")
        gw = etree.SubElement(process, f"{{{BPMN}}}exclusiveGateway", id=f"{step}_decision")
        etree.SubElement(process, f"{{{BPMN}}}sequenceFlow", id=f"flow_{step}_{step}_decision", sourceRef=step,
                         targetRef=gw.get("id"))
        flow.set("sourceRef", gw.get("id"))
        flow.set("id", f"flow_{step}_decision_ya")
        flow.set("name", "YA")
        etree.SubElement(flow, f"{{{BPMN}}}conditionExpression").text = f'{field} == "YA"'
        tidak = etree.SubElement(process, f"{{{BPMN}}}sequenceFlow", id=f"flow_{step}_decision_tidak",
                                 name="TIDAK", sourceRef=gw.get("id"), targetRef=back_to)
        etree.SubElement(tidak, f"{{{BPMN}}}conditionExpression").text = f'{field} == "TIDAK"'
        form_path = folder / "forms" / f"{step}.schema.json"
        form = json.loads(form_path.read_text())
        form["properties"][field] = {"type": "string", "title": "Keputusan", "enum": ["YA", "TIDAK"]}
        form["required"].append(field)
        form_path.write_text(json.dumps(form))
        lane = next(l for l in tree.iter(f"{{{BPMN}}}lane") if any(r.text == step for r in l))
        etree.SubElement(lane, f"{{{BPMN}}}flowNodeRef").text = gw.get("id")
    else:            # the TIDAK branch ends at "tujuan belum ditentukan": point it at the step
        flow = process.find(f"{{{BPMN}}}sequenceFlow[@id='flow_{step}_decision_tidak']")
        end = process.find(f"*[@id='{flow.get('targetRef')}']")
        flow.set("targetRef", back_to)
        process.remove(end)
        for ref in list(tree.iter(f"{{{BPMN}}}flowNodeRef")):
            if ref.text == end.get("id"):
                ref.getparent().remove(ref)
        for di in tree.getroot().iter("{http://www.omg.org/spec/BPMN/20100524/DI}BPMNShape"):
            if di.get("bpmnElement") == end.get("id"):
                di.getparent().remove(di)
    tree.write(str(folder / "process.bpmn"), xml_declaration=True, encoding="UTF-8")
    (folder / "problems.json").write_text("[]\n")


RESOLUTIONS = {
    "dpmk-pemutakhiran-website": dict(
        office="dpmk", lanes={"step1": "Petugas Penerima Berita/Informasi", "step2": "Kasubbag", "step3": "Sekdin",
                              "step4": "Operator Website", "step5": "Petugas Penerima Berita/Informasi"},
        rename={}, decision=("step3", "step1"), add_gateway=False),
    "dinsos-website-medsos": dict(
        office="dinsos", lanes={"step1": "Admin Bidang/Petugas Lapangan (Tim Kerja)",
                                "step2": "Pengelola Website (Tim Kerja)", "step3": "Ketua Tim Kerja",
                                "step4": "Pengelola Website (Tim Kerja)"},
        rename={"Admin Bidang/Petugas Lapangan (Tim Kerja)": "Admin Bidang/Petugas Lapangan",
                "Pengelola Website (Tim Kerja)": "Pengelola Website"},
        decision=("step3", "step1"), add_gateway=True),
}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(RESOLUTIONS))
def test_resolved_draft_deploys_and_matches_the_sop(name, run, tmp_path):
    source = SHARED / f"sop-{name}.txt"
    if not source.exists():
        pytest.skip(f"{source} is not here")
    plan = RESOLUTIONS[name]
    out = tmp_path / "draft"
    printed = run("import-sop", str(source), "--office", plan["office"], "--out", str(out), "--key", name).stdout
    assert "problem(s) to resolve before deploying" in printed and "[actor] langkah 1" in printed
    refused = run("deploy", str(out), ok=False)
    assert refused.returncode == 1 and "in no lane" in refused.stderr and len(refused.stderr.strip().splitlines()) == 1
    resolve(out, plan["lanes"], plan["rename"], plan["decision"], plan["add_gateway"])
    assert "deployed version 2" in run("deploy", str(out)).stdout
    hand, imported = deployed_document(tmp_path, name, 1), deployed_document(tmp_path, name, 2)
    assert imported["steps"] == hand["steps"]          # text, actor, minutes, Persyaratan, Output, decision
    assert imported["lanes"] == hand["lanes"]
    for field in ("number", "created", "approved", "legal_basis", "related_sops", "warning"):
        assert imported["header"][field] == hand["header"][field], field
    # it runs: an instance on the imported version goes round the TIDAK loop once, then YA to the end
    lanes = {sid: plan["rename"].get(lane, lane) for sid, lane in plan["lanes"].items()}
    path = ["step1", "step2", ("step3", "TIDAK"), "step1", "step2", ("step3", "YA"), *sorted(lanes)[3:]]
    with cli_services(tmp_path) as services:
        with services.sessions() as session:
            users = {u.username: u.id for u in session.scalars(select(User))}
        instance = services.runtime.start(users[ACTORS[lanes["step1"]]], name, "Dari draf impor")
        for item in path:
            sid, decision = item if isinstance(item, tuple) else (item, None)
            task = open_task(services, instance)
            assert task.bpmn_id == sid and task.lane == lanes[sid]
            data = {f"{sid}_persyaratan_lengkap": True, f"{sid}_output": f"hasil {sid}"}
            if decision:
                data[f"{sid}_keputusan"] = decision
            user = users[ACTORS[lanes[sid]]]
            services.runtime.claim(user, task.id)
            services.runtime.complete(user, task.id, data)
        with services.sessions() as session:
            assert session.get(ProcessInstance, instance).status == "completed"


def test_import_refuses_bad_input_with_one_line(run, tmp_path):
    bad = tmp_path / "bukan-sop.docx"
    bad.write_bytes(b"not a zip")
    proc = run("import-sop", str(bad), "--office", "dpmk", "--out", str(tmp_path / "x"), ok=False)
    assert proc.returncode == 1 and proc.stderr.startswith("error: bukan-sop.docx: DOCX tidak terbaca") and proc.stderr.count("\n") == 1
    plain = tmp_path / "plain.txt"
    plain.write_text("hanya teks\ttanpa tabel\n")
    proc = run("import-sop", str(plain), "--office", "dpmk", "--out", str(tmp_path / "y"), ok=False)
    assert "tidak ada kolom 'Uraian Prosedur'" in proc.stderr
    assert not (tmp_path / "y").exists()
    proc = run("import-sop", str(plain), "--office", "nope", "--out", str(tmp_path / "z"), ok=False)
    assert proc.stderr == "error: office 'nope' does not exist\n"
    occupied = tmp_path / "occupied"
    occupied.mkdir()
    (occupied / "keep.txt").write_text("x")
    good = tmp_path / "sop.docx"
    good.write_bytes(sopdocs.build_docx())
    proc = run("import-sop", str(good), "--office", "dpmk", "--out", str(occupied), ok=False)
    assert proc.returncode == 1 and "sudah ada dan tidak kosong" in proc.stderr and sorted(p.name for p in occupied.iterdir()) == ["keep.txt"]
