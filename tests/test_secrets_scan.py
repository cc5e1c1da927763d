"""No secret leaks: SKs, passwords, IAM and security tokens and ``Authorization`` values never appear in what
ims-nb shows or writes.

Secrets are planted (the simulator's SKs and passwords, a real IAM token from a password login, a security
token and a wrong SK of our own), then the toolkit runs: the CLI verbs in subprocesses with ``--sim`` and
with environment credentials, logging every record at DEBUG to a file; in-process clients, a launch and a
watch through a ledger, and forced ``AuthError``, ``TransportError``, ``OutcomeUnknownError`` and
``ServerError``, with every log record of every logger (ims_nb, httpx, httpcore ...) captured from level 1.
Then everything written is scanned (``secret_scan``) for the planted values and for signature, token and
``Authorization`` shapes: stdout, stderr, the log files, the ledgers' SQLite files and WAL, output files,
reprs, exception messages and tracebacks, and the notebooks' stored outputs. A PostgreSQL ledger's password
(a role of the suite's server that must give one) is planted too: CLI verbs and a dashboard run on it, given
by ``$PGPASSWORD`` or in the URL, and fail on a wrong one, a stopped server and a missing database.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import traceback
from collections.abc import Generator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.engine import make_url

import ims_nb
from ims_nb.client import config
from ims_nb.client.auth import AkSkAuth, ObsAuth, TokenAuth
from ims_nb.client.config import Credentials, Password
from ims_nb.client.retry import RetryPolicy
from ims_nb.client.wire import Token
from ims_nb.errors import ApiError, AuthError, ConfigError, ImsNbError, OutcomeUnknownError, ServerError, TransportError
from ims_nb.exports.ledger import ENV_LEDGER
from ims_nb.sim import Simulator
from ims_nb.vocab import Target
from tests.helpers import cli_simulator, is_exportable
from tests.pg import ROLE_PASSWORD, PgServer
from tests.secret_scan import LEAK_PATTERNS, leaks, scan, scan_files, scan_text

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted([*(ROOT / "notebooks").glob("*.ipynb"), *(ROOT / "ims_nb" / "app").glob("*.ipynb")])
BUCKET = "ims-exports-cn-north-4"
SECURITY_TOKEN = "PLANTED-SECURITY-TOKEN-5f1d0c2a9e8b7a6f"
WRONG_SK = "PLANTED-WRONG-SK-0b9a8c7d6e5f4a3b2c1d0e9f"
WRONG_PASSWORD = "PLANTED-WRONG-PASSWORD-7e6d5c4b"
WRONG_DB_PASSWORD = "PLANTED-WRONG-DB-PASSWORD-3a2b1c0d"
#: ``python -c`` that runs ``ims-nb`` with every log record of every logger, from level 1, in ``$SCAN_LOG``.
DEBUG_MAIN = (
    "import logging, os, sys; "
    "logging.basicConfig(level=1, filename=os.environ['SCAN_LOG'], format='%(name)s %(levelname)s %(message)s'); "
    "from ims_nb.cli._main import main; sys.exit(main(sys.argv[1:]))"
)


@dataclass
class Findings:
    """Every place something was written, scanned against the planted secrets; ``scanned`` counts them."""

    secrets: dict[str, str]
    found: list[str] = field(default_factory=list)
    scanned: dict[str, int] = field(default_factory=dict)

    def text(self, kind: str, where: str, text: str) -> None:
        self.scanned[kind] = self.scanned.get(kind, 0) + 1
        self.found += scan_text(where, text, self.secrets)

    def files(self, kind: str, paths: list[Path]) -> None:
        self.scanned[kind] = self.scanned.get(kind, 0) + len(paths)
        self.found += scan_files(paths, self.secrets)

    def error(self, where: str, exc: BaseException) -> None:
        """An exception's message, repr and full traceback (its cause chain too, as a notebook shows it)."""
        self.text("exception messages", where, f"{exc}\n{exc!r}")
        self.text("exception tracebacks", where, "".join(traceback.format_exception(exc)))


@pytest.fixture(scope="module")
def world() -> Iterator[dict[str, Any]]:
    """A simulator with a fast clock (an export ends within a fraction of a second) and its users."""
    with Simulator(seed=0, images=60, time_scale=100_000) as sim:
        control = httpx.get(f"{sim.endpoint}/_sim/credentials").raise_for_status().json()
        yield {"sim": sim, "info": sim.info, "users": {user["name"]: user for user in control["users"]},
               "domain": control["domain_name"]}  # fmt: skip


def planted_secrets(world: dict[str, Any]) -> dict[str, str]:
    users = world["users"]
    found = {f"{name} SK": user["sk"] for name, user in users.items()}
    found |= {f"{name} password": user["password"] for name, user in users.items()}
    return found | {"security token": SECURITY_TOKEN, "wrong SK": WRONG_SK, "wrong password": WRONG_PASSWORD}


class TokenTap(httpx.HTTPTransport):
    """The default transport, keeping every ``X-Subject-Token`` IAM sends back (the token a client holds)."""

    def __init__(self) -> None:
        super().__init__()
        self.tokens: list[str] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = super().handle_request(request)
        if "x-subject-token" in response.headers:
            self.tokens.append(response.headers["x-subject-token"])
        return response


# --- in-process: clients, a launch and a watch, forced errors, DEBUG logs ---------------------------------


def _raised(call: Any) -> ImsNbError:
    try:
        call()
    except ImsNbError as exc:
        return exc
    raise AssertionError("no error was raised")


def _in_process(world: dict[str, Any], findings: Findings, tmp_path: Path) -> dict[str, Any]:
    """Everything the library is asked to do in-process; returns the objects whose reprs are scanned."""
    info, sim = world["info"], world["sim"]
    operator = world["users"]["ims-operator"]
    keys = {"ak": info.ak, "sk": info.sk, "project_id": info.project_id, "endpoint": info.endpoint}
    signed = ims_nb.connect(info.region, **keys, security_token=SECURITY_TOKEN)
    tap = TokenTap()
    login = ims_nb.connect(info.region, username=operator["name"], password=operator["password"],
                           domain=world["domain"], endpoint=info.endpoint, transport=tap)  # fmt: skip
    with signed, login:
        images = signed.images()
        assert len(login.images()) == len(images)
        assert tap.tokens, "the password login got no token"
        findings.secrets["IAM token"] = tap.tokens[-1]
        assert login.bucket(BUCKET).exists and login.object_exists(BUCKET, "README.txt")  # temporary AK/SK from IAM
        temporary = login._obs_auth().credential  # type: ignore[attr-defined]
        findings.secrets |= {"temporary SK": temporary.secret, "temporary security token": temporary.security_token}
        signed.bucket(BUCKET)
        signed.object_exists(BUCKET, "README.txt")
        exportable = [r["id"] for r in signed.iter_images() if is_exportable(r, info.project_id)][:3]
        job_id = login.export_image(exportable[0], f"{BUCKET}:scan/login.qcow2", "qcow2")
        login.wait([job_id], timeout=60, interval=0.05)
        ledger_path = tmp_path / "ledger.sqlite"
        with ims_nb.Ledger(ledger_path) as ledger:
            plan = ims_nb.plan_exports(images[images["id"].isin(exportable[1:])], bucket=BUCKET, client=signed,
                                       key_template="scan/{id}.{ext}")  # fmt: skip
            launched = ims_nb.launch(plan, client=signed, ledger=ledger, max_rate=100)
            assert len(launched) == 2, launched
            ims_nb.watch(ledger, client=signed, timeout=60, interval=0.05, max_rate=100)
            _an_unknown_outcome_in_the_ledger(world, signed, ledger, exportable[0], findings)
            open_files = sorted(tmp_path.glob("ledger.sqlite*"))  # the WAL exists while the ledger is open
            assert any(path.name.endswith("-wal") for path in open_files), open_files
            findings.files("ledger files", open_files)
            objects = {"ledger": ledger, "ledger frame": ims_nb.jobs_frame(ledger).to_string()}
        _forced_errors(world, findings)
        objects |= {
            "signed client": signed, "login client": login, "signed settings": signed.settings,
            "login settings": login.settings, "async client": signed.to_async(), "signed auth": signed._auth,
            "login auth (holding its token)": login._auth, "credentials": signed.settings.credentials,
            "login OBS auth (holding temporary AK/SK)": login._obs_auth(), "temporary credential": temporary,
            "password": login.settings.password, "simulator": sim, "simulator info": info,
        }  # fmt: skip
    objects |= {
        "AkSkAuth": AkSkAuth(info.ak, info.sk, project_id=info.project_id, security_token=SECURITY_TOKEN),
        "ObsAuth": ObsAuth(info.ak, info.sk, security_token=SECURITY_TOKEN),
        "TokenAuth": TokenAuth(findings.secrets["IAM token"], project_id=info.project_id),
        "Token": Token(findings.secrets["IAM token"], 0.0, info.project_id),
        "Credentials": Credentials(info.ak, info.sk, info.project_id, SECURITY_TOKEN),
        "Password": Password("ims-operator", operator["password"], world["domain"]),
    }
    return objects


def _an_unknown_outcome_in_the_ledger(
    world: dict[str, Any], client: ims_nb.ImsClient, ledger: ims_nb.Ledger, image_id: str, findings: Findings
) -> None:
    """A dropped export POST: OutcomeUnknownError, and a launch that records the row as unknown."""
    control = f"{world['info'].endpoint}/_sim"
    drop = {"kind": "drop", "method": "POST", "path": "/file$", "count": 2}
    httpx.post(f"{control}/faults", json=drop).raise_for_status()
    try:
        exc = _raised(lambda: client.export_image(image_id, f"{BUCKET}:scan/dropped.qcow2", "qcow2"))
        assert isinstance(exc, OutcomeUnknownError), exc
        findings.error("OutcomeUnknownError", exc)
        plan = ims_nb.plan_exports(
            client.images(), bucket=BUCKET, client=client, key_template="scan/unknown/{id}.{ext}"
        )
        launched = ims_nb.launch(plan[plan["image_id"] == image_id], client=client, ledger=ledger, max_rate=100)
        assert set(launched["state"]) == {"unknown"}, launched
    finally:
        httpx.delete(f"{control}/faults").raise_for_status()


def _forced_errors(world: dict[str, Any], findings: Findings) -> None:
    info, auditor = world["info"], world["users"]["ims-auditor"]
    endpoint, control = info.endpoint, f"{info.endpoint}/_sim"
    once = RetryPolicy(max_attempts=1)
    try:
        with ims_nb.connect(info.region, ak=auditor["ak"], sk=WRONG_SK, project_id=info.project_id,
                            endpoint=endpoint) as wrong_sk:  # fmt: skip
            exc = _raised(wrong_sk.images)
            assert isinstance(exc, AuthError), exc
            findings.error("AuthError (wrong SK)", exc)
        with ims_nb.connect(info.region, username="ims-auditor", password=WRONG_PASSWORD, domain=world["domain"],
                            endpoint=endpoint) as wrong_password:  # fmt: skip
            exc = _raised(wrong_password.images)
            assert isinstance(exc, AuthError), exc
            findings.error("AuthError (wrong password)", exc)
    finally:
        httpx.post(f"{control}/lockouts/reset").raise_for_status()
    closed = _closed_port()
    with ims_nb.connect(info.region, ak=info.ak, sk=info.sk, project_id=info.project_id, security_token=SECURITY_TOKEN,
                        endpoint=f"http://127.0.0.1:{closed}", retry=once) as nowhere:  # fmt: skip
        exc = _raised(nowhere.images)
        assert isinstance(exc, TransportError), exc
        findings.error("TransportError (connection refused)", exc)
    echo = {"error_code": "APIGW.0601", "error_msg": f"upstream echoed Signature={'ab' * 32} X-Auth-Token: "
            f"{findings.secrets['IAM token']} sk={info.sk}"}  # fmt: skip
    fault = {"kind": "response", "method": "GET", "path": "cloudimages", "status": 500, "body": json.dumps(echo)}
    httpx.post(f"{control}/faults", json=fault).raise_for_status()
    try:
        with ims_nb.connect(info.region, **{"ak": info.ak, "sk": info.sk, "project_id": info.project_id},
                            endpoint=endpoint, retry=once) as echoed:  # fmt: skip
            exc = _raised(echoed.images)
            assert isinstance(exc, ServerError), exc
            findings.error("ServerError (a body echoing secrets)", exc)
    finally:
        httpx.delete(f"{control}/faults").raise_for_status()


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@pytest.fixture()
def every_record(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """Every log record of every logger from level 1 (below DEBUG), as a handler on the root logger sees it."""
    caplog.set_level(1)
    for name in ("ims_nb", "httpx", "httpcore"):
        caplog.set_level(1, logger=name)
    yield caplog


def test_in_process_nothing_shows_a_secret(
    world: dict[str, Any], every_record: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    findings = Findings(planted_secrets(world))
    objects = _in_process(world, findings, tmp_path)
    for name, value in objects.items():
        findings.text("reprs", f"repr({name})", f"{value!r}\n{value}")
    log_text = "\n".join(every_record.text.splitlines())
    names = {record.name for record in every_record.records}
    assert {"ims_nb", "httpx"} <= names and any(name.startswith("httpcore") for name in names), names
    assert "receive_response_headers" in log_text  # httpcore's DEBUG records, with the headers IAM sent back
    findings.text("log records", "DEBUG log", log_text)
    findings.files("ledger files", sorted(tmp_path.glob("ledger.sqlite*")))  # and once closed
    assert findings.found == [], findings.found
    assert findings.scanned["reprs"] >= 15 and findings.scanned["exception tracebacks"] >= 5, findings.scanned
    print(f"\nin-process secrets scan: {findings.scanned}, {len(every_record.records)} log records of "
          f"{sorted(names)}")  # fmt: skip


# --- the CLI in subprocesses, logging at DEBUG ---------------------------------------------------------


@pytest.fixture(scope="module")
def sim_line() -> Iterator[str]:
    """``ims-nb sim --time-scale 100000`` in a subprocess (seed 0: the secrets planted in ``world``)."""
    with cli_simulator("--images", "60", "--time-scale", "100000") as line:
        yield line


@dataclass(frozen=True)
class Run:
    name: str
    argv: list[str]
    env: dict[str, str]
    stdin: str = ""


def _runs(line: str, tmp: Path, wrong_ak: str, exportable: list[str]) -> list[list[Run]]:
    """Waves of CLI runs, each with its own log file: the second launches the plan the first wrote, without
    watching; the third watches those exports and lists the ledger."""
    info = json.loads(line)
    base = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("HUAWEICLOUD_SDK_") and name not in ("IMS_NB_SIM", "IMS_NB_LEDGER", "COLUMNS")
    }
    base |= {config.ENV_CREDENTIALS_FILE: str(tmp / "missing-credentials"), "IMS_NB_LEDGER": str(tmp / "ledger.sqlite")}
    keys = base | {config.ENV_AK: info["ak"], config.ENV_SK: info["sk"], config.ENV_SECURITY_TOKEN: SECURITY_TOKEN}
    sk_only = base | {config.ENV_SK: info["sk"]}
    fallback = base | {"IMS_NB_SIM": line}
    wrong = base | {config.ENV_AK: wrong_ak, config.ENV_SK: WRONG_SK}
    endpoint = ["--endpoint", info["endpoint"]]
    pick = ["--imagetype", "private", "--status", "active", "--max-items", "12"]
    target = ["--bucket", BUCKET, "--max-rate", "100"]
    preflight = [
        "preflight",
        "--bucket-url",
        f"{BUCKET}:{{id}}.{{ext}}",
        "--format",
        "qcow2",
        "--output-format",
        "json",
    ]
    dry_run = ["export", "--sim", "-", *target, "--format", "qcow2", *pick, "--dry-run", "-o", str(tmp / "plan.csv")]
    launch = ["export", *exportable, *endpoint, *target, "--auto", "--key-template", "cli/{id}.{ext}", "--watch"]
    first = [
        Run("images --sim", ["images", "--sim", line, "--format", "json"], base),
        Run("images env keys", ["images", *endpoint, "--format", "csv", "-o", str(tmp / "images.csv")], keys),
        Run("images fallback", ["images", "--format", "table", "--progress"], fallback),
        Run("preflight --ak", [*preflight, "--ak", info["ak"], *endpoint, *pick], sk_only),
        Run("export --dry-run", dry_run, base, stdin=line + "\n"),
        Run("export --watch", [*launch, "--progress"], keys),
        Run("images wrong SK", ["images", *endpoint], wrong),
    ]
    watch = ["jobs", "--watch", "--sim", "-", "--progress", "-o", str(tmp / "jobs.csv")]
    second = [Run("export --plan", ["export", "--plan", str(tmp / "plan.csv"), *endpoint, "--max-rate", "100"], keys)]
    third = [
        Run("jobs --watch", watch, base, stdin=line + "\n"),
    ]
    return [first, second, third]


def _start(run: Run, tmp: Path, number: int) -> tuple[Run, Path, subprocess.Popen[str]]:
    log = tmp / f"debug-{number}.log"
    process = subprocess.Popen(
        [sys.executable, "-c", DEBUG_MAIN, *run.argv], env=run.env | {"SCAN_LOG": str(log)}, cwd=tmp, text=True,
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    return run, log, process


def _wave(runs: list[Run], tmp: Path, first: int) -> Generator[tuple[Run, Path, int, str, str], None, None]:
    started = [_start(run, tmp, first + number) for number, run in enumerate(runs)]
    for run, log, process in started:
        out, err = process.communicate(run.stdin, timeout=120)
        yield run, log, process.returncode, out, err


def test_cli_verbs_print_log_and_store_no_secret(world: dict[str, Any], sim_line: str, tmp_path: Path) -> None:
    findings = Findings(planted_secrets(world))
    info = world["info"]
    with ims_nb.connect(info.region, ak=info.ak, sk=info.sk, project_id=info.project_id, endpoint=info.endpoint) as c:
        exportable = [r["id"] for r in c.iter_images() if is_exportable(r, info.project_id)][3:6]  # same seed, same ids
    waves = _runs(sim_line, tmp_path, world["users"]["ims-auditor"]["ak"], exportable)
    codes: dict[str, int] = {}
    log_lines = debug_runs = 0
    for number, wave in enumerate(waves):
        for run, log, code, out, err in _wave(wave, tmp_path, 100 * number):
            codes[run.name] = code
            assert "Traceback" not in err, (run.name, err)
            findings.text("CLI stdout", f"{run.name} stdout", out)
            findings.text("CLI stderr", f"{run.name} stderr", err)
            text = log.read_text(encoding="utf-8", errors="replace")
            log_lines += len(text.splitlines())
            debug_runs += "httpcore.http11 DEBUG send_request_headers" in text  # DEBUG records were written
            findings.text("DEBUG log files", f"{run.name} log", text)
    assert codes["images --sim"] == codes["images env keys"] == codes["images fallback"] == 0, codes
    assert codes["export --watch"] == codes["jobs --watch"] == 0 and codes["export --plan"] in (0, 3), codes
    assert debug_runs >= len(codes) - 1, debug_runs  # every run that sent a request logged it at DEBUG
    assert codes["images wrong SK"] == 1, codes
    ledgers = sorted(tmp_path.glob("ledger.sqlite*"))
    assert ledgers, "no ledger was written"
    findings.files("ledger files", ledgers)
    findings.files("output files", [tmp_path / "images.csv", tmp_path / "plan.csv", tmp_path / "jobs.csv"])
    assert findings.found == [], findings.found
    print(f"\nCLI secrets scan: {len(codes)} runs, {findings.scanned}, {log_lines} DEBUG log lines")


# --- a PostgreSQL ledger's password -------------------------------------------------------------------------


def _with_password(url: str, password: str, **parts: Any) -> str:
    """``url`` (``postgresql://ROLE@HOST:PORT/DB``) with ``password``, and another port or database if given."""
    parsed = make_url(url).set(password=password, **parts)
    return parsed.render_as_string(hide_password=False)


def _db_runs(line: str, tmp: Path, url: str, image_ids: list[str]) -> list[Run]:
    """CLI runs on a ledger whose role has a password: given by $PGPASSWORD or in $IMS_NB_LEDGER's URL, and
    wrong, on a server that is not there, or for a database that does not exist (each an error, no secret)."""
    base = {name: value for name, value in os.environ.items()
            if not name.startswith(("HUAWEICLOUD_SDK_", "IMS_NB_", "PG")) and name != "COLUMNS"}  # fmt: skip
    base[config.ENV_CREDENTIALS_FILE] = str(tmp / "missing-credentials")
    secret = _with_password(url, ROLE_PASSWORD)
    export = ["export", *image_ids, "--sim", line, "--bucket", BUCKET, "--format", "qcow2", "--max-rate", "100",
              "--key-template", "db/{id}.{ext}", "--watch", "--progress"]  # fmt: skip
    return [
        Run("export --ledger, $PGPASSWORD", [*export, "--ledger", url], base | {"PGPASSWORD": ROLE_PASSWORD}),
        Run("jobs, $IMS_NB_LEDGER with the password", ["jobs", "--sim", line, "--watch"], base | {ENV_LEDGER: secret}),
        Run("jobs, a wrong password", ["jobs"], base | {ENV_LEDGER: _with_password(url, WRONG_DB_PASSWORD)}),
        Run("jobs, no server", ["jobs"], base | {ENV_LEDGER: _with_password(url, ROLE_PASSWORD, port=_closed_port())}),
        Run(
            "jobs, no such database",
            ["jobs"],
            base | {ENV_LEDGER: _with_password(url, ROLE_PASSWORD, database="no_such_db")},
        ),
        Run("jobs --ledger with the password", ["jobs", "--ledger", secret], base),
    ]


def _db_in_process(world: dict[str, Any], findings: Findings, url: str, pg_server: PgServer) -> dict[str, Any]:
    """A dashboard and a ledger on the password's URL, and the errors of a wrong password and a stopped server;
    returns the objects whose reprs are scanned."""
    from ims_nb.widgets import ExportDashboard

    info = world["info"]
    for name, where in (("wrong password", _with_password(url, WRONG_DB_PASSWORD)),
                        ("no such database", _with_password(url, ROLE_PASSWORD, database="no_such_db"))):  # fmt: skip
        findings.error(f"ConfigError ({name})", _raised(lambda where=where: ims_nb.Ledger(where)))
    ledger = ims_nb.Ledger(_with_password(url, ROLE_PASSWORD))
    client = ims_nb.connect(info.region, ak=info.ak, sk=info.sk, project_id=info.project_id, endpoint=info.endpoint)
    dashboard = ExportDashboard(client, ledger)
    findings.text("widget views", "dashboard header", dashboard._header.value)
    pg_server.stop()
    try:
        with pytest.raises(Exception) as stopped:  # noqa: PT011 - what a server gone mid-use raises, scanned
            ledger.rows()
        findings.error("a server gone mid-use", stopped.value)
    finally:
        pg_server.start()
    return {
        "database ledger": ledger,
        "its engine": ledger._engine,
        "dashboard": dashboard,  # type: ignore[attr-defined]
        "dashboard opened by URL": ExportDashboard(client, _with_password(url, ROLE_PASSWORD)),
        "client": client,
    }


def test_a_database_password_never_shows_in_output_logs_reprs_or_errors(
    world: dict[str, Any], sim_line: str, pg_password_role: str, pg_server: PgServer, tmp_path: Path,
    every_record: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    findings = Findings(planted_secrets(world) | {"database password": ROLE_PASSWORD,
                                                  "wrong database password": WRONG_DB_PASSWORD})  # fmt: skip
    objects = _db_in_process(world, findings, pg_password_role, pg_server)
    for name, value in objects.items():
        findings.text("reprs", f"repr({name})", f"{value!r}\n{value}")
    info = world["info"]
    with ims_nb.connect(info.region, ak=info.ak, sk=info.sk, project_id=info.project_id, endpoint=info.endpoint) as c:
        image_ids = [r["id"] for r in c.iter_images() if is_exportable(r, info.project_id)][6:8]  # none else sent
    codes: dict[str, int] = {}
    for run, log, code, out, err in _wave(_db_runs(sim_line, tmp_path, pg_password_role, image_ids), tmp_path, 900):
        codes[run.name] = code
        assert "Traceback" not in err, (run.name, err)
        findings.text("CLI stdout", f"{run.name} stdout", out)
        findings.text("CLI stderr", f"{run.name} stderr", err)
        findings.text("DEBUG log files", f"{run.name} log", log.read_text(encoding="utf-8", errors="replace"))
    findings.text("log records", "DEBUG log", every_record.text)
    assert codes["export --ledger, $PGPASSWORD"] == codes["jobs, $IMS_NB_LEDGER with the password"] == 0, codes
    assert {codes[name] for name in codes if name.startswith("jobs") and "with the password" not in name} == {2}
    assert findings.found == [], findings.found
    assert findings.scanned["exception tracebacks"] >= 3 and findings.scanned["reprs"] >= 5, findings.scanned
    print(f"\ndatabase password scan: {len(codes)} CLI runs, {findings.scanned}")


# --- the notebooks' stored outputs --------------------------------------------------------------------------


def test_notebook_outputs_and_the_app_hold_no_secret(world: dict[str, Any]) -> None:
    """The stored outputs of notebooks/ and of the app's notebook (``tests/test_notebook_outputs.py`` scans the
    first with the same scanner; here every planted shape and the app are added)."""
    secrets = planted_secrets(world)
    assert len(NOTEBOOKS) >= 5
    for path in NOTEBOOKS:
        assert scan(json.loads(path.read_text(encoding="utf-8")), secrets) == [], path.name


# --- exception chains -------------------------------------------------------------------------------------


NEWLINE_TOKEN = "PLANTED-NEWLINE-TOKEN-4d3c2b1a"


#: One finding, seen in the library and in the CLI.


@pytest.mark.parametrize("bad", ["security token", "access key"])
def test_a_credential_an_http_header_cannot_carry_is_refused_before_any_request(
    world: dict[str, Any], every_record: pytest.LogCaptureFixture, bad: str
) -> None:
    info = world["info"]
    secrets = planted_secrets(world) | {"security token with a newline": NEWLINE_TOKEN}
    token = NEWLINE_TOKEN + "\n" if bad == "security token" else SECURITY_TOKEN
    ak = info.ak + "\n" if bad == "access key" else info.ak
    with pytest.raises(ConfigError, match=f"the {'AK' if bad == 'access key' else bad} from arguments has a char"):
        ims_nb.connect(info.region, ak=ak, sk=info.sk, project_id=info.project_id, security_token=token,
                       endpoint=info.endpoint, retry=RetryPolicy(max_attempts=1))  # fmt: skip
    exc = _raised(lambda: ims_nb.connect(info.region, ak=ak, sk=info.sk, project_id=info.project_id,
                                         security_token=token, endpoint=info.endpoint))  # fmt: skip
    assert scan_text("message", str(exc), secrets) == []
    found = scan_text("traceback", "".join(traceback.format_exception(exc)), secrets)
    assert found + scan_text("DEBUG log", every_record.text, secrets) == []


def test_an_error_body_echoing_an_obs_authorization_is_masked(world: dict[str, Any]) -> None:
    info = world["info"]
    control = f"{info.endpoint}/_sim"
    echo = {"error_code": "APIGW.0601", "error_msg": f"upstream echoed Authorization: OBS {info.ak}:{'A' * 27}="}
    fault = {"kind": "response", "method": "GET", "path": "cloudimages", "status": 500, "body": json.dumps(echo)}
    httpx.post(f"{control}/faults", json=fault).raise_for_status()
    try:
        with ims_nb.connect(info.region, ak=info.ak, sk=info.sk, project_id=info.project_id, endpoint=info.endpoint,
                            retry=RetryPolicy(max_attempts=1)) as client:  # fmt: skip
            exc = _raised(client.images)
    finally:
        httpx.delete(f"{control}/faults").raise_for_status()
    assert isinstance(exc, ServerError)
    assert scan_text("ServerError", str(exc), planted_secrets(world)) == []


# --- the scanner finds what it should --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("Authorization: SDK-HMAC-SHA256 Access=AK, SignedHeaders=host, Signature=" + "0f" * 32, "signature value"),
        ("Headers({'authorization': 'OBS XTBJ5TS40A7BK148XNC1:c2lnbmF0dXJlc2lnbmF0dXJlMTI='})", "OBS signature"),
        ("x-obs-security-token: abc", "security token header"),
        ("{'X-Security-Token': 'abc'}", "security token header"),
        ("'x-amz-security-token': b'abc'", "security token header"),
    ],
)
def test_the_scanner_finds_signatures_and_security_tokens(text: str, name: str) -> None:
    assert name in set(leaks(text, {}))


@pytest.mark.parametrize(
    "text",
    ["Signature=***", "OBS XTBJ5TS40A7BK148XNC1:***", "X-Security-Token: ***", "security_token=None",
     "[(b'x-subject-token', b'***'), (b'content-length', b'479')]",
     "AkSkAuth(access_key='XTBJ', secret_key='***', project_id=None, security_token='***')"],
)  # fmt: skip
def test_the_scanner_lets_masked_text_pass(text: str) -> None:
    assert list(leaks(text, {})) == []


def test_the_scanner_reads_sqlite_pages_and_wal_frames(tmp_path: Path) -> None:
    """A secret written to a ledger is found in the file bytes, committed or only in the WAL."""
    secret = "PLANTED-IN-THE-LEDGER-0123456789"
    with ims_nb.Ledger(tmp_path / "ledger.sqlite") as ledger:
        row_id = ledger.claim(image_id="i", target=Target(BUCKET, "x.qcow2"), image_name="n", file_format="qcow2",
                              quick=False, size_bytes=1, region="cn-north-4")  # fmt: skip
        assert row_id is not None
        ledger.update(row_id, note=secret)
        found = scan_files(sorted(tmp_path.glob("ledger.sqlite*")), {"planted": secret})
    assert found and all(line.endswith(": planted") for line in found), found
    assert set(LEAK_PATTERNS) >= {"signature value", "IAM token", "Authorization header"}


def test_a_refusal_that_echoes_a_secret_reaches_the_ledger_masked(world: dict[str, Any]) -> None:
    """A refusal's message goes to the ledger (``fail_reason``) as ``ApiError.message``, which masks the secrets
    of every client made in the process, and signatures."""
    info = world["info"]
    ims_nb.connect(info.region, ak=info.ak, sk=info.sk, project_id=info.project_id, endpoint=info.endpoint).close()
    error = ApiError(400, "IMG.0001", f"bad request signed Signature={'cd' * 32} with {info.sk}")
    assert scan_text("ApiError", f"{error} {error.message}", planted_secrets(world)) == []
