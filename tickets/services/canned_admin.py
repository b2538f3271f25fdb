"""Admins' writes to canned responses. A response is never deleted, only deactivated: agents stop being offered it,
and the replies already sent with it stay as they were (they hold the filled-in text, not a reference)."""

import logging
import re

from django.db import IntegrityError, transaction

from agents.models import Team
from helpdesk.errors import Conflict, DomainError
from tickets.models import CannedResponse

logger = logging.getLogger(__name__)

# The placeholders tickets.services.canned fills in; the settings page lists them.
PLACEHOLDERS = ("customer.name", "customer.first_name", "ticket.id", "ticket.subject", "agent.name")
# Anything that looks like a placeholder, to catch a misspelt one before an agent sends it to a customer as is.
_LOOKS_LIKE_PLACEHOLDER = re.compile(r"\{\{\s*([^{}]*?)\s*\}\}")


def canned_body_unknown_placeholders(body: str) -> list[str]:
    """The ``{{ ... }}`` in ``body`` that are not one of ``PLACEHOLDERS`` (they would reach the customer as typed)."""
    return [name for name in _LOOKS_LIKE_PLACEHOLDER.findall(body or "") if name not in PLACEHOLDERS]


def _checked(*, title: str, body: str) -> tuple[str, str]:
    title, body = (title or "").strip(), body or ""
    if not title:
        raise DomainError("title: a title is required.", code="invalid")
    if not body.strip():
        raise DomainError("body: the text is required.", code="invalid")
    unknown = canned_body_unknown_placeholders(body)
    if unknown:
        raise DomainError(
            f"body: unknown placeholder {{{{ {unknown[0]} }}}}; use one of "
            + ", ".join(f"{{{{ {name} }}}}" for name in PLACEHOLDERS)
            + ".",
            code="unknown_placeholder",
        )
    return title, body


def _title_taken(*, title: str, exclude_pk: int | None = None) -> bool:
    return CannedResponse.objects.filter(title__iexact=title).exclude(pk=exclude_pk).exists()


_TITLE_TAKEN = "title: another canned response has this title."


@transaction.atomic
def canned_response_create(*, actor, title: str, body: str, team: Team | None = None) -> CannedResponse:
    """``DomainError`` naming the field (``title: ...``/``body: ...``) for bad input; ``Conflict(code=
    "title_taken")`` when the title is in use (case-insensitively: agents pick responses by title)."""
    title, body = _checked(title=title, body=body)
    if _title_taken(title=title):
        raise Conflict(_TITLE_TAKEN, code="title_taken")
    try:
        with transaction.atomic():
            canned = CannedResponse.objects.create(title=title, body=body, team=team, created_by=actor)
    except IntegrityError as exc:
        raise Conflict(_TITLE_TAKEN, code="title_taken") from exc
    logger.info("tickets.canned_response_created", extra={"canned_id": canned.pk, "actor_id": actor.pk})
    return canned


@transaction.atomic
def canned_response_update(
    *, actor, canned: CannedResponse, title: str, body: str, team: Team | None, is_active: bool = True
) -> CannedResponse:
    canned = CannedResponse.objects.select_for_update().get(pk=canned.pk)
    title, body = _checked(title=title, body=body)
    if _title_taken(title=title, exclude_pk=canned.pk):
        raise Conflict(_TITLE_TAKEN, code="title_taken")
    canned.title, canned.body, canned.team, canned.is_active = title, body, team, is_active
    try:
        with transaction.atomic():
            canned.save(update_fields=["title", "body", "team", "is_active", "updated_at"])
    except IntegrityError as exc:
        raise Conflict(_TITLE_TAKEN, code="title_taken") from exc
    logger.info("tickets.canned_response_updated", extra={"canned_id": canned.pk, "actor_id": actor.pk})
    return canned


@transaction.atomic
def canned_response_deactivate(*, actor, canned: CannedResponse) -> None:
    CannedResponse.objects.filter(pk=canned.pk).update(is_active=False)
    logger.info("tickets.canned_response_deactivated", extra={"canned_id": canned.pk, "actor_id": actor.pk})
