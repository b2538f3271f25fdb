from django.contrib import admin

from tickets.models import Message, MessageAlias, Tag, Ticket, TicketParticipant


@admin.register(Ticket)
class TicketAdmin(admin.ModelAdmin):
    list_display = ["id", "subject", "status", "priority", "customer", "team", "assignee", "last_message_at"]
    list_filter = ["status", "priority", "team"]
    search_fields = ["subject"]
    raw_id_fields = ["customer", "follow_up_of", "merged_into"]
    readonly_fields = [
        "version",
        "created_at",
        "updated_at",
        "first_response_at",
        "solved_at",
        "last_message_at",
    ]


@admin.register(Message)
class MessageAdmin(admin.ModelAdmin):
    list_display = ["id", "ticket", "direction", "channel", "created_at"]
    list_filter = ["direction", "channel"]
    raw_id_fields = ["ticket", "customer", "identity", "author"]
    readonly_fields = ["html", "provider_id", "created_at"]


@admin.register(TicketParticipant)
class TicketParticipantAdmin(admin.ModelAdmin):
    list_display = ["ticket", "email", "role", "created_at"]
    list_filter = ["role"]
    search_fields = ["email"]
    raw_id_fields = ["ticket", "first_seen_message"]


@admin.register(MessageAlias)
class MessageAliasAdmin(admin.ModelAdmin):
    list_display = ["value", "message", "created_at"]
    search_fields = ["value"]
    raw_id_fields = ["message"]


admin.site.register(Tag)
