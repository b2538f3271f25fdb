"""How many SMS segments a text costs, and in which encoding, the way carriers count them (3GPP TS 23.038).

A text made only of GSM-7 characters travels in 7-bit septets: 160 in one message, 153 per segment once it is
split (the concatenation header takes the rest). Characters of the GSM extension table (``€``, ``[``, ``{``...)
are an escape plus a septet, so they cost 2, and a segment never ends between the two. Any other character
(an emoji, a curly quote, most scripts) turns the whole message into UCS-2: 70 UTF-16 code units in one message,
67 per segment; an emoji outside the Basic Multilingual Plane is a surrogate pair and costs 2, and a segment never
splits a pair (the phone would show two broken halves).
"""

from dataclasses import dataclass

GSM7 = "GSM-7"
UCS2 = "UCS-2"

# The GSM 03.38 default alphabet (the escape character 0x1B itself is not something a person types).
GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
# Reached through the escape: two septets each.
GSM7_EXTENSION = frozenset("\f^{}\\[~]|€")

SINGLE = {GSM7: 160, UCS2: 70}
PER_SEGMENT = {GSM7: 153, UCS2: 67}


@dataclass(frozen=True)
class SmsSegments:
    encoding: str  # GSM-7 or UCS-2
    segments: int  # 0 for an empty text
    units: int  # septets (GSM-7) or UTF-16 code units (UCS-2) the whole text takes
    per_segment: int  # how many units fit in each of its segments (160/153, 70/67)
    non_gsm_characters: tuple[str, ...] = ()  # the characters that forced UCS-2, each once, in order of appearance


def sms_segments(text: str) -> SmsSegments:
    non_gsm = tuple(dict.fromkeys(ch for ch in text if ch not in GSM7_BASIC and ch not in GSM7_EXTENSION))
    if non_gsm:
        encoding = UCS2
        costs = [len(ch.encode("utf-16-le")) // 2 for ch in text]
    else:
        encoding = GSM7
        costs = [2 if ch in GSM7_EXTENSION else 1 for ch in text]
    units = sum(costs)
    if units == 0:
        return SmsSegments(encoding=encoding, segments=0, units=0, per_segment=SINGLE[encoding])
    if units <= SINGLE[encoding]:
        return SmsSegments(
            encoding=encoding, segments=1, units=units, per_segment=SINGLE[encoding], non_gsm_characters=non_gsm
        )
    per_segment = PER_SEGMENT[encoding]
    segments, used = 1, 0
    for cost in costs:
        # A character (an escape pair, a surrogate pair) that does not fit whole starts the next segment.
        if used + cost > per_segment:
            segments += 1
            used = 0
        used += cost
    return SmsSegments(
        encoding=encoding, segments=segments, units=units, per_segment=per_segment, non_gsm_characters=non_gsm
    )
