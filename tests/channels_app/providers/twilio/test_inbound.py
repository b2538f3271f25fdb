"""Inbound SMS through Twilio: ``parse_twilio_form`` on recorded payloads (``tests/fixtures/twilio/``) and bad
input, and the webhook end to end (signed by the ``twilio`` package, processed by the eager task): which requests
are stored, redeliveries, long and emoji bodies, and the sender recognised as the same customer as on email.
"""

from urllib.parse import urlencode

import pytest
from django.http import QueryDict

from channels_app.adapters.base import PayloadError
from channels_app.adapters.registry import adapter_for
from channels_app.models import Channel, InboundEvent
from channels_app.providers.twilio.inbound import MAX_MEDIA, parse_twilio_form
from channels_app.types import InboundIdentity
from customers.models import CustomerIdentity
from tests.channels_app.sms_fixtures import (
    ACCOUNT_SID,
    CHANNEL_NUMBER,
    CUSTOMER_PHONE,
    inbound_path,
    post_twilio,
    sms_channel_create,
    twilio_payload,
)
from tests.factories import ChannelFactory, IdentityFactory, MessageFactory, TicketFactory
from tickets.models import Message, Ticket

EMPTY_TWIML = b'<?xml version="1.0" encoding="UTF-8"?><Response />'


@pytest.fixture
def sms_channel(db):
    return sms_channel_create()


def form(params: dict) -> bytes:
    return urlencode(params).encode()


# parse_twilio_form


def test_a_recorded_sms_becomes_a_message_with_twilios_details(sms_channel):
    message = parse_twilio_form(channel=sms_channel, payload=form(twilio_payload()))

    assert message.provider_id == "SM0f6a4b1c2d3e4f5a6b7c8d9e0f1a2b3c"
    assert message.sender == InboundIdentity(kind="phone", value=CUSTOMER_PHONE)
    assert message.text == "Hi, my order A-1 has not arrived yet."
    assert message.metadata == {
        "to": CHANNEL_NUMBER,
        "num_segments": 1,
        "media": [],
        "twilio": {
            "AccountSid": ACCOUNT_SID,
            "ApiVersion": "2010-04-01",
            "SmsStatus": "received",
            "FromCountry": "US",
            "FromState": "CA",
            "FromCity": "SAN FRANCISCO",
            "FromZip": "94105",
            "ToCountry": "US",
            "ToState": "CA",
            "ToCity": "SAN FRANCISCO",
            "ToZip": "94105",
        },
    }


def test_a_recorded_mms_lists_its_media_in_order(sms_channel):
    message = parse_twilio_form(channel=sms_channel, payload=form(twilio_payload("mms")))

    base = "https://api.twilio.com/2010-04-01/Accounts/AC00000000000000000000000000000001/Messages/"
    assert message.text == ""
    assert message.metadata["media"] == [
        {
            "url": base + "MM8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d/Media/ME11111111111111111111111111111111",
            "content_type": "image/jpeg",
        },
        {
            "url": base + "MM8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d/Media/ME22222222222222222222222222222222",
            "content_type": "image/png",
        },
    ]
    assert "sms_keyword" not in message.metadata


def test_media_beyond_ten_and_blank_urls_are_left_out(sms_channel):
    params = twilio_payload(NumMedia="15")
    for index in range(15):
        params[f"MediaUrl{index}"] = "" if index == 1 else f"https://api.twilio.com/media/{index}"
        params[f"MediaContentType{index}"] = "image/jpeg"

    message = parse_twilio_form(channel=sms_channel, payload=form(params))

    assert [item["url"].rsplit("/", 1)[1] for item in message.metadata["media"]] == [
        "0",
        *map(str, range(2, MAX_MEDIA)),
    ]


@pytest.mark.parametrize("num_media", ["", "two", "-1"])
def test_a_malformed_media_count_means_no_media(sms_channel, num_media):
    params = twilio_payload("mms", NumMedia=num_media)

    assert parse_twilio_form(channel=sms_channel, payload=form(params)).metadata["media"] == []


def test_fields_twilio_adds_later_are_accepted_and_smssid_stands_in_for_messagesid(sms_channel):
    params = twilio_payload(MessageSid=None, NewFieldTwilioAdded="x", AddOns='{"status": "successful"}')

    message = parse_twilio_form(channel=sms_channel, payload=form(params))

    assert message.provider_id == params["SmsSid"]
    assert "AddOns" not in message.metadata["twilio"]


@pytest.mark.parametrize("as_querydict", [False, True], ids=["dict", "QueryDict"])
def test_a_mapping_payload_parses_like_the_form(sms_channel, as_querydict):
    params = twilio_payload(Body="STOP")
    payload = QueryDict(urlencode(params)) if as_querydict else params

    message = parse_twilio_form(channel=sms_channel, payload=payload)

    assert message == parse_twilio_form(channel=sms_channel, payload=form(params))
    assert message.metadata["sms_keyword"] == "opt_out"


def test_the_registered_adapter_parses_through_parse_twilio_form(sms_channel):
    messages = adapter_for(sms_channel).parse(channel=sms_channel, payload=form(twilio_payload()))

    assert [message.provider_id for message in messages] == ["SM0f6a4b1c2d3e4f5a6b7c8d9e0f1a2b3c"]


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"Body=caf\xe9&From=%2B14155550100&MessageSid=SM1", "the form is not valid UTF-8"),
        (b"Body=caf%E9&From=%2B14155550100&MessageSid=SM1", "the form is not valid UTF-8"),
        (form(twilio_payload(MessageSid=None, SmsSid=None)), "MessageSid is missing"),
        (form(twilio_payload(MessageSid="  ", SmsSid=None)), "MessageSid is missing"),
        (form(twilio_payload(From=None)), "From is missing"),
        (form(twilio_payload(From=" ")), "From is missing"),
        (form(twilio_payload(Body=None)), "Body is missing"),
        (form(twilio_payload(From="whatsapp:+14155550100")), "From is not a phone number (got a whatsapp: address)"),
        (form(twilio_payload(From="messenger:1234567")), "From is not a phone number (got a messenger: address)"),
        (form(twilio_payload(From="ACME")), "From is not a phone number (got a alphanumeric sender id)"),
        (form(twilio_payload(From="1-800-FLOWERS")), "From is not a phone number (got a alphanumeric sender id)"),
        (form(twilio_payload(From="+1 415 55")), "From is not a usable phone number: not a possible phone number"),
        ("Body=hi", "unsupported payload type str"),
    ],
    ids=[
        "latin-1 bytes",
        "percent-encoded latin-1",
        "no MessageSid",
        "blank MessageSid",
        "no From",
        "blank From",
        "no Body",
        "whatsapp",
        "messenger",
        "alphanumeric",
        "vanity number",
        "too short",
        "text not bytes",
    ],
)
def test_a_payload_that_cannot_be_a_message_says_why(sms_channel, payload, reason):
    with pytest.raises(PayloadError) as raised:
        parse_twilio_form(channel=sms_channel, payload=payload)

    assert str(raised.value) == reason
    assert "4155550100" not in str(raised.value)


# The webhook


def post(client, channel, params, django_capture_on_commit_callbacks, **kwargs):
    with django_capture_on_commit_callbacks(execute=True):
        return post_twilio(client, inbound_path(channel), params, **kwargs)


def test_a_message_is_stored_raw_then_becomes_a_ticket_message(client, sms_channel, django_capture_on_commit_callbacks):
    params = twilio_payload()

    response = post(client, sms_channel, params, django_capture_on_commit_callbacks)

    assert (response.status_code, response.content, response["Content-Type"]) == (
        200,
        EMPTY_TWIML,
        "text/xml; charset=utf-8",
    )
    event = InboundEvent.objects.get()
    assert (bytes(event.raw), event.provider_id, event.content_type, event.status) == (
        form(params),
        params["MessageSid"],
        "application/x-www-form-urlencoded",
        InboundEvent.Status.PROCESSED,
    )
    message = Message.objects.get()
    assert (message.text, message.channel_id, message.provider_id) == (
        params["Body"],
        sms_channel.pk,
        params["MessageSid"],
    )
    assert message.customer.identities.get().value == CUSTOMER_PHONE


def test_a_redelivered_message_gets_the_same_answer_and_is_stored_once(
    client, sms_channel, django_capture_on_commit_callbacks
):
    params = twilio_payload(Body="help")

    first = post(client, sms_channel, params, django_capture_on_commit_callbacks)
    again = post(client, sms_channel, params, django_capture_on_commit_callbacks)

    assert (first.status_code, again.status_code) == (200, 200)
    assert first.content == again.content
    assert InboundEvent.objects.count() == 1
    assert Message.objects.count() == 1


@pytest.mark.parametrize(
    "body",
    [
        "Lorem ipsum dolor sit amet, consectetur adipiscing elit. " * 30,
        "Thanks 🙏🏽 the parcel 📦 came! 👍 " * 60,
        "مرحبا، طلبي لم يصل بعد. 你好\uff0c我的订单还没到。\nLine two\r\n  indented",
    ],
    ids=["1,700 chars", "emoji", "scripts and line breaks"],
)
def test_long_and_emoji_bodies_are_stored_intact(client, sms_channel, django_capture_on_commit_callbacks, body):
    params = twilio_payload(Body=body, NumSegments="12")

    response = post(client, sms_channel, params, django_capture_on_commit_callbacks)

    assert response.status_code == 200
    message = Message.objects.get()
    assert message.text == body
    assert bytes(InboundEvent.objects.get().raw) == form(params)


def test_an_mms_with_an_empty_body_is_accepted(client, sms_channel, django_capture_on_commit_callbacks):
    params = twilio_payload(Body="", NumMedia="0")

    response = post(client, sms_channel, params, django_capture_on_commit_callbacks)

    assert response.status_code == 200
    assert InboundEvent.objects.count() == 1


@pytest.mark.parametrize(
    ("removed", "detail"),
    [
        ({"MessageSid": None, "SmsSid": None}, "MessageSid is missing."),
        ({"From": None}, "From is missing."),
        ({"From": ""}, "From is missing."),
        ({"Body": None}, "Body is missing."),
    ],
    ids=["MessageSid", "From", "blank From", "Body"],
)
def test_a_request_missing_a_required_field_is_refused_and_nothing_stored(
    client, sms_channel, django_capture_on_commit_callbacks, removed, detail
):
    response = post(client, sms_channel, twilio_payload(**removed), django_capture_on_commit_callbacks)

    assert response.status_code == 400
    assert response.json() == {"detail": detail, "code": "missing_field"}
    assert InboundEvent.objects.count() == 0
    assert Message.objects.count() == 0


@pytest.mark.parametrize(
    "to", ["+14155550111", "", None, "whatsapp:+14155550199"], ids=["other", "blank", "none", "wa"]
)
def test_a_message_to_a_number_that_is_not_the_channels_is_refused(
    client, sms_channel, django_capture_on_commit_callbacks, to
):
    response = post(client, sms_channel, twilio_payload(To=to), django_capture_on_commit_callbacks)

    assert response.status_code == 404
    assert response.json()["code"] == "wrong_recipient"
    assert InboundEvent.objects.count() == 0


def test_a_recorded_whatsapp_message_is_not_for_an_sms_channel(client, sms_channel, django_capture_on_commit_callbacks):
    response = post(client, sms_channel, twilio_payload("whatsapp"), django_capture_on_commit_callbacks)

    assert response.status_code == 404
    assert InboundEvent.objects.count() == 0


def test_the_messaging_services_other_numbers_are_the_channels_too(client, db, django_capture_on_commit_callbacks):
    channel = sms_channel_create(settings={"phone_region": "US", "numbers": ["(415) 555-0177", "+14155550188"]})

    response = post(client, channel, twilio_payload(To="+14155550177"), django_capture_on_commit_callbacks)

    assert response.status_code == 200
    assert InboundEvent.objects.count() == 1


@pytest.mark.parametrize(("service", "status"), [("MG00000000000000000000000000000001", 200), ("MGother", 404)])
def test_a_channel_without_numbers_takes_its_messaging_services_messages(
    client, db, django_capture_on_commit_callbacks, service, status
):
    channel = sms_channel_create(address="", settings={"messaging_service_sid": "MG00000000000000000000000000000001"})

    response = post(client, channel, twilio_payload(MessagingServiceSid=service), django_capture_on_commit_callbacks)

    assert response.status_code == status
    assert InboundEvent.objects.count() == (1 if status == 200 else 0)


def test_a_message_of_another_twilio_account_is_refused(client, sms_channel, django_capture_on_commit_callbacks):
    response = post(
        client,
        sms_channel,
        twilio_payload(AccountSid="AC99999999999999999999999999999999"),
        django_capture_on_commit_callbacks,
    )

    assert response.status_code == 403
    assert response.json()["code"] == "wrong_account"
    assert InboundEvent.objects.count() == 0


@pytest.mark.parametrize("case", ["unknown key", "inactive", "email channel", "other provider"])
def test_a_url_that_is_not_an_active_twilio_sms_channel_answers_404(
    client, db, django_capture_on_commit_callbacks, case
):
    if case == "unknown key":
        path = "/inbound/sms/twilio/pk_does_not_exist/"
    else:
        channel = {
            "inactive": lambda: sms_channel_create(is_active=False),
            "email channel": lambda: ChannelFactory(kind=Channel.Kind.EMAIL, address="support@desk.example"),
            "other provider": lambda: sms_channel_create(provider="vonage"),
        }[case]()
        path = inbound_path(channel)

    with django_capture_on_commit_callbacks(execute=True):
        response = post_twilio(client, path, twilio_payload())

    assert response.status_code == 404
    assert InboundEvent.objects.count() == 0


def test_a_blank_provider_means_twilio_the_default_sms_adapter(client, db, django_capture_on_commit_callbacks):
    channel = sms_channel_create(provider="")

    response = post(client, channel, twilio_payload(), django_capture_on_commit_callbacks)

    assert response.status_code == 200


def test_only_post_is_allowed(client, sms_channel):
    response = client.get(inbound_path(sms_channel))

    assert response.status_code == 405
    assert InboundEvent.objects.count() == 0


def test_a_whatsapp_style_sender_is_quarantined_with_its_reason_and_kept_raw(
    client, sms_channel, django_capture_on_commit_callbacks
):
    params = twilio_payload(From="whatsapp:+14155550100")

    response = post(client, sms_channel, params, django_capture_on_commit_callbacks)

    assert response.status_code == 200
    event = InboundEvent.objects.get()
    assert (event.status, event.reason) == (
        InboundEvent.Status.QUARANTINED,
        "From is not a phone number (got a whatsapp: address)",
    )
    assert bytes(event.raw) == form(params)
    assert Message.objects.count() == 0


@pytest.mark.parametrize(
    ("region", "profile_phone", "sender"),
    [("US", "+14155550100", "(415) 555-0100"), ("GB", "+447700900123", "07700 900123")],
    ids=["US national", "GB national with spaces"],
)
def test_a_national_number_is_the_customer_of_the_e164_profile_phone_and_continues_their_email_ticket(
    client, db, django_capture_on_commit_callbacks, region, profile_phone, sender
):
    email = ChannelFactory(kind=Channel.Kind.EMAIL, address="support@desk.example")
    identity = IdentityFactory(kind=CustomerIdentity.Kind.PHONE, value=profile_phone)
    ticket = TicketFactory(customer=identity.customer, channel=email, status=Ticket.Status.OPEN)
    MessageFactory(ticket=ticket, channel=email, text="Where is my order?")
    number = "+14155550199" if region == "US" else "+447700900999"
    channel = sms_channel_create(address=number, settings={"phone_region": region})

    response = post(
        client, channel, twilio_payload(From=sender, To=number, Body="Any news?"), django_capture_on_commit_callbacks
    )

    assert response.status_code == 200
    assert Ticket.objects.get() == ticket
    assert list(ticket.messages.order_by("pk").values_list("channel_id", "customer_id", "text")) == [
        (email.pk, identity.customer_id, "Where is my order?"),
        (channel.pk, identity.customer_id, "Any news?"),
    ]
    assert CustomerIdentity.objects.filter(kind="phone").count() == 1


def test_a_message_continues_the_customers_api_ticket(
    client, sms_channel, api_channel, django_capture_on_commit_callbacks
):
    identity = IdentityFactory(kind=CustomerIdentity.Kind.PHONE, value=CUSTOMER_PHONE)
    ticket = TicketFactory(customer=identity.customer, channel=api_channel, status=Ticket.Status.PENDING)

    post(client, sms_channel, twilio_payload(), django_capture_on_commit_callbacks)

    assert Ticket.objects.get() == ticket
    assert Message.objects.get().ticket_id == ticket.pk
