from django.urls import path

from channels_app.api import sms_views, views
from channels_app.providers.email import api_views as email_views

urlpatterns = [
    path("channels", views.ChannelListCreateApi.as_view(), name="channel-list"),
    path("channels/<int:channel_id>", views.ChannelDetailApi.as_view(), name="channel-detail"),
    path("channels/<int:channel_id>/messages", views.ChannelMessageCreateApi.as_view(), name="channel-messages"),
    path("channels/<int:channel_id>/email/raw", email_views.ChannelEmailRawApi.as_view(), name="channel-email-raw"),
    path(
        "channels/<int:channel_id>/sms/segments", sms_views.ChannelSmsSegmentsApi.as_view(), name="channel-sms-segments"
    ),
    path(
        "channels/<int:channel_id>/events/<str:event_id>",
        views.ChannelEventDetailApi.as_view(),
        name="channel-event",
    ),
    path("inbound-events", views.InboundEventListApi.as_view(), name="inbound-event-list"),
    path(
        "inbound-events/<str:event_id>/retry",
        views.InboundEventRetryApi.as_view(),
        name="inbound-event-retry",
    ),
]
