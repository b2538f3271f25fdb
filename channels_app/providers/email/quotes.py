"""The new text of a plain-text reply, without the quoted history that mail clients add to it.

A reply is read as lines. The quoted history starts at the first of:

- a line quoted with ``>``;
- an attribution ("On <date>, <name> wrote:" and its forms in other languages), which clients wrap over two or
  three lines and some write with the name after the verb ("Am <date> schrieb <name>:") or with no colon;
- a header of only a date and a name ("2026/11/2 Ann Lee <ann@example.com>") right above ``>`` lines;
- "-----Original Message-----" in any language, or an Outlook header block ("From: / Sent: / To: / Subject:" in
  any language, "De : / Envoyé : / À : / Objet :", "Van: / Verzonden:", "Da: / Inviato:" ...);
- the text below a "Sent from my <phone>" line: phone clients write the signature after the new text, so what
  follows it is what was quoted, even without a header.

Everything after a header whose quote is not marked with ``>`` (Outlook, "Original Message", phone clients) is
history. A ``>`` quote ends where unquoted text starts again: that text is an answer written below the quote
(bottom-posting), kept with what is above the quote. When answers are written between two or more quotes (an
inline reply), each answer keeps the quoted lines it answers, and only the attribution and the quote after the
last answer are dropped. A forward ("---------- Forwarded message ---------") is content, not history: the text is
then kept whole, as it is when nothing but quotes is left.

The work is linear in the size of the text: each pattern runs on at most a few hundred characters of a line (a
quote header is never longer), and none nests quantifiers, so a 200,000-character line or 50,000 quoted lines cost
a single pass.
"""

import re
from collections.abc import Sequence
from dataclasses import dataclass

# A quote header, even wrapped over three lines, is shorter than this; longer lines are never read as one.
MAX_HEADER_CHARS = 400
MAX_HEADER_LINES = 3
# How far below a header block's first field its other fields may be (a long From: wraps over two lines).
_HEADER_BLOCK_WINDOW = 5

_SPACE = r"[ \t\u00a0\u202f]"
_COLON = rf"{_SPACE}*[:：]"

# Verbs that end an attribution: "... wrote:", "... a écrit :", "... schreef:", "... 写道：". Matched with
# str.endswith on the lowercased end of a line, which costs the same however many languages there are.
_WROTE = (
    "wrote", "writes", "sent", "a écrit", "a ecrit", "schrieb", "hat geschrieben", "escribió", "escribio",
    "escreveu", "escrevia", "ha scritto", "scrisse", "schreef", "geschreven", "skrev", "skrifaði", "kirjoitti",
    "napisał(a)", "napisała", "napisał", "napisal(a)", "napsal(a)", "napsala", "napsal", "napísal(a)", "napísala",
    "napísal", "pisze", "написал(а)", "написала", "написал", "написав", "пишет", "пише", "напиша", "şunu yazdı",
    "yazdı", "írta", "a scris", "έγραψε", "va escriure", "je napisao", "je napisala", "je napisal", "rašė",
    "rakstīja", "kirjutas", "כתב", "كتب", "写道", "寫道", "작성", "のメール", "書きました",
)  # fmt: skip
_SPACES = " \t\u00a0\u202f"
_COLONS = ":："
# The verb first and the name after it: "Am Mo., 2. Nov. 2026 um 10:00 Uhr schrieb Ann Lee <ann@example.com>:".
_VERB_THEN_NAME = re.compile(rf"(?:^|\s)(?:schrieb|schreef|skrev|skrifaði)\s[^:：]{{1,150}}{_COLON}{_SPACE}*$", re.I)
# Hungarian Gmail: "Ann Lee <ann@example.com> ezt írta (időpont: 2026. nov. 2., H 10:00):".
_HUNGARIAN = re.compile(rf"ezt írta \(időpont:[^()]{{1,80}}\){_COLON}{_SPACE}*$", re.IGNORECASE)
# Words that open an attribution, in the languages whose clients start with one ("On", "Le", "Am", "W dniu"...).
_INTRODUCER = re.compile(
    r"^(?:On|Le|Am|El|Em|Il giorno|Il|Op|Den|På|Dne|Dnia|W dniu|În|Στις|В|Quoting|Zitat von|Citando)\s", re.I
)
# What dates a header: a time, a numeric or CJK date, or a year.
_DATED = re.compile(r"\d{1,2}[:.]\d{2}|\d{1,4}[./-]\d{1,2}[./-]\d{1,4}|\d{4}\s?[年년]|\b(?:19|20)\d{2}\b")
_TIME = re.compile(r"\d{1,2}[:.]\d{2}")
_ADDRESS = re.compile(r"@[^\s@]")
# A date that starts a line: 2026-11-02, 02.11.2026, 2026/11/2, 2026年11月2日, 2026년 11월 2일.
_DATE_START = re.compile(r"^\s*(?:\d{1,4}[./-]\s?\d{1,2}[./-]\s?\d{1,4}|\d{4}\s?年|\d{4}년)")
# A date or a time anywhere: what a short "<date> <name>:" header holds.
_DATE_OR_TIME = re.compile(r"\d{1,4}[./-]\d{1,2}[./-]\d{1,4}|\d{1,2}[:.]\d{2}|\d{4}\s?[年년]")
# "<date> <name> <address>:", "<date>, <name>:" (Japanese and Russian Gmail, Android) ends with one of these.
_NAME_HEADER_END = re.compile(rf"(?:>{_SPACE}*{_COLON}?|{_COLON}){_SPACE}*$")
_ADDRESS_END = re.compile(rf"@[^\s<>()@]+[>)]{_SPACE}*(?:{_COLON})?{_SPACE}*$")

# "-----Original Message-----" and its translations; Outlook and Lotus write them with dashes, Samsung with eight.
_ORIGINAL_MESSAGE = re.compile(
    r"^\s*[-=_*]{2,}\s*(?:Original Message|Reply Message|Ursprüngliche Nachricht|Originalnachricht|Original-Nachricht"
    r"|Message d'origine|Message original|Mensaje original|Mensagem original|Messaggio originale"
    r"|Messaggio Originale|Oorspronkelijk bericht|Origineel bericht|Originalmeddelande|Ursprungligt meddelande"
    r"|Oprindelig meddelelse|Opprinnelig melding|Alkuperäinen viesti|Wiadomość oryginalna|Oryginalna wiadomość"
    r"|Původní zpráva|Pôvodná správa|Eredeti üzenet|Исходное сообщение|Оригинальное сообщение|Вихідне повідомлення"
    r"|Orijinal ileti|Özgün ileti|Αρχικό μήνυμα|Mesaj original|Mesajul original|Izvorna poruka|元のメッセージ"
    r"|原始邮件|原始郵件|原邮件|원본 메시지|원래 메시지)\s*[-=_*]*\s*$",
    re.IGNORECASE,
)
# A forward is the message itself: Gmail, Apple Mail, Thunderbird, Outlook ("FW"), in several languages.
_FORWARD = re.compile(
    r"^\s*(?:[-=_*]{2,}\s*)?(?:Forwarded message|Begin forwarded message|Forwarded Message|Weitergeleitete Nachricht"
    r"|Anfang der weitergeleiteten (?:E-Mail|Nachricht)|Message transféré|Début du message réexpédié"
    r"|Mensaje reenviado|Inicio del mensaje reenviado|Mensagem encaminhada|Messaggio inoltrato"
    r"|Doorgestuurd bericht|Begin doorgestuurd bericht|Vidarebefordrat meddelande|Videresendt meddelelse"
    r"|Videresendt melding|Välitetty viesti|Wiadomość przekazana|Přeposlaná zpráva|Пересылаемое сообщение"
    r"|Переслане повідомлення|İletilen ileti|Προωθημένο μήνυμα|転送されたメッセージ|转发的邮件|전달된 메시지)\b",
    re.IGNORECASE,
)
# Outlook draws a line of underscores above its header block.
_SEPARATOR = re.compile(r"^\s*_{20,}\s*$")

# The fields of an Outlook header block, by what they say, in the languages Outlook, Gmail and webmails write.
_FROM_FIELDS = (
    r"From|De|De la|Von|Van|Da|Od|Från|Fra|Frá|Lähettäjä|Feladó|От|Від|Kimden|Gönderen|Από|Mittente|Remitente"
    r"|差出人|送信者|发件人|寄件者|寄件人|보낸\s?사람|Message du"
)
_OTHER_FIELDS = (
    r"Sent|Date|To|Cc|Subject|Envoyé|Envoyé le|Date d'envoi|À|A|Pour|Objet|Sujet|Copie à"
    r"|Gesendet|Datum|An|Betreff|Verzonden|Aan|Onderwerp|Inviato|Data|Oggetto|Enviado|Enviada|Enviado el|Fecha"
    r"|Para|Asunto|Assunto|Skickat|Till|Ämne|Kopia|Sendt|Til|Emne|Kopi|Lähetetty|Päivämäärä|Vastaanottaja|Aihe"
    r"|Wysłano|Wysłane|Do|Temat|DW|Odesláno|Komu|Předmět|Kopie|Elküldve|Dátum|Címzett|Tárgy|Отправлено|Дата|Кому"
    r"|Тема|Копия|Надіслано|Gönderildi|Tarih|Kime|Konu|Bilgi|Στάλθηκε|Ημερομηνία|Προς|Θέμα|Trimis|Către|Subiect"
    r"|送信日時|日付|宛先|件名|发送时间|日期|收件人|主题|抄送|寄件日期|傳送時間|收件者|主旨|副本|보낸\s?날짜|받는\s?사람|제목|참조"
)
# "Message du 02/11/26 10:00" (French webmails) may have no colon.
_FROM_LINE = re.compile(rf"^\s*\*?(?:{_FROM_FIELDS})\*?{_COLON}|^\s*Message du{_SPACE}+\d", re.IGNORECASE)
_OTHER_FIELD_LINE = re.compile(rf"^\s*\*?(?:{_OTHER_FIELDS}){_SPACE}*\*?{_COLON}", re.IGNORECASE)
# Fields in the middle of one line: Outlook's block when the markup that broke its lines is gone.
_INLINE_FIELD = re.compile(rf"\s\*?(?:Sent|Date|To|Subject|Envoyé|Gesendet|Verzonden|Inviato|Enviado){_COLON}", re.I)

# "Sent from my iPhone", "Get Outlook for Android", "Von meinem iPhone gesendet" ... a line of its own.
_SENT_FROM = re.compile(
    r"^\s*(?:Sent from my|Sent from|Sent via|Sent with|Get Outlook for|Envoyé de mon|Envoyé depuis|"
    r"Obtenir Outlook pour|Von meinem|Gesendet von|Outlook für|Enviado desde mi|Enviado desde|Enviado do meu|"
    r"Enviado de meu|Enviado do|Inviato da|Inviato dal mio|Verzonden vanaf mijn|Verzonden met|Outlook voor|"
    r"Skickat från min|Skickat från|Sendt fra min|Sendt fra|Lähetetty|Wysłane z|Wysłano z|Odesláno z|"
    r"Отправлено с|Отправлено из|Надіслано з|iPhone'umdan gönderildi|Android'imden gönderildi|"
    r"iPhoneから送信|iPadから送信|发自我的|從我的|내 iPhone에서 보냄)"
    r"[^\n,;!?]{0,60}$",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class _Header:
    """Where a quote header is: its first line and how many lines it takes; ``is_marked`` when the quote it
    opens is marked with ``>`` (an attribution), not everything to the end (Outlook, "Original Message")."""

    start: int
    lines: int
    is_marked: bool


def reply_text(text: str) -> str:
    """The new text of a reply, without the quoted history below, above or between it (see the module doc).
    Signatures are kept: they are part of what the customer wrote. Returns ``text`` unchanged when no quote is
    found, when it is a forward, or when nothing but quotes would be left. Never raises for any string."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    quoted = [_is_quoted(line) for line in lines]
    first = _first_quote(lines, quoted, 0)
    if first is None:
        return text
    kept: list[tuple[int, int]] = [(0, first.start)]  # ranges of lines
    pairs: list[tuple[tuple[int, int], tuple[int, int]]] = []  # (quoted lines, the answer written below them)
    header: _Header | None = first
    index = first.start
    while index < len(lines):
        if header is not None and header.start == index:
            if not header.is_marked:
                break
            index += header.lines
        quote_start = index
        while index < len(lines) and (quoted[index] or not lines[index].strip()):
            index += 1
        header = _first_quote(lines, quoted, index)
        answer_end = header.start if header is not None else len(lines)
        pairs.append(((quote_start, index), (index, answer_end)))
        index = answer_end
    answered = [(quote, answer) for quote, answer in pairs if _has_text(lines, *answer)]
    if len(answered) >= 2:
        # An inline reply: each answer means something only below what it answers.
        kept += [part for quote, answer in answered for part in (quote, answer)]
    else:
        kept += [answer for _, answer in answered]
    new = "\n\n".join(block for block in (_trimmed(lines[start:end]) for start, end in _merged(kept)) if block)
    return new if new.strip() else text


def quote_header_lines(lines: Sequence[str], index: int) -> int:
    """How many lines, from ``lines[index]``, a quote header takes (an attribution, "Original Message", an
    Outlook header block); 0 when none starts there. For text lines taken from HTML (``html_quotes``)."""
    header = _header_at(lines, [_is_quoted(line) for line in lines[index : index + 8]], index, offset=index)
    return header.lines if header is not None else 0


def is_attribution(text: str) -> bool:
    """Whether ``text`` (one line, or a wrapped header joined with spaces) reads as "On <date>, <name> wrote:"
    in one of the languages clients write it in."""
    return _reads_as_attribution(text, is_above_quote=False)


def ends_like_attribution(text: str) -> bool:
    """Whether ``text`` ends the way an attribution ends (a verb such as "wrote:"), whatever comes before it."""
    return _ends_with_verb(text) or _ends_with_verb_then_name(text) or _ends_hungarian(text)


def _ends_with_verb(text: str) -> bool:
    end = text[-40:].rstrip(_SPACES)
    if end and end[-1] in _COLONS:
        end = end[:-1].rstrip(_SPACES)
    return end.lower().endswith(_WROTE)


def _colon_end(text: str) -> str:
    """The end of ``text`` when it ends with a colon (a header's end), else ""."""
    end = text[-MAX_HEADER_CHARS:].rstrip(_SPACES)
    return end if end and end[-1] in _COLONS else ""


def _ends_with_verb_then_name(text: str) -> bool:
    """ "... schrieb Ann Lee <ann@example.com>:" """
    end = _colon_end(text)
    return bool(end) and bool(_VERB_THEN_NAME.search(end))


def _ends_hungarian(text: str) -> bool:
    """ "... ezt írta (időpont: <date>):" """
    end = _colon_end(text)
    return end[:-1].rstrip(_SPACES).endswith(")") and bool(_HUNGARIAN.search(end))


def is_forward_marker(line: str) -> bool:
    return len(line) <= MAX_HEADER_CHARS and bool(_FORWARD.match(line))


# Finding headers


def _first_quote(lines: list[str], quoted: list[bool], start: int) -> _Header | None:
    for index in range(start, len(lines)):
        if quoted[index]:
            return _Header(start=index, lines=0, is_marked=True)
        line = lines[index]
        if not line.strip() or len(line) > MAX_HEADER_CHARS:
            continue
        if _FORWARD.match(line):
            # Everything below is the forwarded message: content, not history.
            return None
        header = _header_at(lines, quoted, index)
        if header is not None:
            return header
        if _SENT_FROM.match(line):
            below = _next_text(lines, index + 1)
            if below is not None:
                return _Header(start=below, lines=0, is_marked=False)
    return None


def _header_at(lines: Sequence[str], quoted: Sequence[bool], index: int, offset: int = 0) -> _Header | None:
    """The header starting at ``lines[index]``, if any; ``quoted[i - offset]`` says whether ``lines[i]`` is quoted."""
    line = lines[index]
    if len(line) > MAX_HEADER_CHARS:
        return None
    if _ORIGINAL_MESSAGE.match(line):
        return _Header(start=index, lines=1, is_marked=False)
    if _SEPARATOR.match(line):
        below = _next_text(lines, index + 1, most=2)
        if below is not None and _is_header_block(lines, below):
            return _Header(start=index, lines=1, is_marked=False)
        return None
    if _is_header_block(lines, index):
        return _Header(start=index, lines=1, is_marked=False)
    joined = ""
    for count in range(1, MAX_HEADER_LINES + 1):
        position = index + count - 1
        if position >= len(lines) or not lines[position].strip() or (count > 1 and _is_quoted(lines[position])):
            break
        joined = f"{joined} {lines[position].strip()}" if joined else lines[position].strip()
        if len(joined) > MAX_HEADER_CHARS or (count == 2 and not _opens_wrapped_header(lines[index])):
            break
        below = _next_text(lines, position + 1, most=3)
        is_above_quote = below is not None and _quoted_at(quoted, below, offset)
        if _reads_as_attribution(joined, is_above_quote=is_above_quote):
            # A header above unmarked text (Outlook, Gmail on a phone) opens a quote that runs to the end.
            return _Header(start=index, lines=count, is_marked=is_above_quote or below is None)
        if is_above_quote and count == 1 and _is_date_and_name(joined):
            return _Header(start=index, lines=1, is_marked=True)
    return None


def _reads_as_attribution(text: str, *, is_above_quote: bool) -> bool:
    text = text.strip().strip("-=_* ").strip()
    if not text or len(text) > MAX_HEADER_CHARS:
        return False
    if _ends_with_verb(text) or _ends_hungarian(text):
        # "On Monday I wrote to the bank:" is a sentence; a header is dated and names someone, or is above a quote.
        return is_above_quote or (bool(_DATED.search(text)) and bool(_INTRODUCER.match(text) or _ADDRESS.search(text)))
    if _ends_with_verb_then_name(text):
        # "Am <date> schrieb <name>:": the clients that put the name last always give the time.
        return is_above_quote or (bool(_TIME.search(text)) and bool(_INTRODUCER.match(text) or _ADDRESS.search(text)))
    # "<date> <name> <address>:" (Gmail in Japanese or Russian, Android)
    end = text.rstrip(_SPACES + _COLONS)
    return end[-1:] in (">", ")") and "@" in text and bool(_DATED.search(text[:120]) and _ADDRESS_END.search(text))


def _opens_wrapped_header(text: str) -> bool:
    """Whether a header wrapped over lines can start here: "Thanks!" above "On ... wrote:" is not part of it."""
    text = text.strip("-=_* ")
    return bool(_INTRODUCER.match(text) or _DATE_START.match(text) or "@" in text or text.endswith("<"))


def _is_date_and_name(text: str) -> bool:
    """A short line above a quote that starts with a date ("2026/11/2 Ann Lee"), or is dated and ends like a
    header ("02.11.2026 10:00, Ann Lee:")."""
    if len(text) > 200:
        return False
    return bool(_DATE_START.match(text)) or bool(_DATE_OR_TIME.search(text[:120]) and _NAME_HEADER_END.search(text))


def _is_header_block(lines: Sequence[str], index: int) -> bool:
    """A From field followed closely by another field (Sent, Date, To, Subject...) of a header block."""
    line = lines[index]
    if not _FROM_LINE.match(line):
        # Some blocks start with another field ("Date:", "Subject:"): three fields in a row are a block, two
        # may be a customer's own form ("Date: ... / To: ...").
        following = lines[index : index + 3]
        return len(following) == 3 and all(
            len(other) <= MAX_HEADER_CHARS and (_FROM_LINE.match(other) or _OTHER_FIELD_LINE.match(other))
            for other in following
        )
    if _INLINE_FIELD.search(line[5:MAX_HEADER_CHARS]):
        return True
    for other in lines[index + 1 : index + 1 + _HEADER_BLOCK_WINDOW]:
        text = other.lstrip().lstrip(">").strip()
        if len(other) <= MAX_HEADER_CHARS and _OTHER_FIELD_LINE.match(text):
            return True
    return False


# Lines


def _is_quoted(line: str) -> bool:
    return line.lstrip(" \t")[:1] == ">"


def _quoted_at(quoted: Sequence[bool], index: int, offset: int) -> bool:
    position = index - offset
    return 0 <= position < len(quoted) and quoted[position]


def _next_text(lines: Sequence[str], index: int, most: int | None = None) -> int | None:
    """The index of the first line from ``index`` that is not blank (looking at ``most`` lines at most)."""
    end = len(lines) if most is None else min(len(lines), index + most)
    for position in range(index, end):
        if lines[position].strip():
            return position
    return None


def _has_text(lines: list[str], start: int, end: int) -> bool:
    return any(lines[index].strip() for index in range(start, end))


def _merged(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Line ranges in order, those that touch made one: lines that were together in the reply stay together."""
    merged: list[tuple[int, int]] = []
    for start, end in ranges:
        if merged and merged[-1][1] == start:
            merged[-1] = (merged[-1][0], end)
        elif end > start:
            merged.append((start, end))
    return merged


def _trimmed(lines: list[str]) -> str:
    """The lines joined, without the blank lines around them and the trailing spaces of the last."""
    return "\n".join(lines).strip("\n").rstrip()
