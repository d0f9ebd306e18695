"""Engine errors and HTTP errors as clear pages in Bahasa Indonesia.

The engine's own messages are for developers (English, technical); staff see a short
explanation of what happened and what to do. htmx requests get a small fragment so an
in-place action can show the message where the user clicked.
"""
from __future__ import annotations

from flask import render_template, request
from flask_babel import gettext as _
from flask_wtf.csrf import CSRFError, CSRFProtect
from werkzeug.exceptions import HTTPException

from engine.errors import Conflict, Forbidden, LajurError, NotFound


def _messages() -> dict[int, tuple[str, str]]:
    return {
        400: (_("Permintaan tidak valid"), _("Permintaan tidak dapat diproses. Muat ulang halaman lalu coba lagi.")),
        403: (_("Akses ditolak"), _("Anda tidak berhak membuka atau mengerjakan ini. Langkah atau data ini milik "
                                    "kantor atau lajur lain.")),
        404: (_("Tidak ditemukan"), _("Halaman atau data yang Anda cari tidak ada.")),
        405: (_("Tidak diizinkan"), _("Cara permintaan ini tidak diizinkan.")),
        409: (_("Sudah berubah"), _("Langkah ini sudah diambil/diselesaikan orang lain.")),
        413: (_("Berkas terlalu besar"), _("Berkas yang dikirim melebihi batas ukuran.")),
        429: (_("Terlalu banyak percobaan"), _("Terlalu banyak percobaan. Tunggu sebentar, lalu coba lagi.")),
        500: (_("Terjadi kesalahan"), _("Terjadi kesalahan pada server. Coba lagi; bila berulang, hubungi admin.")),
    }


def render_error(status: int, detail: str | None = None, title: str | None = None, message: str | None = None):
    default_title, default_message = _messages().get(status, _messages()[400 if status < 500 else 500])
    context = dict(status=status, title=title or default_title, message=message or default_message, detail=detail)
    if request.headers.get("HX-Request"):  # show it in the page's message area, not inside a table row
        return render_template("errors/fragment.html", **context), status, {
            "HX-Retarget": "#flash-area", "HX-Reswap": "innerHTML"}
    return render_template("errors/error.html", **context), status


def init_app(app) -> None:
    CSRFProtect(app)

    @app.errorhandler(CSRFError)
    def csrf_error(exc):
        return render_error(400, title=_("Sesi formulir kedaluwarsa"),
                            message=_("Formulir tidak dapat dikirim karena token keamanan (CSRF) tidak ada atau "
                                      "sudah kedaluwarsa. Muat ulang halaman lalu kirim lagi."))

    @app.errorhandler(LajurError)
    def engine_error(exc: LajurError):
        status = exc.http_status if exc.http_status in (400, 403, 404, 409, 413, 422, 429) else 400
        if isinstance(exc, Conflict):
            return render_error(409, detail=str(exc))
        if isinstance(exc, (Forbidden, NotFound)):
            return render_error(status)
        return render_error(status, detail=str(exc))

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        if request.path.startswith("/api/"):  # no route of the API matched: a problem document, not a page
            from .api.problems import from_http
            return from_http(exc)
        return render_error(exc.code or 500)
