"""Request bodies are capped before anything reads them: the API's cap, the email cap for whole emails, and
Django's default for every other page (raised site-wide only so the email webhooks can take a whole message)."""

import pytest

from helpdesk.api.middleware import FORM_MAX_BODY_BYTES

pytestmark = pytest.mark.django_db


def test_a_page_outside_the_api_keeps_djangos_default_cap(client):
    response = client.post(
        "/admin/login/", data=b"x" * (FORM_MAX_BODY_BYTES + 1), content_type="application/x-www-form-urlencoded"
    )

    assert response.status_code == 413
    assert "limit is 2621440" in response.json()["detail"]


def test_a_page_outside_the_api_under_the_cap_is_served(client):
    response = client.post("/admin/login/", data={"username": "nobody", "password": "wrong"})

    assert response.status_code == 200


def test_an_email_webhook_takes_a_body_over_the_api_cap(client, settings):
    size = settings.API_MAX_BODY_BYTES + 1
    assert size <= settings.INBOUND_EMAIL_MAX_BODY_BYTES

    response = client.post(
        "/inbound/email/mailgun/inbound_mime/", data=b"x" * size, content_type="application/x-www-form-urlencoded"
    )

    # Refused for want of a signature, not for its size.
    assert response.status_code != 413


def test_an_email_webhook_over_the_email_cap_is_refused(client, settings):
    settings.INBOUND_EMAIL_MAX_BODY_BYTES = settings.API_MAX_BODY_BYTES + 10

    response = client.post(
        "/inbound/email/mailgun/inbound_mime/",
        data=b"x" * (settings.API_MAX_BODY_BYTES + 11),
        content_type="application/x-www-form-urlencoded",
    )

    assert response.status_code == 413
