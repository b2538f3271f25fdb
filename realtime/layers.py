"""The channel layer with REDIS_URL: channels-redis's publish/subscribe layer, which also publishes from
synchronous code without an event loop.

Why publish/subscribe: a group send is one ``PUBLISH``, and every server process subscribed to the group (it has a
connection in it) receives it at once on the one connection it reads. channels-redis's original layer keeps groups
and per-connection queues in Redis: four round trips per group send, then a blocking pop per process to receive.
Neither layer keeps an event for a connection that is not there: pushes are best-effort either way, and clients
catch up over REST with a cursor.

Why from synchronous code: a new message is pushed from the request's thread after its transaction commits. Through
``async_to_sync`` that meant a hop to the server's event loop (which also serves every websocket of the process),
the sends there, and a hop back, while the request waited; in the chat benchmark that was 6 ms at the median and
21 ms at p99 of each message's request. ``group_send_from_sync`` publishes to all of an event's groups in one
pipelined round trip on a per-process Redis client, on the request's own thread. What it publishes is exactly what
``group_send`` would (the layer's serializer, its group channel names and shards).

Why the prefix names the Redis database: publish/subscribe ignores the database number (a ``PUBLISH`` after
``SELECT 4`` reaches subscribers that selected 0), so two desks sharing one Redis on different database numbers of
their REDIS_URL would each push to the other's agents and visitors. The layer's prefix ends in the database
number, as the desk's keys (presence, cache) are kept apart by it.
"""

import threading

import redis
from channels_redis.pubsub import RedisPubSubChannelLayer
from channels_redis.utils import _consistent_hash, decode_hosts
from redis.connection import parse_url

# A Redis that accepts connections but does not answer must not hold a request thread for long.
SYNC_TIMEOUT_SECONDS = 2.0


class RedisPubSubLayer(RedisPubSubChannelLayer):
    def __init__(self, *args, hosts=None, prefix: str = "asgi", **kwargs) -> None:
        prefix = database_scoped_prefix(prefix, hosts=decode_hosts(hosts))
        super().__init__(*args, hosts=hosts, prefix=prefix, **kwargs)
        # What RedisPubSubLoopLayer derives from the same settings: its group channel names and shards.
        self._sync_prefix = prefix
        self._sync_hosts = decode_hosts(hosts)
        self._sync_clients: list[redis.Redis] | None = None
        self._sync_lock = threading.Lock()
        # Sentinel-managed hosts are left to the layer's own (async) sends.
        self.can_send_from_sync = not any("sentinels" in host for host in self._sync_hosts)

    def group_send_from_sync(self, sends: list[tuple[str, dict]]) -> None:
        """Publish each ``(group, message)`` as ``group_send`` would, in one round trip per Redis shard. Raises
        redis-py's errors (the caller logs them: a push is best-effort)."""
        clients = self._clients()
        pipelines: dict[int, redis.client.Pipeline] = {}
        for group, message in sends:
            channel = f"{self._sync_prefix}__group__{group}"
            shard = _consistent_hash(channel, len(clients))
            if shard not in pipelines:
                pipelines[shard] = clients[shard].pipeline(transaction=False)
            pipelines[shard].publish(channel, self.serialize(message))
        for pipeline in pipelines.values():
            with pipeline:
                pipeline.execute()

    def _clients(self) -> list[redis.Redis]:
        # One client (a thread-safe connection pool) per shard and process, made on first use.
        if self._sync_clients is None:
            with self._sync_lock:
                if self._sync_clients is None:
                    self._sync_clients = [_client(host) for host in self._sync_hosts]
        return self._sync_clients


def database_scoped_prefix(prefix: str, *, hosts: list[dict]) -> str:
    """``prefix`` with the Redis database number(s) of ``hosts`` (``asgi.db4`` for ``redis://host:6379/4``; 0 when
    none is given), so that publish/subscribe, which ignores the database, keeps desks on different ones apart."""
    numbers = sorted({_database_number(host) for host in hosts})
    return f"{prefix}.db{'-'.join(str(number) for number in numbers)}"


def _database_number(host: dict) -> int:
    if "address" in host:
        return int(parse_url(host["address"]).get("db", 0))
    return int(host.get("db", 0))


def _client(host: dict) -> redis.Redis:
    options = {key: value for key, value in host.items() if key != "address"}
    options.setdefault("socket_timeout", SYNC_TIMEOUT_SECONDS)
    options.setdefault("socket_connect_timeout", SYNC_TIMEOUT_SECONDS)
    if "address" in host:
        return redis.Redis.from_url(host["address"], **options)
    return redis.Redis(**options)
