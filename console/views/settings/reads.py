"""The settings home's counts: one read across the apps, for the overview page only."""

from django.contrib.auth import get_user_model

from agents.models import Team
from channels_app.models import Channel
from tickets.models import CannedResponse


def settings_counts() -> dict[str, int]:
    return {
        "channels": Channel.objects.count(),
        "teams": Team.objects.count(),
        "agents": get_user_model().objects.filter(agent_profile__isnull=False, is_active=True).count(),
        "canned": CannedResponse.objects.filter(is_active=True).count(),
    }
