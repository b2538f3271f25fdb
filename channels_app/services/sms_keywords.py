"""PLACEHOLDER (helper sms-inbound fills this): STOP/START keywords -> opt-out records and timeline events."""


def sms_keyword_record(*, channel, event, inbound) -> str:
    """Record the opt-out/opt-in an inbound keyword message asks for; returns a note for the inbound event."""
    raise NotImplementedError
