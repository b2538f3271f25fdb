from django.contrib import admin

from outreach.models import OutreachMessage, OutreachTemplate


@admin.register(OutreachTemplate)
class OutreachTemplateAdmin(admin.ModelAdmin):
    # The model's clean() refuses unknown placeholders; the admin form runs it on every save.
    list_display = ("name", "purpose", "updated_at")
    list_filter = ("purpose",)
    search_fields = ("name",)


@admin.register(OutreachMessage)
class OutreachMessageAdmin(admin.ModelAdmin):
    """What the desk decided for each message it meant to start: a record, not something to edit."""

    list_display = ("pk", "created_at", "customer", "purpose", "status", "reason", "channel", "send_after")
    list_filter = ("status", "purpose", "reason")
    search_fields = ("key",)
    list_select_related = ("customer", "channel")
    raw_id_fields = ("customer", "identity", "message", "ticket", "template", "channel")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
