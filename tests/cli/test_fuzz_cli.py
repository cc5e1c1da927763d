"""Fuzzed command lines: every verb answers bad arguments with one line on stderr and a documented exit code.

Hypothesis drives the arguments of ``images``, ``preflight``, ``export`` (dry runs, plan files, and real
launches against a reset simulator), ``jobs``, and the parsing of ``sim``, ``lab`` and ``app`` (no server is
started), calling ``ims_nb.cli._main.main`` in-process against an embedded simulator. Whatever it passes, the verb
returns one of its documented exit codes, never raises, never prints a traceback nor the catch-all
"unexpected" error, prints at most one error line (exactly one for exit code 2), and never prints a secret.

``IMS_NB_FUZZ_SCALE=10`` multiplies every example count (the numbers in the README are for scale 1).
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import os
import re
import sys
from collections import Counter
from collections.abc import Iterator
from contextlib import redirect_stderr, redirect_stdout, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import assume, example, given
from hypothesis import strategies as st

from ims_nb.cli._children import sim_command
from ims_nb.cli._filters import FILTER_OPTIONS, TIME_OPS
from ims_nb.cli._main import build_parser, main
from ims_nb.cli._options import MAX_PORT
from ims_nb.cli.jobs import STATE_GROUPS
from ims_nb.client import config, wire
from ims_nb.sim import Simulator
from ims_nb.sim.control import MAX_CLOCK_SCALE
from ims_nb.sim.server import bind, check_host
from ims_nb.vocab import FILE_FORMATS, State
from tests.helpers import is_exportable
from tests.sim.strategies import case_summary, fuzz

BUCKET = "ims-exports-cn-north-4"
OTHER_BUCKETS = ("ims-exports-scratch", "ims-archive-cold", "ims-exports-ap-southeast-1", "no-such-bucket")
#: Exit codes each verb documents (130 and 141 need a signal or a closed pipe, which no example sends).
EXIT_CODES = {"images": {0, 1, 2}, "preflight": {0, 1, 2, 3}, "export": {0, 1, 2, 3}, "jobs": {0, 1, 2}}
ERROR_LINE = re.compile(r"^ims-nb(?: [a-z]+)?: error: ")
CASES: Counter[str] = Counter()
#: Exit codes seen, per verb: how many examples got past argparse, were refused, or ran.
EXITS: dict[str, Counter[str]] = {verb: Counter() for verb in EXIT_CODES}


def _exits() -> str:
    return "\nexit codes: " + "; ".join(f"{verb} " + ", ".join(f"{code} {n}" for code, n in sorted(codes.items()))
                                       for verb, codes in EXITS.items())  # fmt: skip


_summary = case_summary("CLI fuzz cases tried", CASES, _exits)


# --- running a command line in-process -----------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    argv: list[str]
    code: int
    out: str
    err: str

    def __str__(self) -> str:
        return f"argv={self.argv!r} -> {self.code}\nstdout: {self.out[-800:]!r}\nstderr: {self.err[-1500:]!r}"


def run_cli(argv: list[str], stdin: str = "") -> Outcome:
    """``main(argv)`` with stdin, stdout and stderr as strings; argparse's exits come back as their code.

    Any other exception propagates: that is the failure the fuzzers look for.
    """
    out, err, saved_stdin = io.StringIO(), io.StringIO(), sys.stdin
    sys.stdin = io.StringIO(stdin)
    try:
        with redirect_stdout(out), redirect_stderr(err):
            try:
                code = main(argv)
            except SystemExit as exit_info:
                code = exit_info.code if isinstance(exit_info.code, int) else (0 if exit_info.code is None else 2)
    finally:
        sys.stdin = saved_stdin
    return Outcome(argv, code, out.getvalue(), err.getvalue())


def check_documented(outcome: Outcome, verb: str, secrets: tuple[str, ...]) -> None:
    """A documented exit code; no traceback, no "unexpected"; at most one error line, one for exit 2; no secret."""
    usage = outcome.code == 2 and outcome.err.rstrip().endswith("--help)")  # argparse's own refusals
    EXITS[verb][f"{outcome.code}{' (usage)' if usage else ''}"] += 1
    assert outcome.code in EXIT_CODES[verb], outcome
    assert "Traceback" not in outcome.err and "Traceback" not in outcome.out, outcome
    lines = outcome.err.splitlines()
    errors = [line for line in lines if ERROR_LINE.match(line)]
    assert not any(": error: unexpected " in line for line in errors), outcome
    assert len(errors) <= 1, outcome
    if outcome.code == 2:
        assert len(errors) == 1, outcome
        strays = [line for line in lines if not line.startswith(("SIMULATOR:", "ims-nb"))]
        assert strays == [], outcome  # the one error line was not broken in two
    if outcome.code in (0, 3):
        assert errors == [], outcome
    for secret in secrets:
        assert secret not in outcome.out and secret not in outcome.err, f"a secret was printed: {outcome.argv!r}"


# --- the world: one embedded simulator with a fast clock, a machine without credentials ---------------


@dataclass(frozen=True, repr=False)
class World:
    sim: Simulator
    line: str
    ids: list[str]
    exportable: list[str]
    secrets: tuple[str, ...]
    tmp: Path
    ledger: Path

    @property
    def endpoint(self) -> str:
        return self.sim.endpoint

    def __repr__(self) -> str:
        return f"World({self.endpoint})"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """``Simulator(seed=0, images=60, time_scale=100000)`` (an export ends within a fraction of a second), an
    environment without credentials whose ``$IMS_NB_SIM`` is that simulator, and a ledger with two exports."""
    tmp = tmp_path_factory.mktemp("fuzz-cli")
    with Simulator(seed=0, images=60, time_scale=100_000) as sim, pytest.MonkeyPatch.context() as env:
        for name in list(os.environ):
            if name.startswith("HUAWEICLOUD_SDK_") or name in ("COLUMNS", "IMS_NB_SIM", "IMS_NB_LEDGER"):
                env.delenv(name)
        line = json.dumps(sim.info.as_json_dict())
        env.setenv("HUAWEICLOUD_SDK_CREDENTIALS_FILE", str(tmp / "missing-credentials"))
        env.setenv("IMS_NB_SIM", line)
        env.setenv("IMS_NB_LEDGER", str(tmp / "default-ledger.sqlite"))
        env.chdir(tmp)  # relative output, ledger and plan names land here
        users = httpx.get(f"{sim.endpoint}/_sim/credentials").raise_for_status().json()["users"]
        secrets = tuple(user[field] for user in users for field in ("sk", "password"))
        images = _images(sim)
        ids = [image["id"] for image in images]
        exportable = [image["id"] for image in images if is_exportable(image, sim.info.project_id)]
        assert len(exportable) >= 6
        ledger = tmp / "jobs.sqlite"
        launched = run_cli(["export", *exportable[:2], "--bucket", BUCKET, "--format", "qcow2", "--ledger",
                            str(ledger), "--sim", line, "--watch", "--timeout", "60"])  # fmt: skip
        assert launched.code == 0, launched
        (tmp / "not-sqlite.sqlite").write_text("not a ledger\n")
        (tmp / "empty.sqlite").write_bytes(b"")
        (tmp / "a-folder").mkdir()
        yield World(sim, line, ids, exportable, secrets, tmp, ledger)


def _images(sim: Simulator) -> list[dict[str, Any]]:
    import ims_nb

    info = sim.info
    with ims_nb.connect(info.region, ak=info.ak, sk=info.sk, project_id=info.project_id, endpoint=info.endpoint) as c:
        return list(c.iter_images())


# --- strategies ------------------------------------------------------------------------------------

#: Any argument: every Unicode character but surrogates (argv cannot carry those), with a share of dashes.
anything = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=16) | st.sampled_from(
    ["", "-", "--", "-x", "--x", "-1", "1e9", "nan", "inf", " ", "\n", "a=b", "=", ":", "{", "}", "%s", "\x00"]
)
#: Any file name: no folder part, so that whatever is written stays in the world's folder (the working directory).
path_text = anything.map(lambda text: text.replace("/", "_"))


def mostly(good: st.SearchStrategy[Any], bad: st.SearchStrategy[Any], one_in: int = 4) -> st.SearchStrategy[Any]:
    """``good``, and ``bad`` one time in ``one_in``: most command lines get past argparse to the verb.

    (Hypothesis leans towards small integers, so the bad branch is the largest one.)
    """
    return st.integers(0, one_in - 1).flatmap(lambda n: bad if n == one_in - 1 else good)


def valid(*values: str) -> st.SearchStrategy[str]:
    """One of ``values`` mostly, else anything."""
    return mostly(st.sampled_from(values), anything)


numbers = st.integers(-3, 12).map(str) | st.sampled_from(
    ["0", "1.5", "1e3", "-0", " 2", "\u0663", "99999999999999999999"]
)
counts = mostly(st.integers(0, 6).map(str), numbers | anything)
GOOD_TIMES = ("2025-01-31", "2025-01-31T08:00:00Z", "2025-01-31T08:00:00+08:00")
BAD_TIMES = ("2025-13-01", "yesterday", "", "0")
moments = mostly(
    st.builds(lambda op, when: f"{op}:{when}", st.sampled_from(TIME_OPS), st.sampled_from(GOOD_TIMES)),
    st.builds(lambda op, when: f"{op}:{when}", st.sampled_from(TIME_OPS) | anything, st.sampled_from(BAD_TIMES))
    | anything,
)
FILTER_NAMES = sorted(set(wire.FILTER_ALIASES) | wire.WIRE_FILTERS | {"limit", "marker", "LIMIT"})
GOOD_TEMPLATES = ("{name}-{id8}.{ext}", "{id}.{format}", "exports/{platform}/{name}-{id}.{ext}", "{id}.qcow2",
                  "fixed.qcow2", "ü-{id}.qcow2", "a b-{id}.qcow2", "x" * 130 + "{id}", "dir//{id}.vhd")  # fmt: skip
BAD_TEMPLATES = ("{bad}", "{0}", "{id!r}", "{id:>5}", "{", "}", "{{id}}", "{id.real}", "{id[0]}", "", "{name}")
templates = mostly(st.sampled_from(GOOD_TEMPLATES), st.sampled_from(BAD_TEMPLATES) | anything)
bucket_names = valid(BUCKET, BUCKET, *OTHER_BUCKETS, "Upper", "a", "-bad", "a..b", "192.168.1.1")
bucket_urls = mostly(
    st.builds(lambda b, k: f"{b}:{k}", bucket_names, templates),
    st.builds(lambda b, sep, k: f"{b}{sep}{k}", bucket_names, st.sampled_from(["::", "", "/", " : "]), templates)
    | anything,
)


def option(flag: str, values: st.SearchStrategy[str]) -> st.SearchStrategy[list[str]]:
    """``[flag, value]``, or one time in six ``[flag=value]``."""
    spelled = st.tuples(values, st.integers(0, 5))
    return spelled.map(lambda drawn: [f"{flag}={drawn[0]}"] if drawn[1] == 5 else [flag, drawn[0]])


def flag(name: str) -> st.SearchStrategy[list[str]]:
    return st.just([name])


def output_paths(world: World) -> st.SearchStrategy[str]:
    good = st.sampled_from(["out.txt", "out.csv", "out.json", "out.parquet"]).map(lambda name: str(world.tmp / name))
    bad = st.sampled_from(["none/x.csv", "a-folder", "."]).map(lambda name: str(world.tmp / name)) | path_text
    return mostly(good, bad)


def filter_options(world: World) -> list[st.SearchStrategy[list[str]]]:
    options = []
    for spec in FILTER_OPTIONS:
        if spec.flag in ("--created-at", "--updated-at"):
            values = moments
        elif spec.choices:
            values = valid(*spec.choices)
        elif spec.flag == "--tag":
            values = valid("env.dev=", "team=sre", "a=b")
        else:
            values = valid("Ubuntu", "CentOS", "x", world.sim.info.project_id)
        options.append(option(spec.flag, values))
    names = valid(*FILTER_NAMES)
    return [
        *options,
        flag("--whole-image"),
        flag("--no-whole-image"),
        st.builds(lambda n, v: ["--filter", f"{n}={v}"], names, valid("true", "64", "x", "")),
        option("--filter", anything),
        option("--max-items", counts),
    ]


def connection(world: World, stdin_line: bool = True) -> st.SearchStrategy[tuple[list[str], str]]:
    """Connection options and what stdin holds: mostly ``--sim LINE``; else the ``$IMS_NB_SIM`` fallback, a
    bad line, ``--sim -``, and the other options (which, without credentials, never reach the network)."""
    line = world.line
    garbage = st.sampled_from(["{}", "[]", "null", line[:-1], line.replace('"sk"', '"SK"'), "not json"]) | anything
    others = st.lists(
        st.one_of(
            option("--region", valid("cn-north-4", "ap-southeast-1", "mars-1")),
            option("--endpoint", valid(world.endpoint, "http://10.0.0.1", "ftp://x", "https://")),
            option("--ak", valid(world.sim.info.ak)),
            option("--project-id", valid(world.sim.info.project_id)),
            option("--ca-bundle", mostly(st.just(str(world.tmp / "not-sqlite.sqlite")), path_text)),
            flag("--insecure"),
        ),
        max_size=2,
    ).map(lambda groups: [token for group in groups for token in group])
    choices = [
        garbage.map(lambda bad: (["--sim", bad], "")),
        others.map(lambda tokens: (tokens, "")),
        st.just(([], "")),
    ]
    if stdin_line:
        choices.append((st.just(line) | garbage).map(lambda text: (["--sim", "-"], text + "\n")))
    return mostly(st.just((["--sim", line], "")), st.one_of(*choices), one_in=3)


def one_in(draw: st.DrawFn, n: int) -> bool:
    """True one time in ``n`` (the largest of ``n`` integers: Hypothesis leans towards small ones)."""
    return bool(draw(st.integers(0, n - 1)) == n - 1)


def shuffled(draw: st.DrawFn, groups: list[list[str]]) -> list[str]:
    order = draw(st.permutations(range(len(groups)))) if groups else []
    return [token for index in order for token in groups[index]]


# --- images ----------------------------------------------------------------------------------------


@st.composite
def images_argv(draw: st.DrawFn, world: World) -> tuple[list[str], str]:
    formats = valid("table", "csv", "json", "parquet")
    options = [*filter_options(world), option("--format", formats), option("-o", output_paths(world)),
               flag("--progress"), flag("--quiet"), flag("-q")]  # fmt: skip
    groups = draw(st.lists(st.one_of(options), max_size=4))
    if one_in(draw, 10):
        groups.append([draw(anything)])  # a stray positional
    tokens, stdin = draw(connection(world))
    return ["images", *shuffled(draw, [*groups, tokens])], stdin


def test_images_arguments(world: World) -> None:
    @fuzz(120)
    @given(case=images_argv(world))
    @example(case=(["images", "a\nb"], ""))
    @example(case=(["images", "--format", "parquet", "--sim", "-"], "{}\n"))
    @example(case=(["images", "--filter", "limit=5"], ""))
    @example(case=(["images", "--created-at", "gte:2025-13-01"], ""))
    @example(case=(["images", "--format=--", "--max-items=--"], ""))
    def run(case: tuple[list[str], str]) -> None:
        CASES["images"] += 1
        argv, stdin = case
        check_documented(run_cli(argv, stdin), "images", world.secrets)

    run()


# --- preflight -------------------------------------------------------------------------------------


@st.composite
def preflight_argv(draw: st.DrawFn, world: World) -> tuple[list[str], str]:
    ids = draw(st.lists(mostly(st.sampled_from(world.ids), anything), max_size=3))
    groups = [["--bucket-url", draw(bucket_urls)]] if not one_in(draw, 8) else []
    if not one_in(draw, 8):  # the mode: a format or --quick (and one time in eight neither, or both)
        groups.append(draw(mostly(option("--format", valid(*FILE_FORMATS)), flag("--quick"), one_in=3)))
    options = [
        option("--bucket-url", bucket_urls),
        option("--format", valid(*FILE_FORMATS)),
        flag("--quick"),
        option("--output-format", valid("table", "csv", "json")),
        flag("--details"),
        option("-o", output_paths(world)),
        *filter_options(world)[:3],
    ]
    groups += draw(st.lists(st.one_of(options), max_size=3))
    if not ids and not one_in(draw, 5):  # a whole inventory is slow: usually cap it
        groups.append(["--max-items", str(draw(st.integers(0, 4)))])
    tokens, stdin = draw(connection(world))
    return ["preflight", *shuffled(draw, [ids, *groups, tokens])], stdin


def test_preflight_arguments(world: World) -> None:
    @fuzz(100)
    @given(case=preflight_argv(world))
    @example(case=(["preflight", "--bucket-url", f"{BUCKET}:{{id!r}}", "--format", "qcow2", "x"], ""))
    @example(case=(["preflight", "--bucket-url", f"{BUCKET}:{{", "--quick", "--max-items", "1"], ""))
    @example(case=(["preflight", "--bucket-url", ":", "--format", "vhd", "--max-items", "2"], ""))
    def run(case: tuple[list[str], str]) -> None:
        CASES["preflight"] += 1
        argv, stdin = case
        check_documented(run_cli(argv, stdin), "preflight", world.secrets)

    run()


# --- export: dry runs and plan files ----------------------------------------------------------------

PLAN_HEADER = ["image_id", "bucket_url", "file_format", "quick"]
PLAN_NUMBERS = itertools.count(1)


@st.composite
def plan_files(draw: st.DrawFn, world: World) -> str:
    """A plan file, written under the world's folder: mostly valid CSV, with cells good and bad."""
    header = draw(
        st.sampled_from([PLAN_HEADER, PLAN_HEADER, [*PLAN_HEADER, "note"], PLAN_HEADER[:3], PLAN_HEADER[::-1], []])
    )
    cells = {
        "image_id": mostly(st.sampled_from(world.exportable + world.ids[:5]), anything),
        "bucket_url": mostly(st.builds(lambda i: f"{BUCKET}:plan/{i}.qcow2", st.integers(0, 99)), bucket_urls),
        "file_format": valid(*FILE_FORMATS, "", "zvhd2", "QCOW2"),
        "quick": valid("true", "false", "yes", "0", ""),
        "note": anything,
    }
    rows = draw(st.lists(st.tuples(*(cells.get(name, anything) for name in header)), max_size=4)) if header else []
    stream = io.StringIO()
    writer = csv.writer(stream)
    if header:
        writer.writerow(header)
    writer.writerows(rows)
    text = stream.getvalue()
    damage = draw(st.sampled_from(["none"] * 6 + ["bom", "extra-cell", "quote", "nul", "huge", "latin1", "empty"]))
    data = {
        "none": text.encode(), "bom": b"\xef\xbb\xbf" + text.encode(), "extra-cell": (text + "a,b,c,d,e,f\n").encode(),
        "quote": (text + '"unclosed,x\n').encode(), "nul": (text + "a\x00b,c,d,e\n").encode(),
        "huge": (text + "x" * 200_000 + ",a,b,c\n").encode(), "empty": b"",
        "latin1": text.encode() + "caf\xe9,a,b,c\n".encode("latin-1"),
    }[damage]  # fmt: skip
    path = world.tmp / f"plan-{next(PLAN_NUMBERS)}.csv"
    path.write_bytes(data)
    return str(path)


#: Rates and timeouts that keep a launch or a watch short (the fuzzer must not sleep for hours).
rates = st.sampled_from(["0", "-1", "abc", "nan", "inf", "1e9", "200", ""])
timeouts = st.sampled_from(["0", "-1", "x", "nan", "0.01", "0.3"])


@st.composite
def export_argv(draw: st.DrawFn, world: World) -> tuple[list[str], str]:
    ids = draw(st.lists(mostly(st.sampled_from(world.ids), anything), max_size=3))
    groups = [["--bucket", draw(bucket_names)]] if not one_in(draw, 8) else []
    if not one_in(draw, 8):
        groups.append(draw(st.sampled_from([["--format", "qcow2"], ["--quick"], ["--auto"], ["--format", "vhd"]])))
    ledgers = st.sampled_from(["new.sqlite", "new.sqlite", "not-sqlite.sqlite", "empty.sqlite", "a-folder"])
    options = [
        option("--bucket", bucket_names),
        option("--key-template", templates),
        option("--format", valid(*FILE_FORMATS)),
        flag("--quick"),
        flag("--auto"),
        option("--plan", plan_files(world)),
        option("--plan", output_paths(world)),
        option("--ledger", mostly(ledgers.map(lambda name: str(world.tmp / name)), path_text)),
        flag("--force"),
        option("--concurrency", mostly(st.integers(1, 32).map(str), numbers | anything)),
        option("--max-rate", rates),
        flag("--watch"),
        option("--timeout", timeouts),
        option("--stall-after", mostly(st.sampled_from(["1", "60", "1800"]), numbers | anything)),
        option("--output-format", valid("table", "csv", "json")),
        option("-o", output_paths(world)),
        *filter_options(world)[:3],
    ]
    groups += draw(st.lists(st.one_of(options), max_size=4))
    if not one_in(draw, 6):
        groups.append(["--dry-run"])
    if not ids and not one_in(draw, 5):
        groups.append(["--max-items", str(draw(st.integers(0, 3)))])
    tokens, stdin = draw(connection(world))
    argv = ["export", *shuffled(draw, [ids, *groups, tokens])]
    return [*argv, "--max-rate", "1000", "--timeout", "20"], stdin  # last wins: never a long sleep or wait


def test_export_arguments_and_plan_files(world: World) -> None:
    @fuzz(130)
    @given(case=export_argv(world))
    @example(case=(["export", "--plan", str(world.tmp / "a-folder"), "--dry-run"], ""))
    @example(case=(["export", "x", "--bucket", BUCKET, "--quick", "--format", "vhd"], ""))
    @example(case=(["export", "--imagetype", "private", "--bucket", BUCKET, "--format", "qcow2", "--key-template",
                    "same.qcow2", "--dry-run", "--max-items", "2"], ""))  # fmt: skip
    @example(case=(["export", "--ledger", str(world.tmp / "not-sqlite.sqlite"), "--bucket", BUCKET, "--auto",
                    world.ids[0]], ""))  # fmt: skip
    def run(case: tuple[list[str], str]) -> None:
        CASES["export"] += 1
        argv, stdin = case
        check_documented(run_cli(argv, stdin), "export", world.secrets)

    run()


def test_plan_files(world: World) -> None:
    """``export --plan FILE --dry-run``: every plan file is read, judged row by row, or refused in one line."""

    @fuzz(60)
    @given(path=plan_files(world), output=st.sampled_from(["table", "csv", "json"]))
    def run(path: str, output: str) -> None:
        CASES["export --plan"] += 1
        argv = ["export", "--plan", path, "--dry-run", "--output-format", output, "--sim", world.line]
        check_documented(run_cli(argv), "export", world.secrets)

    run()


@pytest.mark.parametrize("cell", ["header", "row"])
def test_a_plan_file_with_a_cell_over_the_csv_limit_is_refused_in_one_line(world: World, cell: str) -> None:
    """Regression (found at IMS_NB_FUZZ_SCALE=10): csv's field size limit was an "unexpected Error", exit 1."""
    huge = "x" * (csv.field_size_limit() + 1)
    text = f"{','.join(PLAN_HEADER)}\n{world.exportable[0]},{BUCKET}:a.qcow2,qcow2,false\n"
    path = world.tmp / f"huge-{cell}.csv"
    path.write_text(huge + text if cell == "header" else text + f"{huge},{BUCKET}:b.qcow2,qcow2,false\n")
    outcome = run_cli(["export", "--plan", str(path), "--dry-run", "--sim", world.line])
    check_documented(outcome, "export", world.secrets)
    assert outcome.code == 2 and "not readable as CSV (field larger than field limit" in outcome.err, outcome


# --- export: real launches against a reset simulator ---------------------------------------------------


@st.composite
def launch_argv(draw: st.DrawFn, world: World) -> list[str]:
    ids = draw(st.lists(st.sampled_from(world.exportable), min_size=1, max_size=3, unique=True))
    ids += draw(st.lists(st.sampled_from(world.ids) | anything, max_size=1))
    groups = [
        ["--bucket", draw(st.sampled_from([BUCKET, BUCKET, *OTHER_BUCKETS]) | bucket_names)],
        *draw(st.lists(st.one_of(
            option("--key-template", templates), option("--format", st.sampled_from(FILE_FORMATS) | anything),
            flag("--quick"), flag("--auto"), flag("--force"), flag("--watch"),
            option("--concurrency", numbers), option("--output-format", st.sampled_from(["table", "csv", "json"])),
        ), max_size=4)),
    ]  # fmt: skip
    if not any(group[0] in ("--format", "--quick", "--auto") for group in groups):
        groups.append(["--format", "qcow2"])
    ledger = world.tmp / f"launch-{CASES['launches']}.sqlite"
    argv = ["export", *shuffled(draw, [ids, *groups]), "--ledger", str(ledger), "--sim", world.line]
    return [*argv, "--max-rate", "1000", "--timeout", "20"]


def test_export_launches_against_a_reset_simulator(world: World) -> None:
    control = f"{world.endpoint}/_sim"

    @fuzz(20)
    @given(argv=launch_argv(world), again=st.booleans())
    def run(argv: list[str], again: bool) -> None:
        CASES["launches"] += 1
        httpx.post(f"{control}/reset", json={"seed": 0, "images": 60}).raise_for_status()
        first = run_cli(argv)
        check_documented(first, "export", world.secrets)
        if again:  # the same command again: what the ledger holds is skipped, and still documented
            check_documented(run_cli(argv), "export", world.secrets)
        ledger = argv[argv.index("--ledger") + 1]
        listed = run_cli(["jobs", "--ledger", ledger, "--output-format", "json"])
        check_documented(listed, "jobs", world.secrets)
        assert listed.code == 0 and isinstance(json.loads(listed.out), list), listed

    try:
        run()
    finally:
        httpx.post(f"{control}/reset", json={"seed": 0, "images": 60}).raise_for_status()


# --- jobs ------------------------------------------------------------------------------------------


@st.composite
def jobs_argv(draw: st.DrawFn, world: World) -> tuple[list[str], str]:
    ledgers = mostly(
        st.just(str(world.ledger)),
        st.sampled_from(["not-sqlite.sqlite", "empty.sqlite", "a-folder", "missing.sqlite"]).map(
            lambda name: str(world.tmp / name)
        )
        | path_text,
    )
    states = st.lists(valid(*State, *STATE_GROUPS), min_size=1, max_size=3)
    options = [
        option("--ledger", ledgers),
        states.map(lambda names: ["--state", *names]),
        flag("--watch"),
        option("--timeout", timeouts),
        option("--stall-after", mostly(st.sampled_from(["1", "60", "1800"]), numbers | anything)),
        option("--output-format", valid("table", "csv", "json")),
        option("-o", output_paths(world)),
        flag("--progress"),
        flag("--quiet"),
    ]
    groups = [["--ledger", draw(ledgers)]] if not one_in(draw, 4) else []
    groups += draw(st.lists(st.one_of(options), max_size=3))
    if one_in(draw, 10):
        groups.append([draw(anything)])
    tokens, stdin = draw(connection(world))
    return ["jobs", *shuffled(draw, [*groups, tokens]), "--timeout", "20"], stdin


def test_jobs_arguments(world: World) -> None:
    @fuzz(80)
    @given(case=jobs_argv(world))
    @example(case=(["jobs", "--ledger", str(world.tmp / "not-sqlite.sqlite")], ""))
    @example(case=(["jobs", "--ledger", str(world.tmp / "a-folder")], ""))
    @example(case=(["jobs", "--state", "live", "done", "x"], ""))
    @example(case=(["jobs", "--state", "submitting", "--", "--sim", world.line], ""))
    def run(case: tuple[list[str], str]) -> None:
        CASES["jobs"] += 1
        argv, stdin = case
        check_documented(run_cli(argv, stdin), "jobs", world.secrets)

    run()


# --- the same verbs with credentials from the environment ---------------------------------------------


def test_verbs_with_credentials_from_the_environment(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    """``HUAWEICLOUD_SDK_AK``/``_SK`` set, ``--endpoint`` always last (and the simulator's): no other host is
    ever asked, whatever the fuzzer puts before it."""
    info = world.sim.info
    monkeypatch.setenv(config.ENV_AK, info.ak)
    monkeypatch.setenv(config.ENV_SK, info.sk)

    @fuzz(50)
    @given(
        case=images_argv(world) | preflight_argv(world),
        project=st.sampled_from([None, info.project_id, "0" * 32]),
        region=st.sampled_from([None, "cn-north-4", "ap-southeast-1", "nowhere"]),
    )
    def run(case: tuple[list[str], str], project: str | None, region: str | None) -> None:
        CASES["environment credentials"] += 1
        argv, stdin = case
        argv = [token for token in argv if token != "--"]  # nothing may turn the last --endpoint into a positional
        assume(not _header_unsafe_credentials(argv))  # test_a_project_id_that_is_not_ascii_is_a_config_error
        with pytest.MonkeyPatch.context() as env:
            for name, value in ((config.ENV_PROJECT_ID, project), (config.ENV_REGION, region)):
                if value:
                    env.setenv(name, value)
                else:
                    env.delenv(name, raising=False)
            outcome = run_cli([*argv, "--endpoint", world.endpoint], stdin)
        check_documented(outcome, argv[0], world.secrets)

    run()


def _header_unsafe_credentials(argv: list[str]) -> bool:
    """Whether ``--project-id`` or ``--ak`` has a value that an HTTP header cannot carry (not printable ASCII)."""
    values = [value for flag, value in zip(argv, argv[1:], strict=False) if flag in ("--project-id", "--ak")]
    values += [token.partition("=")[2] for token in argv if token.startswith(("--project-id=", "--ak="))]
    return any(not (value.isascii() and value.isprintable()) for value in values)


@pytest.mark.parametrize("flag", ["--project-id", "--ak"])
def test_a_project_id_that_is_not_ascii_is_a_config_error(
    world: World, monkeypatch: pytest.MonkeyPatch, flag: str
) -> None:
    info = world.sim.info
    monkeypatch.setenv(config.ENV_SK, info.sk)
    if flag == "--ak":
        monkeypatch.delenv(config.ENV_AK, raising=False)
    else:
        monkeypatch.setenv(config.ENV_AK, info.ak)
    outcome = run_cli(["images", flag, "caf\xe9", "--endpoint", world.endpoint])
    assert outcome.code == 2 and "unexpected" not in outcome.err, outcome


# --- sim, lab and app: parsing only ------------------------------------------------------------------


@st.composite
def server_argv(draw: st.DrawFn, world: World) -> list[str]:
    verb = draw(st.sampled_from(["sim", "lab", "app"]))
    options = [
        option(
            "--host", st.sampled_from(["127.0.0.1", "::1", "localhost", "0.0.0.0", "10.1.2.3", "", "::"]) | anything
        ),
        option("--port", numbers | st.sampled_from(["65535", "65536", "70000", "-1"]) | anything),
        option("--seed", numbers | anything),
        option("--images", numbers | anything),
        option("--region", st.sampled_from(["cn-north-4", "-x", ""]) | anything),
        option("--time-scale", numbers | st.sampled_from(["inf", "nan", "1e308", "1e6", "1e-9", "0"]) | anything),
        flag("--manual-clock"),
        option("--state", st.sampled_from([str(world.tmp / "a-folder"), str(world.tmp / "state.sqlite")]) | path_text),
        flag("--allow-remote"),
        flag("--help"),
    ]
    if verb == "lab":
        options += [option("--lab-port", numbers | anything), option("--notebooks", path_text),
                    option("--lab-token", anything)]  # fmt: skip
    elif verb == "app":
        options.append(option("--app-port", numbers | st.sampled_from(["8866", "0", "65536"]) | anything))
    groups = draw(st.lists(st.one_of(options), max_size=5))
    return [verb, *shuffled(draw, groups)]


def test_sim_lab_and_app_arguments_parse_or_fail_in_one_line(world: World) -> None:
    """What parses can be served: a port the OS accepts, a clock the simulator can represent, a host that is
    loopback or refused in one line, and (lab, app) a child ``ims-nb sim`` command that parses the same."""

    @fuzz(250)
    @given(argv=server_argv(world))
    @example(argv=["sim", "--port", "70000"])
    @example(argv=["sim", "--time-scale", "inf"])
    @example(argv=["sim", "--port=--"])
    @example(argv=["lab", "--region=-x"])
    @example(argv=["app", "--port", "65535", "--host", "::1", "--images", "0", "--manual-clock"])
    def run(argv: list[str]) -> None:
        CASES["sim/lab/app parsing"] += 1
        out, err = io.StringIO(), io.StringIO()
        with redirect_stdout(out), redirect_stderr(err):
            try:
                args = build_parser().parse_args(argv)
            except SystemExit as exit_info:
                code = exit_info.code
                if "--help" in argv or "-h" in argv:
                    assert code in (0, 2), (argv, code)
                else:
                    assert code == 2 and len(err.getvalue().splitlines()) == 1, (argv, err.getvalue())
                    assert ERROR_LINE.match(err.getvalue()), (argv, err.getvalue())
                return
        assert 0 <= args.port <= MAX_PORT and args.seed >= 0 and args.images >= 0, argv
        assert 0 < args.time_scale <= MAX_CLOCK_SCALE, argv
        try:
            check_host(args.host, args.allow_remote)
        except ValueError as exc:  # main turns it into exit code 2
            assert "--allow-remote" in str(exc)
        else:
            if not args.allow_remote:  # loopback: the socket binds, or fails as main reports (exit code 2)
                with suppress(OSError):
                    bind(args.host, args.port).close()
        if args.verb in ("lab", "app"):
            if args.verb == "lab":
                assert 0 <= args.lab_port <= MAX_PORT, argv
            if any(str(value).startswith("-") for value in (args.host, args.region, args.state)):
                return  # test_a_dash_value_reaches_the_child_simulator (a FINDING)
            child = build_parser().parse_args(sim_command(args)[3:])
            assert (child.host, child.port, child.region, child.time_scale) == (
                args.host, args.port, args.region, args.time_scale
            ), argv  # fmt: skip

    run()


def test_the_simulator_refuses_a_state_file_it_cannot_open_in_one_line(world: World) -> None:
    CASES["sim state"] += 1
    outcome = run_cli(["sim", "--state", str(world.tmp / "a-folder"), "--images", "0"])
    assert outcome.code == 2 and outcome.out == "", outcome
    assert outcome.err.startswith(f"ims-nb sim: --state {world.tmp / 'a-folder'}: "), outcome
    assert len(outcome.err.splitlines()) == 1, outcome


@pytest.mark.parametrize(
    "argv",
    [["sim", "--port", "65536"], ["lab", "--lab-port", "70000"], ["sim", "--time-scale", "inf"],
     ["app", "--time-scale", "1e308"], ["sim", "--time-scale", "nan"]],
)  # fmt: skip
def test_ports_and_clock_scales_out_of_range_are_usage_errors(argv: list[str]) -> None:
    outcome = run_cli(argv)
    assert outcome.code == 2 and len(outcome.err.splitlines()) == 1 and ERROR_LINE.match(outcome.err), outcome


@pytest.mark.parametrize(
    "where", ["after --", "as a positional", "in an ambiguous option", "the environment's SK as a positional"]
)
def test_a_usage_error_never_echoes_a_secret(world: World, where: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Regression (found at IMS_NB_FUZZ_SCALE=10): argparse echoed a misplaced ``--sim`` line, SK and all."""
    line, sk = world.line, world.sim.info.sk
    argv = {
        "after --": ["jobs", "--state", "live", "--", "--sim", line],
        "as a positional": ["images", line],
        "in an ambiguous option": ["images", f"--s={line}"],
        "the environment's SK as a positional": ["images", "--max-items", "1", sk],
    }[where]
    monkeypatch.setenv(config.ENV_SK, sk)
    outcome = run_cli(argv)
    assert outcome.code == 2 and sk not in outcome.err and ERROR_LINE.match(outcome.err), outcome
    assert "***" in outcome.err, outcome


def test_an_unrecognised_argument_with_a_newline_stays_on_one_line() -> None:
    outcome = run_cli(["images", "a\nb\u2028c"])
    assert outcome.code == 2 and outcome.err.count("\n") == 1, outcome
    assert "a\\nb\\u2028c" in outcome.err, outcome


@pytest.mark.parametrize("verb", ["lab", "app"])
def test_a_dash_value_reaches_the_child_simulator(verb: str) -> None:
    args = build_parser().parse_args([verb, "--region=-x"])
    with redirect_stderr(io.StringIO()):
        child = build_parser().parse_args(sim_command(args)[3:])
    assert child.region == "-x"
