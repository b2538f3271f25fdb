"""MMS media: queued once per file, fetched only from Twilio's hosts under the limits, retried when it may pass,
stored as the message's attachment and shown on the message in the API.

Only Twilio's remote media hosts are mocked (an ``httpx.MockTransport`` behind ``media_http_client``); the
database, the services and the API are real.
"""

import base64
import hashlib

import httpx
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from channels_app.models import Channel, InboundEvent, InboundMedia
from channels_app.services.inbound_media import MediaFetchShouldRetry, inbound_media_fetch
from channels_app.services.inbound_media_queue import inbound_media_queue
from channels_app.services.inbound_process import inbound_event_process
from channels_app.sms import media_fetch
from channels_app.tasks.inbound import process_inbound_event
from channels_app.tasks.media import fetch_inbound_media
from tests.channels_app.sms_fixtures import ACCOUNT_SID as FIXTURE_ACCOUNT_SID
from tests.channels_app.sms_fixtures import AUTH_TOKEN as FIXTURE_AUTH_TOKEN
from tests.channels_app.sms_fixtures import inbound_path, post_twilio, sms_channel_create, twilio_payload
from tests.factories import ChannelFactory, MessageFactory, TicketFactory
from tickets.models import Attachment, Message

pytestmark = pytest.mark.django_db

ACCOUNT_SID = "AC" + "1" * 32
AUTH_TOKEN = "test-auth-token"
MEDIA_PATH = f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages/MM{'2' * 32}/Media/ME{'3' * 32}"
MEDIA_URL = f"https://api.twilio.com{MEDIA_PATH}"
CDN_URL = f"https://mms.twiliocdn.com/{ACCOUNT_SID}/{'a' * 32}?Expires=1&Signature=x"
S3_URL = f"https://s3-external-1.amazonaws.com/media.twiliocdn.com/{ACCOUNT_SID}/{'b' * 32}"
JPEG = b"\xff\xd8\xff\xe0" + bytes(range(256)) * 8


class TwilioMedia:
    """Twilio's media hosts as the test scripts them: a queue of answers, and every request that came."""

    def __init__(self, *answers):
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, Exception):
            raise answer
        return answer(request) if callable(answer) else answer

    @property
    def urls(self) -> list[str]:
        return [str(request.url) for request in self.requests]


def image(content: bytes = JPEG, content_type: str = "image/jpeg") -> httpx.Response:
    return httpx.Response(200, headers={"Content-Type": content_type}, content=content)


def redirect(location: str, status: int = 307) -> httpx.Response:
    return httpx.Response(status, headers={"Location": location})


@pytest.fixture
def twilio(monkeypatch):
    """Install a scripted Twilio: ``twilio(answer, ...)`` returns it; the fetch's client talks only to it."""

    def install(*answers) -> TwilioMedia:
        remote = TwilioMedia(*answers)

        monkeypatch.setattr(media_fetch, "media_http_transport", lambda: httpx.MockTransport(remote))
        return remote

    return install


@pytest.fixture
def sms_channel(db) -> Channel:
    channel = ChannelFactory(kind=Channel.Kind.SMS, name="Texts", provider="twilio", address="+15005550006")
    channel.secrets = {"account_sid": ACCOUNT_SID, "auth_token": AUTH_TOKEN}
    channel.save()
    return channel


@pytest.fixture
def message(sms_channel) -> Message:
    return MessageFactory(channel=sms_channel, ticket=TicketFactory(channel=sms_channel), text="See the photo")


@pytest.fixture
def enqueued(monkeypatch) -> list[int]:
    """Ids handed to the fetch task (recorded instead of sent to the broker)."""
    ids: list[int] = []
    monkeypatch.setattr(fetch_inbound_media, "delay", ids.append)
    return ids


def pending(message: Message, url: str = MEDIA_URL, content_type: str = "image/jpeg", index: int = 0):
    return InboundMedia.objects.create(message=message, index=index, url=url, content_type=content_type)


def basic_auth() -> str:
    return "Basic " + base64.b64encode(f"{ACCOUNT_SID}:{AUTH_TOKEN}".encode()).decode()


# --- Queueing -------------------------------------------------------------------------------------------------


def test_queueing_creates_one_row_per_file_in_order_and_enqueues_each_after_commit(
    message, enqueued, django_capture_on_commit_callbacks
):
    media = [{"url": MEDIA_URL, "content_type": "image/jpeg"}, {"url": MEDIA_URL + "9", "content_type": "video/mp4"}]

    with django_capture_on_commit_callbacks(execute=True):
        inbound_media_queue(message=message, media=media)

    rows = list(InboundMedia.objects.filter(message=message).order_by("index"))
    assert [(row.index, row.url, row.content_type, row.status) for row in rows] == [
        (0, MEDIA_URL, "image/jpeg", "pending"),
        (1, MEDIA_URL + "9", "video/mp4", "pending"),
    ]
    assert sorted(enqueued) == [row.pk for row in rows]


def test_queueing_the_same_media_again_adds_no_row(message, enqueued, django_capture_on_commit_callbacks):
    media = [{"url": MEDIA_URL, "content_type": "image/jpeg"}]
    inbound_media_queue(message=message, media=media)

    inbound_media_queue(message=message, media=media)

    assert InboundMedia.objects.filter(message=message).count() == 1


def test_no_more_than_twilios_ten_files_are_queued_for_one_message(message, enqueued):
    media = [{"url": f"{MEDIA_URL}{index}", "content_type": "image/png"} for index in range(12)]

    inbound_media_queue(message=message, media=media)

    assert list(InboundMedia.objects.order_by("index").values_list("index", flat=True)) == list(range(10))


# --- Fetching -------------------------------------------------------------------------------------------------


def test_a_media_file_is_stored_as_an_attachment_of_its_message_with_its_bytes_and_type(message, twilio):
    remote = twilio(image())
    media = pending(message)

    inbound_media_fetch(media_id=media.pk)

    media.refresh_from_db()
    assert (media.status, media.error, media.attempts) == ("stored", "", 1)
    attachment = Attachment.objects.get(message=message)
    assert media.attachment == attachment
    assert (attachment.content_type, attachment.size) == ("image/jpeg", len(JPEG))
    assert attachment.sha256 == hashlib.sha256(JPEG).hexdigest()
    assert attachment.filename == f"ME{'3' * 32}.jpg"
    with attachment.file.open("rb") as stored:
        assert stored.read() == JPEG
    assert remote.urls == [MEDIA_URL]
    assert remote.requests[0].headers["Authorization"] == basic_auth()


@pytest.mark.parametrize("location", [CDN_URL, S3_URL])
def test_a_redirect_to_twilios_media_host_is_followed_without_sending_the_credentials_there(message, twilio, location):
    remote = twilio(redirect(location), image(b"GIF89a...", "image/gif"))
    media = pending(message)

    inbound_media_fetch(media_id=media.pk)

    media.refresh_from_db()
    assert media.status == "stored"
    assert media.attachment.content_type == "image/gif"
    assert remote.urls == [MEDIA_URL, location]
    assert "Authorization" not in remote.requests[1].headers


@pytest.mark.parametrize(
    "location",
    [
        "http://127.0.0.1:8000/admin/",
        "https://127.0.0.1/",
        "https://169.254.169.254/latest/meta-data/",
        "http://mms.twiliocdn.com/x",  # Twilio's host, but not over https
        "https://mms.twiliocdn.com.attacker.example/x",
        "https://twiliocdn.com.attacker.example/x",
        "https://s3-external-1.amazonaws.com/someone-elses-bucket/x",
        "//127.0.0.1/internal",  # relative to the scheme: resolved, then checked
    ],
)
def test_a_redirect_anywhere_else_is_refused_and_not_followed(message, twilio, location):
    remote = twilio(redirect(location, status=302), image())
    media = pending(message)

    inbound_media_fetch(media_id=media.pk)

    media.refresh_from_db()
    assert media.status == "refused"
    assert "redirect to a host that does not serve Twilio media" in media.error
    assert media.attachment is None
    assert remote.urls == [MEDIA_URL]
    assert Attachment.objects.count() == 0


def test_a_redirect_to_a_url_that_cannot_be_parsed_is_not_followed(message, twilio):
    remote = twilio(redirect("https://[::1"), image())
    media = pending(message)

    # httpx rejects the Location itself, as a protocol error: one more attempt later, nothing followed now.
    with pytest.raises(MediaFetchShouldRetry):
        inbound_media_fetch(media_id=media.pk)

    media.refresh_from_db()
    assert (media.status, media.error) == ("pending", "RemoteProtocolError fetching from api.twilio.com")
    assert remote.urls == [MEDIA_URL]


def test_a_redirect_loop_ends_failed_after_a_few_hops(message, twilio):
    remote = twilio(redirect(CDN_URL))
    media = pending(message)

    inbound_media_fetch(media_id=media.pk)

    media.refresh_from_db()
    assert (media.status, media.error) == ("failed", "more than 3 redirects")
    assert len(remote.requests) == media_fetch.MAX_REDIRECTS + 1


@pytest.mark.parametrize(
    "url",
    [
        MEDIA_URL.replace("https://", "http://"),
        "https://example.com" + MEDIA_PATH,
        "https://api.twilio.com.attacker.example" + MEDIA_PATH,
        "https://api.twilio.com:8443" + MEDIA_PATH,
        "https://user:secret@api.twilio.com" + MEDIA_PATH,
        MEDIA_URL.replace(ACCOUNT_SID, "AC" + "9" * 32),  # another account's media
        f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT_SID}/../AC{'9' * 32}/Messages/x",
        "https://169.254.169.254/latest/meta-data/",
        "file:///etc/passwd",
        "https://[::1/",
    ],
)
def test_a_url_that_is_not_twilios_media_url_for_the_account_is_refused_without_any_request(message, twilio, url):
    remote = twilio(image())
    media = InboundMedia.objects.create(message=message, index=0, url="https://placeholder.invalid/")
    InboundMedia.objects.filter(pk=media.pk).update(url=url)  # URLField validation is not what guards this

    inbound_media_fetch(media_id=media.pk)

    media.refresh_from_db()
    assert media.status == "refused"
    assert media.error
    assert media.attempts == 0
    assert remote.requests == []
    assert Attachment.objects.count() == 0


def test_a_channel_without_twilio_credentials_refuses_without_any_request(twilio):
    channel = ChannelFactory(kind=Channel.Kind.SMS, provider="twilio")
    message = MessageFactory(channel=channel)
    remote = twilio(image())
    media = pending(message)

    inbound_media_fetch(media_id=media.pk)

    media.refresh_from_db()
    assert media.status == "refused"
    assert "account_sid" in media.error
    assert remote.requests == []


@pytest.fixture
def small_limit(settings) -> int:
    settings.HELPDESK = {**settings.HELPDESK, "MAX_MEDIA_BYTES": 1000}
    return 1000


def test_a_file_declared_over_the_size_limit_is_refused_before_its_body_is_read(message, twilio, small_limit):
    def declared_too_large(request):
        def body():
            raise AssertionError("the body was read")
            yield b""

        return httpx.Response(200, headers={"Content-Type": "image/jpeg", "Content-Length": "1001"}, content=body())

    twilio(declared_too_large)
    media = pending(message)

    inbound_media_fetch(media_id=media.pk)

    media.refresh_from_db()
    assert (media.status, media.error) == ("refused", "1001 bytes is over the 1000-byte limit")
    assert Attachment.objects.count() == 0


def test_a_file_that_streams_past_the_size_limit_is_refused(message, twilio, small_limit):
    sent = []

    def chunked(request):
        def body():
            for _ in range(100):
                sent.append(400)
                yield b"x" * 400

        # No Content-Length: only counting the bytes as they come can stop it.
        return httpx.Response(200, headers={"Content-Type": "image/jpeg"}, content=body())

    twilio(chunked)
    media = pending(message)

    inbound_media_fetch(media_id=media.pk)

    media.refresh_from_db()
    assert (media.status, media.error) == ("refused", "more than the 1000-byte limit")
    assert Attachment.objects.count() == 0
    assert sum(sent) < 100 * 400  # it stopped reading, it did not take it all and then look


def test_a_file_exactly_at_the_limit_is_stored(message, twilio, small_limit):
    twilio(image(b"x" * 1000, "text/plain"))
    media = pending(message)

    inbound_media_fetch(media_id=media.pk)

    media.refresh_from_db()
    assert media.status == "stored"
    assert media.attachment.size == 1000


@pytest.mark.parametrize("content_type", ["text/html", "application/x-msdownload", "image/svg+xml", ""])
def test_a_type_we_do_not_accept_is_refused(message, twilio, content_type):
    twilio(httpx.Response(200, headers={"Content-Type": content_type} if content_type else {}, content=b"<x>"))
    media = pending(message)

    inbound_media_fetch(media_id=media.pk)

    media.refresh_from_db()
    assert media.status == "refused"
    assert media.error == f"content type {content_type or '(none)'} is not accepted"
    assert Attachment.objects.count() == 0


@pytest.mark.parametrize(
    "failure, reason",
    [
        (httpx.Response(500), "HTTP 500 from api.twilio.com"),
        (httpx.Response(503), "HTTP 503 from api.twilio.com"),
        (httpx.Response(429), "HTTP 429 from api.twilio.com"),
        (httpx.ConnectError("refused"), "ConnectError fetching from api.twilio.com"),
        (httpx.ReadTimeout("slow"), "ReadTimeout fetching from api.twilio.com"),
    ],
)
def test_a_failure_that_may_pass_is_retried_and_the_next_attempt_stores_it(message, twilio, failure, reason):
    remote = twilio(failure, image())
    media = pending(message)

    with pytest.raises(MediaFetchShouldRetry):
        inbound_media_fetch(media_id=media.pk)

    media.refresh_from_db()
    assert (media.status, media.attempts, media.error) == ("pending", 1, reason)
    assert Attachment.objects.count() == 0

    inbound_media_fetch(media_id=media.pk)

    media.refresh_from_db()
    assert (media.status, media.attempts, media.error) == ("stored", 2, "")
    assert len(remote.requests) == 2


def test_a_server_that_keeps_failing_ends_failed_with_the_reason_after_the_last_attempt(message, twilio, settings):
    settings.HELPDESK = {**settings.HELPDESK, "MEDIA_FETCH_MAX_ATTEMPTS": 3}
    remote = twilio(httpx.Response(500))
    media = pending(message)
    for _ in range(2):
        with pytest.raises(MediaFetchShouldRetry):
            inbound_media_fetch(media_id=media.pk)

    inbound_media_fetch(media_id=media.pk)  # the last attempt does not ask for another

    media.refresh_from_db()
    assert (media.status, media.attempts) == ("failed", 3)
    assert media.error == "HTTP 500 from api.twilio.com (gave up after 3 attempts)"
    inbound_media_fetch(media_id=media.pk)
    assert len(remote.requests) == 3


@pytest.mark.parametrize("status", [401, 403, 404, 410])
def test_a_client_error_fails_at_once(message, twilio, status):
    remote = twilio(httpx.Response(status))
    media = pending(message)

    inbound_media_fetch(media_id=media.pk)

    media.refresh_from_db()
    assert (media.status, media.attempts, media.error) == ("failed", 1, f"HTTP {status} from api.twilio.com")
    assert len(remote.requests) == 1


def test_a_stored_file_is_never_fetched_again(message, twilio):
    remote = twilio(image())
    media = pending(message)
    inbound_media_fetch(media_id=media.pk)

    inbound_media_fetch(media_id=media.pk)

    assert len(remote.requests) == 1
    assert Attachment.objects.count() == 1


def test_two_workers_fetching_the_same_file_store_it_once(message, twilio):
    media = pending(message)
    state = {"nested": False}

    def second_worker_meanwhile(request):
        # While the first worker downloads, a redelivered task for the same row runs to the end.
        if not state["nested"]:
            state["nested"] = True
            inbound_media_fetch(media_id=media.pk)
        return image()

    twilio(second_worker_meanwhile)

    inbound_media_fetch(media_id=media.pk)

    media.refresh_from_db()
    assert media.status == "stored"
    assert Attachment.objects.count() == 1
    assert media.attachment == Attachment.objects.get()


# --- The API --------------------------------------------------------------------------------------------------


def test_the_message_shows_its_media_and_their_state(message, twilio, admin_client):
    twilio(image())
    stored = pending(message, index=0)
    inbound_media_fetch(media_id=stored.pk)
    refused = pending(message, url="https://example.com/x.jpg", index=1)
    inbound_media_fetch(media_id=refused.pk)
    waiting = pending(message, content_type="video/mp4", index=2)

    response = admin_client.get(f"/api/v1/tickets/{message.ticket_id}/messages")

    assert response.status_code == 200
    [shown] = response.json()
    attachment = Attachment.objects.get(message=message)
    assert shown["media"] == [
        {"index": 0, "content_type": "image/jpeg", "status": "stored", "error": "", "attachment_id": attachment.pk},
        {
            "index": 1,
            "content_type": "image/jpeg",
            "status": "refused",
            "error": "not a Twilio media URL (host example.com)",
            "attachment_id": None,
        },
        {"index": 2, "content_type": "video/mp4", "status": "pending", "error": "", "attachment_id": None},
    ]
    assert [item["id"] for item in shown["attachments"]] == [attachment.pk]
    assert waiting.pk


def _queries(client, url) -> int:
    with CaptureQueriesContext(connection) as captured:
        assert client.get(url).status_code == 200
    return len(captured.captured_queries)


def test_listing_messages_with_media_takes_the_same_queries_however_many_there_are(sms_channel, admin_client):
    ticket = TicketFactory(channel=sms_channel)
    first = MessageFactory(ticket=ticket, channel=sms_channel)
    pending(first)
    one = _queries(admin_client, f"/api/v1/tickets/{ticket.pk}/messages")
    one_timeline = _queries(admin_client, f"/api/v1/customers/{ticket.customer_id}/timeline")

    for _ in range(5):
        for index in range(3):
            pending(MessageFactory(ticket=ticket, channel=sms_channel), index=index)

    assert _queries(admin_client, f"/api/v1/tickets/{ticket.pk}/messages") == one
    assert _queries(admin_client, f"/api/v1/customers/{ticket.customer_id}/timeline") == one_timeline


# --- End to end -----------------------------------------------------------------------------------------------


def test_an_inbound_mms_through_the_webhook_ends_with_its_files_attached_to_the_message(
    client, twilio, enqueued, monkeypatch, django_capture_on_commit_callbacks
):
    channel = sms_channel_create()
    payload = twilio_payload("mms")
    png = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
    answers = {
        payload["MediaUrl0"]: redirect(CDN_URL),
        CDN_URL: image(JPEG, "image/jpeg"),
        payload["MediaUrl1"]: image(png, "image/png"),
    }
    remote = twilio(lambda request: answers[str(request.url)])
    events: list[int] = []
    monkeypatch.setattr(process_inbound_event, "delay", events.append)

    with django_capture_on_commit_callbacks(execute=True):
        response = post_twilio(client, inbound_path(channel), payload)
    assert response.status_code == 200
    [event_id] = events
    with django_capture_on_commit_callbacks(execute=True):
        inbound_event_process(event_id=event_id)
    for media_id in list(enqueued):
        inbound_media_fetch(media_id=media_id)

    assert InboundEvent.objects.get(pk=event_id).status == InboundEvent.Status.PROCESSED
    message = Message.objects.get()
    assert [(m.index, m.status) for m in message.media.order_by("index")] == [(0, "stored"), (1, "stored")]
    stored = message.attachments.order_by("filename")
    assert [(a.filename, a.content_type, a.size) for a in stored] == [
        ("ME11111111111111111111111111111111.jpg", "image/jpeg", len(JPEG)),
        ("ME22222222222222222222222222222222.png", "image/png", len(png)),
    ]
    assert sorted(remote.urls) == sorted(answers)
    assert all(
        r.headers["Authorization"] == twilio_basic_auth() for r in remote.requests if r.url.host == "api.twilio.com"
    )


def twilio_basic_auth() -> str:
    return "Basic " + base64.b64encode(f"{FIXTURE_ACCOUNT_SID}:{FIXTURE_AUTH_TOKEN}".encode()).decode()
