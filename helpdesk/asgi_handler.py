"""Django's ASGI handler, with the middleware chain and the view run in one hop to a thread.

Every view here is synchronous, and so is most middleware (Django's own is ``MiddlewareMixin``). Django's stock
ASGI handler builds an async middleware chain: each ``MiddlewareMixin`` then runs every ``process_request`` and
``process_response`` through ``sync_to_async`` on its own, and a sync-only middleware in the chain switches back
to the event loop with ``async_to_sync`` for the rest. One request went back and forth between the event loop and
its thread a dozen times, and every switch waits for the event loop, which also serves every websocket of the
process.

Here the chain is loaded as for WSGI (synchronous) and the whole of it runs in one ``sync_to_async`` call: one
switch in, one out. Everything else is Django's: the request and response handling, the request signals (the
database connection is given back at the end of each request, on the request's thread), the per-request thread
(``ThreadSensitiveContext``), streaming responses, disconnects.

At most ``WEB_REQUEST_THREADS`` requests (2 by default) run their middleware and view at once in a process; the
others wait their turn on the event loop. The views are CPU-bound Python under one GIL: more threads at once do not
finish sooner, they slow each other down and starve the event loop, which then falls behind on every websocket of
the process (in the chat benchmark overloaded at 23 messages/s, pushes to the agent lagged seconds behind the
requests that caused them with no bound, and kept up with them at 1 or 2). Two, so that one slow request (a
connection test waiting on a mail server) does not hold up the others.

Each response carries a ``Server-Timing`` header (shown by browsers' developer tools, read by the benchmarks):
``app`` is the time the middleware and the view took on the request's thread, ``wait`` the time the request
spent getting there and back (its turn, thread start, a busy event loop), and any phase the request's code
recorded (``helpdesk.timing``: ``push``, the part of ``app`` spent handing events to the channel layer), and ``cpu``,
the processor time of the request's thread in ``app`` (the rest of ``app`` is waiting: on the database, Redis,
the GIL or a processor).
"""

import asyncio
import time
import weakref

from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.handlers.asgi import ASGIHandler

from helpdesk.timing import phase_add, phases_take


class SyncChainASGIHandler(ASGIHandler):
    def __init__(self):
        super(ASGIHandler, self).__init__()  # BaseHandler's: the chain is loaded below, synchronous
        self.load_middleware(is_async=False)
        # One per event loop (a semaphore belongs to the loop it first waits on; tests run several loops).
        self._turns: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = (
            weakref.WeakKeyDictionary()
        )

    def _turn(self) -> asyncio.Semaphore:
        loop = asyncio.get_running_loop()
        turn = self._turns.get(loop)
        if turn is None:
            turn = self._turns[loop] = asyncio.Semaphore(settings.WEB_REQUEST_THREADS)
        return turn

    async def get_response_async(self, request):
        started = time.perf_counter()
        # Thread-sensitive, as Django runs sync views under ASGI: the request's thread, where the request signals
        # open and give back its database connection.
        async with self._turn():
            response, app_seconds, phases = await sync_to_async(self._get_response_timed, thread_sensitive=True)(
                request
            )
        wait_seconds = max(0.0, time.perf_counter() - started - app_seconds)
        if not response.has_header("Server-Timing"):
            timings = [f"app;dur={app_seconds * 1000:.1f}", f"wait;dur={wait_seconds * 1000:.1f}"]
            timings += [f"{name};dur={seconds * 1000:.1f}" for name, seconds in phases.items()]
            response["Server-Timing"] = ", ".join(timings)
        return response

    def _get_response_timed(self, request):
        phases_take()  # nothing left over from whatever ran on this thread before
        started, cpu_started = time.perf_counter(), time.thread_time()
        response = self.get_response(request)
        app_seconds = time.perf_counter() - started
        phase_add("cpu", time.thread_time() - cpu_started)
        return response, app_seconds, phases_take()
