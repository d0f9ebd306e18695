"""The API's pages in Chromium: the profile's token page (make a token, shown once; a
supervisor's service account) and the vendored Swagger UI on the OpenAPI document, at
desktop and phone width, without JavaScript errors (CSP: no inline script, no CDN)."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from engine import tokens
from engine.accounts import office_by_code
from engine.models import User
from tests.test_browser import browser, page, server, sign_in  # noqa: F401  (fixtures)

pytestmark = pytest.mark.browser


def test_token_page_and_api_docs(server, page, artifacts_dir):  # noqa: F811
    base, services, _tmp = server
    with services.sessions.begin() as db:
        if db.scalar(select(User.id).where(User.username == "dpmk.cms")) is None:
            tokens.create_service_account(db, office_by_code(db, "dpmk"), "dpmk.cms", "CMS Website",
                                          ("Petugas Penerima Berita/Informasi",))
    sign_in(page, base, "dpmk.kasubbag")
    page.goto(f"{base}/profile")
    page.click("text=Token API")
    page.fill("#name-me", "Dasbor kabupaten")
    page.click("form:has(#name-me) button[type=submit]")
    token = page.inner_text("#new-token").strip()
    assert token.startswith("lajur_")
    page.screenshot(path=str(artifacts_dir / "api-tokens.png"), full_page=True)
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"{base}/profile/tokens")
    assert token not in page.content()  # shown once
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    page.screenshot(path=str(artifacts_dir / "api-tokens-phone.png"), full_page=True)

    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(f"{base}/api/v1/docs")
    page.wait_for_selector(".swagger-ui .info .title", timeout=15_000)
    assert "Lajur API" in page.inner_text(".swagger-ui .info .title")
    page.wait_for_selector("[data-path=\"/api/v1/tasks/{task_id}/complete\"]")
    page.screenshot(path=str(artifacts_dir / "api-docs.png"))
    page.set_viewport_size({"width": 390, "height": 844})
    page.reload()
    page.wait_for_selector(".swagger-ui .info .title", timeout=15_000)
    page.screenshot(path=str(artifacts_dir / "api-docs-phone.png"))
