"""Language, dates in WIB and the SLA words every page shows.

Bahasa Indonesia is the source language (msgids are Indonesian); English comes from
translations/en. Times are stored in UTC and always shown in WIB (Asia/Jakarta), e.g.
"Senin, 23 November 2026 09.30 WIB", whatever the server's own time zone is.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from zoneinfo import ZoneInfo

from babel import Locale
from flask import current_app, g, request, session
from flask_babel import Babel, get_locale, get_translations
from flask_login import current_user
from jinja2 import pass_context
from markupsafe import Markup

WIB = ZoneInfo("Asia/Jakarta")
SUPPORTED = ("id", "en")


def select_locale() -> str:
    """The user's saved language; before sign-in ?lang= (remembered in the session); else Indonesian."""
    chosen = getattr(g, "lajur_locale", None)
    if chosen:
        return chosen
    if current_user and current_user.is_authenticated and current_user.locale in SUPPORTED:
        return current_user.locale
    lang = request.args.get("lang")
    if lang in SUPPORTED:
        session["lang"] = lang
        return lang
    return session.get("lang") if session.get("lang") in SUPPORTED else "id"


def _translations():
    """The request's catalogue, looked up once per request.

    Flask-Babel resolves locale and catalogue on every gettext call; the inbox makes a
    few hundred calls per page, which cost more than its database queries.
    """
    found = g.get("_lajur_translations")
    if found is None:
        found = g._lajur_translations = get_translations()
    return found


def _(text: str, **variables) -> str:
    """gettext with %(name)s variables, like flask_babel.gettext but with the cached catalogue."""
    translated = _translations().ugettext(text)
    return translated % variables if variables else translated


@pass_context
def _template_gettext(context, text: str, **variables) -> str:
    """`_()` in templates: Jinja's newstyle gettext (escaped, always %-formatted) in one call.

    Jinja's own `_` reaches the catalogue through three context calls (alias, newstyle
    wrapper, callable); an inbox page makes about a hundred of them.
    """
    translated = _translations().ugettext(text)
    if context.eval_ctx.autoescape:
        translated = Markup(translated)
    return translated % variables


def init_app(app) -> None:
    Babel(app, locale_selector=select_locale, timezone_selector=lambda: "Asia/Jakarta")
    app.jinja_env.install_gettext_callables(lambda s: _translations().ugettext(s),
                                            lambda s, p, n: _translations().ungettext(s, p, n), newstyle=True)
    app.jinja_env.globals["_"] = _template_gettext
    app.jinja_env.filters.update(wib=format_wib, wib_short=format_wib_short, duration=duration_words)
    app.jinja_env.globals.update(current_locale=lambda: str(get_locale() or "id"), sla=sla_status)
    app.jinja_env.add_extension("jinja2.ext.do")


def aware(dt: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; everything stored is UTC."""
    if dt is not None and dt.tzinfo is None:
        return dt.replace(tzinfo=timezone.utc)
    return dt


def _locale() -> str:
    found = g.get("_lajur_locale")
    if found is None:
        found = g._lajur_locale = str(get_locale() or "id")
    return found


# The two date formats, as CLDR patterns (Indonesian writes the time 09.30, English 09:30).
WIB_PATTERNS = {"long": {"id": "EEEE, d MMMM y HH.mm", "en": "EEEE, d MMMM y HH:mm"},
                "short": {"id": "d MMM y HH.mm", "en": "d MMM y HH:mm"}}


def _calendar_names(locale: str) -> tuple[dict, dict, dict]:
    """(months, abbreviated months, weekdays) of a locale, read from Babel's data once per app."""
    cache = current_app.extensions.setdefault("lajur_calendar_names", {})
    names = cache.get(locale)
    if names is None:
        data = Locale.parse(locale)
        names = cache[locale] = (dict(data.months["format"]["wide"]), dict(data.months["format"]["abbreviated"]),
                                 dict(data.days["format"]["wide"]))
    return names


def _wib(dt: datetime, long: bool) -> str:
    """The WIB_PATTERNS text, as babel.dates.format_datetime writes it (tests compare the two).

    Written out because Babel parses the pattern and looks up the locale's names on every
    call (~13 us), and the inbox formats a date on every row of every poll.
    """
    local = aware(dt).astimezone(WIB)
    locale = _locale()
    months, short_months, days = _calendar_names(locale)
    clock = f"{local.hour:02d}{'.' if locale == 'id' else ':'}{local.minute:02d}"
    if long:
        return f"{days[local.weekday()]}, {local.day} {months[local.month]} {local.year} {clock} WIB"
    return f"{local.day} {short_months[local.month]} {local.year} {clock} WIB"


def format_wib(dt: datetime | None) -> str:
    """'Senin, 23 November 2026 09.30 WIB'."""
    return "–" if dt is None else _wib(dt, long=True)


def format_wib_short(dt: datetime | None) -> str:
    """'23 Nov 2026 09.30 WIB' for tables."""
    return "–" if dt is None else _wib(dt, long=False)


def duration_words(minutes: float) -> str:
    """A span in words, at most two units: '2 hari 3 jam', '1 jam 20 menit', '35 menit'."""
    minutes = int(abs(minutes))
    if minutes < 1:
        return _("kurang dari 1 menit")
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    parts = []
    if days:
        parts.append(_("%(n)d hari", n=days))
    if hours:
        parts.append(_("%(n)d jam", n=hours))
    if mins and not days:
        parts.append(_("%(n)d menit", n=mins))
    return " ".join(parts[:2])


@dataclass(frozen=True)
class Sla:
    """An SLA badge: a CSS class, an icon and words, so colour is never the only signal."""

    css: str
    icon: str
    text: str


def sla_status(state: str, due_at: datetime | None, completed_at: datetime | None = None,
               paused: bool = False, now: datetime | None = None, left_minutes: float | None = None) -> Sla:
    """The badge of a step. `left_minutes`: working minutes left (engine.sla.working_left),
    when the caller knows the office calendar; else the wall-clock time to the due time."""
    now = now or datetime.now(timezone.utc)
    due_at = aware(due_at)
    if state == "completed":
        if due_at is None or completed_at is None:
            return Sla("done", "✓", _("Selesai"))
        late = (aware(completed_at) - due_at).total_seconds() / 60
        if late > 0:
            return Sla("late", "!", _("Selesai, terlambat %(d)s", d=duration_words(late)))
        return Sla("ok", "✓", _("Selesai tepat waktu"))
    if state == "cancelled":
        return Sla("done", "–", _("Dibatalkan"))
    if paused:
        return Sla("paused", "‖", _("Dijeda"))
    if due_at is None:
        return Sla("none", "·", _("Tanpa batas waktu"))
    left = left_minutes if left_minutes is not None else (due_at - now).total_seconds() / 60
    if left < 0 or (left == 0 and due_at <= now):
        return Sla("late", "!", _("Terlambat %(d)s", d=duration_words(left)))
    if left <= 15:
        return Sla("soon", "◔", _("Sisa %(d)s", d=duration_words(left)))
    return Sla("ok", "○", _("Sisa %(d)s", d=duration_words(left)))
