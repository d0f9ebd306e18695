"""Lajur's production topology on one machine, for tests and benchmarks: nginx from Debian
running deploy/nginx/lajur.conf in front of N web nodes (`lajur web`), M workers
(`lajur worker`) and beats (`lajur beat`), each its own process group so kill -9 takes a
whole node; plus the short test SOP whose reminders come due within a minute.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from .test_workers import free_port, wait_for  # noqa: F401 (re-exported for the topology's users)

ROOT = Path(__file__).resolve().parent.parent
NGINX_SITE = ROOT / "deploy" / "nginx" / "lajur.conf"
LAJUR = [sys.executable, "-m", "engine.cli"]


def nginx_binary() -> str | None:
    return shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx",) if Path(p).exists()), None)


def nginx_config(workdir: Path, listen: int, upstreams: list[int]) -> Path:
    """The shipped site file with this run's ports, inside a main config of its own."""
    site = NGINX_SITE.read_text()
    block = "\n".join(f"    server 127.0.0.1:{p} max_fails=1 fail_timeout=10s;" for p in upstreams)
    site, n = re.subn(r"(upstream lajur_web \{\n(?:\s*#.*\n)*)(?:\s*server .*\n)+", lambda m: m.group(1) + block + "\n",
                      site)
    assert n == 1, "deploy/nginx/lajur.conf: upstream block not found"
    site, n = re.subn(r"listen 80;", f"listen 127.0.0.1:{listen};", site)
    assert n == 1, "deploy/nginx/lajur.conf: 'listen 80;' not found"
    (workdir / "lajur.conf").write_text(site)
    temp = "\n".join(f"    {kind}_temp_path {workdir / kind};" for kind in
                     ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    main = workdir / "nginx.conf"
    main.write_text(f"""{'user root;' if os.geteuid() == 0 else ''}
worker_processes 1;
daemon off;
pid {workdir / 'nginx.pid'};
error_log {workdir / 'nginx-error.log'} warn;
events {{ worker_connections 512; }}
http {{
    access_log {workdir / 'nginx-access.log'};
{temp}
    include {workdir / 'lajur.conf'};
}}
""")
    return main


@dataclass
class Topology:
    """The processes of one installation; `env` is what every one of them gets."""

    workdir: Path
    env: dict
    procs: dict = field(default_factory=dict)

    def _spawn(self, name: str, args: list[str], extra: dict | None = None) -> subprocess.Popen:
        env = {**os.environ, **self.env, **(extra or {})}
        env.pop("PROMETHEUS_MULTIPROC_DIR", None)
        log_path = self.workdir / f"{name}.log"
        with open(log_path, "ab") as log:
            proc = subprocess.Popen(args, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                                    start_new_session=True)
        proc.log_path = log_path
        self.procs[name] = proc
        return proc

    def web(self, name: str, port: int, workers: int = 2) -> subprocess.Popen:
        proc = self._spawn(name, [*LAJUR, "web", "--port", str(port), "--workers", str(workers)])
        proc.port = port
        return proc

    def worker(self, name: str, concurrency: int = 2) -> subprocess.Popen:
        return self._spawn(name, [*LAJUR, "worker", "--concurrency", str(concurrency)])

    def beat(self, name: str) -> subprocess.Popen:
        # each beat its own data directory: its schedule file is not shared (deploy/systemd/lajur-beat.service)
        beat_dir = self.workdir / name
        beat_dir.mkdir(exist_ok=True)
        return self._spawn(name, [*LAJUR, "beat"], {"LAJUR_DATA_DIR": str(beat_dir)})

    def nginx(self, listen: int, upstreams: list[int]) -> subprocess.Popen:
        ngx = self.workdir / "nginx"
        ngx.mkdir(exist_ok=True)
        conf = nginx_config(ngx, listen, upstreams)
        proc = self._spawn("nginx", [nginx_binary(), "-c", str(conf), "-p", str(ngx)])
        proc.port = listen
        return proc

    def wait_http(self, port: int, timeout: float = 60) -> None:
        import requests

        def up():
            try:
                return requests.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200
            except requests.RequestException:
                return False
        wait_for(up, timeout, f"HTTP on port {port}")

    def wait_worker(self, name: str, timeout: float = 60) -> None:
        proc = self.procs[name]
        wait_for(lambda: b" ready." in proc.log_path.read_bytes() or proc.poll() is not None, timeout,
                 f"{name} to be ready")
        assert proc.poll() is None, proc.log_path.read_text(errors="replace")[-3000:]

    def kill9(self, name: str) -> None:
        proc = self.procs[name]
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)

    def stop(self, name: str) -> None:
        proc = self.procs[name]
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(20)
            except (subprocess.TimeoutExpired, ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(5)

    def stop_all(self) -> None:
        for name in list(self.procs):
            self.stop(name)

    def logs(self, tail: int = 2500) -> str:
        return "\n".join(f"== {p.name}\n{p.read_text(errors='replace')[-tail:]}"
                         for p in sorted(self.workdir.rglob("*.log")))


# ---- the short test SOP --------------------------------------------------------------------------

SHORT_SOP_KEY = "dpmk-pemutakhiran-website"
ALL_DAY = {str(day): [["00:00", "23:59"]] for day in range(7)}


def deploy_short_sop(services, tmp: Path, minutes: int = 1) -> None:
    """A new version of the DPMK SOP with a Mutu Baku of `minutes` on every step and step 1's
    evidence optional (load clients post plain forms), and DPMK working around the clock today,
    so that warnings (80 %) and breaches come due while a test runs."""
    from engine.deploy import deploy_folder
    folder = tmp / "short-sop"
    shutil.copytree(ROOT / "processes" / SHORT_SOP_KEY, folder)
    bpmn = folder / "process.bpmn"
    bpmn.write_text(re.sub(r">PT\d+M<", f">PT{minutes}M<", bpmn.read_text()))
    step1 = folder / "forms" / "step1.schema.json"
    schema = json.loads(step1.read_text())
    schema["required"].remove("bukti_multimedia")
    schema["properties"]["bukti_multimedia"].pop("minItems", None)
    step1.write_text(json.dumps(schema, ensure_ascii=False, indent=2))
    with services.sessions.begin() as session:
        deploy_folder(session, folder, services.runtime.store, deployed_by=None)
    services.runtime.set_schedule(None, "dpmk", ALL_DAY, include_cuti_bersama=False)
    today = datetime.now(ZoneInfo("Asia/Jakarta")).date()
    services.runtime.set_override(None, "dpmk", today, True, "uji topologi")  # even on a holiday
