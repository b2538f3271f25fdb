"""Every page carries a Content-Security-Policy without inline script or style, and the usual security headers; no
template of ours writes what that policy would block (the browser side: tests/e2e/test_csp_e2e.py)."""

import re
from pathlib import Path

import pytest
from django.conf import settings

from tests.factories import MessageFactory, TicketFactory
from tickets.services.attachments import attachment_store

BASE_DIR = Path(settings.BASE_DIR)
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32
TEMPLATE_FOLDERS = ("console", "chat", "helpdesk", "channels_app", "customers", "tickets", "agents", "realtime")
EXPECTED_POLICY = {
    "default-src": "'self'",
    "script-src": "'self'",
    "style-src": "'self'",
    "img-src": "'self' data: blob:",
    "font-src": "'self'",
    "connect-src": f"'self' {settings.PUBLIC_BASE_URL.replace('http', 'ws', 1)}",
    "object-src": "'none'",
    "base-uri": "'none'",
    "form-action": "'self'",
    "frame-ancestors": "'none'",
}
# What a policy without 'unsafe-inline' blocks in markup: a <script> with code in it (a JSON data block is data),
# a <style> element, a style="" attribute, an on...="" handler, a javascript: URL, htmx's hx-on (evaluated).
INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)(?![^>]*type=\"application/(?:ld\+)?json\")[^>]*>", re.IGNORECASE)
TEMPLATE_COMMENT = re.compile(r"{#.*?#}|{% comment %}.*?{% endcomment %}", re.DOTALL)
INLINE_MARKUP = re.compile(r"<style\b|\sstyle=|\son[a-z]+=|javascript:|\shx-on[:-]", re.IGNORECASE)


def policy_of(response) -> dict[str, str]:
    header = response["Content-Security-Policy"]
    return dict(part.strip().split(" ", 1) for part in header.split(";") if part.strip())


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/console/login/", "/api/v1/docs", "/admin/login/", "/api/v1/schema"])
def test_pages_answer_with_the_policy_and_the_security_headers(client, path):
    response = client.get(path)

    assert response.status_code == 200
    assert policy_of(response) == EXPECTED_POLICY
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["X-Frame-Options"] == "DENY"
    assert response["Referrer-Policy"] == "same-origin"
    assert response["Cross-Origin-Opener-Policy"] == "same-origin"
    permissions = dict(item.split("=") for item in response["Permissions-Policy"].split(", "))
    assert {permissions[feature] for feature in ("camera", "microphone", "geolocation", "payment")} == {"()"}
    # HSTS only over https: a plain-http demo is never pinned to https
    assert "Strict-Transport-Security" not in response


@pytest.mark.django_db
def test_https_answers_carry_hsts(client):
    response = client.get("/console/login/", secure=True)

    assert response["Strict-Transport-Security"] == "max-age=31536000"


@pytest.mark.django_db
def test_an_attachment_download_keeps_its_own_sandbox_policy(admin_client):
    """The download sets a stricter policy of its own; the site's policy does not replace it."""
    message = MessageFactory(ticket=TicketFactory())
    attachment = attachment_store(message=message, filename="logo.png", content_type="image/png", content=PNG)

    response = admin_client.get(f"/api/v1/attachments/{attachment.pk}")

    assert response.status_code == 200
    assert response["Content-Security-Policy"] == "sandbox; default-src 'none'"


def test_no_template_writes_what_the_policy_blocks():
    templates = [
        path for folder in TEMPLATE_FOLDERS for path in (BASE_DIR / folder).rglob("*.html") if "templates" in path.parts
    ]
    assert len(templates) >= 30
    found = []
    for path in templates:
        text = TEMPLATE_COMMENT.sub("", path.read_text(encoding="utf-8"))
        for pattern in (INLINE_SCRIPT, INLINE_MARKUP):
            found.extend(f"{path.relative_to(BASE_DIR)}: {match.group(0)}" for match in pattern.finditer(text))
    assert found == []
