"""The process studio (issue 11): process owners edit their office's SOPs in the browser.

`/studio/<key>` (endpoint `studio.edit`) is the bpmn-js modeler over the SOP's draft; each
change is saved to the server as the whole process folder and answered with the problems
deploy's validator finds (engine/studio). The office is always the signed-in owner's own;
engine/access.py's `check_edit_process` decides on every call. JSON posts carry the CSRF token
in the X-CSRFToken header (Flask-WTF checks it like a form field).
"""
from flask import Blueprint

bp = Blueprint("studio", __name__, url_prefix="/studio")

from . import views, transfer  # noqa: E402,F401  (routes)
