"""A real IMAP server for the tests: Dovecot with a private configuration on a loopback port, and a TCP relay in
front of it that can cut the connection for real at a chosen command."""

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

DOVECOT = Path("/usr/sbin/dovecot")

CONFIG = """\
protocols = imap
listen = 127.0.0.1
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_failure_delay = 0
default_internal_user = {internal_user}
default_login_user = {login_user}
first_valid_uid = 1
mail_location = maildir:{root}/mail/%u
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/passwd
}}
userdb {{
  driver = static
  args = uid={mail_uid} gid={mail_gid} home={root}/home/%u
}}
# No growing delay after failed logins from one address (Dovecot's documented way to turn the auth penalty off).
service anvil {{
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class DovecotServer:
    """``dovecot -F`` on 127.0.0.1:``port`` with the given users (name -> password), mail in a temporary Maildir.

    Dovecot refuses to run its login processes as root and to give mail to uid 0: as root, logins run as
    ``dovenull`` (created by the dovecot-core package) and the mail belongs to ``nobody``; otherwise everything
    runs as the current user."""

    def __init__(self, users: dict[str, str]):
        self.users = users
        self.port = free_port()
        # Not pytest's tmp_path: that is mode 0700 under root, and the mail user must traverse it.
        self.root = Path(tempfile.mkdtemp(prefix="helpdesk-dovecot-"))
        self.process: subprocess.Popen | None = None

    def start(self) -> "DovecotServer":
        self.root.chmod(0o755)
        if os.geteuid() == 0:
            internal_user, login_user = "root", "dovenull"
            nobody = pwd.getpwnam("nobody")
            mail_uid, mail_gid = nobody.pw_uid, nobody.pw_gid
        else:
            internal_user = login_user = pwd.getpwuid(os.geteuid()).pw_name
            mail_uid, mail_gid = os.geteuid(), os.getegid()
        for folder in ("mail", "home"):
            (self.root / folder).mkdir()
            os.chown(self.root / folder, mail_uid, mail_gid)
        passwd = self.root / "passwd"
        passwd.write_text("".join(f"{name}:{{PLAIN}}{password}::::::\n" for name, password in self.users.items()))
        passwd.chmod(0o644)
        config = self.root / "dovecot.conf"
        config.write_text(
            CONFIG.format(
                root=self.root,
                port=self.port,
                internal_user=internal_user,
                login_user=login_user,
                mail_uid=mail_uid,
                mail_gid=mail_gid,
            )
        )
        self.process = subprocess.Popen(
            [str(DOVECOT), "-F", "-c", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"dovecot exited: {self.process.stderr.read().decode()}\n{self.log()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"dovecot did not listen on port {self.port}\n{self.log()}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.root, ignore_errors=True)

    def log(self) -> str:
        path = self.root / "dovecot.log"
        return path.read_text(errors="replace") if path.exists() else ""


class DroppingRelay:
    """A TCP relay to ``target_port`` that, once, cuts the connection (both directions) when the client sends its
    ``drop_at``-th command line containing ``command`` (e.g. ``b"UID FETCH"``), before the server sees it. Every
    command line clients sent is kept in ``commands``, one list per connection."""

    def __init__(self, target_port: int, *, command: bytes, drop_at: int):
        self.target_port = target_port
        self.command = command.upper()
        self.drop_at = drop_at
        self.has_dropped = False
        self.commands: list[list[bytes]] = []
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self) -> None:
        self.listener.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            server = socket.create_connection(("127.0.0.1", self.target_port))
            lines: list[bytes] = []
            self.commands.append(lines)
            threading.Thread(target=self._client_to_server, args=(client, server, lines), daemon=True).start()
            threading.Thread(target=self._pipe, args=(server, client), daemon=True).start()

    def _client_to_server(self, client: socket.socket, server: socket.socket, lines: list[bytes]) -> None:
        buffer = b""
        seen = 0
        while True:
            try:
                chunk = client.recv(65536)
            except OSError:
                chunk = b""
            if not chunk:
                self._cut(client, server)
                return
            buffer += chunk
            while b"\r\n" in buffer:
                line, buffer = buffer.split(b"\r\n", 1)
                lines.append(line)
                if self.command in line.upper():
                    seen += 1
                    with self._lock:
                        should_drop = not self.has_dropped and seen == self.drop_at
                        self.has_dropped = self.has_dropped or should_drop
                    if should_drop:
                        self._cut(client, server)
                        return
                server.sendall(line + b"\r\n")

    def _pipe(self, source: socket.socket, target: socket.socket) -> None:
        while True:
            try:
                chunk = source.recv(65536)
                if not chunk:
                    break
                target.sendall(chunk)
            except OSError:
                break
        self._cut(source, target)

    @staticmethod
    def _cut(*sockets: socket.socket) -> None:
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
