"""PLACEHOLDER (helper sms-inbound fills this): checking X-Twilio-Signature with twilio's RequestValidator."""


def verify_twilio_request(*, channel, request) -> None:
    raise NotImplementedError
