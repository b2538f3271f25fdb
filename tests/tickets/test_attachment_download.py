"""``GET /api/v1/attachments/<id>``: only for agents who may see the ticket, and never executable in our origin."""

import pytest
from rest_framework.test import APIClient

from tests.factories import MessageFactory, TeamFactory, TicketFactory
from tickets.services.attachments import attachment_store

pytestmark = pytest.mark.django_db

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32
SVG = b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(document.cookie)"><script>alert(1)</script></svg>'
HTML = b"<html><body><script>fetch('/api/v1/tickets').then(r => r.text()).then(alert)</script></body></html>"


def stored(*, team, filename: str, content_type: str, content: bytes):
    message = MessageFactory(ticket=TicketFactory(team=team))
    return attachment_store(message=message, filename=filename, content_type=content_type, content=content)


def body_of(response) -> bytes:
    return b"".join(response.streaming_content)


def test_agent_of_the_team_gets_a_png_inline_with_its_type(member_client, billing, django_assert_num_queries):
    attachment = stored(team=billing, filename="logo.png", content_type="image/PNG", content=PNG)

    # The agent's role and teams, then the attachment: the same two queries for any attachment
    with django_assert_num_queries(2):
        response = member_client.get(f"/api/v1/attachments/{attachment.pk}")

    assert response.status_code == 200
    assert body_of(response) == PNG
    assert response["Content-Type"] == "image/png"
    assert response["Content-Disposition"] == 'inline; filename="logo.png"'
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Content-Security-Policy"].startswith("sandbox")


@pytest.mark.parametrize(
    ("filename", "content_type", "content"),
    [
        ("drawing.svg", "image/svg+xml", SVG),
        ("page.html", "text/html", HTML),
        ("page.png", "text/html; charset=utf-8", HTML),
        ("invoice.pdf", "application/pdf", b"%PDF-1.4\n"),
    ],
)
def test_anything_but_a_raster_image_is_an_octet_stream_download(
    member_client, billing, filename, content_type, content
):
    attachment = stored(team=billing, filename=filename, content_type=content_type, content=content)

    response = member_client.get(f"/api/v1/attachments/{attachment.pk}")

    assert response.status_code == 200
    assert body_of(response) == content
    assert response["Content-Type"] == "application/octet-stream"
    assert response["Content-Disposition"] == f'attachment; filename="{filename}"'
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Content-Security-Policy"].split(";")[0] == "sandbox"


def test_an_image_type_claimed_for_html_bytes_still_cannot_run(member_client, billing):
    # The sender says image/png; the bytes are a page. The browser must neither sniff nor run it.
    attachment = stored(team=billing, filename="x.png", content_type="image/png", content=HTML)

    response = member_client.get(f"/api/v1/attachments/{attachment.pk}")

    assert response["Content-Type"] == "image/png"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Content-Security-Policy"].split(";")[0] == "sandbox"


def test_attachment_of_another_teams_ticket_is_the_same_404_as_a_missing_one(member_client, member):
    returns = TeamFactory(name="Returns")
    hidden = stored(team=returns, filename="secret.pdf", content_type="application/pdf", content=b"%PDF")

    hidden_response = member_client.get(f"/api/v1/attachments/{hidden.pk}")
    missing_response = member_client.get("/api/v1/attachments/999999")

    assert hidden_response.status_code == missing_response.status_code == 404
    assert hidden_response.json() == missing_response.json() == {"detail": "No such attachment.", "code": "not_found"}


def test_ticket_of_another_team_assigned_to_the_agent_is_visible(member_client, member):
    message = MessageFactory(ticket=TicketFactory(team=TeamFactory(name="Returns"), assignee=member))
    attachment = attachment_store(message=message, filename="a.txt", content_type="text/plain", content=b"hi")

    response = member_client.get(f"/api/v1/attachments/{attachment.pk}")

    assert response.status_code == 200
    assert body_of(response) == b"hi"


def test_admin_sees_any_teams_attachment(admin_client):
    attachment = stored(team=TeamFactory(name="Returns"), filename="a.gif", content_type="image/gif", content=b"GIF89a")

    response = admin_client.get(f"/api/v1/attachments/{attachment.pk}")

    assert response.status_code == 200
    assert response["Content-Type"] == "image/gif"


def test_anonymous_is_a_401(billing):
    attachment = stored(team=billing, filename="logo.png", content_type="image/png", content=PNG)

    response = APIClient().get(f"/api/v1/attachments/{attachment.pk}")

    assert response.status_code == 401


def test_a_filename_with_a_line_break_cannot_inject_a_header(member_client, billing):
    attachment = stored(team=billing, filename="a\r\nSet-Cookie: x=1.pdf", content_type="application/pdf", content=b"x")

    response = member_client.get(f"/api/v1/attachments/{attachment.pk}")

    assert response.status_code == 200
    assert "Set-Cookie" not in response.headers
    assert "\n" not in response["Content-Disposition"]
