"""Our signed Message-IDs and reply tokens: they round-trip, and a forged, altered or foreign one names nothing."""

from channels_app.threading_refs import our_message_id, parse_our_message_id, parse_reply_token, reply_token


def test_our_message_id_round_trips_and_a_forged_or_altered_one_is_refused():
    genuine = our_message_id(message_id=123, domain="desk.example")
    mac = genuine.removeprefix("<hd.123.").removesuffix("@desk.example>")

    assert parse_our_message_id(genuine) == 123
    assert parse_our_message_id(genuine.strip("<>")) == 123
    assert parse_our_message_id(f"<hd.124.{mac}@desk.example>") is None
    assert parse_our_message_id(f"<hd.123.{'0' * 10}@desk.example>") is None
    assert parse_our_message_id(f"<hd.123.{mac[:-1]}@desk.example>") is None
    assert parse_our_message_id("<abc@mail.example>") is None
    assert parse_our_message_id("") is None


def test_a_message_id_signed_with_another_secret_key_is_refused(settings):
    genuine = our_message_id(message_id=123, domain="desk.example")
    settings.SECRET_KEY = "another-secret-key-" + "x" * 40

    assert parse_our_message_id(genuine) is None


def test_reply_token_round_trips_and_a_forged_or_altered_one_is_refused():
    token = reply_token(ticket_id=42)
    mac = token.removeprefix("t42-")

    assert parse_reply_token(token) == 42
    assert parse_reply_token(token.upper()) == 42
    assert parse_reply_token(f"t43-{mac}") is None
    assert parse_reply_token(f"t42-{'f' * 10}") is None
    assert parse_reply_token("t42") is None
    assert parse_reply_token("") is None
    # A Message-ID's signature does not make a reply token, nor the other way round
    message_mac = our_message_id(message_id=42, domain="d.example").split(".")[2].split("@")[0]
    assert parse_reply_token(f"t42-{message_mac}") is None
