import pytest

from tests.channels_app.imap_server import DOVECOT, DovecotServer
from tests.channels_app.smtp_peer import smtp  # noqa: F401  (the real SMTP peer fixture, for every email test)
from tests.conftest import REQUIRE_SERVICES

IMAP_USERS = {"desk": "desk-password", "sales": "sales-password"}


@pytest.fixture(scope="session")
def dovecot():
    """A real Dovecot for the IMAP tests (Debian's dovecot-imapd); skipped without it, except in CI
    (HELPDESK_REQUIRE_SERVICES=1), where a missing server is a broken run."""
    if not DOVECOT.exists():
        message = f"needs Dovecot ({DOVECOT}; Debian package dovecot-imapd)"
        if REQUIRE_SERVICES:
            pytest.fail(message + " (HELPDESK_REQUIRE_SERVICES is set)")
        pytest.skip(message)
    server = DovecotServer(IMAP_USERS).start()
    yield server
    server.stop()
