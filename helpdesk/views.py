from django.db import connection
from django.http import JsonResponse
from django.views.defaults import page_not_found


def health(request):
    """Liveness and database reachability, for load balancers and docker-compose health checks."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return JsonResponse({"status": "ok"})


# Paths whose clients read JSON: the REST API, the chat widget's API and the providers' webhooks.
JSON_PATH_PREFIXES = ("/api/", "/chat/api/", "/inbound/")


def not_found(request, exception):
    """Django's 404 for a path no URL matches: ``{"detail": ...}`` under the APIs, as every other API error is
    (a client parsing JSON got an HTML page), the usual page elsewhere."""
    if request.path.startswith(JSON_PATH_PREFIXES):
        return JsonResponse({"detail": "Not found: no such API path."}, status=404)
    return page_not_found(request, exception)
