"""PLACEHOLDER (helper sms-outbound fills this): sending through the twilio client."""


def send_twilio_message(*, channel, message):
    raise NotImplementedError
