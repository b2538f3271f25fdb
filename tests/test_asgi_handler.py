"""The ASGI handler (helpdesk/asgi_handler.py): Django's, with a request's signals, middleware chain, view and
closing in one hop to a thread of its own (reused by later requests), and a Server-Timing header on every answer."""

import asyncio
import contextlib
import re
import threading

import httpx
import pytest
from django.core import signals
from django.urls import path
from django.views.decorators.csrf import csrf_exempt

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
    return requests(application, at_once=[url])[0]


def requests(application, *, at_once: list[str], then: tuple[str, ...] = ()) -> list[httpx.Response]:
    """GET ``at_once`` concurrently, then ``then`` one after another, over one client."""

    async def go():
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
            together = await asyncio.gather(*(client.get(url) for url in at_once))
            return [*together, *[await client.get(url) for url in then]]

    return asyncio.run(go())


@contextlib.contextmanager
def probe_served_by(view):
    """The probe URL answered by ``view`` for the block."""
    urlpatterns[:] = [path("thread-probe/", view)]
    try:
        yield
    finally:
        urlpatterns[:] = [path("thread-probe/", _view)]


def test_the_middleware_chain_is_synchronous():
    assert not asyncio.iscoroutinefunction(django_asgi_app._middleware_chain)


def test_an_answer_carries_the_server_timing():
    response = request(django_asgi_app, "/healthz")

    assert response.status_code == 200
    # The health check's statement is the db phase.
    assert re.fullmatch(
        r"app;dur=\d+\.\d, wait;dur=\d+\.\d, db;dur=\d+\.\d, cpu;dur=\d+\.\d", response.headers["server-timing"]
    )


def test_phases_the_view_records_are_reported_with_the_request_threads_cpu(settings):
    settings.ROOT_URLCONF = __name__

    def pushing_view(request):
        from django.http import JsonResponse

        phase_add("push", 0.0125)
        phase_add("push", 0.0005)
        return JsonResponse({"ok": True})

    with probe_served_by(pushing_view):
        first = request(django_asgi_app, "/thread-probe/")
        second = request(django_asgi_app, "/healthz")

    timings = dict(re.findall(r"(\w+);dur=([0-9.]+)", first.headers["server-timing"]))
    assert timings["push"] == "13.0"
    assert float(timings["cpu"]) <= float(timings["app"]) + 0.1
    assert "push" not in second.headers["server-timing"]  # each request reports its own


def test_the_time_in_sql_statements_is_reported_as_the_db_phase(settings):
    settings.ROOT_URLCONF = __name__

    def querying_view(request):
        from django.db import connection
        from django.http import JsonResponse

        with connection.cursor() as cursor:
            for _ in range(3):
                cursor.execute("SELECT 1")
        return JsonResponse({"ok": True})

    with probe_served_by(querying_view):
        response = request(django_asgi_app, "/thread-probe/")
    without_statements = request(django_asgi_app, "/thread-probe/")

    timings = dict(re.findall(r"(\w+);dur=([0-9.]+)", response.headers["server-timing"]))
    assert 0 < float(timings["db"]) <= float(timings["app"])
    assert "db" not in without_statements.headers["server-timing"]


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

    with probe_served_by(slow_view):
        responses = requests(handler, at_once=["/thread-probe/"] * 6)

    assert [response.status_code for response in responses] == [200] * 6
    assert most[0] == 2
    waited = [float(re.search(r"wait;dur=([0-9.]+)", r.headers["server-timing"])[1]) for r in responses]
    assert max(waited) >= 50  # the last ones waited for a turn, and say so


def _record_signal(name):
    def receiver(**kwargs):
        threads_seen.append((name, threading.get_ident()))

    return receiver


def test_a_request_runs_its_signals_middleware_view_and_closing_on_one_thread_before_the_answer_goes(settings):
    settings.ROOT_URLCONF = __name__
    settings.MIDDLEWARE = [*settings.MIDDLEWARE, f"{__name__}._record_thread"]
    started, finished = _record_signal("request_started"), _record_signal("request_finished")
    signals.request_started.connect(started)
    signals.request_finished.connect(finished)
    threads_seen.clear()
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": "/thread-probe/",
        "raw_path": b"/thread-probe/",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"127.0.0.1")],
        "client": ("127.0.0.1", 1234),
        "server": ("127.0.0.1", 80),
    }
    body_sent = asyncio.Event()

    async def receive():
        if not body_sent.is_set():
            body_sent.set()
            return {"type": "http.request", "body": b"", "more_body": False}
        await asyncio.Event().wait()  # no disconnect

    async def send(message):
        if message["type"] == "http.response.start":
            threads_seen.append(("answer sent", threading.get_ident()))

    try:
        asyncio.run(SyncChainASGIHandler()(scope, receive, send))
    finally:
        signals.request_started.disconnect(started)
        signals.request_finished.disconnect(finished)

    # The connection went back (request_finished) before the answer was sent, not after another switch.
    assert [where for where, _ in threads_seen] == [
        "request_started",
        "middleware",
        "view",
        "request_finished",
        "answer sent",
    ]
    request_threads = {thread for where, thread in threads_seen if where != "answer sent"}
    assert len(request_threads) == 1
    assert request_threads != {threads_seen[-1][1]}  # the event loop's


def test_request_threads_are_reused_and_concurrent_requests_get_their_own(settings):
    settings.ROOT_URLCONF = __name__
    settings.WEB_REQUEST_THREADS = 2
    handler = SyncChainASGIHandler()
    threads, both_in = [], threading.Barrier(2, timeout=5)

    def meeting_view(request):
        from django.http import JsonResponse

        threads.append(threading.current_thread())  # the object: an ident may be reused by a later thread
        if request.GET.get("meet"):
            both_in.wait()  # only returns when the other request runs at the same time, on another thread
        return JsonResponse({"ok": True})

    with probe_served_by(meeting_view):
        responses = requests(handler, at_once=["/thread-probe/?meet=1"] * 2, then=("/thread-probe/",) * 3)

    assert [response.status_code for response in responses] == [200] * 5
    assert threads[0] is not threads[1]
    assert all(thread in threads[:2] for thread in threads[2:])  # no new thread per request


def test_a_streamed_answer_is_sent_whole_then_closed_on_the_requests_thread(settings):
    settings.ROOT_URLCONF = __name__
    sent_before_close = []

    def streaming_view(request):
        from django.http import StreamingHttpResponse

        threads_seen.append(("view", threading.get_ident()))

        def parts():
            for number in range(3):
                yield f"part {number};".encode()
            sent_before_close.append(True)

        return StreamingHttpResponse(parts(), content_type="text/plain")

    finished = _record_signal("request_finished")
    signals.request_finished.connect(finished)
    threads_seen.clear()
    try:
        with probe_served_by(streaming_view):
            response = request(SyncChainASGIHandler(), "/thread-probe/")
    finally:
        signals.request_finished.disconnect(finished)

    assert response.text == "part 0;part 1;part 2;"
    assert sent_before_close == [True]
    assert [where for where, _ in threads_seen] == ["view", "request_finished"]
    assert threads_seen[0][1] == threads_seen[1][1]


def test_an_oversized_body_is_refused_and_the_request_thread_serves_the_next_request(settings):
    settings.ROOT_URLCONF = __name__
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    handler = SyncChainASGIHandler()
    threads = []

    @csrf_exempt
    def reading_view(request):
        from django.http import JsonResponse

        threads.append(threading.current_thread())
        return JsonResponse({"size": len(request.body)})

    async def go():
        transport = httpx.ASGITransport(app=handler)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
            too_big = await client.post("/thread-probe/", content=b"x" * 5000)
            small = await client.post("/thread-probe/", content=b"x" * 10)
            return too_big, small

    with probe_served_by(reading_view):
        too_big, small = asyncio.run(go())

    assert too_big.status_code == 400  # Django: RequestDataTooBig, a SuspiciousOperation
    assert "server-timing" in too_big.headers  # answered by the handler like any other
    assert small.json() == {"size": 10}
    assert threads[0] is threads[1]  # the thread went back to the shelf after the refused request
