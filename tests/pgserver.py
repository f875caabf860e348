"""A throwaway PostgreSQL server for the tests: Debian's binaries, a temporary data folder,
a Unix socket only (no TCP port), stopped and removed at the end.

PostgreSQL refuses to run as root, so as root the server runs as the ``postgres`` user
(which Debian's package creates); as anyone else, as that user."""

from __future__ import annotations

import glob
import itertools
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path
from urllib.parse import quote

SUPERUSER = "postgres"
PASSWORD_ROLE = "dashboard_pw"  # the one role that must give a password (scram), for the redaction tests
PASSWORD = "pw-7Hq2xZ-secret"


def find_bindir() -> Path | None:
    wanted = os.environ.get("DASHBOARD_PG_BIN")
    if wanted:
        return Path(wanted) if (Path(wanted) / "initdb").exists() else None
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    return Path(found[-1]).parent if found else None


class PgServer:
    def __init__(self, bindir: Path, extra: str = "") -> None:
        self.bindir = bindir
        self.extra = extra  # more server options (-c name=value ...)
        self.root = Path(tempfile.mkdtemp(prefix="dashboard-pg-"))
        self.data = self.root / "data"
        self.socket_dir = self.root
        self._names = itertools.count()
        self._as_other = os.geteuid() == 0
        if self._as_other:
            pw = pwd.getpwnam("postgres")
            os.chown(self.root, pw.pw_uid, pw.pw_gid)
        os.chmod(self.root, 0o755)

    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        cmd = [str(a) for a in args]
        if self._as_other:
            runuser = shutil.which("runuser")
            cmd = ([runuser, "-u", "postgres", "--", *cmd] if runuser
                   else ["su", "postgres", "-s", "/bin/sh", "-c", " ".join(f"'{c}'" for c in cmd)])
        return subprocess.run(cmd, capture_output=True, text=True, check=True, cwd=self.root)

    def start(self) -> None:
        self._run(self.bindir / "initdb", "-D", self.data, "-U", SUPERUSER, "--auth-local=trust",
                  "--auth-host=reject", "-E", "UTF8", "--locale=C.UTF-8")
        hba = self.data / "pg_hba.conf"  # root may rewrite it in place; the owner stays postgres
        hba.write_text(f"local all {PASSWORD_ROLE} scram-sha-256\n" + hba.read_text())
        options = (f"-c listen_addresses='' -k {self.socket_dir} -c fsync=off -c synchronous_commit=off "
                   "-c full_page_writes=off -c max_connections=300 -c shared_buffers=64MB "
                   "-c log_line_prefix='%m [%p] %u@%d ' " + self.extra)
        self._run(self.bindir / "pg_ctl", "-D", self.data, "-o", options, "-l", self.root / "server.log",
                  "-w", "-t", "60", "start")
        with self.admin() as conn:
            conn.execute(f"CREATE ROLE {PASSWORD_ROLE} LOGIN PASSWORD '{PASSWORD}'")

    def stop(self) -> None:
        try:
            self._run(self.bindir / "pg_ctl", "-D", self.data, "-m", "immediate", "-w", "stop")
        except subprocess.CalledProcessError:
            pass
        shutil.rmtree(self.root, ignore_errors=True)

    def url(self, dbname: str, user: str = SUPERUSER, password: str | None = None) -> str:
        auth = quote(user) + (f":{quote(password)}" if password else "")
        return f"postgresql://{auth}@/{dbname}?host={quote(str(self.socket_dir))}"

    def admin(self, dbname: str = "postgres"):  # type: ignore[no-untyped-def]
        import psycopg

        return psycopg.connect(self.url(dbname), autocommit=True)

    def create_database(self, template: str | None = None, owner: str | None = None) -> str:
        name = f"store_{os.getpid()}_{next(self._names)}"
        with self.admin() as conn:
            conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template or "template0"}"'
                         + (f" OWNER {owner}" if owner else ""))
        return name

    def password_url(self) -> str:
        """A new database owned by the role that logs in with a password, and its URL (with it)."""
        return self.url(self.create_database(owner=PASSWORD_ROLE), PASSWORD_ROLE, PASSWORD)

    def drop_database(self, name: str) -> None:
        with self.admin() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def log(self) -> str:
        try:
            return (self.root / "server.log").read_text(errors="replace")
        except OSError:
            return ""
