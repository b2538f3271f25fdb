"""Inbound email webhooks, one per supported provider (mounted under /inbound/email/ by helpdesk.urls).

Only the inbound views: anymail's tracking webhooks and its other providers are not exposed.
"""

from django.urls import path, re_path

from channels_app.providers.email import webhook_views

app_name = "email_webhooks"
urlpatterns = [
    # Mailgun posts raw MIME (body-mime) only when the route's URL contains "mime": use .../mailgun/inbound_mime/.
    re_path(r"^mailgun/inbound(_mime)?/$", webhook_views.MailgunInboundEmailView.as_view(), name="mailgun"),
    path("postmark/inbound/", webhook_views.PostmarkInboundEmailView.as_view(), name="postmark"),
    path("sendgrid/inbound/", webhook_views.SendGridInboundEmailView.as_view(), name="sendgrid"),
    path("amazon_ses/inbound/", webhook_views.AmazonSESInboundEmailView.as_view(), name="amazon_ses"),
]
