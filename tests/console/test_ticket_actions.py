"""The ticket page's forms: reply, note, update, merge; their errors, conflicts, access rules and CSRF."""

import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from channels_app.models import Channel, Delivery, SmsOptOut
from console.views import ticket as ticket_views
from tests.channels_app.smtp_peer import smtp  # noqa: F401  (the real SMTP peer fixture)
from tests.console.conftest import csrf_token
from tests.factories import (
    AgentFactory,
    ChannelFactory,
    CustomerFactory,
    IdentityFactory,
    MessageFactory,
    TeamFactory,
    TicketFactory,
)
from tickets.models import Attachment, Message, Ticket
from timeline.models import TimelineEvent

pytestmark = pytest.mark.django_db

CUSTOMER_ADDRESS = "ann@example.com"


def mailbox(port: int = 2525) -> Channel:
    return ChannelFactory(
        kind=Channel.Kind.EMAIL,
        name="Acme Support",
        address="support@desk.example",
        continue_open_ticket=False,
        settings={
            "email_backend": "django.core.mail.backends.smtp.EmailBackend",
            "smtp_host": "127.0.0.1",
            "smtp_port": port,
        },
    )


def email_ticket(channel: Channel, **ticket_fields) -> Ticket:
    customer = CustomerFactory(name="Ann Lee")
    identity = IdentityFactory(customer=customer, kind="email", value=CUSTOMER_ADDRESS)
    ticket = TicketFactory(customer=customer, channel=channel, subject="Refund for A-1", **ticket_fields)
    MessageFactory(ticket=ticket, channel=channel, identity=identity, text="Where is my refund?")
    customer.last_channel = channel
    customer.save(update_fields=["last_channel"])
    return ticket


def form_values(html: str, form_id: str) -> dict:
    """The hidden and preset values of one form on the page, as the browser would post them."""
    start = html.index(f'id="{form_id}"')
    form = html[start : html.index("</form>", start)]
    values = dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', form))
    for name, body in re.findall(r'<select id="[^"]+" name="(\w+)"[^>]*>(.*?)</select>', form, re.S):
        selected = re.search(r'<option value="([^"]*)"[^>]*selected', body)
        values[name] = selected.group(1) if selected else ""
    tags = re.search(r'name="tags" value="([^"]*)"', form)
    if tags:
        values["tags"] = tags.group(1)
    return values


def open_page(client: Client, ticket: Ticket) -> str:
    response = client.get(f"/console/tickets/{ticket.pk}/")
    assert response.status_code == 200
    return response.content.decode()


def post(client: Client, ticket: Ticket, action: str, data: dict, **extra):
    token = client.cookies["csrftoken"].value
    return client.post(f"/console/tickets/{ticket.pk}/{action}/", {**data, "csrfmiddlewaretoken": token}, **extra)


# --- Reply ------------------------------------------------------------------------------------------------------


def test_a_reply_by_email_is_queued_and_arrives_at_the_smtp_peer(
    console_client,
    smtp,  # noqa: F811
    django_capture_on_commit_callbacks,
):
    ticket = email_ticket(mailbox(smtp.port))
    values = form_values(open_page(console_client, ticket), "reply-form")

    with django_capture_on_commit_callbacks(execute=True):
        response = post(
            console_client,
            ticket,
            "reply",
            {
                **values,
                "text": "Your refund is on its way.",
                "cc": "boss@example.com",
                "attachments": SimpleUploadedFile("refund.pdf", b"%PDF-1.4 refund", content_type="application/pdf"),
            },
        )

    assert response.status_code == 302
    assert response["Location"] == f"/console/tickets/{ticket.pk}/"
    reply = Message.objects.get(ticket=ticket, direction="outbound")
    assert reply.text == "Your refund is on its way."
    assert reply.metadata == {"cc": ["boss@example.com"]}
    assert list(Attachment.objects.filter(message=reply).values_list("filename", "size")) == [("refund.pdf", 15)]
    assert Delivery.objects.get(message=reply).status == "sent"
    assert len(smtp.received) == 1
    mail = smtp.received[0].message
    assert mail["To"] == CUSTOMER_ADDRESS and mail["Cc"] == "boss@example.com"
    assert [part.get_filename() for part in mail.iter_attachments()] == ["refund.pdf"]
    assert "Your refund is on its way." in mail.get_body(("plain",)).get_content()


def test_a_double_submit_of_the_same_reply_form_sends_once(console_client):
    ticket = email_ticket(mailbox())
    values = form_values(open_page(console_client, ticket), "reply-form")

    first = post(console_client, ticket, "reply", {**values, "text": "Once"})
    second = post(console_client, ticket, "reply", {**values, "text": "Once"})

    assert first.status_code == second.status_code == 302
    assert Message.objects.filter(ticket=ticket, direction="outbound").count() == 1
    assert Delivery.objects.count() == 1


def test_send_and_mark_solved_sets_the_status(console_client):
    ticket = email_ticket(mailbox())
    values = form_values(open_page(console_client, ticket), "reply-form")

    post(console_client, ticket, "reply", {**values, "text": "Done", "status": "solved"})

    ticket.refresh_from_db()
    assert ticket.status == "solved"


@pytest.mark.parametrize(
    ("change", "status", "field_id", "message"),
    [
        ({"text": "   "}, 400, "reply-text-error", "Write a reply first."),
        ({"cc": "not an address"}, 400, "reply-cc-error", "is not a valid email address"),
        ({"channel": "999999"}, 400, "reply-channel-error", "Select a valid choice"),
    ],
    ids=["empty text", "bad cc", "unknown channel"],
)
def test_reply_errors_are_shown_next_to_the_field_and_the_text_is_kept(
    console_client, change, status, field_id, message
):
    ticket = email_ticket(mailbox())
    values = form_values(open_page(console_client, ticket), "reply-form")

    response = post(console_client, ticket, "reply", {**values, "text": "My <b>draft</b> answer", **change})

    assert response.status_code == status
    html = response.content.decode()
    error = re.search(rf'<span class="field-error" id="{field_id}">([^<]*)</span>', html)
    assert error and message in error.group(1).replace("&#x27;", "'")
    if change.get("text") is None:
        assert "My &lt;b&gt;draft&lt;/b&gt; answer</textarea>" in html
    assert not Message.objects.filter(direction="outbound").exists()
    assert not Delivery.objects.exists()


def test_a_reply_by_sms_to_an_opted_out_number_is_refused_next_to_the_channel(console_client):
    sms = ChannelFactory(kind=Channel.Kind.SMS, name="Texts", address="+15005550006", provider="twilio")
    customer = CustomerFactory()
    phone = IdentityFactory(customer=customer, kind="phone", value="+15551230000")
    ticket = TicketFactory(customer=customer, channel=sms)
    MessageFactory(ticket=ticket, channel=sms, identity=phone)
    SmsOptOut.objects.create(phone="+15551230000")
    values = form_values(open_page(console_client, ticket), "reply-form")

    response = post(console_client, ticket, "reply", {**values, "text": "Hello?"})

    assert response.status_code == 400
    html = response.content.decode()
    assert re.search(r'id="reply-channel-error">This customer opted out of SMS', html)
    assert "Hello?</textarea>" in html
    assert not Message.objects.filter(direction="outbound").exists()


def test_a_reply_on_a_closed_ticket_is_a_409_with_the_text_kept(console_client):
    ticket = email_ticket(mailbox())
    values = form_values(open_page(console_client, ticket), "reply-form")
    Ticket.objects.filter(pk=ticket.pk).update(status="closed")

    response = post(console_client, ticket, "reply", {**values, "text": "Late answer"}, HTTP_HX_REQUEST="true")

    assert response.status_code == 409
    html = response.content.decode()
    assert html.lstrip().startswith('<form id="reply-form"')  # htmx: only the form, which replaces itself
    assert "This ticket is closed" in html and "Late answer</textarea>" in html
    assert not Message.objects.filter(direction="outbound").exists()


def test_an_oversized_attachment_is_refused_next_to_the_file_input(console_client, settings):
    settings.HELPDESK = {**settings.HELPDESK, "MAX_ATTACHMENT_BYTES": 10}
    ticket = email_ticket(mailbox())
    values = form_values(open_page(console_client, ticket), "reply-form")

    response = post(
        console_client,
        ticket,
        "reply",
        {**values, "text": "See attached", "attachments": SimpleUploadedFile("big.bin", b"x" * 11)},
    )

    assert response.status_code == 400
    assert re.search(r'id="reply-attachments-error">big.bin is larger than 10 bytes', response.content.decode())
    assert not Message.objects.filter(direction="outbound").exists()


def test_a_stale_reply_is_a_409_showing_the_other_reply_then_send_anyway_sends(console_client):
    ticket = email_ticket(mailbox())
    values = form_values(open_page(console_client, ticket), "reply-form")
    # Meanwhile a colleague answered
    colleague = AgentFactory(username="cole", profile__display_name="Cole")
    MessageFactory(ticket=ticket, channel=ticket.channel, direction="outbound", author=colleague, text="Refunded <now>")

    response = post(console_client, ticket, "reply", {**values, "text": "Refund coming"})

    assert response.status_code == 409
    html = response.content.decode()
    warning = html[html.index('id="stale-reply"') : html.index("</div>", html.index('id="stale-reply"'))]
    assert "Cole" in warning and "Refunded &lt;now&gt;" in warning
    assert '<input type="hidden" name="confirm_stale" value="1">' in html
    assert "Send anyway" in html and "Refund coming</textarea>" in html
    assert Message.objects.filter(direction="outbound").count() == 1

    # When the agent sends anyway (the form as it came back)
    again = form_values(html, "reply-form")
    assert again["confirm_stale"] == "1"
    response = post(console_client, ticket, "reply", {**again, "text": "Refund coming"})

    assert response.status_code == 302
    assert list(Message.objects.filter(direction="outbound").order_by("pk").values_list("text", flat=True)) == [
        "Refunded <now>",
        "Refund coming",
    ]


def test_my_own_earlier_reply_does_not_make_the_form_stale(console_client, console_agent):
    ticket = email_ticket(mailbox())
    values = form_values(open_page(console_client, ticket), "reply-form")
    MessageFactory(ticket=ticket, channel=ticket.channel, direction="outbound", author=console_agent)

    response = post(console_client, ticket, "reply", {**values, "text": "And one more thing"})

    assert response.status_code == 302


# --- Note -------------------------------------------------------------------------------------------------------


def test_a_note_with_a_mention_records_one_mention_event_even_when_submitted_twice(console_client):
    dora = AgentFactory(username="dora")
    ticket = email_ticket(mailbox())
    values = form_values(open_page(console_client, ticket), "note-form")

    first = post(console_client, ticket, "note", {**values, "text": "@dora can you check the refund?"})
    second = post(console_client, ticket, "note", {**values, "text": "@dora can you check the refund?"})

    assert first.status_code == second.status_code == 302
    note = Message.objects.get(ticket=ticket, direction="note")
    assert note.text == "@dora can you check the refund?"
    assert list(
        TimelineEvent.objects.filter(ticket=ticket, type="agent_mentioned").values_list("params", flat=True)
    ) == [{"message_id": note.pk, "user_id": dora.pk}]
    assert not Delivery.objects.exists()
    html = open_page(console_client, ticket)
    assert f'data-message-id="{note.pk}" data-channel="note"' in html
    assert "mentioned Dora in a note." in html


def test_an_empty_note_is_refused_next_to_the_field(console_client):
    ticket = email_ticket(mailbox())
    values = form_values(open_page(console_client, ticket), "note-form")

    response = post(console_client, ticket, "note", {**values, "text": "  "})

    assert response.status_code == 400
    assert 'id="note-text-error"' in response.content.decode()
    assert not Message.objects.filter(direction="note").exists()


# --- Update -----------------------------------------------------------------------------------------------------


def test_the_update_form_changes_the_ticket_with_one_event_per_field(console_client):
    team = TeamFactory(name="Billing")
    bea = AgentFactory(username="bea")
    ticket = email_ticket(mailbox())
    values = form_values(open_page(console_client, ticket), "ticket-form")

    response = post(
        console_client,
        ticket,
        "update",
        {
            **values,
            "assignee": str(bea.pk),
            "team": str(team.pk),
            "status": "pending",
            "priority": "high",
            "tags": "refund, VIP",
        },
    )

    assert response.status_code == 302
    ticket.refresh_from_db()
    assert (ticket.assignee_id, ticket.team_id, ticket.status, ticket.priority) == (bea.pk, team.pk, "pending", "high")
    assert sorted(ticket.tags.values_list("name", flat=True)) == ["refund", "vip"]
    assert sorted(TimelineEvent.objects.filter(ticket=ticket).values_list("type", flat=True)) == [
        "assigned",
        "priority_changed",
        "status_changed",
        "tags_changed",
        "team_changed",
    ]


def test_assign_to_me(console_client, console_agent):
    ticket = email_ticket(mailbox())
    values = form_values(open_page(console_client, ticket), "ticket-form")

    response = post(console_client, ticket, "update", {**values, "assign_to_me": "1"})

    assert response.status_code == 302
    ticket.refresh_from_db()
    assert ticket.assignee_id == console_agent.pk


def test_a_stale_update_is_a_409_with_the_current_values_and_changes_nothing(console_client):
    ticket = email_ticket(mailbox())
    values = form_values(open_page(console_client, ticket), "ticket-form")
    # Meanwhile someone set it pending
    Ticket.objects.filter(pk=ticket.pk).update(status="pending", version=ticket.version + 1)

    response = post(console_client, ticket, "update", {**values, "status": "solved"}, HTTP_HX_REQUEST="true")

    assert response.status_code == 409
    html = response.content.decode()
    assert 'id="update-conflict"' in html and "someone changed this ticket" in html
    current = form_values(html, "ticket-form")
    assert (current["status"], current["version"]) == ("pending", str(ticket.version + 1))
    ticket.refresh_from_db()
    assert ticket.status == "pending"
    assert not TimelineEvent.objects.filter(ticket=ticket).exists()


def test_update_field_errors_are_shown_next_to_the_field(console_client):
    ticket = email_ticket(mailbox())
    values = form_values(open_page(console_client, ticket), "ticket-form")

    response = post(console_client, ticket, "update", {**values, "status": "bogus", "tags": "x" * 51})

    assert response.status_code == 400
    html = response.content.decode()
    assert re.search(r'id="id_status-error">Select a valid choice', html)
    assert re.search(r'id="id_tags-error">A tag has at most 50 characters', html)
    ticket.refresh_from_db()
    assert ticket.status == "open"


# --- Merge ------------------------------------------------------------------------------------------------------


def test_merging_into_another_ticket_of_the_same_customer_moves_the_messages(console_client):
    ticket = email_ticket(mailbox())
    target = TicketFactory(customer=ticket.customer)
    values = form_values(open_page(console_client, ticket), "merge-form")

    response = post(console_client, ticket, "merge", {**values, "target": str(target.pk)})

    assert response.status_code == 302
    assert response["Location"] == f"/console/tickets/{target.pk}/"
    ticket.refresh_from_db()
    assert (ticket.merged_into_id, ticket.status) == (target.pk, "closed")
    assert Message.objects.filter(ticket=target).count() == 1


def test_merging_into_another_customers_ticket_asks_to_confirm_first(console_client):
    ticket = email_ticket(mailbox())
    target = TicketFactory(customer=CustomerFactory(name="Zed <Other>"))
    open_page(console_client, ticket)

    response = post(console_client, ticket, "merge", {"target": str(target.pk)})

    assert response.status_code == 409
    html = response.content.decode()
    assert 'id="merge-confirm"' in html and "Zed &lt;Other&gt;" in html
    ticket.refresh_from_db()
    assert ticket.merged_into_id is None

    response = post(console_client, ticket, "merge", {"target": str(target.pk), "confirm_other_customer": "1"})

    assert response.status_code == 302
    ticket.refresh_from_db()
    assert ticket.merged_into_id == target.pk


@pytest.mark.parametrize("which", ["hidden", "missing", "itself"])
def test_merging_into_a_ticket_the_agent_cannot_use_is_a_field_error(console_client, which):
    ticket = email_ticket(mailbox())
    target_id = {
        "hidden": lambda: TicketFactory(customer=ticket.customer, team=TeamFactory()).pk,
        "missing": lambda: ticket.pk + 1000,
        "itself": lambda: ticket.pk,
    }[which]()
    open_page(console_client, ticket)

    response = post(console_client, ticket, "merge", {"target": str(target_id)})

    assert response.status_code in (400, 409)
    assert 'id="merge-target-error"' in response.content.decode()
    ticket.refresh_from_db()
    assert ticket.merged_into_id is None


@pytest.mark.parametrize("moved", ["source", "target"])
def test_a_ticket_moved_to_another_team_while_the_merge_is_posted_is_refused_as_one_out_of_sight(
    console_client, monkeypatch, moved
):
    # Given two tickets of one customer the agent may see (unrouted; the agent is in no team)
    ticket = email_ticket(mailbox())
    target = TicketFactory(customer=ticket.customer)
    shipping = TeamFactory(name="Shipping")
    values = form_values(open_page(console_client, ticket), "merge-form")
    merge = ticket_views.ticket_merge

    def merge_after_a_move(*, source, target, actor):
        # An admin's move to Shipping commits after the view read both tickets, before the merge locks them
        Ticket.objects.filter(pk=(source if moved == "source" else target).pk).update(team=shipping)
        return merge(source=source, target=target, actor=actor)

    monkeypatch.setattr(ticket_views, "ticket_merge", merge_after_a_move)

    response = post(console_client, ticket, "merge", {**values, "target": str(target.pk)})

    # Then it is answered as if the ticket had been out of sight already: this ticket a 404 (not its page), the
    # target a field error; nothing merged
    html = response.content.decode()
    if moved == "source":
        assert response.status_code == 404
        assert "Where is my refund?" not in html
    else:
        assert response.status_code == 400
        assert re.search(r'id="merge-target-error"[^>]*>\s*No such ticket\.', html)
    assert Ticket.objects.filter(merged_into__isnull=False).count() == 0
    assert Ticket.objects.get(pk=ticket.pk).status == "open"
    assert list(Message.objects.values_list("ticket_id", flat=True)) == [ticket.pk]
    assert not TimelineEvent.objects.filter(type=TimelineEvent.Type.TICKET_MERGED).exists()


# --- Access and CSRF ----------------------------------------------------------------------------------------------

ACTIONS = ["reply", "note", "update", "merge"]


@pytest.mark.parametrize("action", ["", *ACTIONS])
def test_every_endpoint_is_a_404_for_a_ticket_of_another_team(console_client, action):
    ticket = email_ticket(mailbox(), team=TeamFactory())
    # A CSRF cookie from a page the agent may see, so a POST is refused for the ticket, not the token
    open_page(console_client, TicketFactory())
    url = f"/console/tickets/{ticket.pk}/{action + '/' if action else ''}"

    if action:
        response = console_client.post(
            url, {"text": "x", "target": "1", "csrfmiddlewaretoken": console_client.cookies["csrftoken"].value}
        )
    else:
        response = console_client.get(url)

    assert response.status_code == 404
    assert Message.objects.filter(ticket=ticket).count() == 1
    assert not TimelineEvent.objects.exists()


@pytest.mark.parametrize("action", ACTIONS)
def test_every_form_needs_the_csrf_token(console_client, action):
    ticket = email_ticket(mailbox())
    values = form_values(open_page(console_client, ticket), "reply-form")
    values.pop("csrfmiddlewaretoken", None)

    response = console_client.post(f"/console/tickets/{ticket.pk}/{action}/", {**values, "text": "x"})

    assert response.status_code == 403
    assert Message.objects.filter(ticket=ticket).count() == 1


def test_the_page_needs_a_signed_in_agent():
    ticket = TicketFactory()
    response = Client().get(f"/console/tickets/{ticket.pk}/")
    assert response.status_code == 302 and response["Location"].startswith("/console/login/")


def test_the_page_hands_out_a_csrf_token(console_client):
    assert csrf_token(console_client, f"/console/tickets/{email_ticket(mailbox()).pk}/")
