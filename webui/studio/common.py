"""What every studio view needs: the owner's office, their user id, the limits, a session."""
from __future__ import annotations

from flask import abort
from flask_login import current_user
from sqlalchemy import select

from engine.config import DeployLimits  # noqa: F401  (the type limits() returns)
from engine.models import Group, Office

from .. import current_services


def office() -> Office:
    """The signed-in process owner's office (404 for a user of no office, 403 for a non-owner)."""
    if current_user.office_id is None:
        abort(404)
    if not current_user.has_role("process_owner"):
        abort(403)
    with current_services().sessions() as db:
        found = db.scalar(select(Office).where(Office.id == current_user.office_id))
        if found is None:
            abort(404)
        db.expunge(found)
    return found


def limits() -> DeployLimits:
    return current_services().settings.deploy_limits


def group_names(db, office_id: int) -> list[str]:
    return sorted(db.scalars(select(Group.name).where(Group.office_id == office_id)))
