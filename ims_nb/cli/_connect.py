"""What the client verbs of ``ims-nb`` share: connection options, notices, one-line errors and exit codes."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import textwrap
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TextIO

from ims_nb.client import ImsClient, config
from ims_nb.client.connection import INSECURE_PREFIX, connect, connect_simulator
from ims_nb.errors import ApiError, ConfigError, ImsNbError, InsecureTransportWarning, SimulatorWarning, mask_secrets

EXIT_OK = 0
EXIT_FAILED = 1  # the service or the network failed (ApiError, TransportError, ...)
EXIT_USAGE = 2  # bad arguments or configuration (argparse errors, ConfigError)
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE: the reader of stdout went away
EXIT_INTERRUPTED = 130  # 128 + SIGINT
SIMULATOR_PREFIX = "SIMULATOR:"
SIM_FIELDS = config.SIMULATOR_FIELDS
READ_STDIN = "-"

CONNECTION_HELP = (
    "The secret key (SK) is never a command-line option. With --ak, it comes from $HUAWEICLOUD_SDK_SK or the "
    "[basic] section of the SDK credentials file ($HUAWEICLOUD_SDK_CREDENTIALS_FILE, default "
    "~/.huaweicloud/credentials). Without --ak the chain is: $HUAWEICLOUD_SDK_AK/_SK, the credentials file, "
    "$IMS_NB_SIM, else an embedded simulator (announced by a SIMULATOR: line on stderr). --sim uses a running "
    "`ims-nb sim` and its credentials instead of all of these. TLS certificates are always verified: --ca-bundle "
    "trusts a private CA; only --insecure turns verification off (and allows plain HTTP to a host that is not "
    "loopback), with a warning line."
)


class HelpFormatter(argparse.HelpFormatter):
    """Wraps prose to the terminal but keeps indented lines (examples) and ``heading:`` lines as written."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        lines: list[str] = []
        prose: list[str] = []
        for line in [*text.splitlines(), ""]:
            if line.strip() and not line.startswith(" ") and not line.endswith(":"):
                prose.append(line.strip())
                continue
            if prose:
                lines.append(textwrap.fill(" ".join(prose), width, initial_indent=indent, subsequent_indent=indent))
                prose.clear()
            lines.append(indent + line if line.strip() else "")
        return "\n".join(lines).rstrip("\n")


def add_connection_options(parser: argparse.ArgumentParser) -> None:
    """``--region``, ``--endpoint``, ``--ak``, ``--project-id`` and ``--sim``, in a "connection" group."""
    group = parser.add_argument_group("connection", CONNECTION_HELP)
    group.add_argument("--region", help="region id (default: $HUAWEICLOUD_SDK_REGION, else cn-north-4)")
    group.add_argument("--endpoint", metavar="URL", help="one URL for IMS, IAM and OBS (a private deployment)")
    group.add_argument("--ak", metavar="AK", help="access key id; its SK comes from the environment or the file")
    group.add_argument("--project-id", metavar="ID", help="project id (default: discovered for the region)")
    group.add_argument(
        "--sim",
        metavar="LINE",
        help="the JSON line a running `ims-nb sim` printed, or - to read that line from stdin",
    )
    group.add_argument("--ca-bundle", metavar="PEM", help="verify TLS certificates against this CA bundle")
    group.add_argument(
        "--insecure",
        action="store_true",
        help="do not verify TLS certificates, and allow plain HTTP to any host (prints a warning)",
    )


class Console:
    """A verb's voice on stderr: notice lines and one-line errors, with every known secret masked."""

    def __init__(self, verb: str, stream: TextIO) -> None:
        self.verb = verb
        self.stream = stream
        self._secrets: set[str] = set()

    def keep_secret(self, *values: str | None) -> None:
        """Never print these values (an SK, a security token)."""
        self._secrets.update(value for value in values if value)

    def notice(self, text: str) -> None:
        print(self._one_line(text), file=self.stream, flush=True)

    def error(self, text: str) -> None:
        print(f"ims-nb {self.verb}: error: {self._one_line(text)}", file=self.stream, flush=True)

    def _one_line(self, text: str) -> str:
        return mask_secrets(" ".join(text.split()), tuple(self._secrets))


#: A client verb: does its work with the parsed arguments, speaks through the console, returns an exit code.
Verb = Callable[[argparse.Namespace, Console], int]


def run_client_verb(args: argparse.Namespace, verb: Verb, stderr: TextIO | None = None) -> int:
    """Run ``verb`` with notices on; turn every failure into a one-line message and an exit code."""
    console = Console(args.verb, stderr or sys.stderr)
    try:
        with _notices(console):
            return verb(args, console)
    except ConfigError as exc:
        console.error(str(exc))
        return EXIT_USAGE
    except ImsNbError as exc:
        console.error(str(exc))
        return EXIT_FAILED
    except BrokenPipeError:
        _silence_stdout()
        return EXIT_BROKEN_PIPE
    except OSError as exc:  # the output file cannot be written
        console.error(f"{exc.filename}: {exc.strerror or exc}" if exc.filename else str(exc))
        return EXIT_USAGE
    except KeyboardInterrupt:
        console.error("interrupted")
        return EXIT_INTERRUPTED
    except Exception as exc:  # a bug: still one line, never a traceback
        console.error(f"unexpected {type(exc).__name__}: {exc}")
        return EXIT_FAILED


def connect_from_args(
    args: argparse.Namespace, console: Console, *, stdin: TextIO | None = None, **options: Any
) -> ImsClient:
    """A client from the connection options (see ``CONNECTION_HELP``); ``options`` go to ``connect``.

    Raises:
        ConfigError: a bad ``--sim`` line, ``--sim`` mixed with other connection options, an ``--ak``
            without its SK, or anything ``connect`` refuses.
    """
    console.keep_secret(os.environ.get(config.ENV_SK), os.environ.get(config.ENV_SECURITY_TOKEN))
    options = {**_transport_options(args), **options}
    if args.region:
        config.check_region(args.region)  # before any fallback to a simulator, which would play any name
    line = _simulator_line(args.sim, stdin or sys.stdin) if args.sim is not None else None
    if line is not None:
        console.keep_secret(line["sk"])
        client = _connect_simulator(args, line, options)
        where = f"{line['endpoint']} (region {line['region']})"
        console.notice(f"{SIMULATOR_PREFIX} using the simulator at {where} from --sim")
    elif args.ak:
        sk, token = _secret_of(args.ak)
        console.keep_secret(sk, token)
        client = connect(
            args.region, ak=args.ak, sk=sk, project_id=args.project_id, security_token=token,
            endpoint=args.endpoint, **options,
        )  # fmt: skip
    else:
        client = connect(args.region, project_id=args.project_id, endpoint=args.endpoint, **options)
    if client.settings.credentials is not None:
        console.keep_secret(*client.settings.credentials.secrets)
    return client


def _transport_options(args: argparse.Namespace) -> dict[str, Any]:
    """``insecure`` and ``ca_bundle`` for ``connect``, from ``--insecure`` and ``--ca-bundle`` when given."""
    options: dict[str, Any] = {}
    if getattr(args, "insecure", False):
        options["insecure"] = True
    if getattr(args, "ca_bundle", None):
        options["ca_bundle"] = args.ca_bundle
    return options


def _simulator_line(value: str, stdin: TextIO) -> dict[str, str]:
    text = stdin.readline() if value == READ_STDIN else value
    try:
        found = json.loads(text)
        return {key: str(found[key]) for key in SIM_FIELDS}
    except (ValueError, KeyError, TypeError):
        source = "stdin" if value == READ_STDIN else "the --sim value"
        raise ConfigError(f"{source} is not the JSON line `ims-nb sim` prints (with {', '.join(SIM_FIELDS)})") from None


def _connect_simulator(args: argparse.Namespace, line: dict[str, str], options: dict[str, Any]) -> ImsClient:
    if args.ak or args.endpoint or args.project_id:
        raise ConfigError("--sim brings its own endpoint and credentials: leave out --ak, --endpoint and --project-id")
    if args.region and args.region != line["region"]:
        raise ConfigError(f"the simulator plays region {line['region']!r}, not {args.region!r}")
    return connect_simulator(line, **options)


def _secret_of(ak: str) -> tuple[str, str | None]:
    """The SK (and security token) that belongs to ``--ak``: from the environment, else the credentials file."""
    env_ak, env_sk = os.environ.get(config.ENV_AK), os.environ.get(config.ENV_SK)
    if env_sk and env_ak in (None, "", ak):
        return env_sk, os.environ.get(config.ENV_SECURITY_TOKEN) or None
    path = config.credentials_file_path()
    found = config.credentials_from_file(path)
    if found is not None and found.ak == ak:
        return found.sk, found.security_token
    raise ConfigError(
        f"no SK for --ak {ak}: set {config.ENV_SK} (with {config.ENV_AK} unset or equal to it) or put both in "
        f"the [basic] section of {path}; the SK is never a command-line option"
    )


@contextmanager
def _notices(console: Console) -> Iterator[None]:
    """Each distinct ``SimulatorWarning`` becomes one notice line, an ``InsecureTransportWarning`` one warning line;
    ims_nb's log warnings become notice lines."""
    shown: set[str] = set()
    original = warnings.showwarning

    def show(
        message: Warning | str,
        category: type[Warning],
        filename: str,
        lineno: int,
        file: TextIO | None = None,
        line: str | None = None,
    ) -> None:
        if not issubclass(category, SimulatorWarning | InsecureTransportWarning):
            original(message, category, filename, lineno, file, line)
        elif str(message) not in shown:
            shown.add(str(message))
            insecure = issubclass(category, InsecureTransportWarning)
            console.notice(f"ims-nb {console.verb}: warning: {message}" if insecure else str(message))

    handler = _LogNotices(console)
    logger = logging.getLogger("ims_nb")
    with warnings.catch_warnings():
        warnings.simplefilter("always", SimulatorWarning)
        warnings.simplefilter("always", InsecureTransportWarning)
        warnings.showwarning = show
        logger.addHandler(handler)
        try:
            yield
        finally:
            logger.removeHandler(handler)


class _LogNotices(logging.Handler):
    """ims_nb's warnings as ``ims-nb VERB: warning: ...`` lines (the SIMULATOR one is already a notice)."""

    def __init__(self, console: Console) -> None:
        super().__init__(logging.WARNING)
        self._console = console

    def emit(self, record: logging.LogRecord) -> None:
        text = record.getMessage()
        if not text.startswith((SIMULATOR_PREFIX, INSECURE_PREFIX)):  # each already has its line
            self._console.notice(f"ims-nb {self._console.verb}: warning: {text}")


def _silence_stdout() -> None:
    """After a broken pipe, point stdout at /dev/null so that the interpreter's final flush stays quiet."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass


NOT_FOUND = 404


def images_by_id(client: Any, image_ids: list[str]) -> list[dict[str, Any]]:
    """One record per id; every id the service does not know is named in one ConfigError."""
    records, missing = [], []
    for image_id in image_ids:
        try:
            records.append(client.image(image_id))
        except ApiError as exc:
            if exc.status != NOT_FOUND:
                raise
            missing.append(image_id)
    if missing:
        raise ConfigError(f"no such image: {', '.join(missing)}")
    return records


class LookupOnce:
    """The client for a plan's lookups: each bucket, target object and the running exports asked once.

    A summary and the violations then judge from the same answers (an object that appears between two
    calls cannot make them disagree), with half the requests.
    """

    def __init__(self, client: Any) -> None:
        self._client = client
        self._buckets: dict[str, Any] = {}
        self._objects: dict[tuple[str, str], bool] = {}
        self._running: dict[str, str] | None = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def bucket(self, name: str) -> Any:
        if name not in self._buckets:
            self._buckets[name] = self._client.bucket(name)
        return self._buckets[name]

    def object_exists(self, bucket: str, key: str) -> bool:
        if (bucket, key) not in self._objects:
            self._objects[bucket, key] = bool(self._client.object_exists(bucket, key))
        return self._objects[bucket, key]

    def exports_in_progress(self) -> dict[str, str]:
        if self._running is None:
            self._running = dict(self._client.exports_in_progress())
        return dict(self._running)
