"""Checking a draft with deploy's own validator, answering with problems the editor can mark.

Nothing here is a rule: the draft's files are read by `engine.bpmn.load_process` as a process
folder held in memory (`DraftFiles`), exactly as `lajur deploy` reads one on disk (`FolderFiles`;
no temporary folder to write, which cost 5-150 ms a save on a busy disk), and the lanes are
checked against the office's groups by `engine.deploy.check_lanes`. The validator collects every
independent problem of the folder in one pass (deploy names the first); all are listed, each on
its element, and so are missing groups, each on its lane.
The only additions are what publishing from this draft needs: sop.json names this office and
this SOP's key (a draft cannot publish into another office or over another SOP).
"""
from __future__ import annotations

from lxml import etree

from ..bpmn import BPMN_NS, DraftFiles, load_process
from ..config import DeployLimits
from ..deploy import check_lanes
from ..errors import DeployError
from ..models import Office


def problem(message: str, file: str = "", element_id: str = "", line: int | str = "") -> dict:
    return {"file": file, "element_id": element_id, "line": line if isinstance(line, int) else None,
            "message": message}


def _local(file: str, key: str) -> str:
    """`<key>/forms/x.json` as the validator names it -> `forms/x.json`, the draft's name."""
    return file[len(key) + 1:] if file.startswith(key + "/") else file


def _lane_ids(bpmn_xml: str) -> dict[str, str]:
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
    root = etree.fromstring(bpmn_xml.encode(), parser=parser)
    return {(lane.get("name") or "").strip(): lane.get("id") or "" for lane in root.iter(f"{{{BPMN_NS}}}lane")}


def check_files(session, office: Office, key: str, files: dict[str, str],
                limits: DeployLimits | None = None) -> tuple[list[dict], object | None]:
    """(problems, the validated package or None) for a draft's files, checked as deploy checks them."""
    try:
        package = load_process(DraftFiles(key, files), limits)
    except DeployError as exc:
        return [problem(p.reason, _local(p.file, key), p.element_id, p.line) for p in exc.problems], None
    problems = []
    if package.office_code != office.code:
        problems.append(problem(f"sop.json names office {package.office_code!r}; this draft belongs to "
                                f"{office.code!r}", "sop.json"))
    if package.key != key:
        problems.append(problem(f"sop.json has key {package.key!r}; this draft is SOP {key!r}", "sop.json"))
    missing = check_lanes(session, office, package)
    if missing:
        lane_ids = _lane_ids(package.bpmn_xml)
        for lane in missing:
            where = lane_ids.get(lane, "")
            problems.append(problem(
                f"lane {lane!r} is not a group of office {office.code!r}; pick one of its groups",
                "process.bpmn" if where else "sop.json", where))
    return problems, package
