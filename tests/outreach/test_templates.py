"""Templates of desk-started messages: only the purpose's placeholders, refused when saved naming the unknown one;
rendered per channel, HTML sanitised, SMS within its segment budget or refused with the count."""

import pytest
from django.contrib.admin.sites import site
from django.core.exceptions import ValidationError

from channels_app.adapters.base import FORMAT_CHAT, FORMAT_EMAIL, FORMAT_SMS
from helpdesk.errors import DomainError
from outreach.models import OutreachMessage, OutreachTemplate
from outreach.rendering import TemplateRenderError, template_render
from outreach.services.send import outreach_send
from tests.outreach.conftest import template_create
from tickets.models import Message

pytestmark = pytest.mark.django_db


def test_an_unknown_placeholder_is_refused_when_saved_naming_it():
    template = OutreachTemplate(name="t", purpose="notice", email_text="Hi {{ customer.nickname }}")

    with pytest.raises(ValidationError) as refused:
        template.full_clean()

    [problem] = refused.value.message_dict["email_text"]
    assert problem.startswith("Unknown placeholder {{ customer.nickname }}; a notice template may use: ")
    assert "{{ team.name }}" in problem


def test_a_placeholder_of_another_purpose_is_refused():
    template = OutreachTemplate(name="t", purpose="notice", sms_text="Rate us: {{ survey.url }}")

    with pytest.raises(ValidationError) as refused:
        template.full_clean()

    assert "Unknown placeholder {{ survey.url }}" in refused.value.message_dict["sms_text"][0]


def test_template_tags_are_refused():
    template = OutreachTemplate(name="t", purpose="notice", chat_text="{% if x %}hi{% endif %}")

    with pytest.raises(ValidationError) as refused:
        template.full_clean()

    assert refused.value.message_dict["chat_text"] == [
        "Template tags such as {% if x %} are not supported; use {{ name }} only."
    ]


def test_the_admin_form_refuses_an_unknown_placeholder(admin_user):
    form_class = site._registry[OutreachTemplate].get_form(request=None)
    form = form_class(data={"name": "Routed", "purpose": "notice", "email_text": "Hello {{ ticket.owner }}"})

    assert not form.is_valid()
    assert "Unknown placeholder {{ ticket.owner }}" in form.errors["email_text"][0]
    assert not OutreachTemplate.objects.exists()


def test_email_html_is_filled_with_escaped_values_and_sanitised():
    template = template_create(email_html='<p onclick="x()">Now with {{ team.name }}</p><script>alert(1)</script>')

    rendered = template_render(template, message_format=FORMAT_EMAIL, values={"team.name": "<i>R&D</i>"})

    assert rendered.html == "<p>Now with &lt;i&gt;R&amp;D&lt;/i&gt;</p>"
    assert rendered.subject == "Your ticket is with <i>R&D</i>"


def test_an_html_only_email_gets_a_plain_text_part():
    template = template_create(email_text="", email_html="<p>Now with <b>{{ team.name }}</b>.</p>")

    rendered = template_render(template, message_format=FORMAT_EMAIL, values={"team.name": "Billing"})

    assert (rendered.text.strip(), rendered.html) == ("Now with Billing.", "<p>Now with <b>Billing</b>.</p>")


def test_each_format_renders_its_own_part():
    template = template_create()
    values = {"customer.first_name": "Ann", "team.name": "Billing"}

    assert template_render(template, message_format=FORMAT_SMS, values=values).text == (
        "Hi Ann, your ticket is now with Billing."
    )
    assert template_render(template, message_format=FORMAT_CHAT, values=values).text == (
        "Your ticket is now with Billing."
    )


def test_an_sms_over_the_segment_budget_is_refused_with_the_count(settings):
    settings.HELPDESK = {**settings.HELPDESK, "OUTREACH_SMS_MAX_SEGMENTS": 1}
    template = template_create(sms_text="Your ticket is now with {{ team.name }}.")

    with pytest.raises(TemplateRenderError) as refused:
        template_render(template, message_format=FORMAT_SMS, values={"team.name": "x" * 150})

    assert refused.value.code == "sms_too_long"
    assert refused.value.detail == "The SMS would take 2 segments; the budget is 1."


def test_an_sms_text_over_the_budget_before_filling_is_refused_when_saved(settings):
    settings.HELPDESK = {**settings.HELPDESK, "OUTREACH_SMS_MAX_SEGMENTS": 1}
    template = OutreachTemplate(name="t", purpose="notice", sms_text="é" * 10 + "😀" * 40)

    with pytest.raises(ValidationError) as refused:
        template.full_clean()

    assert refused.value.message_dict["sms_text"] == ["The SMS text alone takes 2 segments; the budget is 1."]


def test_the_service_records_an_sms_over_budget_and_sends_nothing(texts, customer, settings):
    settings.HELPDESK = {**settings.HELPDESK, "OUTREACH_SMS_MAX_SEGMENTS": 1}
    template = template_create(sms_text="Now with {{ team.name }}")

    result = outreach_send(
        customer=customer,
        purpose="notice",
        template=template,
        context={"team.name": "y" * 200},
        channel_preference=[texts],
        key="too-long",
    )

    assert (result.status, result.reason) == (OutreachMessage.Status.SKIPPED, "sms_too_long")
    assert result.detail == "Texts: The SMS would take 2 segments; the budget is 1."
    assert not Message.objects.exists()


def test_context_the_purpose_does_not_know_is_a_clear_error_and_records_nothing(mailbox, customer):
    with pytest.raises(DomainError) as refused:
        outreach_send(
            customer=customer,
            purpose="notice",
            template=template_create(),
            context={"incident.title": "x"},
            channel_preference=[mailbox],
            key="bad-context",
        )

    assert refused.value.code == "unknown_context"
    assert "incident.title" in refused.value.detail
    assert not OutreachMessage.objects.exists()
