"""Import benchmark: cold ``import ims_nb`` in fresh interpreters against ``import httpx, pandas`` in the same run.

    python -m benchmarks.bench_import [--runs 15] [--warmups 1] [--output PATH]

Every measurement is a fresh ``python -c`` child that times its imports with ``time.perf_counter`` around
them and prints the seconds, so interpreter start-up is not counted. After ``--warmups`` untimed rounds (to
fill the OS file cache and the bytecode caches), ``--runs`` rounds run each variant once, interleaved
(baseline, ims_nb, charts, widgets, baseline, ...) so machine noise falls on all alike.

- baseline: ``import httpx, pandas``, the two heavy dependencies ``ims_nb`` cannot avoid;
- ims_nb: ``import ims_nb``; the ratio ims_nb / baseline is reported (no target);
- for information, the extra cost of ``import ims_nb.charts`` (matplotlib) and ``import ims_nb.widgets.log``
  (ipywidgets) in a child that has already imported ``ims_nb`` (untimed); a module that is not in this
  checkout is reported as missing.

The command line, start-up included: the same rounds also time whole commands (wall clock around the child),
``ims-nb --help`` against ``python -c "import httpx"``; the target is ``CLI_TARGET`` (1.2) for their ratio of
medians (``ims-nb --help`` imports neither pandas nor the client: see ``tests/test_import.py``).

Last, one ``python -X importtime -c "import ims_nb"`` gives the modules with the most self time.

The latest numbers go to ``benchmarks/results/import.json`` (not in git).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from benchmarks import harness

PACKAGES = ("ims-nb", "httpx", "pandas", "numpy", "pyarrow", "matplotlib", "ipywidgets")
TOP_MODULES = 5
CHILD_TIMEOUT_S = 120
#: The child: import ``argv[1]`` (comma-separated, untimed), then time importing ``argv[2]``; print the seconds,
#: or ``missing NAME`` when a module it times is not installed.
CHILD = """
import sys, time
setup, timed = (names.split(",") if names else [] for names in sys.argv[1:3])
for name in setup:
    __import__(name)
started = time.perf_counter()
try:
    for name in timed:
        __import__(name)
except ModuleNotFoundError as exc:
    if exc.name not in timed:
        raise
    print("missing", exc.name)
else:
    print(time.perf_counter() - started)
"""
MISSING = "missing"


@dataclass(frozen=True)
class Variant:
    """One timed import: ``timed`` after ``setup`` (untimed), in a fresh interpreter."""

    label: str
    setup: tuple[str, ...]
    timed: tuple[str, ...]
    required: bool = True  # False: the module may not be in this checkout yet

    @property
    def statement(self) -> str:
        return f"import {', '.join(self.timed)}"


#: Variant key -> what it imports, in the order the rounds interleave them.
VARIANTS = {
    "baseline": Variant("baseline: import httpx, pandas", (), ("httpx", "pandas")),
    "ims_nb": Variant("import ims_nb", (), ("ims_nb",)),
    "charts": Variant("+ ims_nb.charts (matplotlib)", ("ims_nb",), ("ims_nb.charts",), required=False),
    "widgets": Variant("+ ims_nb.widgets.log (ipywidgets)", ("ims_nb",), ("ims_nb.widgets.log",), required=False),
}
RATIO = ("ims_nb", "baseline")
#: ``ims-nb --help`` / ``python -c "import httpx"``, whole commands (medians), at most this.
CLI_TARGET = 1.2
CLI_LABELS = {"baseline": 'python -c "import httpx"', "cli_help": "ims-nb --help"}
EXTRAS = ("charts", "widgets")


# --- measuring ---------------------------------------------------------------------------------------


def import_seconds(variant: Variant) -> float | None:
    """Seconds the variant's timed imports take in a fresh interpreter; None if such a module is missing."""
    command = [sys.executable, "-c", CHILD, ",".join(variant.setup), ",".join(variant.timed)]
    completed = subprocess.run(command, capture_output=True, text=True, timeout=CHILD_TIMEOUT_S, check=False)
    if completed.returncode != 0:
        raise RuntimeError(f"{variant.statement!r} failed in the child:\n{completed.stderr}")
    printed = completed.stdout.strip()
    if printed.startswith(MISSING):
        if variant.required:
            raise RuntimeError(f"{variant.statement!r}: {printed}")
        return None
    return float(printed)


def measure(runs: int, warmups: int) -> dict[str, list[float] | None]:
    """``warmups`` untimed rounds, then ``runs`` interleaved rounds; each variant's seconds (None: missing)."""
    present = dict.fromkeys(VARIANTS, True)
    for _ in range(warmups):
        for key, variant in VARIANTS.items():
            present[key] = present[key] and import_seconds(variant) is not None
    times: dict[str, list[float]] = {key: [] for key in VARIANTS}
    for _ in range(runs):
        for key, variant in VARIANTS.items():
            if present[key] and (seconds := import_seconds(variant)) is not None:
                times[key].append(seconds)
            else:
                present[key] = False
    return {key: times[key] if present[key] else None for key in VARIANTS}


def importtime_top(count: int) -> list[dict[str, Any]]:
    """The ``count`` modules with the most self time in ``python -X importtime -c "import ims_nb"``."""
    command = [sys.executable, "-X", "importtime", "-c", "import ims_nb"]
    completed = subprocess.run(command, capture_output=True, text=True, timeout=CHILD_TIMEOUT_S, check=True)
    rows: list[tuple[int, int, str]] = []
    for line in completed.stderr.splitlines():
        fields = line.removeprefix("import time:").split("|")
        if len(fields) == 3 and fields[0].strip().isdigit():
            self_us, cumulative_us, module = fields
            rows.append((int(self_us), int(cumulative_us), module.strip()))
    rows.sort(key=lambda row: row[0], reverse=True)
    return [
        {"module": module, "self_us": self_us, "cumulative_us": cumulative}
        for self_us, cumulative, module in rows[:count]
    ]


def stats(times: list[float] | None) -> dict[str, Any]:
    """Median, min and max of the runs (all None when the module is missing)."""
    if not times:
        return {"missing": True, "times_s": [], "median_s": None, "min_s": None, "max_s": None}
    return {
        "missing": False,
        "times_s": times,
        "median_s": statistics.median(times),
        "min_s": min(times),
        "max_s": max(times),
    }


# --- reporting ---------------------------------------------------------------------------------------


def _ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:.1f}"


def report(results: dict[str, Any]) -> str:
    """The table, the ratio and the top modules as text."""
    lines = [
        f"Cold imports in fresh interpreters (start-up excluded), {results['runs']} interleaved runs after "
        f"{results['warmups']} warm-up round(s); " + harness.machine_text(results),
        "",
        f"{'variant':<38} {'median ms':>10} {'min ms':>8} {'max ms':>8}",
    ]
    for key, variant in VARIANTS.items():
        s = results["variants"][key]
        if s["missing"]:
            lines.append(f"{variant.label:<38} {'not in this checkout':>28}")
        else:
            lines.append(f"{variant.label:<38} {_ms(s['median_s']):>10} {_ms(s['min_s']):>8} {_ms(s['max_s']):>8}")
    ratio = results["ratio"]
    lines += ["", f"ratio {ratio['name']}: {ratio['value']:.2f} of medians, {ratio['of_minimums']:.2f} of minimums"]
    cli = results["cli"]
    lines += ["", "Whole commands, start-up included:"]
    lines += [f"{s['command']:<38} {_ms(s['median_s']):>10} {_ms(s['min_s']):>8} {_ms(s['max_s']):>8}"
              for s in cli["commands"].values()]  # fmt: skip
    verdict = "met" if cli["ratio"]["met"] else "MISSED"
    lines += [f"ratio ims-nb --help / import httpx: {cli['ratio']['value']:.2f} of medians "
              f"(<= {CLI_TARGET:g}: {verdict}), {cli['ratio']['of_minimums']:.2f} of minimums"]  # fmt: skip
    lines += ["", f"top {len(results['importtime_top'])} self time in -X importtime of import ims_nb:"]
    lines += [f"  {row['self_us'] / 1000:>7.1f} ms  {row['module']}" for row in results["importtime_top"]]
    return "\n".join(lines)


def ims_nb_command() -> list[str]:
    """The ``ims-nb`` console script beside this Python, or ``python -m ims_nb`` where there is none."""
    script = Path(sys.executable).with_name("ims-nb")
    return [str(script)] if script.exists() else [sys.executable, "-m", "ims_nb"]


def command_seconds(command: Sequence[str]) -> float:
    """Wall seconds of one run of ``command``, start-up included."""
    started = time.perf_counter()
    subprocess.run(command, capture_output=True, timeout=CHILD_TIMEOUT_S, check=True)
    return time.perf_counter() - started


def measure_commands(runs: int, warmups: int) -> dict[str, dict[str, Any]]:
    """``ims-nb --help`` and ``python -c "import httpx"``, interleaved; their statistics and the judged ratio."""
    commands = {"baseline": [sys.executable, "-c", "import httpx"], "cli_help": [*ims_nb_command(), "--help"]}
    times: dict[str, list[float]] = {key: [] for key in commands}
    for round_ in range(warmups + runs):
        for key, command in commands.items():
            seconds = command_seconds(command)
            if round_ >= warmups:
                times[key].append(seconds)
    found = {key: {"command": CLI_LABELS[key], **stats(times[key])} for key in commands}
    value = found["cli_help"]["median_s"] / found["baseline"]["median_s"]
    ratio = {"value": value, "of_minimums": found["cli_help"]["min_s"] / found["baseline"]["min_s"],
             "target_max": CLI_TARGET, "met": value <= CLI_TARGET}  # fmt: skip
    return {"commands": found, "ratio": ratio}


def run_benchmark(runs: int, warmups: int) -> dict[str, Any]:
    """Measure every variant, the command line and the import profile; return the results."""
    times = measure(runs, warmups)
    variants = {
        key: {"label": variant.label, "setup": list(variant.setup), "statement": variant.statement, **stats(times[key])}
        for key, variant in VARIANTS.items()
    }
    top, bottom = RATIO
    return {
        "benchmark": "import",
        "runs": runs,
        "warmups": warmups,
        "machine": harness.machine(PACKAGES),
        "variants": variants,
        "ratio": {
            "name": f"{top}/{bottom}",
            "value": variants[top]["median_s"] / variants[bottom]["median_s"],
            "of_minimums": variants[top]["min_s"] / variants[bottom]["min_s"],
        },
        "extra_median_s": {key: variants[key]["median_s"] for key in EXTRAS},
        "cli": measure_commands(runs, warmups),
        "importtime_top": importtime_top(TOP_MODULES),
    }


def options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--runs", type=int, default=15, help="timed runs of each variant (default 15)")
    parser.add_argument("--warmups", type=int, default=1, help="untimed rounds first (default 1)")


def check(args: argparse.Namespace) -> str | None:
    if args.runs < 1:
        return "--runs must be at least 1"
    return "--warmups must not be negative" if args.warmups < 0 else None


BENCH = harness.Bench("import", __doc__, options, lambda args: run_benchmark(args.runs, args.warmups), report, check)

main = partial(harness.main, BENCH)  # main(argv) -> exit status


if __name__ == "__main__":
    harness.run_module(BENCH)
