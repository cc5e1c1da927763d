"""A throwaway PostgreSQL server for the suite: initdb in a temporary folder, a free loopback port, no fsync."""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

#: Finds the server programs whatever the major version (the Makefile's PostgreSQL rule uses it too).
PG_BIN = Path(__file__).resolve().parents[1] / "tools" / "pg_bin.sh"
#: The server's superuser; it trusts connections, and it listens on loopback only: a throwaway server holds no secret
#: (but ``pg_password_role``'s role, whose password the secrets scan plants).
SUPERUSER = "postgres"
#: The database ``pg_url`` names, created when the server starts.
SESSION_DATABASE = "ims_nb_test"
#: Loopback only; durability traded for speed (the data dies with the session anyway).
SETTINGS = {"listen_addresses": "'127.0.0.1'", "fsync": "off", "full_page_writes": "off", "synchronous_commit": "off"}
#: initdb and postgres refuse to run as root; a root suite runs them as this user (Debian's package creates it).
SERVER_USER = "postgres"
MISSING = "PostgreSQL's server programs (initdb, pg_ctl, postgres) are missing: `make test` installs them"


def find_bindir() -> Path | None:
    """The directory of ``initdb``, ``pg_ctl`` and ``postgres``, or None when PostgreSQL is not installed."""
    found = subprocess.run([str(PG_BIN)], capture_output=True, text=True, check=False)
    return Path(found.stdout.strip()) if found.returncode == 0 else None


def require_bindir(bindir: Path | None, environ: Mapping[str, str]) -> Path:
    """``bindir``; without one the test fails under CI (never skipped there, `CI` set) and is skipped elsewhere."""
    if bindir is None:
        if environ.get("CI"):
            pytest.fail(MISSING, pytrace=False)
        pytest.skip(MISSING)
    return bindir


def free_port() -> int:
    """A TCP port nobody listens on at 127.0.0.1 right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class PgServer:
    """A PostgreSQL server in its own temporary folder: ``start``, ``restart`` (same port and data), ``close``."""

    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        self.root = Path(tempfile.mkdtemp(prefix="ims-nb-pg-"))  # not under pytest's 0700 basetemp: see SERVER_USER
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self.port = free_port()
        self.running = False
        self._run_as: list[str] = []
        if os.geteuid() == 0:
            try:
                user = pwd.getpwnam(SERVER_USER)
            except KeyError:
                pytest.fail(f"initdb refuses root and there is no {SERVER_USER!r} user: {MISSING}", pytrace=False)
            os.chown(self.root, user.pw_uid, user.pw_gid)
            self._run_as = ["runuser", "-u", SERVER_USER, "--"]

    def url(self, database: str = SESSION_DATABASE, *, role: str = SUPERUSER) -> str:
        """``postgresql://postgres@127.0.0.1:PORT/database`` (no password: the server trusts loopback)."""
        return f"postgresql://{role}@127.0.0.1:{self.port}/{database}"

    def _run(self, program: str, *args: str) -> None:
        command = [*self._run_as, str(self.bindir / program), *args]
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            log = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
            raise RuntimeError(f"{program} failed ({done.returncode}): {done.stderr or done.stdout}\n{log}")

    def init(self) -> None:
        """``initdb`` the data directory and write the settings: port, socket in the folder, loopback, no fsync."""
        self._run("initdb", "-D", str(self.data), "-U", SUPERUSER, "-A", "trust", "-E", "UTF8", "--locale=C", "-N")
        self._configure()

    def _configure(self) -> None:
        settings = {**SETTINGS, "port": str(self.port), "unix_socket_directories": f"'{self.root}'"}
        with (self.data / "postgresql.conf").open("a") as conf:  # the last line of a setting wins
            conf.writelines(f"{name} = {value}\n" for name, value in settings.items())

    def start(self) -> None:
        """Start the server and wait until it accepts connections."""
        self._run("pg_ctl", "start", "-w", "-t", "60", "-s", "-D", str(self.data), "-l", str(self.log))
        self.running = True

    def launch(self, *, attempts: int = 3) -> None:
        """``init`` and ``start``, on another free port when someone took this one in between."""
        self.init()
        for attempt in range(1, attempts + 1):
            try:
                return self.start()
            except RuntimeError as error:
                if attempt == attempts or "Address already in use" not in str(error):
                    raise
                self.port = free_port()
                self._configure()

    def stop(self) -> None:
        """Stop the server (fast shutdown: open sessions are ended, committed data is kept)."""
        if self.running:
            self._run("pg_ctl", "stop", "-w", "-s", "-m", "fast", "-D", str(self.data))
            self.running = False

    def restart(self, *, down_for: float = 0.0) -> None:
        """Stop the server, stay down for ``down_for`` seconds, start it again on the same port with the same data."""
        self.stop()
        time.sleep(down_for)
        self.start()

    def close(self) -> None:
        """Stop the server and remove its folder."""
        try:
            self.stop()
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def _admin(self, statement: sql.Composed) -> None:
        with psycopg.connect(self.url("postgres"), autocommit=True) as connection:
            connection.execute(statement)

    def create_database(self, name: str) -> str:
        """A new empty database (from template0); returns its URL."""
        self._admin(sql.SQL("CREATE DATABASE {} TEMPLATE template0").format(sql.Identifier(name)))
        return self.url(name)

    def add_password_role(self, role: str, password: str) -> None:
        """A role that logs in with ``password`` only (scram-sha-256 from loopback, ahead of the trust lines that
        keep every other role's behaviour), and a database of its own, named after it."""
        statement = sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(sql.Identifier(role), sql.Literal(password))
        self._admin(statement)
        self._admin(sql.SQL("CREATE DATABASE {} OWNER {} TEMPLATE template0").format(sql.Identifier(role),
                                                                                    sql.Identifier(role)))  # fmt: skip
        hba = self.data / "pg_hba.conf"
        checked = f"host all {role} 127.0.0.1/32 scram-sha-256\n"  # the first matching line wins
        hba.write_text(checked + hba.read_text())
        self._run("pg_ctl", "reload", "-s", "-D", str(self.data))
        deadline = time.monotonic() + 30
        while self._trusts(role):  # a reload is a signal: wait until the server reads the new line
            if time.monotonic() > deadline:
                raise RuntimeError(f"the server still trusts {role} after a reload")
            time.sleep(0.05)

    def _trusts(self, role: str) -> bool:
        try:
            psycopg.connect(self.url(role, role=role), connect_timeout=5, password="").close()
        except psycopg.OperationalError:
            return False
        return True

    def drop_database(self, name: str) -> None:
        """Drop the database, ending the sessions still connected to it."""
        self._admin(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    """One PostgreSQL server for the session (``restart()`` it for restart tests), removed at the end."""
    server = PgServer(require_bindir(find_bindir(), os.environ))
    try:
        server.launch()
        server.create_database(SESSION_DATABASE)
        yield server
    finally:
        server.close()


@pytest.fixture(scope="session")
def pg_url(pg_server: PgServer) -> str:
    """The URL of the session's database on ``pg_server``."""
    return pg_server.url(SESSION_DATABASE)


#: The role of ``pg_password_role``, which must give its password, and that password (planted: scans look for it).
PASSWORD_ROLE = "ims_nb_with_password"
ROLE_PASSWORD = "PLANTED-PG-PASSWORD-9c8b7a6d5e4f"


@pytest.fixture(scope="session")
def pg_password_role(pg_server: PgServer) -> str:
    """The URL, without its password (``ROLE_PASSWORD``), of a database owned by a role whose password the server
    checks (``PASSWORD_ROLE``); made once per session, the other fixtures' trust unchanged."""
    pg_server.add_password_role(PASSWORD_ROLE, ROLE_PASSWORD)
    return pg_server.url(PASSWORD_ROLE, role=PASSWORD_ROLE)


@pytest.fixture()
def pg_database(pg_server: PgServer) -> Iterator[str]:
    """The URL of a new empty database of this test's own, dropped after it."""
    name = f"ims_nb_{uuid.uuid4().hex[:12]}"
    yield pg_server.create_database(name)
    pg_server.drop_database(name)
