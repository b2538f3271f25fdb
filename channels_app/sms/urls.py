"""SMS provider webhooks (mounted under /inbound/sms/ by helpdesk.urls): one URL per channel, by its public key.

PLACEHOLDER: sms-inbound adds the message webhook, sms-outbound the status callback, each one line here.
"""

app_name = "sms_webhooks"
urlpatterns = []
