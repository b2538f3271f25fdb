from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from helpdesk.views import health

api_v1 = [
    path("", include("agents.api.urls")),
    path("", include("channels_app.api.urls")),
    path("", include("customers.api.urls")),
    path("", include("tickets.api.urls")),
    path("auth/", include("rest_framework.urls")),
    path("schema", SpectacularAPIView.as_view(), name="schema"),
    # Swagger UI with its init script as a file (?script) and no inline style: it runs under the site's CSP.
    path(
        "docs",
        SpectacularSwaggerSplitView.as_view(url_name="schema", template_name="helpdesk/api_docs.html"),
        name="api-docs",
    ),
]


urlpatterns = [
    path("", RedirectView.as_view(url="/console/", permanent=False)),
    path("console/", include("console.urls")),
    path("admin/", admin.site.urls),
    path("api/v1/", include(api_v1)),
    path("healthz", health, name="health"),
    path("inbound/email/", include("channels_app.providers.email.urls")),
    path("inbound/sms/", include("channels_app.providers.twilio.urls")),
    path("chat/", include("chat.urls")),
]

# Under the APIs, a path that matches nothing answers JSON like every other API error.
handler404 = "helpdesk.views.not_found"
