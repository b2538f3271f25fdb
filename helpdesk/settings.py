"""Settings for the help desk, read from the environment (12-factor).

Every value has a default that runs the product on one machine with nothing else installed: a SQLite file,
Celery on an embedded file-system transport, and mail written to the console. Setting ``DATABASE_URL`` and
``REDIS_URL`` moves the same code onto PostgreSQL and Redis.
"""

from pathlib import Path

import csp.constants
import environ

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(environ.Env().str("HELPDESK_VAR_DIR", default=str(BASE_DIR / "var")))
VAR_DIR.mkdir(parents=True, exist_ok=True)

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DEBUG = env.bool("DEBUG", default=False)
# The default key is only for a local demo; production refuses to start without one (see check below).
SECRET_KEY = env.str("SECRET_KEY", default="insecure-local-demo-key-change-me-" + "0" * 20)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]", "testserver"])
PUBLIC_BASE_URL = env.str("PUBLIC_BASE_URL", default="http://localhost:8000").rstrip("/")
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[PUBLIC_BASE_URL])
# Behind a TLS-terminating proxy the scheme reaches us in a header; trust it only when told to.
if env.bool("TRUST_PROXY_HEADERS", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    USE_X_FORWARDED_HOST = True

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "anymail",
    "corsheaders",
    "channels",
    "helpdesk",
    "agents",
    "timeline",
    "customers",
    "channels_app",
    "tickets",
    "realtime",
    "chat",
    "django_htmx",
    "console",
    "outreach",
    "csp",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # Pages and API answers (static files, served above, need neither header).
    "csp.middleware.CSPMiddleware",
    "django_permissions_policy.PermissionsPolicyMiddleware",
    # Only the chat widget's API answers cross-origin requests, and only from each chat channel's allowed origins
    # (chat.cors decides per request).
    "corsheaders.middleware.CorsMiddleware",
    "helpdesk.api.middleware.ApiBodySizeLimitMiddleware",
    # NUL in a path or a query string (?q=%00) must not reach PostgreSQL (helpdesk.text).
    "helpdesk.api.middleware.StorableUrlMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "helpdesk.urls"
# How many requests a web server process runs at once (helpdesk/asgi_handler.py); the rest wait their turn.
WEB_REQUEST_THREADS = env.int("WEB_REQUEST_THREADS", default=2)
WSGI_APPLICATION = "helpdesk.wsgi.application"
ASGI_APPLICATION = "helpdesk.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "helpdesk" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "console.context_processors.console",
            ],
        },
    },
]

DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'helpdesk.sqlite3'}")}
# 0 by default: under ASGI (uvicorn) each request runs in its own thread, so a persistent connection is never
# reused and lingers until garbage collection; under load that exhausts PostgreSQL's max_connections. A Celery
# worker (one thread per process) may set DATABASE_CONN_MAX_AGE=60 to keep its connection between tasks.
DATABASES["default"]["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=0)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
if env.bool("DATABASE_POOL", default=False) and DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # psycopg's connection pool, on by default in the web server (helpdesk/asgi.py): under ASGI every request
    # borrows an open connection instead of opening one (a new PostgreSQL backend per request cost several
    # milliseconds of every chat message). Off by default elsewhere: Celery's prefork children close their pool
    # after every task, which would open more connections than it saves.
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": env.int("DATABASE_POOL_MIN_SIZE", default=2),
        "max_size": env.int("DATABASE_POOL_MAX_SIZE", default=20),
        "timeout": 10,
    }
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets the web server, the worker and beat share the file without "database is locked" on reads;
    # IMMEDIATE transactions make writers queue for the lock instead of failing when they upgrade.
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"]["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=10000;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
    }
    # A file, not memory, so that a worker process started by a test sees the test database.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test-helpdesk.sqlite3")}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    # Desk administrators (agent role "admin") hold the Django admin's permissions.
    "agents.backends.AgentRoleBackend",
]

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = env.str("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
STATIC_ROOT.mkdir(exist_ok=True)
MEDIA_URL = "media/"
MEDIA_ROOT = Path(env.str("MEDIA_ROOT", default=str(VAR_DIR / "media")))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if not DEBUG
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
WHITENOISE_USE_FINDERS = DEBUG

# Agents sign in on the console page; the same session authenticates the browsable API and the websocket.
LOGIN_URL = "/console/login/"
LOGIN_REDIRECT_URL = "/console/"

# --- Security headers -----------------------------------------------------------------------------------------
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = PUBLIC_BASE_URL.startswith("https://")
# Sent on https requests only (Django's rule), so a plain-http demo is never pinned to https.
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=365 * 24 * 3600)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=False)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=False)
# No inline script, style or eval on any page of ours: every script and stylesheet is a file under /static/ (htmx
# runs with allowEval off, console/templates/console/base.html). img-src: data: for Swagger UI's and the admin's
# icons, blob: for the files the chat widget fetches with the visitor's token. connect-src: the page's websockets
# are named too, for browsers that do not count ws(s) of the same host as 'self'.
_WEBSOCKET_ORIGIN = PUBLIC_BASE_URL.replace("https://", "wss://", 1).replace("http://", "ws://", 1)
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [csp.constants.SELF],
        "script-src": [csp.constants.SELF],
        "style-src": [csp.constants.SELF],
        "img-src": [csp.constants.SELF, "data:", "blob:"],
        "font-src": [csp.constants.SELF],
        "connect-src": [csp.constants.SELF, _WEBSOCKET_ORIGIN],
        "object-src": [csp.constants.NONE],
        "base-uri": [csp.constants.NONE],
        "form-action": [csp.constants.SELF],
        "frame-ancestors": [csp.constants.NONE],
    },
}
# Nothing here uses these browser features; a script injected into a page could not either.
PERMISSIONS_POLICY = {
    feature: []
    for feature in (
        "accelerometer",
        "camera",
        "display-capture",
        "geolocation",
        "gyroscope",
        "magnetometer",
        "microphone",
        "midi",
        "payment",
        "usb",
    )
}

# --- Redis (optional) ----------------------------------------------------------------------------------------
REDIS_URL = env.str("REDIS_URL", default="")

if REDIS_URL:
    # One Redis connection pool per process, not per request under ASGI (helpdesk/cache.py).
    CACHES = {"default": {"BACKEND": "helpdesk.cache.SharedRedisCache", "LOCATION": REDIS_URL}}
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# --- Celery ---------------------------------------------------------------------------------------------------
# Without Redis the broker is kombu's file-system transport: messages are files under var/, so the web server,
# a worker and beat on one machine exchange tasks with no broker process at all.
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default=REDIS_URL or "filesystem://")
if CELERY_BROKER_URL.startswith("filesystem://"):
    _queue_dir = VAR_DIR / "celery-queue"
    _processed_dir = VAR_DIR / "celery-processed"
    _control_dir = VAR_DIR / "celery-control"
    for _folder in (_queue_dir, _processed_dir, _control_dir):
        _folder.mkdir(exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_queue_dir),
        "data_folder_out": str(_queue_dir),
        "processed_folder": str(_processed_dir),
        # Exchange bindings (fanout, remote control); kombu's default is "control" in the working directory.
        "control_folder": str(_control_dir),
        "store_processed": False,
        # kombu polls the folder once a second by default: one task a second per worker process.
        "polling_interval": env.float("CELERY_FILESYSTEM_POLLING_INTERVAL", default=0.1),
    }
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# A broker outage (Redis or RabbitMQ restarted, a failover) is waited out, however long: the worker and beat
# reconnect instead of exiting after Celery's default 100 attempts (about an hour of backoff). Whatever was
# stored meanwhile and not enqueued is found again by beat's sweeps below.
CELERY_BROKER_CONNECTION_RETRY = True
CELERY_BROKER_CONNECTION_MAX_RETRIES = None
# On a lost connection a running task finishes (its late ack is lost, so the broker delivers it again: every task
# is idempotent, the copy finds its work done). Cancelling it instead could cut a send to a provider between the
# provider's answer and our record of it, and send the message twice.
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = False
# What a request waits for an unreachable broker when it enqueues on commit: a connect timeout per try and three
# tries in all, then the task is left to the sweeps (the row is committed; the failure is logged, never raised).
CELERY_BROKER_CONNECTION_TIMEOUT = env.float("CELERY_BROKER_CONNECTION_TIMEOUT", default=2.0)
CELERY_TASK_PUBLISH_RETRY = True
CELERY_TASK_PUBLISH_RETRY_POLICY = {"max_retries": 2, "interval_start": 0, "interval_step": 0.5, "interval_max": 0.5}
if CELERY_BROKER_URL.startswith(("redis://", "rediss://")):
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        # The same bound for Redis's sockets (kombu leaves them without one: a host that does not answer held a
        # publish for the operating system's connect timeout, minutes). Reads block at most socket_timeout.
        "socket_connect_timeout": CELERY_BROKER_CONNECTION_TIMEOUT,
        "socket_timeout": env.float("CELERY_BROKER_SOCKET_TIMEOUT", default=10.0),
        # Kombu's default, stated: a task taken but not acknowledged (its worker died or lost Redis) is delivered
        # again after this long. It must stay above the longest countdown a task is retried with (15 minutes).
        "visibility_timeout": env.int("CELERY_BROKER_VISIBILITY_TIMEOUT", default=3600),
    }
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
CELERY_BEAT_SCHEDULE = {
    # Re-enqueue raw inbound events whose processing task was lost (broker down at commit, worker killed).
    "requeue-stalled-inbound-events": {
        "task": "channels_app.requeue_stalled_inbound_events",
        "schedule": env.int("INBOUND_REQUEUE_INTERVAL_SECONDS", default=60),
    },
    "requeue-stalled-deliveries": {
        "task": "channels_app.requeue_stalled_deliveries",
        "schedule": env.int("DELIVERY_REQUEUE_INTERVAL_SECONDS", default=60),
    },
    # MMS media whose fetch task was lost.
    "requeue-stalled-media": {
        "task": "channels_app.requeue_stalled_media",
        "schedule": env.int("MEDIA_REQUEUE_INTERVAL_SECONDS", default=60),
    },
    # One poll task per email channel with an IMAP mailbox configured (channel settings imap_*).
    "poll-imap-mailboxes": {
        "task": "channels_app.poll_imap_mailboxes",
        "schedule": env.int("IMAP_POLL_INTERVAL_SECONDS", default=60),
    },
    # Deferred desk-started messages whose quiet hours are over (each also has a task with that ETA).
    "send-due-outreach": {
        "task": "outreach.send_due_deferred",
        "schedule": env.int("OUTREACH_SWEEP_INTERVAL_SECONDS", default=300),
    },
    # Signed webhooks' used tokens, once a replay of them would be refused for its age anyway.
    "prune-webhook-nonces": {
        "task": "channels_app.prune_webhook_nonces",
        "schedule": env.int("WEBHOOK_NONCE_PRUNE_INTERVAL_SECONDS", default=600),
    },
}

# --- Email ----------------------------------------------------------------------------------------------------
EMAIL_BACKEND = env.str("EMAIL_BACKEND", default="django.core.mail.backends.console.EmailBackend")
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="support@localhost")
# Inbound webhooks (channels_app.providers.email.urls, under /inbound/email/). Each provider's check is enforced: a
# provider whose secret is empty answers 503, so it keeps the mail and retries until the secret is configured.
ANYMAIL = {
    # "user:password" pairs (comma-separated, for rotation) that Postmark, SendGrid and SNS send as basic auth.
    "WEBHOOK_SECRET": env.list("ANYMAIL_WEBHOOK_SECRET", default=[]),
    # Mailgun signs each post with HMAC-SHA256 of timestamp+token under this key.
    "MAILGUN_WEBHOOK_SIGNING_KEY": env.str("MAILGUN_WEBHOOK_SIGNING_KEY", default=""),
    # Confirming an SNS subscription calls AWS's ConfirmSubscription (boto3, AWS credentials from the environment).
    "AMAZON_SES_AUTO_CONFIRM_SNS_SUBSCRIPTIONS": env.bool("AMAZON_SES_AUTO_CONFIRM_SNS_SUBSCRIPTIONS", default=True),
    # Ours, not anymail's: when set, SNS posts from any other topic are refused.
    "AMAZON_SES_INBOUND_TOPIC_ARNS": env.list("AMAZON_SES_INBOUND_TOPIC_ARNS", default=[]),
}
# Mailgun signs only timestamp + token: a post is taken when its token is unused and its timestamp is within this
# many seconds of our clock, either way (channels_app.services.webhook_nonces).
EMAIL_WEBHOOK_TIMESTAMP_TOLERANCE_SECONDS = env.int("EMAIL_WEBHOOK_TIMESTAMP_TOLERANCE_SECONDS", default=300)
# How long a provider keeps retrying a post we refused with a retryable error (Mailgun: 8 hours, with its original
# timestamp and token); its token is remembered that long, so the retry is taken past the tolerance.
EMAIL_WEBHOOK_RETRY_WINDOW_SECONDS = env.int("EMAIL_WEBHOOK_RETRY_WINDOW_SECONDS", default=9 * 3600)
# An SES post's SNS Timestamp may be this far from our clock: SNS retries a notification with its original
# Timestamp for up to an hour (its HTTP delivery policy's limit), plus clock skew.
EMAIL_WEBHOOK_SNS_TOLERANCE_SECONDS = env.int("EMAIL_WEBHOOK_SNS_TOLERANCE_SECONDS", default=3600 + 300)
# Largest request body for email over HTTP (the webhooks and POST /api/v1/channels/{id}/email/raw). Above the
# parser's MAX_EMAIL_BYTES on purpose: a message up to this size is stored raw, then quarantined with its size.
INBOUND_EMAIL_MAX_BODY_BYTES = env.int("INBOUND_EMAIL_MAX_BODY_BYTES", default=64 * 1024 * 1024)

# --- REST API -------------------------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "helpdesk.api.authentication.BearerTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["helpdesk.api.permissions.IsAgent"],
    "DEFAULT_RENDERER_CLASSES": [
        "rest_framework.renderers.JSONRenderer",
        "rest_framework.renderers.BrowsableAPIRenderer",
    ],
    # DRF's, with nesting bounded before parsing and text made storable (helpdesk.json_input).
    "DEFAULT_PARSER_CLASSES": ["helpdesk.api.parsers.JSONParser"],
    "EXCEPTION_HANDLER": "helpdesk.api.exceptions.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "helpdesk.api.schema.HelpdeskAutoSchema",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Helpdesk API",
    "DESCRIPTION": "One customer timeline across email, chat, SMS and API channels.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {
        "ChannelKindEnum": "channels_app.models.Channel.Kind",
        "IdentityKindEnum": "customers.models.CustomerIdentity.Kind",
    },
}
# Requests to /api/ larger than this are refused with 413 before the body is read.
API_MAX_BODY_BYTES = env.int("API_MAX_BODY_BYTES", default=10 * 1024 * 1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = max(API_MAX_BODY_BYTES, INBOUND_EMAIL_MAX_BODY_BYTES, 2_621_440)

# --- Domain limits and rules ------------------------------------------------------------------------------------
# --- Real time and live chat -----------------------------------------------------------------------------------
ASGI_APPLICATION = "helpdesk.asgi.application"
# Pushes are best-effort (an event for a connection that is not there, or on a server that is not subscribed, is gone):
# clients catch up over REST with a cursor. In memory by default (one server process), Redis with REDIS_URL.
if REDIS_URL:
    # channels-redis's publish/subscribe layer: a group send is one PUBLISH, and request threads publish without
    # going through the event loop (realtime/layers.py).
    CHANNEL_LAYERS = {"default": {"BACKEND": "realtime.layers.RedisPubSubLayer", "CONFIG": {"hosts": [REDIS_URL]}}}
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
CORS_URLS_REGEX = r"^/chat/api/.*$"
CORS_ALLOW_HEADERS = ["content-type", "x-visitor-token"]

HELPDESK = {
    # A phone number written without a country code is read as a number of this region.
    "DEFAULT_PHONE_REGION": env.str("DEFAULT_PHONE_REGION", default="US"),
    "MAX_MESSAGE_TEXT_CHARS": env.int("MAX_MESSAGE_TEXT_CHARS", default=200_000),
    "MAX_ATTACHMENT_BYTES": env.int("MAX_ATTACHMENT_BYTES", default=10 * 1024 * 1024),
    "MAX_ATTACHMENTS_TOTAL_BYTES": env.int("MAX_ATTACHMENTS_TOTAL_BYTES", default=25 * 1024 * 1024),
    # A message on a solved ticket reopens it within this many days; after that it starts a linked ticket.
    "REOPEN_WINDOW_DAYS": env.int("REOPEN_WINDOW_DAYS", default=14),
    # Inbound events still "received" after this long are re-enqueued by beat.
    "STALLED_AFTER_SECONDS": env.int("STALLED_AFTER_SECONDS", default=120),
    "INBOUND_MAX_ATTEMPTS": env.int("INBOUND_MAX_ATTEMPTS", default=5),
    "DELIVERY_MAX_ATTEMPTS": env.int("DELIVERY_MAX_ATTEMPTS", default=6),
    "OUTBOUND_HTTP_TIMEOUT_SECONDS": env.float("OUTBOUND_HTTP_TIMEOUT_SECONDS", default=10.0),
    # Connect and read timeout of every IMAP socket operation while polling a mailbox.
    "IMAP_TIMEOUT_SECONDS": env.float("IMAP_TIMEOUT_SECONDS", default=30.0),
    # SMS: messages per second one sending number (or Messaging Service) may hand to the provider, across all
    # workers (Twilio's long codes take 1/s; toll-free and short codes more: raise it per channel in its settings).
    "SMS_SEND_RATE_PER_SECOND": env.float("SMS_SEND_RATE_PER_SECOND", default=1.0),
    # MMS media fetched from the provider: per-file size limit, accepted types, attempts before giving up.
    "MAX_MEDIA_BYTES": env.int("MAX_MEDIA_BYTES", default=5 * 1024 * 1024),
    "MEDIA_ALLOWED_TYPES": env.list(
        "MEDIA_ALLOWED_TYPES",
        default=[
            "image/jpeg",
            "image/png",
            "image/gif",
            "image/webp",
            "image/heic",
            "image/heif",
            "image/bmp",
            "video/mp4",
            "video/3gpp",
            "video/quicktime",
            "audio/mpeg",
            "audio/mp4",
            "audio/amr",
            "audio/ogg",
            "text/vcard",
            "text/x-vcard",
            "text/calendar",
            "application/pdf",
            "text/plain",
        ],
    ),
    "MEDIA_FETCH_MAX_ATTEMPTS": env.int("MEDIA_FETCH_MAX_ATTEMPTS", default=5),
    # Live chat: longest visitor message, largest file a visitor may send, how many messages one visitor may send
    # per minute, how long a visitor token stays valid.
    "CHAT_MAX_MESSAGE_CHARS": env.int("CHAT_MAX_MESSAGE_CHARS", default=5000),
    "CHAT_MAX_UPLOAD_BYTES": env.int("CHAT_MAX_UPLOAD_BYTES", default=10 * 1024 * 1024),
    "CHAT_VISITOR_MESSAGES_PER_MINUTE": env.int("CHAT_VISITOR_MESSAGES_PER_MINUTE", default=30),
    # How long a server process keeps a chat channel it read (chat.channel_cache); 0 reads it on every request.
    "CHAT_CHANNEL_CACHE_SECONDS": env.int("CHAT_CHANNEL_CACHE_SECONDS", default=5),
    "CHAT_VISITOR_TOKEN_MAX_AGE_DAYS": env.int("CHAT_VISITOR_TOKEN_MAX_AGE_DAYS", default=180),
    # Console "SLA at risk" queue until SLA policies exist: high/urgent tickets unanswered for this many hours.
    "SLA_AT_RISK_HOURS": env.int("SLA_AT_RISK_HOURS", default=4),
    # Messages the desk starts (outreach): the most SMS segments one may take; quiet hours in the customer's time
    # zone (from START to END o'clock, across midnight) for purposes that wait for the morning; how long an
    # unsubscribe link in an email keeps working.
    "OUTREACH_SMS_MAX_SEGMENTS": env.int("OUTREACH_SMS_MAX_SEGMENTS", default=2),
    "OUTREACH_QUIET_HOURS_START": env.int("OUTREACH_QUIET_HOURS_START", default=21),
    "OUTREACH_QUIET_HOURS_END": env.int("OUTREACH_QUIET_HOURS_END", default=8),
    "OUTREACH_UNSUBSCRIBE_MAX_AGE_DAYS": env.int("OUTREACH_UNSUBSCRIBE_MAX_AGE_DAYS", default=365),
}
# Channel secrets are encrypted at rest with these keys (first one encrypts; all decrypt, for rotation).
# Without a setting, a key is derived from SECRET_KEY.
SECRETS_ENCRYPTION_KEYS = env.list("SECRETS_ENCRYPTION_KEYS", default=[])

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        # The twilio client logs every request's URL and headers at INFO.
        "twilio.http_client": {"level": "WARNING"},
    },
}

if not DEBUG and SECRET_KEY.startswith("insecure-") and env.bool("REQUIRE_SECRET_KEY", default=False):
    raise environ.ImproperlyConfigured("SECRET_KEY must be set in production (REQUIRE_SECRET_KEY=true).")
