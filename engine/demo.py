"""Demo data: the two Bantul offices, one user per SOP actor, both SOPs deployed.

Passwords are random per installation, kept in the data directory (never in the repo)
and printed by the demo command.
"""
from __future__ import annotations

import json
import secrets
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from .accounts import create_user, ensure_group, get_or_create_office
from .config import ROOT
from .deploy import deploy_folder
from .models import User
from .serialization import WorkflowStore

PROCESSES = ROOT / "processes"

OFFICES = {
    "dpmk": "Dinas Pemberdayaan Masyarakat dan Kalurahan",
    "dinsos": "Dinas Sosial",
}

# username, full name, office, roles, groups (lanes)
USERS = [
    ("dpmk.penerima", "Rina Wulandari", "dpmk", ("staff",), ("Petugas Penerima Berita/Informasi",)),
    ("dpmk.kasubbag", "Budi Santoso", "dpmk", ("staff", "supervisor"), ("Kasubbag",)),
    ("dpmk.sekdin", "Sri Lestari", "dpmk", ("staff", "supervisor"), ("Sekdin",)),
    ("dpmk.operator", "Agus Prasetyo", "dpmk", ("staff",), ("Operator Website",)),
    ("dpmk.pemilik", "Dewi Anggraini", "dpmk", ("staff", "process_owner"), ()),
    ("dinsos.petugas", "Yoga Pratama", "dinsos", ("staff",), ("Admin Bidang/Petugas Lapangan",)),
    ("dinsos.pengelola", "Nur Aini", "dinsos", ("staff",), ("Pengelola Website",)),
    ("dinsos.ketua", "Hendro Wibowo", "dinsos", ("staff", "supervisor"), ("Ketua Tim Kerja",)),
    ("dinsos.pemilik", "Fitri Handayani", "dinsos", ("staff", "process_owner"), ()),
    ("admin", "Admin Kabupaten", None, ("admin",), ()),
]


def seed_demo(session: Session, store: WorkflowStore, logins_file: Path) -> dict[str, str]:
    """Create what is missing; return username -> password of the demo users."""
    logins = json.loads(logins_file.read_text()) if logins_file.exists() else {}
    offices = {code: get_or_create_office(session, code, name) for code, name in OFFICES.items()}
    for username, full_name, office, roles, groups in USERS:
        if session.scalar(select(User).where(User.username == username)) is not None:
            continue
        for group in groups:  # the demo creates its lanes' groups on purpose
            ensure_group(session, offices[office], group)
        password = logins.get(username) or secrets.token_urlsafe(9)
        create_user(session, username, password, full_name, offices.get(office), roles=roles, groups=groups,
                    email=f"{username}@example.bantulkab.go.id")
        logins[username] = password
    for folder in sorted(p for p in PROCESSES.iterdir() if (p / "process.bpmn").is_file()):
        deploy_folder(session, folder, store)
    logins_file.parent.mkdir(parents=True, exist_ok=True)
    logins_file.write_text(json.dumps(logins, indent=1))
    logins_file.chmod(0o600)
    return logins


ROLE_WORDS = {"staff": "staf", "supervisor": "supervisor", "process_owner": "pemilik proses (deploy SOP)",
              "admin": "admin kabupaten", "office_admin": "admin kantor"}


def login_lines(logins: dict[str, str]) -> list[str]:
    """The printed demo logins, each saying who the user is: office, roles and lanes (the
    steps they work), so a tester knows whom to sign in as for each step."""
    lines = []
    for username, full_name, office, roles, groups in USERS:
        if username not in logins:
            continue
        who = ", ".join(ROLE_WORDS.get(r, r) for r in roles)
        lanes = f"; lajur: {', '.join(groups)}" if groups else ""
        lines.append(f"  {username:18} {logins[username]:14} {full_name} ({(office or 'kabupaten').upper()}: "
                     f"{who}{lanes})")
    return lines
