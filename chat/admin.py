from django.contrib import admin

from chat.models import ChatVisitor


@admin.register(ChatVisitor)
class ChatVisitorAdmin(admin.ModelAdmin):
    """Read-only: visitors are created by the widget, and who a visitor is (their customer, verification) must not
    be edited by hand; merging customers is done on the customer."""

    list_display = ["public_id", "channel", "customer", "name", "email", "is_verified", "last_seen_at", "left_at"]
    list_filter = ["channel", "is_verified"]
    list_select_related = ["channel", "customer"]
    search_fields = ["=public_id", "name", "email", "external_id"]
    readonly_fields = [field.name for field in ChatVisitor._meta.fields]
    ordering = ["-last_seen_at"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
