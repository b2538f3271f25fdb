"""Demo data for a first look at the desk: teams, agents, four channels, customers and their conversations.

The data is written once, through the same services the product uses (the ``admin`` user is the marker): a
second run adds nothing. Every run issues a fresh integration token for the demo API channel and revokes the
one before it, since only a digest of a token is stored and the secret cannot be shown again.

Refuses to run with DEBUG off unless ``--force``: the demo users have known passwords.
"""

import shlex
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from agents.models import AgentProfile, ApiToken
from agents.services import agent_create, api_token_create, api_token_revoke, team_create
from channels_app.adapters.base import PURPOSE_INCIDENT, PURPOSE_SURVEY
from channels_app.models import Channel
from channels_app.services.channels import channel_create
from channels_app.types import InboundIdentity, InboundMessage
from customers.contact_preferences import customer_email_subscription_set, customer_preferred_channel_set
from customers.identities import normalise_identity
from customers.models import ContextEvent, Customer, CustomerIdentity
from customers.services import context_event_record, customer_upsert
from customers.types import IdentityInput
from outreach.services.send import outreach_send
from outreach.services.templates import outreach_template_create
from outreach.types import PREFERRED
from tickets.models import Message, Ticket
from tickets.services.ingest import message_ingest
from tickets.services.replies import note_create, reply_create
from tickets.services.updates import TicketChanges, ticket_update
from timeline.types import Actor

ADMIN_USERNAME = "admin"
ADMIN_PASSWORD = "admin-demo-password"  # noqa: S105 (a published demo login; see the DEBUG guard)
AGENT_PASSWORD = "agent-demo-password"  # noqa: S105
AGENT_USERNAMES = ("alice", "bob")
DEMO_API_CHANNEL_ADDRESS = "shop.demo.example"
DEMO_TOKEN_NAME = "Demo shop backend"  # noqa: S105 (a label)
CONTEXT_SOURCE = "demo"


@dataclass(frozen=True)
class DemoCustomer:
    key: str
    name: str
    email: str
    phone: str
    company: str
    plan: str
    lifetime_value: str
    locale: str
    time_zone: str
    attributes: dict = field(default_factory=dict)


CUSTOMERS = (
    DemoCustomer(
        "maria", "María García", "maria.garcia@example.com", "+1 202-555-0142", "García Studio", "pro", "1240.50",
        "es-US", "America/New_York", {"seats": 5, "signup_source": "webinar"},
    ),
    DemoCustomer(
        "james", "James Okafor", "james.okafor@example.org", "+44 20 7946 0321", "Okafor Logistics", "business",
        "8420.00", "en-GB", "Europe/London", {"seats": 40, "account_manager": "bob"},
    ),
    DemoCustomer(
        "aiko", "Aiko Tanaka", "aiko.tanaka@example.net", "+1 202-555-0178", "", "starter", "89.99", "ja-JP",
        "Asia/Tokyo", {"newsletter": True},
    ),
    DemoCustomer(
        "olivier", "Olivier Martin", "olivier.martin@example.com", "+33 1 99 00 12 34", "Martin & Fils", "team",
        "3150.00", "fr-FR", "Europe/Paris", {"seats": 12, "billing_cycle": "annual"},
    ),
    DemoCustomer(
        "priya", "Priya Sharma", "priya.sharma@example.org", "+1 202-555-0113", "", "pro", "560.25", "en-US",
        "America/Chicago", {"vip": True},
    ),
    DemoCustomer(
        "lukas", "Lukas Weber", "lukas.weber@example.net", "+1 202-555-0190", "Weber GmbH", "trial", "0.00",
        "de-DE", "Europe/Berlin", {"trial_ends_on": "2030-01-31"},
    ),
)  # fmt: skip


# (customer, type, payload, hours ago, external id): what the shop's systems reported about them.
CONTEXT_EVENTS = (
    ("aiko", "order.placed", {"order_id": "10482", "total": "64.90", "currency": "USD"}, 72, "order-10482"),
    ("priya", "order.placed", {"order_id": "10511", "total": "129.00", "currency": "USD"}, 50, "order-10511"),
    ("lukas", "cart.updated", {"items": 3, "value": "149.00", "currency": "EUR"}, 5, "cart-lukas-1"),
    ("james", "email.opened", {"campaign": "spring-release"}, 30, "campaign-spring-james"),
    ("lukas", "email.opened", {"campaign": "trial-ending"}, 4, "campaign-trial-lukas"),
    ("olivier", "plan.changed", {"from": "pro", "to": "team", "seats": 12}, 1, "plan-olivier-1"),
)


class Command(BaseCommand):
    help = "Load the demo data once (idempotent) and print the demo logins and a fresh API channel token."

    def add_arguments(self, parser):
        parser.add_argument(
            "--base-url",
            default=settings.PUBLIC_BASE_URL,
            help="Where the demo is served, for the printed URLs (default: PUBLIC_BASE_URL).",
        )
        parser.add_argument("--force", action="store_true", help="Run even with DEBUG off.")

    def handle(self, *args, base_url: str, force: bool, **options):
        if not settings.DEBUG and not force:
            raise CommandError("seed_demo creates users with published passwords; run it with DEBUG=true (or --force).")
        if get_user_model().objects.filter(username=ADMIN_USERNAME).exists():
            summary = "Demo data already present: nothing added."
        else:
            _seed()
            summary = (
                f"Demo data loaded: {Customer.objects.count()} customers, {Ticket.objects.count()} tickets, "
                f"{Message.objects.count()} messages, {ContextEvent.objects.count()} context events."
            )
        channel = Channel.objects.filter(kind=Channel.Kind.API, address=DEMO_API_CHANNEL_ADDRESS).first()
        if channel is None:
            raise CommandError(f"The demo API channel ({DEMO_API_CHANNEL_ADDRESS}) is gone; cannot issue its token.")
        secret = _token_rotate(channel=channel)
        self.stdout.write(_banner(summary=summary, base_url=base_url.rstrip("/"), channel=channel, secret=secret))


def _token_rotate(*, channel: Channel) -> str:
    with transaction.atomic():
        previous = ApiToken.objects.filter(
            name=DEMO_TOKEN_NAME, channel=channel, user__isnull=True, revoked_at__isnull=True
        )
        for token in previous:
            api_token_revoke(token=token)
        issued = api_token_create(name=DEMO_TOKEN_NAME, scopes=[ApiToken.Scope.MESSAGES_WRITE], channel=channel)
    return issued.secret


def _banner(*, summary: str, base_url: str, channel: Channel, secret: str) -> str:
    payload = (
        '{"id": "curl-\'"$(date +%s)"\'", '
        '"sender": {"email": "maria.garcia@example.com", "name": "Maria Garcia"}, '
        '"text": "Hello from curl: any news on my invoice?"}'
    )
    curl = (
        f"curl -sS -X POST {base_url}/api/v1/channels/{channel.pk}/messages \\\n"
        f"    -H {shlex.quote('Authorization: Bearer ' + secret)} -H 'Content-Type: application/json' \\\n"
        f"    -d '{payload}'"
    )
    return "\n".join(
        [
            summary,
            "",
            "Logins:",
            f"  {ADMIN_USERNAME:<6} / {ADMIN_PASSWORD}   administrator: {base_url}/admin/ and every API endpoint",
            *(f"  {name:<6} / {AGENT_PASSWORD}   agent" for name in AGENT_USERNAMES),
            _sign_in_hint(base_url),
            "",
            f'Integration token for the API channel "{channel.name}" (channel {channel.pk}, scope messages:write;',
            "issued by this run, the previous demo token is revoked):",
            f"  {secret}",
            "",
            "Post a customer message to the API channel (poll the url in the answer to see the worker process it):",
            f"  {curl}",
            "",
        ]
    )


def _sign_in_hint(base_url: str) -> str:
    try:
        login_path = reverse("rest_framework:login")
    except NoReverseMatch:
        return "  (the browsable API and the Swagger UI use the session of a staff login at /admin/)"
    return f"  (agents sign in for the browsable API and the Swagger UI at {base_url}{login_path})"


def _identity(kind: str, value: str) -> IdentityInput:
    return IdentityInput(kind=kind, value=normalise_identity(kind, value), is_verified=True)


def _inbound(provider_id: str, kind: str, value: str, text: str, *, sent_at, **extra) -> InboundMessage:
    return InboundMessage(
        provider_id=provider_id, sender=InboundIdentity(kind=kind, value=value), text=text, sent_at=sent_at, **extra
    )


@transaction.atomic
def _seed() -> None:
    now = timezone.now()
    support = team_create(name="Support", description="First line: every channel lands here.")
    billing = team_create(name="Billing", description="Invoices, refunds, plans.")
    admin = agent_create(
        username=ADMIN_USERNAME,
        password=ADMIN_PASSWORD,
        email="admin@demo.example",
        display_name="Ada Admin",
        role=AgentProfile.Role.ADMIN,
        teams=[support, billing],
    )
    # The demo's administrator also manages every model in the Django admin.
    get_user_model().objects.filter(pk=admin.pk).update(is_superuser=True)
    alice = agent_create(
        username="alice", password=AGENT_PASSWORD, email="alice@demo.example", display_name="Alice", teams=[support]
    )
    bob = agent_create(
        username="bob", password=AGENT_PASSWORD, email="bob@demo.example", display_name="Bob", teams=[billing]
    )

    email = channel_create(
        kind=Channel.Kind.EMAIL, name="Support email", address="support@demo.example", default_team=support
    )
    sms = channel_create(kind=Channel.Kind.SMS, name="Support SMS", address="+15005550006", default_team=support)
    chat = channel_create(kind=Channel.Kind.CHAT, name="Website chat", address="www.demo.example", default_team=support)
    api = channel_create(
        kind=Channel.Kind.API, name="Shop backend", address=DEMO_API_CHANNEL_ADDRESS, default_team=support
    )

    customers = {}
    for spec in CUSTOMERS:
        customer, _ = customer_upsert(
            identities=[
                _identity(CustomerIdentity.Kind.EMAIL, spec.email),
                _identity(CustomerIdentity.Kind.PHONE, spec.phone),
            ],
            profile={
                "name": spec.name,
                "company": spec.company,
                "plan": spec.plan,
                "lifetime_value": Decimal(spec.lifetime_value),
                "locale": spec.locale,
                "time_zone": spec.time_zone,
            },
            attributes=spec.attributes,
        )
        customers[spec.key] = customer

    for key, event_type, payload, hours_ago, external_id in CONTEXT_EVENTS:
        context_event_record(
            customer=customers[key],
            type=event_type,
            payload=payload,
            occurred_at=now - timedelta(hours=hours_ago),
            external_id=external_id,
            source=CONTEXT_SOURCE,
        )

    # María emails about her invoice, then texts from her phone: SMS lets the conversation follow the
    # customer, so the text continues the open email ticket.
    invoice = message_ingest(
        channel=email,
        inbound=_inbound(
            "<demo-maria-1@mail.example.com>",
            "email",
            "maria.garcia@example.com",
            "Hello,\n\nmy March invoice shows our old VAT number (ES-B1234567). Could you reissue it?\n\nMaría",
            subject="Invoice shows the wrong VAT number",
            sender_name="María García",
            sent_at=now - timedelta(hours=6),
        ),
    ).ticket
    message_ingest(
        channel=sms,
        inbound=_inbound(
            "SMdemo0000000000000000000000000001",
            "phone",
            "+12025550142",
            "Hi, it's María from García Studio: did you get my email about the invoice? Our accountant needs it today.",
            sent_at=now - timedelta(hours=2),
        ),
    )
    note_create(ticket=invoice, author=bob, text="@alice the VAT field in billing still has the old number; fixing.")
    ticket_update(
        ticket=invoice,
        actor=Actor.agent(bob),
        changes=TicketChanges(
            status=Ticket.Status.OPEN,
            team_id=billing.pk,
            assignee_id=bob.pk,
            priority=Ticket.Priority.HIGH,
            tags=["billing", "invoice"],
        ),
    )

    # James writes from the chat widget while logged in: the site vouches for his email.
    checkout = message_ingest(
        channel=chat,
        inbound=InboundMessage(
            provider_id="chat-demo-0001",
            sender=InboundIdentity(kind="email", value="james.okafor@example.org", is_verified=True),
            extra_identities=(InboundIdentity(kind="chat_visitor", value="visitor-3f9c2a"),),
            sender_name="James Okafor",
            text="The checkout button does nothing in Safari. Chrome works.",
            sent_at=now - timedelta(hours=3),
            metadata={"page": "/checkout", "user_agent": "Safari 17"},
        ),
    ).ticket
    note_create(ticket=checkout, author=alice, text="Reproduced on Safari 17.4; a bug for the web team.")
    ticket_update(
        ticket=checkout,
        actor=Actor.agent(alice),
        changes=TicketChanges(
            status=Ticket.Status.OPEN,
            assignee_id=alice.pk,
            priority=Ticket.Priority.URGENT,
            tags=["bug", "checkout"],
        ),
    )

    # Aiko asks in the shop's own help form, which posts through the API channel; the reply goes back there.
    order = message_ingest(
        channel=api,
        inbound=_inbound(
            "demo-order-question-10482",
            "email",
            "aiko.tanaka@example.net",
            "Where is my order #10482?",
            subject="Order #10482",
            sent_at=now - timedelta(hours=20),
            metadata={"order_id": "10482"},
        ),
    ).ticket
    reply_create(
        ticket=order,
        author=alice,
        channel=api,
        text="Hi Aiko, your order left our warehouse yesterday; tracking number 1Z999AA10123456784.",
        status=Ticket.Status.PENDING,
        idempotency_key="demo-reply-order-10482",
    )

    # Olivier emailed about a plan change; it was settled on the phone and the ticket solved.
    plan = message_ingest(
        channel=email,
        inbound=_inbound(
            "<demo-olivier-1@mail.example.com>",
            "email",
            "olivier.martin@example.com",
            "Bonjour, can we move from Pro to the Team plan in the middle of our billing cycle?",
            subject="Switching to the Team plan",
            sender_name="Olivier Martin",
            sent_at=now - timedelta(hours=26),
        ),
    ).ticket
    note_create(ticket=plan, author=alice, text="Called Olivier: upgraded to Team (12 seats), prorated.")
    ticket_update(
        ticket=plan,
        actor=Actor.agent(alice),
        changes=TicketChanges(
            status=Ticket.Status.SOLVED,
            assignee_id=alice.pk,
            tags=["plan-change"],
        ),
    )

    # Priya texts about a damaged parcel, then adds details in the shop's app (API channel): same ticket.
    damaged = message_ingest(
        channel=sms,
        inbound=_inbound(
            "SMdemo0000000000000000000000000002",
            "phone",
            "(202) 555-0113",
            "My parcel arrived damaged, the box was crushed.",
            sent_at=now - timedelta(hours=8),
        ),
    ).ticket
    message_ingest(
        channel=api,
        inbound=_inbound(
            "demo-app-damage-10511",
            "phone",
            "+12025550113",
            "Order 10511: the lamp's shade is cracked. I'd like a replacement, not a refund.",
            sent_at=now - timedelta(hours=7),
            metadata={"order_id": "10511", "source": "mobile-app"},
        ),
    )
    reply_create(
        ticket=damaged,
        author=bob,
        channel=api,
        text="Sorry about that, Priya! A replacement lamp ships today at no cost.",
        idempotency_key="demo-reply-damaged-10511",
    )

    # Lukas's question waits in the queue: new and unassigned (the worker routes it to Support).
    message_ingest(
        channel=email,
        inbound=_inbound(
            "<demo-lukas-1@mail.example.net>",
            "email",
            "lukas.weber@example.net",
            "Hi, we are 50 people. Is there a discount if we buy 50 seats for a year?",
            subject="Bulk discount for 50 seats?",
            sender_name="Lukas Weber",
            sent_at=now - timedelta(minutes=40),
        ),
    )

    _seed_outreach(customers=customers, email=email, chat=chat, alice=alice, solved=damaged)


def _seed_outreach(*, customers: dict[str, Customer], email: Channel, chat: Channel, alice, solved: Ticket) -> None:
    """The desk writing first: an outage notice to two customers (María prefers the chat, which she has never
    used, so it falls back to email and the record says why), and a
    survey on Priya's ticket that she does not get by email because she unsubscribed from surveys (the skip and
    its reason are on her timeline; at night in her time zone it first waits for quiet hours to end)."""
    by_alice = Actor.agent(alice)
    customer_preferred_channel_set(customer=customers["maria"], channel=chat, actor=by_alice)
    customer_email_subscription_set(
        customer=customers["priya"], purpose=PURPOSE_SURVEY, is_subscribed=False, source="demo", actor=by_alice
    )
    outage = outreach_template_create(
        name="Checkout outage",
        purpose=PURPOSE_INCIDENT,
        email_subject="{{ incident.title }}",
        email_text="Hi {{ customer.first_name }},\n\n{{ incident.update }}\n\nFollow it at {{ incident.url }}.",
        sms_text="{{ incident.title }}: {{ incident.update }} {{ incident.url }}",
        chat_text="{{ incident.title }}: {{ incident.update }}",
    )
    survey = outreach_template_create(
        name="How did we do?",
        purpose=PURPOSE_SURVEY,
        email_subject="How did we do on “{{ ticket.subject }}”?",
        email_text="Hi {{ customer.first_name }}, {{ agent.name }} helped you. Rate us in one click: {{ survey.url }}",
        sms_text="How did we do? {{ survey.url }}",
    )
    incident = {
        "incident.title": "Checkout is slow",
        "incident.status": "investigating",
        "incident.update": "Payments take up to a minute; no order is lost. We are on it.",
        "incident.url": "https://status.demo.example",
    }
    for key in ("maria", "james"):
        outreach_send(
            customer=customers[key],
            purpose=PURPOSE_INCIDENT,
            template=outage,
            context=incident,
            channel_preference=(PREFERRED, email),
            key=f"demo-incident-checkout:{key}",
        )
    outreach_send(
        customer=customers["priya"],
        purpose=PURPOSE_SURVEY,
        template=survey,
        context={"agent.name": "Bob", "survey.url": "https://demo.example/survey/priya"},
        channel_preference=(email,),
        key="demo-survey:priya",
        ticket=solved,
    )
