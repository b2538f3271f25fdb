"""PLACEHOLDER (helper sms-inbound fills this): Twilio's form payload -> InboundMessage."""


def parse_twilio_form(*, channel, payload):
    raise NotImplementedError
