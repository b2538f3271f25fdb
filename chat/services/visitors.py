"""Chat visitors: starting and resuming a widget session, identity verification, an email typed in, leaving.

Who the visitor is decides whose timeline their messages land on, so the rules are strict:

* A visitor the host site vouches for (identity HMAC over its user id, ``chat.tokens``) *is* the customer with
  that external id; a verified email the site passes is attached to that customer when nobody else owns it.
* Anybody else is a new, anonymous customer. An email they type is kept on the visitor and attached as an
  unverified identity only when no customer owns it: typing someone's address never reveals or joins their
  conversations. Merging two people stays an agent's decision.

Every visitor's customer owns the identity ``chat_visitor:<public id hex>``, which is how the chat adapter's
messages find their customer.
"""

import logging
import uuid
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from channels_app.models import Channel
from chat.models import ChatVisitor
from chat.tokens import identity_hmac_is_valid
from customers.identities import normalise_email
from customers.models import Customer, CustomerIdentity
from customers.services import customer_identity_add, customer_resolve
from customers.types import IdentityInput
from helpdesk.errors import Conflict, DomainError, PermissionDenied

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class VisitorIdentity:
    """What the host site says about its logged-in user, with its HMAC (not yet checked)."""

    user_id: str
    hmac: str
    email: str = ""
    name: str = ""


def visitor_email_clean(value: str) -> str:
    try:
        return normalise_email(value)
    except ValueError as exc:
        raise DomainError("That is not a valid email address.", code="invalid_email") from exc


@transaction.atomic
def visitor_session_start(
    *,
    channel: Channel,
    visitor: ChatVisitor | None = None,
    name: str = "",
    email: str = "",
    identity: VisitorIdentity | None = None,
    origin: str = "",
    user_agent: str = "",
) -> tuple[ChatVisitor, bool]:
    """Resume ``visitor`` (from the browser's token) or start a new one. Returns ``(visitor, created)``.

    With ``identity``, its HMAC must be right (``PermissionDenied`` otherwise, and nothing is written). A verified
    user on a browser whose visitor is someone else (anonymous earlier, or another user) gets a new visitor: the
    anonymous conversation is not merged into the account.
    """
    if identity is not None:
        secret = (channel.secrets or {}).get("identity_secret", "")
        if not identity_hmac_is_valid(secret=secret, user_id=identity.user_id, given=identity.hmac):
            logger.warning("chat.identity_rejected", extra={"channel_id": channel.pk})
            raise PermissionDenied("The identity could not be verified.", code="identity_invalid")
    typed_email = visitor_email_clean(email) if email else ""
    verified_email = visitor_email_clean(identity.email) if identity is not None and identity.email else ""
    name = (identity.name if identity is not None and identity.name else name).strip()[:200]

    if visitor is not None and _may_resume(visitor, identity):
        return _visitor_resume(visitor=visitor, name=name, email=typed_email), False

    public_id = uuid.uuid4()
    visitor_identity = IdentityInput(
        kind=CustomerIdentity.Kind.CHAT_VISITOR, value=public_id.hex, is_verified=identity is not None
    )
    if identity is not None:
        customer, _, _ = customer_resolve(
            identity=IdentityInput(kind=CustomerIdentity.Kind.EXTERNAL, value=identity.user_id, is_verified=True),
            name=name,
        )
        chat_identity = customer_identity_add(customer=customer, identity=visitor_identity)
        if verified_email:
            _email_attach(customer=customer, email=verified_email, is_verified=True)
        if name and not customer.name:
            Customer.objects.filter(pk=customer.pk, name="").update(name=name)
    else:
        customer, chat_identity, _ = customer_resolve(identity=visitor_identity, name=name, seen_on=channel)
        if typed_email:
            _email_attach(customer=customer, email=typed_email, is_verified=False)
    visitor = ChatVisitor.objects.create(
        channel=channel,
        public_id=public_id,
        customer=customer,
        identity=chat_identity,
        name=name,
        email=verified_email or typed_email,
        is_verified=identity is not None,
        external_id=identity.user_id[:200] if identity is not None else "",
        origin=origin[:300],
        user_agent=user_agent[:300],
        last_seen_at=timezone.now(),
    )
    logger.info(
        "chat.visitor_started",
        extra={"visitor_id": visitor.pk, "customer_id": customer.pk, "is_verified": visitor.is_verified},
    )
    return visitor, True


def _may_resume(visitor: ChatVisitor, identity: VisitorIdentity | None) -> bool:
    if identity is None:
        # An anonymous session never turns a verified visitor back into an anonymous one; it just continues it.
        return True
    return visitor.is_verified and visitor.external_id == identity.user_id


def _visitor_resume(*, visitor: ChatVisitor, name: str, email: str) -> ChatVisitor:
    changes = {"left_at": None, "last_seen_at": timezone.now()}
    if name and not visitor.name:
        changes["name"] = name
    if email and not visitor.is_verified and email != visitor.email:
        changes["email"] = email
        _email_attach(customer=visitor.customer, email=email, is_verified=False)
    ChatVisitor.objects.filter(pk=visitor.pk).update(**changes)
    for field, value in changes.items():
        setattr(visitor, field, value)
    return visitor


def _email_attach(*, customer: Customer, email: str, is_verified: bool) -> bool:
    """Attach the address to ``customer`` unless another customer owns it (then leave both alone). Returns whether
    the customer has it now."""
    try:
        with transaction.atomic():
            customer_identity_add(
                customer=customer, identity=IdentityInput(kind="email", value=email, is_verified=is_verified)
            )
    except Conflict:
        logger.info("chat.visitor_email_owned_by_another_customer", extra={"customer_id": customer.pk})
        return False
    return True


@transaction.atomic
def visitor_leave(*, visitor: ChatVisitor, email: str = "") -> ChatVisitor:
    """The visitor closed the chat or chose to continue by email: later replies go by email when an address is
    known (the chat adapter's ``continuation``). An email given here follows the unverified-email rule."""
    changes = {"left_at": timezone.now()}
    if email and not visitor.is_verified:
        changes["email"] = visitor_email_clean(email)
        _email_attach(customer=visitor.customer, email=changes["email"], is_verified=False)
    ChatVisitor.objects.filter(pk=visitor.pk).update(**changes)
    for field, value in changes.items():
        setattr(visitor, field, value)
    logger.info("chat.visitor_left", extra={"visitor_id": visitor.pk})
    return visitor
