import pytest

from channels_app.models import Channel
from customers.models import CustomerIdentity
from outreach.models import OutreachTemplate
from tests.channels_app.sms_fixtures import CUSTOMER_PHONE, sms_channel_create, sms_rate_buckets_clear
from tests.channels_app.smtp_peer import smtp  # noqa: F401  (the real SMTP peer)
from tests.factories import ChannelFactory, CustomerFactory

CUSTOMER_ADDRESS = "ann@example.com"


@pytest.fixture(autouse=True)
def free_send_slots():
    sms_rate_buckets_clear()
    yield
    sms_rate_buckets_clear()


@pytest.fixture
def mailbox(smtp) -> Channel:  # noqa: F811
    return ChannelFactory(
        kind=Channel.Kind.EMAIL,
        name="Acme Support",
        address="support@desk.example",
        settings={
            "email_backend": "django.core.mail.backends.smtp.EmailBackend",
            "smtp_host": "127.0.0.1",
            "smtp_port": smtp.port,
        },
    )


@pytest.fixture
def texts() -> Channel:
    return sms_channel_create()


@pytest.fixture
def chat_channel() -> Channel:
    return ChannelFactory(kind=Channel.Kind.CHAT, name="Website chat")


@pytest.fixture
def customer(db):
    """Ann, reachable by email and by phone."""
    ann = CustomerFactory(name="Ann Lee")
    CustomerIdentity.objects.create(customer=ann, kind="email", value=CUSTOMER_ADDRESS, is_verified=True)
    CustomerIdentity.objects.create(customer=ann, kind="phone", value=CUSTOMER_PHONE, is_verified=True)
    return ann


def template_create(purpose: str = "notice", **fields) -> OutreachTemplate:
    values = {
        "name": f"{purpose} template",
        "purpose": purpose,
        "email_subject": "Your ticket is with {{ team.name }}",
        "email_text": "Hello {{ customer.first_name }}, your ticket is now with {{ team.name }}.",
        "email_html": "<p>Hello {{ customer.first_name }}, your ticket is now with <b>{{ team.name }}</b>.</p>",
        "sms_text": "Hi {{ customer.first_name }}, your ticket is now with {{ team.name }}.",
        "chat_text": "Your ticket is now with {{ team.name }}.",
    }
    if purpose == "survey":
        values.update(
            email_subject="How did we do?",
            email_text="Hello {{ customer.first_name }}, rate us: {{ survey.url }}",
            email_html="",
            sms_text="How did we do? {{ survey.url }}",
            chat_text="How did we do?",
        )
    if purpose == "incident":
        values.update(
            email_subject="{{ incident.title }}",
            email_text="{{ incident.update }}",
            email_html="",
            sms_text="{{ incident.title }}: {{ incident.status }}",
            chat_text="{{ incident.title }}",
        )
    values.update(fields)
    template = OutreachTemplate(**values)
    template.full_clean()
    template.save()
    return template


@pytest.fixture
def notice_template(db) -> OutreachTemplate:
    return template_create("notice")


def chat_identity_add(customer, *, value: str = "v-ann") -> CustomerIdentity:
    return CustomerIdentity.objects.create(customer=customer, kind="chat_visitor", value=value)
