"""The hostile-input sweep (issue 12): every route, every parameter, every role, on PostgreSQL.

The routes come from the app's own url_map and the parameter names from the source of
the view modules (every `args`/`form`/`values` `.get("name")`, plus the step forms'
fields), so a route or parameter added later is swept without editing this file.
Each is sent NUL bytes, over-long and 10 MB strings, 2^70, negative, zero and
non-numeric numbers, dates at year 1 and 9999, repeated values, a file where text is
expected, no fields and unknown fields, as a signed-in user of each role. The rules:
never a 500, and a refused request (4xx) changes nothing in the database (every
table's rows are compared before and after; the sign-in failure log is the one
table a refused sign-in is meant to write).
"""
from __future__ import annotations

import hashlib
import io
import re
from pathlib import Path

import pytest
from sqlalchemy import select, text

from engine import throttle
from engine.models import Base, ProcessVersion

from .sopdata import DPMK
from .test_web import login, make_app, png_bytes, start, upload_evidence, users  # noqa: F401

pytestmark = pytest.mark.slow

WEBUI = Path(__file__).resolve().parent.parent / "webui"
PARAM = re.compile(r"""(?:args|form|values|files)\.(?:get|getlist)\(\s*f?["']([A-Za-z_][\w]*)""")
# names read through a helper (`_date_arg("start")`) rather than request.args directly
HELPER_PARAM = re.compile(r"""_\w*(?:arg|date|int)\(\s*["']([A-Za-z_]\w*)""")
TEN_MB = "x" * (10 * 1024 * 1024)
VALUES = ["\x00", "a\x00b", "x" * 600, str(2 ** 70), "9" * 5000, "-1", "0", "abc", "1.5", "NaN", "0001-01-01",
          "9999-12-31", "2026-02-30", "<script>", "../../etc/passwd"]
ROLES = ["dpmk.penerima", "dpmk.kasubbag", "dpmk.pemilik", "admin"]
SKIP = {"auth.logout", "static"}  # sign-out is tested on its own (it ends the sweep's session)
UNCHANGED_EXCEPT = {"login_failure"}  # a refused sign-in is recorded by design (engine.throttle)


@pytest.fixture
def backend():
    return "postgresql"


def parameter_names() -> set[str]:
    names = set()
    for path in WEBUI.rglob("*.py"):
        source = path.read_text(encoding="utf-8")
        names |= set(PARAM.findall(source)) | set(HELPER_PARAM.findall(source))
    return names - {"name"}


def form_fields(services) -> set[str]:
    """Every step form's field names (a files field also takes `<name>__upload`)."""
    with services.engine.connect() as conn:
        versions = conn.execute(select(ProcessVersion.forms)).scalars().all()
    fields = set()
    for forms in versions:
        for schema in forms.values():
            for field, prop in schema.get("properties", {}).items():
                fields.add(field)
                if prop.get("x-lajur-widget") == "files":
                    fields.add(f"{field}__upload")
    return fields


def snapshot(services) -> dict[str, str]:
    """A digest of every table's rows, computed by PostgreSQL in one round trip."""
    tables = [t.name for t in Base.metadata.sorted_tables if t.name not in UNCHANGED_EXCEPT]
    query = " UNION ALL ".join(
        f"SELECT '{name}', count(*), md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), '')) FROM \"{name}\" t"
        for name in tables)
    with services.engine.connect() as conn:
        return {row[0]: f"{row[1]}:{row[2]}" for row in conn.execute(text(query))}


def paths_for(rule, real: dict[str, str]) -> list[str]:
    """The rule with real values, then with each variable replaced by hostile ones."""
    def build(values):
        path = rule.rule
        for name in rule.arguments:
            path = re.sub(r"<(?:[^:<>]+:)?" + name + r">", values[name], path)
        return path
    base = {name: real.get(name, "1") for name in rule.arguments}
    paths = [build(base)]
    for name in rule.arguments:
        for bad in (str(2 ** 70), "-1", "0", "abc", "%00", "x" * 600):
            paths.append(build({**base, name: bad}))
    return paths


def test_hostile_input_never_500_and_refusals_change_nothing(services, users):  # noqa: F811
    policy = throttle.Policy(account_limit=10 ** 6, address_limit=10 ** 6, lockout_failures=10 ** 6)
    app = make_app(services, TESTING=False, PROPAGATE_EXCEPTIONS=False, LAJUR_LOGIN_POLICY=policy)
    starter = login(app, "dpmk.penerima")
    task_id = start(starter, DPMK)
    assert upload_evidence(starter, task_id, "bukti_multimedia", png_bytes()).status_code == 302
    from engine.models import Attachment, HumanTask
    with services.sessions() as session:
        sha = session.query(Attachment.sha256).scalar()
        instance_id = session.get(HumanTask, task_id).instance_id
    real = {"task_id": str(task_id), "instance_id": str(instance_id), "key": DPMK, "sha256": sha,
            "page": "overview", "fmt": "csv"}
    names = sorted(parameter_names() | form_fields(services))
    assert {"page", "next", "subject", "reason", "start", "end", "username"} <= set(names), names

    failures: list[str] = []
    requests = 0
    before = snapshot(services)
    rules = [r for r in app.url_map.iter_rules() if r.endpoint not in SKIP]
    assert len(rules) >= 20
    for role in ROLES:
        client = login(app, role)
        for rule in rules:
            for method in sorted(rule.methods & {"GET", "POST"}):
                send = client.get if method == "GET" else client.post
                cases = [(path, {}) for path in paths_for(rule, real)]
                base_path = cases[0][0]
                cases += [(base_path, {name: value for name in names}) for value in VALUES]
                cases += [(base_path, {name: [value, value] for name in names}) for value in ("1", "\x00")]
                cases += [(base_path, {"unexpected_field": "1"}), (base_path, {names[0]: TEN_MB})]
                if method == "POST":
                    cases += [(base_path, {name: (io.BytesIO(b"\x00" * 64), "x.bin") for name in names})]
                for path, params in cases:
                    kwargs = {"query_string": params} if method == "GET" else {"data": params}
                    if method == "GET" and any(isinstance(v, tuple) for v in params.values()):
                        continue
                    if method == "GET" and len(str(params)) > 100_000:
                        kwargs = {"query_string": {k: v[:5000] for k, v in params.items()}}
                    response = send(path, **kwargs)
                    requests += 1
                    label = f"{role} {method} {path[:80]} {sorted(params)[:3]}={str(list(params.values())[:1])[:40]}"
                    if response.status_code >= 500:
                        failures.append(f"{response.status_code} {label}")
                        before = snapshot(services)
                        continue
                    if response.status_code >= 400:
                        after = snapshot(services)
                        changed = sorted(t for t in after if after[t] != before[t])
                        if changed:
                            failures.append(f"{response.status_code} changed {changed}: {label}")
                        before = after
                    else:  # an accepted request may change state (a post; a dashboard read fills its
                        before = snapshot(services)  # rollup cache): the new baseline
                if rule.endpoint == "auth.login":
                    client = login(app, role)  # a successful hostile-but-valid sign-in replaced the session
    print(f"hostile sweep: {requests} requests over {len(rules)} routes, {len(names)} parameters, {len(ROLES)} roles")
    assert not failures, f"{len(failures)} failures:\n" + "\n".join(failures[:40])
