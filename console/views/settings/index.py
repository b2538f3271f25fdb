from django.shortcuts import render
from django.views.decorators.http import require_GET

from console.views.access import admin_required
from console.views.settings.reads import settings_counts


@require_GET
@admin_required
def settings_index(request):
    return render(
        request, "console/settings/index.html", {"nav": "settings", "section": "", "counts": settings_counts()}
    )
