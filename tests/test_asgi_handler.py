"""The ASGI handler (helpdesk/asgi_handler.py): Django's, with the middleware chain and the view in one hop to a
thread, and a Server-Timing header on every answer."""

import asyncio
import re
import threading

import httpx
import pytest
from django.urls import path

from helpdesk.asgi import django_asgi_app
from helpdesk.asgi_handler import SyncChainASGIHandler
from helpdesk.timing import phase_add

pytestmark = pytest.mark.django_db(transaction=True)

threads_seen: list[str] = []


def _record_thread(get_response):
    def middleware(request):
        threads_seen.append(("middleware", threading.get_ident()))
        return get_response(request)

    return middleware


def _view(request):
    from django.http import JsonResponse

    threads_seen.append(("view", threading.get_ident()))
    return JsonResponse({"ok": True})


urlpatterns = [path("thread-probe/", _view)]


def request(application, url: str) -> httpx.Response:
    async def go():
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
            return await client.get(url)

    return asyncio.run(go())


def test_the_middleware_chain_is_synchronous():
    assert not asyncio.iscoroutinefunction(django_asgi_app._middleware_chain)


def test_an_answer_carries_the_server_timing():
    response = request(django_asgi_app, "/healthz")

    assert response.status_code == 200
    assert re.fullmatch(r"app;dur=\d+\.\d, wait;dur=\d+\.\d, cpu;dur=\d+\.\d", response.headers["server-timing"])


def test_phases_the_view_records_are_reported_with_the_request_threads_cpu(settings):
    settings.ROOT_URLCONF = __name__

    def pushing_view(request):
        from django.http import JsonResponse

        phase_add("push", 0.0125)
        phase_add("push", 0.0005)
        return JsonResponse({"ok": True})

    urlpatterns[:] = [path("thread-probe/", pushing_view)]
    try:
        first = request(django_asgi_app, "/thread-probe/")
        second = request(django_asgi_app, "/healthz")
    finally:
        urlpatterns[:] = [path("thread-probe/", _view)]

    timings = dict(re.findall(r"(\w+);dur=([0-9.]+)", first.headers["server-timing"]))
    assert timings["push"] == "13.0"
    assert float(timings["cpu"]) <= float(timings["app"]) + 0.1
    assert "push" not in second.headers["server-timing"]  # each request reports its own


def test_the_middleware_and_the_view_run_on_one_thread_off_the_event_loop(settings):
    settings.ROOT_URLCONF = __name__
    settings.MIDDLEWARE = [*settings.MIDDLEWARE, f"{__name__}._record_thread"]
    threads_seen.clear()
    loop_thread = threading.get_ident()

    response = request(SyncChainASGIHandler(), "/thread-probe/")

    assert response.json() == {"ok": True}
    (_, middleware_thread), (_, view_thread) = threads_seen
    assert [where for where, _ in threads_seen] == ["middleware", "view"]
    assert middleware_thread == view_thread != loop_thread


def test_no_more_requests_than_the_setting_run_at_once(settings):
    settings.ROOT_URLCONF = __name__
    settings.WEB_REQUEST_THREADS = 2
    handler = SyncChainASGIHandler()
    running, most = [0], [0]
    lock = threading.Lock()

    def slow_view(request):
        from django.http import JsonResponse

        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        threading.Event().wait(0.05)
        with lock:
            running[0] -= 1
        return JsonResponse({"ok": True})

    urlpatterns[:] = [path("thread-probe/", slow_view)]
    try:

        async def six_at_once():
            transport = httpx.ASGITransport(app=handler)
            async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
                return await asyncio.gather(*(client.get("/thread-probe/") for _ in range(6)))

        responses = asyncio.run(six_at_once())
    finally:
        urlpatterns[:] = [path("thread-probe/", _view)]

    assert [response.status_code for response in responses] == [200] * 6
    assert most[0] == 2
    waited = [float(re.search(r"wait;dur=([0-9.]+)", r.headers["server-timing"])[1]) for r in responses]
    assert max(waited) >= 50  # the last ones waited for a turn, and say so
