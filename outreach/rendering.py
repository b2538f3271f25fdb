"""Filling a desk-started message's template for one channel format, and refusing templates that could not be.

Templates are text an admin wrote, so they are never run through a template engine: ``{{ name }}`` placeholders
from the purpose's fixed set are replaced by plain substitution (the canned responses' renderer), and any other
``{{ ... }}`` or ``{% ... %}`` is refused when the template is saved, naming it. HTML is filled with escaped values
and sanitised with nh3 as every HTML body of the desk is.
"""

import re
from dataclasses import dataclass
from html import escape

from django.conf import settings

from channels_app.adapters.base import (
    FORMAT_CHAT,
    FORMAT_EMAIL,
    FORMAT_SMS,
    PURPOSE_INCIDENT,
    PURPOSE_NOTICE,
    PURPOSE_SURVEY,
)
from channels_app.sms.segments import sms_segments
from tickets.html import html_to_text, sanitise_html
from tickets.services.canned import canned_text_render

_CUSTOMER = ("customer.name", "customer.first_name")
_TICKET = ("ticket.id", "ticket.subject")
# What each purpose's templates may name. The service fills customer.* and ticket.*; the caller the rest.
PLACEHOLDERS: dict[str, tuple[str, ...]] = {
    PURPOSE_NOTICE: (*_CUSTOMER, *_TICKET, "team.name", "agent.name"),
    PURPOSE_INCIDENT: (*_CUSTOMER, "incident.title", "incident.status", "incident.update", "incident.url"),
    PURPOSE_SURVEY: (*_CUSTOMER, *_TICKET, "agent.name", "survey.url"),
}
FILLED_BY_SERVICE = frozenset((*_CUSTOMER, *_TICKET))

_ANY_PLACEHOLDER = re.compile(r"\{\{(.*?)\}\}", re.DOTALL)
_TAG = re.compile(r"\{%.*?%\}", re.DOTALL)
_FIELDS = ("email_subject", "email_text", "email_html", "sms_text", "chat_text")


class TemplateRenderError(Exception):
    """A template part cannot be sent on this channel (missing, or too long for it); ``code`` is stable."""

    def __init__(self, detail: str, *, code: str):
        super().__init__(detail)
        self.detail = detail
        self.code = code


@dataclass(frozen=True)
class RenderedMessage:
    subject: str = ""
    text: str = ""
    html: str = ""


def template_errors(template) -> dict[str, list[str]]:
    """Per field, what is wrong with ``template`` (an ``OutreachTemplate``): placeholders its purpose does not
    know, template tags, an SMS text over the segment budget before anything is even filled in."""
    allowed = PLACEHOLDERS.get(template.purpose)
    if allowed is None:
        return {"purpose": [f"Unknown purpose {template.purpose!r}."]}
    errors: dict[str, list[str]] = {}
    for field in _FIELDS:
        value = getattr(template, field) or ""
        problems = []
        for match in _ANY_PLACEHOLDER.finditer(value):
            name = match.group(1).strip()
            if name not in allowed:
                problems.append(
                    f"Unknown placeholder {{{{ {name} }}}}; a {template.purpose} template may use: "
                    + ", ".join(f"{{{{ {known} }}}}" for known in allowed)
                    + "."
                )
        tag = _TAG.search(value)
        if tag:
            problems.append(f"Template tags such as {tag.group(0)} are not supported; use {{{{ name }}}} only.")
        if problems:
            errors[field] = problems
    if "sms_text" not in errors and template.sms_text:
        segments = sms_segments(_ANY_PLACEHOLDER.sub("", template.sms_text)).segments
        budget = sms_segment_budget()
        if segments > budget:
            errors["sms_text"] = [f"The SMS text alone takes {segments} segments; the budget is {budget}."]
    if not any(getattr(template, field) for field in ("email_text", "email_html", "sms_text", "chat_text")):
        errors.setdefault("email_text", []).append("Write at least one of the email, SMS or chat texts.")
    return errors


def sms_segment_budget() -> int:
    return settings.HELPDESK["OUTREACH_SMS_MAX_SEGMENTS"]


def template_render(template, *, message_format: str, values: dict[str, str]) -> RenderedMessage:
    """``template``'s part for ``message_format`` with ``values`` filled in. Raises ``TemplateRenderError`` when
    the template has no text for that format (``template_part_missing``) or the SMS would take more segments than
    the budget (``sms_too_long``, naming the count)."""
    if message_format == FORMAT_EMAIL:
        html = ""
        if template.email_html:
            escaped = {key: escape(value) for key, value in values.items()}
            html = sanitise_html(canned_text_render(template.email_html, values=escaped))
        if not template.email_text and not html:
            raise _missing("email")
        # An HTML-only template still gets a plain-text part: some clients (and every screen reader) read only that.
        text = canned_text_render(template.email_text, values=values) if template.email_text else html_to_text(html)
        return RenderedMessage(subject=canned_text_render(template.email_subject, values=values), text=text, html=html)
    if message_format == FORMAT_SMS:
        if not template.sms_text:
            raise _missing("SMS")
        text = canned_text_render(template.sms_text, values=values)
        segments = sms_segments(text).segments
        budget = sms_segment_budget()
        if segments > budget:
            raise TemplateRenderError(
                f"The SMS would take {segments} segments; the budget is {budget}.", code="sms_too_long"
            )
        return RenderedMessage(text=text)
    if message_format == FORMAT_CHAT:
        if not template.chat_text:
            raise _missing("chat")
        return RenderedMessage(text=canned_text_render(template.chat_text, values=values))
    raise TemplateRenderError(f"No template part for the {message_format!r} format.", code="template_part_missing")


def _missing(part: str) -> TemplateRenderError:
    return TemplateRenderError(f"The template has no {part} text.", code="template_part_missing")
