"""A verb's voice: notice lines and one-line errors on stderr, secrets masked, and the exit codes."""

from __future__ import annotations

import argparse
import logging
import os
import re
import sys
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Final, TextIO

from ims_nb.errors import ConfigError, ImsNbError, InsecureTransportWarning, SimulatorWarning, mask_secrets

EXIT_OK = 0
EXIT_FAILED = 1  # the service or the network failed (ApiError, TransportError, ...)
EXIT_USAGE = 2  # bad arguments or configuration (argparse errors, ConfigError)
#: Some selected image would be refused (1 stays for service and network failures, 2 for bad arguments).
EXIT_REFUSED = 3
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE: the reader of stdout went away
EXIT_INTERRUPTED = 130  # 128 + SIGINT
SIMULATOR_PREFIX = "SIMULATOR:"
#: The CLI's spelling of the library's keyword arguments, which its messages name (``pass project_id=``).
CLI_SPELLING: Final[dict[str, str]] = {
    "project_id": "--project-id", "region": "--region", "endpoint": "--endpoint", "ak": "--ak",
    "ca_bundle": "--ca-bundle", "insecure": "--insecure", "quick": "--quick", "file_format": "--format",
    "key_template": "--key-template", "max_items": "--max-items",
}  # fmt: skip
#: ``name=``, ``name=True``, ``name=False`` or ``name=PLACEHOLDER`` ending a word (not ``name='value'``).
_KEYWORD = re.compile(rf"\b({'|'.join(CLI_SPELLING)})=(True|False|[A-Z][A-Z_]*)?(?=[\s),;:.]|$)")


def cli_spelling(text: str) -> str:
    """``text`` with the library's keyword arguments in the CLI's spelling: ``pass project_id=`` becomes ``pass
    --project-id``, ``quick=True`` ``--quick``, ``quick=False`` ``no --quick``, ``ca_bundle=PATH`` ``--ca-bundle
    PATH``."""

    def spell(match: re.Match[str]) -> str:
        option, value = CLI_SPELLING[match[1]], match[2]
        if value == "False":
            return f"no {option}"
        return option if value in (None, "True") else f"{option} {value}"

    return _KEYWORD.sub(spell, text)


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
        print(f"ims-nb {self.verb}: error: {self._one_line(cli_spelling(text))}", file=self.stream, flush=True)

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
        from ims_nb.client.connection import INSECURE_PREFIX  # not at the top: `ims-nb --help` loads no client

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
