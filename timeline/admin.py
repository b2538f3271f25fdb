from django.contrib import admin

from timeline.models import TimelineEvent


@admin.register(TimelineEvent)
class TimelineEventAdmin(admin.ModelAdmin):
    list_display = ["created_at", "type", "ticket", "customer", "actor_kind"]
    list_filter = ["type"]
    raw_id_fields = ["ticket", "customer", "actor"]
