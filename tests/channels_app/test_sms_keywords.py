"""SMS keywords: which messages are STOP/START/HELP (``sms_keyword_kind``), what ``sms_keyword_record`` writes for
them, and the whole path through Twilio's webhook (signed by the ``twilio`` package, processed by the eager task).
"""

import pytest

from channels_app.adapters.base import PayloadError
from channels_app.models import InboundEvent, SmsOptOut
from channels_app.selectors import sms_opted_out
from channels_app.services.sms_keywords import sms_keyword_record
from channels_app.sms.keywords import HELP, OPT_IN, OPT_OUT, sms_keyword_kind
from channels_app.types import InboundIdentity, InboundMessage
from customers.models import CustomerIdentity
from tests.channels_app.sms_fixtures import (
    CUSTOMER_PHONE,
    inbound_path,
    post_twilio,
    sms_channel_create,
    twilio_payload,
)
from tests.factories import IdentityFactory, TicketFactory
from tickets.models import Message, Ticket
from timeline.models import TimelineEvent


@pytest.fixture
def sms_channel(db):
    return sms_channel_create()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("STOP", OPT_OUT),
        ("stop", OPT_OUT),
        ("  Stop.  ", OPT_OUT),
        ("STOP!", OPT_OUT),
        ("stopall", OPT_OUT),
        ("Unsubscribe", OPT_OUT),
        ("cancel", OPT_OUT),
        ("END", OPT_OUT),
        ("quit", OPT_OUT),
        ("OPTOUT", OPT_OUT),
        ("revoke", OPT_OUT),
        ("START", OPT_IN),
        ("yes", OPT_IN),
        ("Unstop", OPT_IN),
        ("HELP", HELP),
        ("info?", HELP),
        ("Stop sending me these please", None),
        ("STOP IT", None),
        ("please stop", None),
        ("Yes, the order arrived", None),
        ("help me with my order", None),
        ("", None),
        ("...", None),
        ("S T O P", None),
    ],
)
def test_a_keyword_is_the_whole_message(text, expected):
    assert sms_keyword_kind(text) == expected


@pytest.mark.parametrize(
    ("text", "provider_type", "expected"),
    [
        ("Arret", "STOP", OPT_OUT),  # a custom opt-out keyword configured at Twilio
        ("Reprendre", "start", OPT_IN),
        ("Aide", "HELP", HELP),
        ("STOP", "START", OPT_IN),  # Twilio's classification wins
        ("STOP", "", OPT_OUT),
        ("STOP", "SOMETHING_NEW", OPT_OUT),  # an unknown value falls back to the text
        ("Hello", "SOMETHING_NEW", None),
    ],
)
def test_twilios_opt_out_type_wins_when_present(text, provider_type, expected):
    assert sms_keyword_kind(text, provider_type=provider_type) == expected


# sms_keyword_record


def keyword_message(text="STOP", *, kind=OPT_OUT, phone="(415) 555-0100", provider_id="SM1", twilio=None):
    return InboundMessage(
        provider_id=provider_id,
        sender=InboundIdentity(kind="phone", value=phone),
        text=text,
        metadata={"sms_keyword": kind, "twilio": twilio or {}},
    )


def stored_event(channel, provider_id="SM1") -> InboundEvent:
    return InboundEvent.objects.create(channel=channel, provider_id=provider_id, raw=b"Body=STOP")


def test_an_opt_out_records_the_phone_and_a_timeline_event_on_the_open_ticket(sms_channel):
    identity = IdentityFactory(kind=CustomerIdentity.Kind.PHONE, value=CUSTOMER_PHONE)
    TicketFactory(customer=identity.customer, status=Ticket.Status.OPEN)  # older: not the current one
    current = TicketFactory(customer=identity.customer, status=Ticket.Status.PENDING)
    TicketFactory(customer=identity.customer, status=Ticket.Status.SOLVED)
    event = stored_event(sms_channel)

    note = sms_keyword_record(channel=sms_channel, event=event, inbound=keyword_message("Stop."))

    assert note == "opted out of SMS (STOP)"
    opt_out = SmsOptOut.objects.get()
    assert (opt_out.phone, opt_out.keyword, opt_out.channel_id) == (CUSTOMER_PHONE, "STOP", sms_channel.pk)
    timeline = TimelineEvent.objects.get(type=TimelineEvent.Type.SMS_OPTED_OUT)
    assert (timeline.customer_id, timeline.ticket_id, timeline.actor_kind) == (
        identity.customer_id,
        current.pk,
        "customer",
    )
    assert timeline.params == {
        "keyword": "STOP",
        "phone": CUSTOMER_PHONE,
        "channel_id": sms_channel.pk,
        "inbound_event_id": event.pk,
    }
    assert Message.objects.count() == 0


def test_a_second_opt_out_records_nothing_new(sms_channel):
    sms_keyword_record(channel=sms_channel, event=stored_event(sms_channel), inbound=keyword_message())

    note = sms_keyword_record(
        channel=sms_channel, event=stored_event(sms_channel, "SM2"), inbound=keyword_message("quit", provider_id="SM2")
    )

    assert note == "already opted out of SMS (QUIT)"
    assert SmsOptOut.objects.get().keyword == "STOP"
    assert TimelineEvent.objects.filter(type=TimelineEvent.Type.SMS_OPTED_OUT).count() == 1


def test_an_opt_out_from_an_unknown_number_creates_the_customer_without_a_ticket(sms_channel):
    sms_keyword_record(channel=sms_channel, event=stored_event(sms_channel), inbound=keyword_message())

    identity = CustomerIdentity.objects.get(kind="phone")
    assert identity.value == CUSTOMER_PHONE
    timeline = TimelineEvent.objects.get()
    assert (timeline.customer_id, timeline.ticket_id) == (identity.customer_id, None)
    assert Ticket.objects.count() == 0


def test_an_opt_in_removes_the_opt_out_and_records_it(sms_channel):
    sms_keyword_record(channel=sms_channel, event=stored_event(sms_channel), inbound=keyword_message())
    event = stored_event(sms_channel, "SM2")

    note = sms_keyword_record(
        channel=sms_channel, event=event, inbound=keyword_message("Start", kind=OPT_IN, provider_id="SM2")
    )

    assert note == "opted back in to SMS (START)"
    assert not sms_opted_out(phone=CUSTOMER_PHONE)
    timeline = TimelineEvent.objects.get(type=TimelineEvent.Type.SMS_OPTED_IN)
    assert timeline.params["inbound_event_id"] == event.pk


def test_an_opt_in_without_an_opt_out_records_nothing_but_says_so(sms_channel):
    note = sms_keyword_record(
        channel=sms_channel, event=stored_event(sms_channel), inbound=keyword_message("YES", kind=OPT_IN)
    )

    assert note == "opt-in (YES) from a number that was not opted out: nothing to change"
    assert TimelineEvent.objects.count() == 0
    assert SmsOptOut.objects.count() == 0


def test_the_opt_out_is_stored_in_e164_with_the_channels_region(db):
    channel = sms_channel_create(address="+447700900999", settings={"phone_region": "GB"})

    sms_keyword_record(channel=channel, event=stored_event(channel), inbound=keyword_message(phone="07700 900123"))

    assert SmsOptOut.objects.get().phone == "+447700900123"


@pytest.mark.parametrize(
    ("inbound", "reason"),
    [
        (keyword_message("HELP", kind=HELP), "not an opt-out or opt-in keyword message ('help')"),
        (keyword_message("hello", kind=None), "not an opt-out or opt-in keyword message (None)"),
        (keyword_message(phone="call me"), "sender is not a usable phone number: not a phone number"),
    ],
    ids=["help", "no keyword", "not a phone"],
)
def test_sms_keyword_record_refuses_what_is_not_an_opt_out_or_in(sms_channel, inbound, reason):
    with pytest.raises(PayloadError) as raised:
        sms_keyword_record(channel=sms_channel, event=stored_event(sms_channel), inbound=inbound)

    assert str(raised.value) == reason
    assert SmsOptOut.objects.count() == TimelineEvent.objects.count() == 0


# Through the webhook, processed by the eager task.


def post_processed(client, channel, params, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = post_twilio(client, inbound_path(channel), params)
    assert response.status_code == 200
    return response


def test_stop_through_the_webhook_opts_out_without_a_ticket_message_and_a_redelivery_changes_nothing(
    client, sms_channel, django_capture_on_commit_callbacks
):
    identity = IdentityFactory(kind=CustomerIdentity.Kind.PHONE, value=CUSTOMER_PHONE)
    ticket = TicketFactory(customer=identity.customer)
    params = twilio_payload(Body="STOP", MessageSid="SMstop1")

    first = post_processed(client, sms_channel, params, django_capture_on_commit_callbacks)
    again = post_processed(client, sms_channel, params, django_capture_on_commit_callbacks)

    assert first.content == again.content == b'<?xml version="1.0" encoding="UTF-8"?><Response />'
    assert sms_opted_out(phone=CUSTOMER_PHONE)
    event = InboundEvent.objects.get()
    assert (event.status, event.reason) == (InboundEvent.Status.PROCESSED, "opted out of SMS (STOP)")
    timeline = TimelineEvent.objects.get(type=TimelineEvent.Type.SMS_OPTED_OUT)
    assert (timeline.ticket_id, timeline.params["inbound_event_id"]) == (ticket.pk, event.pk)
    assert Message.objects.count() == 0


def test_start_through_the_webhook_opts_back_in_and_answers_the_configured_confirmation(
    client, db, django_capture_on_commit_callbacks
):
    channel = sms_channel_create(
        settings={"phone_region": "US", "opt_in_text": "Welcome back <3", "opt_out_text": "Bye & thanks"}
    )

    stop = post_processed(
        client, channel, twilio_payload(Body="stop", MessageSid="SM1"), django_capture_on_commit_callbacks
    )
    start = post_processed(
        client, channel, twilio_payload(Body="Start!", MessageSid="SM2"), django_capture_on_commit_callbacks
    )

    assert stop.content.decode().endswith("<Response><Message>Bye &amp; thanks</Message></Response>")
    assert start.content.decode().endswith("<Response><Message>Welcome back &lt;3</Message></Response>")
    assert not sms_opted_out(phone=CUSTOMER_PHONE)
    assert list(TimelineEvent.objects.order_by("pk").values_list("type", flat=True)) == [
        TimelineEvent.Type.SMS_OPTED_OUT,
        TimelineEvent.Type.SMS_OPTED_IN,
    ]
    assert Message.objects.count() == 0


def test_a_custom_keyword_twilio_classified_as_stop_opts_out(client, sms_channel, django_capture_on_commit_callbacks):
    post_processed(client, sms_channel, twilio_payload("stop_advanced_opt_out"), django_capture_on_commit_callbacks)

    assert SmsOptOut.objects.get().keyword == "ARRET"
    assert Message.objects.count() == 0


def test_help_answers_the_help_text_and_is_an_ordinary_message(client, db, django_capture_on_commit_callbacks):
    channel = sms_channel_create(settings={"phone_region": "US", "help_text": "Acme support: call 0800 <free>"})

    response = post_processed(client, channel, twilio_payload(Body="help"), django_capture_on_commit_callbacks)

    assert response["Content-Type"] == "text/xml; charset=utf-8"
    assert response.content.decode() == (
        '<?xml version="1.0" encoding="UTF-8"?><Response><Message>Acme support: call 0800 &lt;free&gt;</Message>'
        "</Response>"
    )
    message = Message.objects.get()
    assert (message.text, message.direction) == ("help", Message.Direction.INBOUND)
    assert SmsOptOut.objects.count() == 0
    assert not TimelineEvent.objects.filter(type__startswith="sms_").exists()


def test_help_without_a_help_text_names_the_channel(client, sms_channel, django_capture_on_commit_callbacks):
    response = post_processed(client, sms_channel, twilio_payload(Body="INFO"), django_capture_on_commit_callbacks)

    assert "<Message>Texts: reply to this number and our team will answer." in response.content.decode()


def test_a_sentence_with_stop_in_it_is_an_ordinary_message(client, sms_channel, django_capture_on_commit_callbacks):
    text = "Stop sending me these please"

    response = post_processed(client, sms_channel, twilio_payload(Body=text), django_capture_on_commit_callbacks)

    assert response.content == b'<?xml version="1.0" encoding="UTF-8"?><Response />'
    assert Message.objects.get().text == text
    assert SmsOptOut.objects.count() == 0
