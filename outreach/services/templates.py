"""Writing message templates outside the admin (the demo data, an API later): validated as the admin validates."""

from django.core.exceptions import ValidationError

from helpdesk.errors import DomainError
from outreach.models import OutreachTemplate


def outreach_template_create(**fields) -> OutreachTemplate:
    """A new template; an unknown placeholder, a tag or a field the purpose cannot have is a ``DomainError``
    naming it (the model's ``clean``, the same check the admin form runs), and nothing is saved."""
    template = OutreachTemplate(**fields)
    try:
        template.full_clean()
    except ValidationError as exc:
        detail = "; ".join(f"{field}: {' '.join(messages)}" for field, messages in exc.message_dict.items())
        raise DomainError(detail, code="invalid_template") from exc
    template.save()
    return template
