"""Console routes: settings (names are in the "console" namespace)."""

from django.urls import path

from console.views.settings import canned, channels, index, people

urlpatterns: list = [
    path("settings/", index.settings_index, name="settings"),
    path("settings/channels/", channels.channel_list_view, name="settings-channels"),
    path("settings/channels/new/<slug:kind>/", channels.channel_create_view, name="settings-channel-create"),
    path("settings/channels/<int:channel_id>/", channels.channel_edit_view, name="settings-channel-edit"),
    path("settings/channels/<int:channel_id>/test/", channels.channel_test_view, name="settings-channel-test"),
    path("settings/teams/", people.team_list_view, name="settings-teams"),
    path("settings/teams/new/", people.team_create_view, name="settings-team-create"),
    path("settings/teams/<int:team_id>/", people.team_edit_view, name="settings-team-edit"),
    path("settings/agents/", people.agent_list_view, name="settings-agents"),
    path("settings/agents/new/", people.agent_create_view, name="settings-agent-create"),
    path("settings/agents/<int:user_id>/", people.agent_edit_view, name="settings-agent-edit"),
    path("settings/agents/<int:user_id>/deactivate/", people.agent_deactivate_view, name="settings-agent-deactivate"),
    path("settings/agents/<int:user_id>/reactivate/", people.agent_reactivate_view, name="settings-agent-reactivate"),
    path("settings/canned/", canned.canned_list_view, name="settings-canned"),
    path("settings/canned/new/", canned.canned_create_view, name="settings-canned-create"),
    path("settings/canned/<int:canned_id>/", canned.canned_edit_view, name="settings-canned-edit"),
    path(
        "settings/canned/<int:canned_id>/deactivate/", canned.canned_deactivate_view, name="settings-canned-deactivate"
    ),
]
