"""SMS compliance keywords (STOP, START, HELP...), whatever the provider.

A keyword is the whole message, not a word in it: "Stop sending me these please" is a customer writing to us, and
answering it with an opt-out would lose the conversation. Case, surrounding spaces and trailing punctuation do not
matter ("stop!", " Stop. ").
"""

import re

OPT_OUT = "opt_out"
OPT_IN = "opt_in"
HELP = "help"

# The carriers' standard set plus the ones Twilio's default Opt-Out handling also honours (OPTOUT, REVOKE).
OPT_OUT_KEYWORDS = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "OPTOUT", "REVOKE"})
OPT_IN_KEYWORDS = frozenset({"START", "YES", "UNSTOP"})
HELP_KEYWORDS = frozenset({"HELP", "INFO"})

# What Twilio's OptOutType parameter says (Advanced Opt-Out, custom keywords included): it has already decided.
_PROVIDER_TYPES = {"STOP": OPT_OUT, "START": OPT_IN, "HELP": HELP}

_TRAILING_PUNCTUATION = re.compile(r"[\s.!?,;:]+$")


def sms_keyword_kind(text: str, *, provider_type: str = "") -> str | None:
    """``"opt_out"``, ``"opt_in"``, ``"help"`` or None for an ordinary message.

    ``provider_type`` is the provider's own classification (Twilio's ``OptOutType``): when present and known it
    wins, so a custom keyword configured at Twilio (e.g. "ARRET") is honoured as Twilio honoured it.
    """
    kind = _PROVIDER_TYPES.get((provider_type or "").strip().upper())
    if kind:
        return kind
    word = keyword_word(text)
    if word in OPT_OUT_KEYWORDS:
        return OPT_OUT
    if word in OPT_IN_KEYWORDS:
        return OPT_IN
    if word in HELP_KEYWORDS:
        return HELP
    return None


def keyword_word(text: str) -> str:
    """The message as a keyword candidate: trimmed, upper-cased, trailing punctuation removed."""
    return _TRAILING_PUNCTUATION.sub("", (text or "").strip()).upper()
