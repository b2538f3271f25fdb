"""SMS segment counting with known vectors (GSM 03.38 / UCS-2), and the agents' endpoint over it."""

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from channels_app.models import Channel
from channels_app.sms.segments import SmsSegments, sms_segments
from tests.channels_app.sms_fixtures import sms_channel_create
from tests.factories import ChannelFactory

# The non-ASCII part of the GSM 03.38 default alphabet, plus newline and carriage return (escaped: unambiguous).
GSM7_ALPHABET_SAMPLE = (
    "@\u00a3$\u00a5\u00e8\u00e9\u00f9\u00ec\u00f2\u00c7\u00d8\u00f8\u00c5\u00e5\u0394_\u03a6\u0393\u039b"
    "\u03a9\u03a0\u03a8\u03a3\u0398\u039e\u00c6\u00e6\u00df\u00c9!#\u00a4%&'()*+,-./:;<=>?\u00a1\u00c4"
    "\u00d6\u00d1\u00dc\u00a7\u00bf\u00e4\u00f6\u00f1\u00fc\u00e0\n\r"
)


@pytest.mark.parametrize(
    ("text", "encoding", "segments", "units", "per_segment"),
    [
        ("", "GSM-7", 0, 0, 160),
        ("a" * 160, "GSM-7", 1, 160, 160),
        ("a" * 161, "GSM-7", 2, 161, 153),
        ("a" * 306, "GSM-7", 2, 306, 153),
        ("a" * 307, "GSM-7", 3, 307, 153),
        # Every character of the default alphabet is one septet, accented letters and Greek capitals included
        (GSM7_ALPHABET_SAMPLE, "GSM-7", 1, 63, 160),
        # The extension table costs two septets a character
        ("€", "GSM-7", 1, 2, 160),
        ("{[~]}|^\\", "GSM-7", 1, 16, 160),
        ("€" * 80, "GSM-7", 1, 160, 160),
        ("€" * 81, "GSM-7", 2, 162, 153),
        ("a" * 159 + "€", "GSM-7", 2, 161, 153),
        # 306 septets fit two segments only if the escape pair could be split: it cannot
        ("a" * 152 + "€" + "a" * 152, "GSM-7", 3, 306, 153),
        # One character outside GSM-7 makes the whole text UCS-2
        ("😀", "UCS-2", 1, 2, 70),
        ("ж" * 70, "UCS-2", 1, 70, 70),
        ("ж" * 71, "UCS-2", 2, 71, 67),
        ("ж" * 134, "UCS-2", 2, 134, 67),
        ("ж" * 135, "UCS-2", 3, 135, 67),
        ("a" * 69 + "😀", "UCS-2", 2, 71, 67),
        ("😀" * 35, "UCS-2", 1, 70, 70),
        # A surrogate pair is never split between two segments either
        ("ж" * 66 + "😀" + "ж" * 66, "UCS-2", 3, 134, 67),
    ],
)
def test_segment_vectors(text, encoding, segments, units, per_segment):
    result = sms_segments(text)

    assert (result.encoding, result.segments, result.units, result.per_segment) == (
        encoding,
        segments,
        units,
        per_segment,
    )


def test_the_characters_that_forced_ucs2_are_named_once_each_in_order():
    result = sms_segments("Thanks \u201cAnn\u201d \u2014 see you 😀😀 soon \u2019")

    assert result == SmsSegments(
        encoding="UCS-2",
        segments=1,
        units=34,
        per_segment=70,
        non_gsm_characters=("\u201c", "\u201d", "\u2014", "😀", "\u2019"),
    )


def test_a_gsm_text_names_no_characters():
    assert sms_segments("Your code is 1234.").non_gsm_characters == ()


SEGMENTS_FIELDS = {"encoding", "segments", "units", "per_segment", "non_gsm_characters"}


@pytest.mark.django_db
def test_agents_count_a_draft_on_an_sms_channel(agent_client):
    channel = sms_channel_create()

    response = agent_client.post(
        reverse("channel-sms-segments", args=[channel.pk]), {"text": "a" * 150 + " 😀"}, format="json"
    )

    assert response.status_code == 200
    assert response.json() == {
        "encoding": "UCS-2",
        "segments": 3,
        "units": 153,
        "per_segment": 67,
        "non_gsm_characters": ["😀"],
    }


@pytest.mark.django_db
def test_whitespace_counts(agent_client):
    channel = sms_channel_create()

    response = agent_client.post(reverse("channel-sms-segments", args=[channel.pk]), {"text": "  \n"}, format="json")

    assert (response.status_code, response.json()["units"]) == (200, 3)


@pytest.mark.django_db
@pytest.mark.parametrize("kind", [Channel.Kind.EMAIL, Channel.Kind.API, Channel.Kind.CHAT])
def test_a_channel_that_is_not_sms_is_404(agent_client, kind):
    channel = ChannelFactory(kind=kind)

    response = agent_client.post(reverse("channel-sms-segments", args=[channel.pk]), {"text": "hi"}, format="json")

    assert response.status_code == 404
    assert SEGMENTS_FIELDS.isdisjoint(response.json())


@pytest.mark.django_db
def test_an_unknown_channel_is_404(agent_client):
    response = agent_client.post(reverse("channel-sms-segments", args=[987654]), {"text": "hi"}, format="json")

    assert response.status_code == 404


@pytest.mark.django_db
def test_text_is_required(agent_client):
    channel = sms_channel_create()

    response = agent_client.post(reverse("channel-sms-segments", args=[channel.pk]), {}, format="json")

    assert response.status_code == 400
    assert response.json()["errors"] == {"text": ["This field is required."]}


@pytest.mark.django_db
def test_anonymous_callers_are_refused():
    channel = sms_channel_create()

    response = APIClient().post(reverse("channel-sms-segments", args=[channel.pk]), {"text": "hi"}, format="json")

    assert response.status_code in (401, 403)
    assert SEGMENTS_FIELDS.isdisjoint(response.json())
