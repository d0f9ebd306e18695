"""Notifications: the caller's in-app reminders, newest first; mark read."""
from __future__ import annotations


from engine import notifications
from engine.db import as_utc

from .base import auth, bp, decode_cursor, encode_cursor, now, responses, services, spec
from .schemas import Marked, MarkReadBody, NotificationItem, NotificationPage, NotificationQuery


@bp.get("/notifications")
@spec.validate(resp=responses({"HTTP_200": NotificationPage}), tags=["notifications"],
               operation_id="listNotifications")
def list_notifications(query: NotificationQuery):
    """The caller's reminders (only their own), newest first; cursor pagination."""
    offset = decode_cursor(query.cursor, "o") or 0
    with services().sessions() as db:
        rows = notifications.list_for_user(db, auth().user_id, unread_only=query.unread, limit=query.limit + 1,
                                           offset=offset)
        items = [NotificationItem(id=n.id, level=n.level, subject=n.subject, body=n.body, link=n.link,
                                  task_id=n.human_task_id, instance_id=n.instance_id,
                                  created_at=as_utc(n.created_at), read_at=as_utc(n.read_at))
                 for n in rows[:query.limit]]
    more = len(rows) > query.limit
    return NotificationPage(items=items, next_cursor=encode_cursor({"o": offset + query.limit}) if more else None)


@bp.post("/notifications/read")
@spec.validate(resp=responses({"HTTP_200": Marked}), tags=["notifications"], operation_id="markNotificationsRead")
def mark_read(json: MarkReadBody):
    """Mark the given notifications of the caller read (another user's ids are ignored); no ids: all."""
    with services().sessions.begin() as db:
        marked = notifications.mark_read(db, auth().user_id, json.ids, now())
    return Marked(marked=marked)
