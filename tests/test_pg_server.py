"""The suite's own PostgreSQL server: it answers, gives each test a database, restarts, is never skipped in CI."""

from __future__ import annotations

import os
import socket

import psycopg
import pytest

from tests.pg import MISSING, PgServer, find_bindir, require_bindir


def test_the_server_answers_on_loopback_without_fsync(pg_url: str) -> None:
    with psycopg.connect(pg_url) as connection:
        version = connection.execute("SELECT version()").fetchone()
        listen = connection.execute("SHOW listen_addresses").fetchone()
        fsync = connection.execute("SHOW fsync").fetchone()
    assert version is not None and version[0].startswith("PostgreSQL ")
    assert listen == ("127.0.0.1",)
    assert fsync == ("off",)


def test_with_ci_set_the_programs_are_found_and_the_server_runs(
    pg_server: PgServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CI", "true")
    assert require_bindir(find_bindir(), os.environ) == pg_server.bindir
    with psycopg.connect(pg_server.url()) as connection:
        assert connection.execute("SELECT version()").fetchone() is not None


def test_missing_programs_fail_under_ci_and_skip_elsewhere() -> None:
    with pytest.raises(pytest.fail.Exception, match="`make test` installs them"):
        require_bindir(None, {"CI": "true"})
    with pytest.raises(pytest.skip.Exception, match="make test"):
        require_bindir(None, {})
    assert MISSING.startswith("PostgreSQL")


def test_each_test_gets_a_new_empty_database(pg_database: str, pg_url: str) -> None:
    assert pg_database != pg_url
    with psycopg.connect(pg_database) as connection:
        tables = connection.execute("SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'")
        assert tables.fetchone() == (0,)
        connection.execute("CREATE TABLE scratch (n integer)")


def test_a_restart_keeps_the_data_and_the_port(pg_server: PgServer, pg_database: str) -> None:
    with psycopg.connect(pg_database) as connection:
        connection.execute("CREATE TABLE kept (n integer)")
        connection.execute("INSERT INTO kept VALUES (1), (2), (3)")
    port = pg_server.port
    pg_server.restart()
    assert pg_server.port == port
    with psycopg.connect(pg_database) as connection:
        assert connection.execute("SELECT sum(n) FROM kept").fetchone() == (6,)


def test_a_port_taken_meanwhile_is_traded_for_a_free_one(pg_server: PgServer) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        server = PgServer(pg_server.bindir)
        server.port = taken.getsockname()[1]
        try:
            server.launch()
            assert server.port != taken.getsockname()[1]
            with psycopg.connect(server.url("postgres")) as connection:
                assert connection.execute("SELECT 1").fetchone() == (1,)
        finally:
            server.close()
    assert not server.root.exists()
