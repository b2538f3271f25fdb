from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin

from agents.models import AgentProfile, ApiToken, Team
from agents.services import api_token_create


@admin.register(Team)
class TeamAdmin(admin.ModelAdmin):
    list_display = ["name", "created_at"]
    search_fields = ["name"]


class AgentProfileInline(admin.StackedInline):
    model = AgentProfile
    can_delete = False
    filter_horizontal = ["teams"]
    verbose_name = "agent profile"


User = get_user_model()
admin.site.unregister(User)


@admin.register(User)
class AgentUserAdmin(UserAdmin):
    inlines = [AgentProfileInline]
    list_display = ["username", "email", "is_active", "is_staff", "agent_role"]

    @admin.display(description="Agent role")
    def agent_role(self, user):
        profile = getattr(user, "agent_profile", None)
        return profile.get_role_display() if profile else "—"


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ["name", "prefix", "user", "channel", "scopes", "created_at", "last_used_at", "revoked_at"]
    readonly_fields = ["prefix", "digest", "created_at", "last_used_at"]
    fields = [
        "name",
        "user",
        "channel",
        "scopes",
        "prefix",
        "digest",
        "created_at",
        "last_used_at",
        "revoked_at",
    ]

    def save_model(self, request, obj, form, change):
        if change:
            super().save_model(request, obj, form, change)
            return
        issued = api_token_create(name=obj.name, scopes=obj.scopes or [], user=obj.user, channel=obj.channel)
        obj.pk = issued.token.pk
        obj.refresh_from_db()
        messages.warning(request, f"Copy the token now, it is not shown again: {issued.secret}")
