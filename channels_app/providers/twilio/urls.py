"""Twilio's webhooks (mounted under /inbound/sms/ by helpdesk.urls): one URL per channel, by its public key, for
inbound messages and for the status callbacks of what we sent."""

from django.urls import path

from channels_app.providers.twilio import status_views, webhook_views

app_name = "sms_webhooks"
urlpatterns = [
    path("twilio/<str:public_key>/", webhook_views.twilio_inbound_webhook, name="twilio-inbound"),
    path("twilio/<str:public_key>/status/", status_views.twilio_status_callback, name="twilio-status"),
]
