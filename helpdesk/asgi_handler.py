"""Django's ASGI handler, with the middleware chain and the view run in one hop to a thread.

Every view here is synchronous, and so is most middleware (Django's own is ``MiddlewareMixin``). Django's stock
ASGI handler builds an async middleware chain: each ``MiddlewareMixin`` then runs every ``process_request`` and
``process_response`` through ``sync_to_async`` on its own, and a sync-only middleware in the chain switches back
to the event loop with ``async_to_sync`` for the rest. One request went back and forth between the event loop and
its thread a dozen times, and every switch waits for the event loop, which also serves every websocket of the
process.

Here the chain is loaded as for WSGI (synchronous) and a request's whole synchronous life runs in one
``sync_to_async`` call: the ``request_started`` signal, the request object, the chain and the view and, for a
complete (not streaming) answer, its ``close()`` with the ``request_finished`` signal that gives the database
connection back, before the answer is sent. Django's handler makes three switches of that (the signals are sent
through ``sync_to_async`` from the event loop) and starts a new thread for every request (a
``ThreadSensitiveContext`` of its own). Here a request still has a thread to itself for its whole life, as Django
wants (its database connection lives there), but the threads are reused, as under WSGI: a request leases an idle
single-thread executor and gives it back when it is done. Everything else is Django's: the request and response
handling, streaming answers (closed after sending, on the request's thread), disconnects.

At most ``WEB_REQUEST_THREADS`` requests (2 by default) run their middleware and view at once in a process; the
others wait their turn on the event loop. The views are CPU-bound Python under one GIL: more threads at once do not
finish sooner, they slow each other down and starve the event loop, which then falls behind on every websocket of
the process (in the chat benchmark overloaded at 23 messages/s, pushes to the agent lagged seconds behind the
requests that caused them with no bound, and kept up with them at 1 or 2). Two, so that one slow request (a
connection test waiting on a mail server) does not hold up the others.

Each response carries a ``Server-Timing`` header (shown by browsers' developer tools, read by the benchmarks):
``app`` is the time the request took on its thread (signals, middleware, view, closing), ``wait`` the time it
spent getting there and back (reading the body, its turn, a busy event loop), and any phase the request's code
recorded (``helpdesk.timing``: ``push``, the part of ``app`` spent handing events to the channel layer), ``db``,
the part of ``app`` the request's SQL statements took in the driver and the database, and ``cpu``, the processor
time of the request's thread in ``app`` (the rest of ``app`` is waiting: on the database, Redis, the GIL or a
processor).
"""

import asyncio
import contextlib
import time
import weakref
from concurrent.futures import ThreadPoolExecutor

from asgiref.sync import ThreadSensitiveContext, sync_to_async
from django.conf import settings
from django.core import signals
from django.core.exceptions import RequestAborted
from django.core.handlers.asgi import ASGIHandler, get_script_prefix
from django.db import connection
from django.http import FileResponse
from django.urls import set_script_prefix

from helpdesk.timing import phase_add, phases_take

# Idle request threads kept for the next requests; more are started when more requests are in flight at once
# (a streaming answer holds its thread while it is sent) and shut down when they come back to a full shelf.
IDLE_THREADS_KEPT = 8


class SyncChainASGIHandler(ASGIHandler):
    def __init__(self):
        super(ASGIHandler, self).__init__()  # BaseHandler's: the chain is loaded below, synchronous
        self.load_middleware(is_async=False)
        # One per event loop (a semaphore belongs to the loop it first waits on; tests run several loops).
        self._turns: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = (
            weakref.WeakKeyDictionary()
        )
        self._idle_threads: list[ThreadPoolExecutor] = []

    def _turn(self) -> asyncio.Semaphore:
        loop = asyncio.get_running_loop()
        turn = self._turns.get(loop)
        if turn is None:
            turn = self._turns[loop] = asyncio.Semaphore(settings.WEB_REQUEST_THREADS)
        return turn

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            raise ValueError(f"Django can only handle ASGI/HTTP connections, not {scope['type']}.")
        # The request's thread: every thread-sensitive call of the request (the one hop below, closing a streamed
        # answer, anything the view runs through sync_to_async) goes to it, and no other request's does meanwhile.
        thread = self._idle_threads.pop() if self._idle_threads else ThreadPoolExecutor(1, "request")
        try:
            async with ThreadSensitiveContext(executor=thread):
                await self.handle(scope, receive, send)
        finally:
            if len(self._idle_threads) < IDLE_THREADS_KEPT:
                self._idle_threads.append(thread)
            else:
                thread.shutdown(wait=False)

    async def handle(self, scope, receive, send):
        """Django's ``ASGIHandler.handle``, with the synchronous parts in one hop (``_respond``)."""
        started = time.perf_counter()
        try:
            body_file = await self.read_body(receive)
        except RequestAborted:
            return
        set_script_prefix(get_script_prefix(scope))

        async def process_request():
            async with self._turn():
                response, app_seconds, phases = await sync_to_async(self._respond, thread_sensitive=True)(
                    scope, body_file
                )
            wait_seconds = max(0.0, time.perf_counter() - started - app_seconds)
            if not response.has_header("Server-Timing"):
                timings = [f"app;dur={app_seconds * 1000:.1f}", f"wait;dur={wait_seconds * 1000:.1f}"]
                timings += [f"{name};dur={seconds * 1000:.1f}" for name, seconds in phases.items()]
                response["Server-Timing"] = ", ".join(timings)
            with contextlib.suppress(asyncio.CancelledError):  # the client went away while the answer was sent
                await self.send_response(response, send)
            return response

        # As Django does: a client that disconnects before the answer cancels the request's task.
        tasks = [
            asyncio.create_task(self.listen_for_disconnect(receive)),
            asyncio.create_task(process_request()),
        ]
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in tasks:
            if task.done():
                try:
                    task.result()
                except RequestAborted:
                    pass
                except AssertionError:
                    body_file.close()
                    raise
            else:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        try:
            response = tasks[1].result()
        except asyncio.CancelledError:
            await sync_to_async(signals.request_finished.send, thread_sensitive=True)(sender=self.__class__)
        else:
            if response.streaming:
                await sync_to_async(response.close, thread_sensitive=True)()
        body_file.close()

    def _respond(self, scope, body_file):
        """On the request's thread: everything synchronous about the request, and the seconds it took."""
        phases_take()  # nothing left over from whatever ran on this thread before
        started, cpu_started = time.perf_counter(), time.thread_time()
        signals.request_started.send(sender=self.__class__, scope=scope)
        request, response = self.create_request(scope, body_file)
        if request is not None:
            with connection.execute_wrapper(_database_timed):
                response = self.get_response(request)
            response._handler_class = self.__class__
            if isinstance(response, FileResponse):
                response.block_size = self.chunk_size  # the server does the chunking
        if not response.streaming:
            # The whole answer is in memory: closed here (request_finished: the database connection goes back to
            # its pool) rather than after another switch once it is sent.
            response.close()
        app_seconds = time.perf_counter() - started
        phase_add("cpu", time.thread_time() - cpu_started)
        return response, app_seconds, phases_take()


def _database_timed(execute, sql, params, many, context):
    """The ``db`` phase: the time the request's statements took in the driver (sending, PostgreSQL's work, the
    answer read back), not the ORM's work building them."""
    started = time.perf_counter()
    try:
        return execute(sql, params, many, context)
    finally:
        phase_add("db", time.perf_counter() - started)
