"""Replayed Mailgun posts: Mailgun signs only ``timestamp + token``, so a captured signature could carry any
message. A post is taken when its token is unused and its timestamp within the tolerance (5 minutes either way),
and its token is used up in the transaction that stores it; Mailgun's own retry of a post we refused with 503 is
taken past the tolerance (it keeps the original timestamp and token), with the same content only.

Driven with Mailgun's recorded raw-MIME forward() post (tests/fixtures/mailgun/inbound_mime.json), signed as
Mailgun documents.
"""

import logging
import time
from datetime import timedelta

import pytest
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from channels_app.models import Channel, InboundEvent, WebhookNonce
from channels_app.services.webhook_nonces import NonceClaim, ReplayRefused, webhook_nonce_accept
from channels_app.tasks.webhook_nonces import prune_webhook_nonces
from helpdesk.celery import app as celery_app
from tests.channels_app import email_webhook_posts
from tests.channels_app.email_webhook_posts import (
    MAILGUN_URL,
    basic_auth,
    fixture_json,
    mailgun_mime_fields,
    mailgun_signed,
    multipart,
)
from tests.factories import ChannelFactory
from tickets.models import Message

pytestmark = pytest.mark.django_db
anymail_settings, channel, post = (
    email_webhook_posts.anymail_settings,
    email_webhook_posts.channel,
    email_webhook_posts.post,
)

FORGED = (
    "From: Mallory <ceo@desk.example>\nTo: support@desk.example\nSubject: Wire the money\n"
    "Message-ID: <forged-{n}@evil.example>\n\nPlease pay invoice {n} today.\n"
)


def post_mailgun(post, fields):
    return post(MAILGUN_URL, *multipart(fields), **basic_auth())


def replay_records(caplog):
    return [record for record in caplog.records if record.message == "channels_app.email_webhook_replay_refused"]


def test_a_captured_signature_reused_with_other_messages_is_refused_and_logged(post, channel, caplog):
    accepted = mailgun_signed(mailgun_mime_fields())
    assert post_mailgun(post, accepted).status_code == 200

    signature = {name: accepted[name] for name in ("timestamp", "token", "signature")}
    for n in range(3):
        forged = {**mailgun_mime_fields(body_mime=FORGED.format(n=n)), **signature}

        response = post_mailgun(post, forged)

        assert response.status_code == 406  # Mailgun's "rejected, do not retry"
        assert "already used for other content" in response.json()["detail"]
    assert InboundEvent.objects.count() == 1
    assert Message.objects.get().provider_id == "<CAEPk3RKEx@mail.example.org>"
    assert len(replay_records(caplog)) == 3


def test_a_30_day_old_signature_is_refused_even_with_an_unused_token(post, channel):
    thirty_days_ago = int(time.time()) - 30 * 24 * 3600
    fields = mailgun_signed(mailgun_mime_fields(body_mime=FORGED.format(n=1)), timestamp=thirty_days_ago)

    response = post_mailgun(post, fields)

    assert response.status_code == 406
    assert "tolerance is 300 seconds" in response.json()["detail"]
    assert not InboundEvent.objects.exists()
    assert not WebhookNonce.objects.exists()


@pytest.mark.parametrize(("offset", "status"), [(-310, 406), (-290, 200), (290, 200), (310, 406)])
def test_the_timestamp_must_be_within_five_minutes_either_way(post, channel, offset, status):
    fields = mailgun_signed(mailgun_mime_fields(), timestamp=int(time.time()) + offset)

    assert post_mailgun(post, fields).status_code == status

    assert InboundEvent.objects.count() == (1 if status == 200 else 0)


def test_the_tolerance_is_a_setting(post, channel, settings):
    settings.EMAIL_WEBHOOK_TIMESTAMP_TOLERANCE_SECONDS = 3600
    fields = mailgun_signed(mailgun_mime_fields(), timestamp=int(time.time()) - 1800)

    assert post_mailgun(post, fields).status_code == 200


def test_mailgun_retrying_a_post_we_answered_200_gets_200_and_nothing_new(post, channel):
    fields = mailgun_signed(mailgun_mime_fields())

    # Mailgun did not get our first answer (a timeout) and posts the same again.
    assert [post_mailgun(post, fields).status_code for _ in range(2)] == [200, 200]

    assert InboundEvent.objects.count() == 1
    assert Message.objects.count() == 1
    nonce = WebhookNonce.objects.get()
    assert (nonce.provider, nonce.nonce, nonce.accepted_at is not None) == ("mailgun", fields["token"], True)


def test_a_post_refused_with_503_is_taken_when_mailgun_retries_it_past_the_tolerance(post, settings):
    # No channel has the address yet: 503, nothing stored, the token is not used up.
    fields = mailgun_signed(mailgun_mime_fields(recipient="sales@desk.example"), timestamp=int(time.time()) - 200)
    fields["body-mime"] = fields["body-mime"].replace("test@inbound.example.com", "sales@desk.example")
    assert post_mailgun(post, fields).status_code == 503
    assert not InboundEvent.objects.exists()
    assert WebhookNonce.objects.get().accepted_at is None

    # Later the address is configured, and Mailgun retries with the original timestamp and token, now older than
    # the tolerance (the tolerance is shortened here instead of waiting).
    sales = ChannelFactory(kind=Channel.Kind.EMAIL, name="Sales", address="sales@desk.example")
    settings.EMAIL_WEBHOOK_TIMESTAMP_TOLERANCE_SECONDS = 100

    assert post_mailgun(post, fields).status_code == 200

    assert InboundEvent.objects.get().channel == sales
    assert WebhookNonce.objects.get().accepted_at is not None


def test_other_content_under_the_token_of_a_refused_post_is_refused(post, settings, caplog):
    fields = mailgun_signed(mailgun_mime_fields(recipient="sales@desk.example"))
    fields["body-mime"] = fields["body-mime"].replace("test@inbound.example.com", "sales@desk.example")
    assert post_mailgun(post, fields).status_code == 503
    ChannelFactory(kind=Channel.Kind.EMAIL, name="Sales", address="sales@desk.example")

    forged = {**fields, "body-mime": FORGED.format(n=7).replace("support@", "sales@")}
    response = post_mailgun(post, forged)

    assert response.status_code == 406
    assert not InboundEvent.objects.exists()
    assert WebhookNonce.objects.get().accepted_at is None
    assert len(replay_records(caplog)) == 1


def test_changing_any_other_field_under_a_used_token_is_refused(post, channel):
    fields = mailgun_signed(mailgun_mime_fields())
    assert post_mailgun(post, fields).status_code == 200

    rerouted = {**fields, "recipient": "other@desk.example"}

    assert post_mailgun(post, rerouted).status_code == 406
    assert InboundEvent.objects.count() == 1


def test_the_parsed_form_is_checked_the_same_way(post, channel):
    fields = fixture_json("mailgun/inbound_parsed.json")
    fields["recipient"] = "support@desk.example"
    accepted = mailgun_signed(fields)
    assert post("/inbound/email/mailgun/inbound/", *multipart(accepted), **basic_auth()).status_code == 200

    forged = {**accepted, "body-plain": "Please wire the money."}
    response = post("/inbound/email/mailgun/inbound/", *multipart(forged), **basic_auth())

    assert response.status_code == 406
    assert InboundEvent.objects.count() == 1


def test_a_bad_signature_is_refused_before_any_token_is_remembered(post, channel):
    fields = mailgun_signed(mailgun_mime_fields())
    fields["signature"] = "0" * 64

    assert post_mailgun(post, fields).status_code == 400
    assert not WebhookNonce.objects.exists()
    assert not InboundEvent.objects.exists()


def _nonce(token, *, age_seconds, accepted):
    now = timezone.now()
    return WebhookNonce.objects.create(
        provider="mailgun",
        nonce=token,
        content_digest="0" * 64,
        signed_at=now - timedelta(seconds=age_seconds),
        accepted_at=now if accepted else None,
    )


def test_pruning_drops_tokens_a_replay_can_no_longer_use_and_keeps_the_rest(settings):
    settings.EMAIL_WEBHOOK_TIMESTAMP_TOLERANCE_SECONDS = 300
    settings.EMAIL_WEBHOOK_RETRY_WINDOW_SECONDS = 9 * 3600
    _nonce("accepted-recent", age_seconds=200, accepted=True)
    _nonce("accepted-old", age_seconds=400, accepted=True)
    _nonce("refused-in-retry-window", age_seconds=8 * 3600, accepted=False)
    _nonce("refused-after-retries", age_seconds=10 * 3600, accepted=False)

    assert prune_webhook_nonces.delay().get() == 2

    assert sorted(WebhookNonce.objects.values_list("nonce", flat=True)) == [
        "accepted-recent",
        "refused-in-retry-window",
    ]


def test_a_pruned_token_replayed_is_refused_for_its_age(post, channel, settings):
    fields = mailgun_signed(mailgun_mime_fields(), timestamp=int(time.time()) - 290)
    assert post_mailgun(post, fields).status_code == 200
    # Time passes: the post is now older than the tolerance (shortened instead of waiting), and beat prunes.
    settings.EMAIL_WEBHOOK_TIMESTAMP_TOLERANCE_SECONDS = 100
    prune_webhook_nonces.delay()
    assert not WebhookNonce.objects.exists()

    forged = {**fields, "body-mime": FORGED.format(n=3)}

    assert post_mailgun(post, forged).status_code == 406
    assert InboundEvent.objects.count() == 1


def test_beat_prunes_the_tokens():
    entry = settings.CELERY_BEAT_SCHEDULE["prune-webhook-nonces"]
    assert entry["task"] == "channels_app.prune_webhook_nonces"
    assert entry["task"] in celery_app.tasks


def test_a_replay_refusal_logs_no_token_or_address(post, channel, caplog):
    fields = mailgun_signed(mailgun_mime_fields())
    post_mailgun(post, fields)
    with caplog.at_level(logging.INFO):
        post_mailgun(post, {**fields, "body-mime": FORGED.format(n=9)})

    (record,) = replay_records(caplog)
    assert record.provider == "Mailgun"
    logged = " ".join(str(value) for value in vars(record).values())
    assert fields["token"] not in logged
    assert "support@desk.example" not in logged


@pytest.mark.parametrize(("digest", "outcome"), [("a" * 64, "already-taken"), ("b" * 64, "refused")])
def test_a_concurrent_post_that_took_the_token_first_wins(digest, outcome):
    # Both posts passed the check before either committed; the other one's row is there when this one inserts.
    claim = NonceClaim(provider="mailgun", nonce="t-1", content_digest=digest, signed_at=timezone.now())
    WebhookNonce.objects.create(
        provider="mailgun", nonce="t-1", content_digest="a" * 64, signed_at=claim.signed_at, accepted_at=timezone.now()
    )

    with transaction.atomic():
        if outcome == "refused":
            with pytest.raises(ReplayRefused):
                webhook_nonce_accept(claim=claim)
        else:
            assert webhook_nonce_accept(claim=claim) is False

    assert WebhookNonce.objects.get().content_digest == "a" * 64
