"""What every benchmark and drill shares: the machine description, the command line and the JSON result."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

#: Where the latest results go (not in git): ``benchmarks/results/<name>.json``.
RESULTS = Path(__file__).resolve().parent / "results"
ROOT = RESULTS.parent.parent


def machine(packages: Sequence[str] = ()) -> dict[str, Any]:
    """What the numbers were measured on: CPUs and their model, Python, the platform, ``packages``' versions."""
    model = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        lines = Path("/proc/cpuinfo").read_text().splitlines()
        model = next((line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")), model)
    versions = {}
    for name in packages:
        with contextlib.suppress(metadata.PackageNotFoundError):
            versions[name] = metadata.version(name)
    return {
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "packages": versions,
    }


def machine_text(results: dict[str, Any]) -> str:
    """``N CPUs, Python X.Y.Z``: the machine of a result, as every report's first line ends."""
    return f"{results['machine']['cpus']} CPUs, Python {results['machine']['python']}"


def polling_options(parser: argparse.ArgumentParser) -> None:
    """``--interval``, ``--max-interval`` and ``--max-rate`` in simulated time (``watch``'s defaults)."""
    parser.add_argument("--interval", type=float, default=5.0, help="shortest poll gap, simulated s (default 5)")
    parser.add_argument("--max-interval", type=float, default=60.0, help="longest poll gap, simulated s (default 60)")
    parser.add_argument("--max-rate", type=float, default=5.0, help="requests per simulated s (default 5)")


def _no_check(args: argparse.Namespace) -> str | None:
    return None


def _success(results: dict[str, Any]) -> int:
    return 0


@dataclass(frozen=True)
class Bench:
    """One benchmark's command line: its options, their check, the run, the text report and the exit status."""

    name: str  # the results file is RESULTS / f"{name}.json"
    doc: str  # the module docstring: its first line is the command's description
    options: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], dict[str, Any]]
    report: Callable[[dict[str, Any]], str]
    check: Callable[[argparse.Namespace], str | None] = field(default=_no_check)  # an error message, or None
    status: Callable[[dict[str, Any]], int] = field(default=_success)


def _prog() -> str | None:
    """``python -m benchmarks.bench_watch`` when run as a module (a package's ``__main__`` too), else argparse's."""
    spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    return f"python -m {spec.name.removesuffix('.__main__')}" if spec is not None else None


def parser(bench: Bench) -> argparse.ArgumentParser:
    """The benchmark's options and ``--output``."""
    made = argparse.ArgumentParser(prog=_prog(), description=bench.doc.splitlines()[0])
    bench.options(made)
    made.add_argument("--output", type=Path, default=RESULTS / f"{bench.name}.json", help="where to write the JSON")
    return made


def write_results(results: dict[str, Any], output: Path) -> None:
    """The results as indented JSON (UTF-8), replacing ``output``; says where."""
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"\nwrote {output}")


def main(bench: Bench, argv: Sequence[str] | None = None) -> int:
    """Parse ``argv``, run, print the report, write the JSON; the benchmark's exit status."""
    made = parser(bench)
    args = made.parse_args(argv)
    if (problem := bench.check(args)) is not None:
        made.error(problem)
    results = bench.run(args)
    print(bench.report(results))
    write_results(results, args.output)
    return bench.status(results)


def run_module(bench: Bench) -> None:
    """``if __name__ == "__main__"``: exit with the benchmark's status."""
    sys.exit(main(bench))


def ratios(
    variants: dict[str, dict[str, Any]], table: dict[str, tuple[str, str, float | None]], spreads: dict[str, str]
) -> dict[str, dict[str, Any]]:
    """Each ratio ``name: (top, bottom, target)`` of ``table`` as the ratio of medians judged against its target
    (None: reported only), with the same ratio of each figure in ``spreads`` (``{"of_minimums": "min_s"}``)."""
    found = {}
    for name, (top, bottom, target) in table.items():
        value = variants[top]["median_s"] / variants[bottom]["median_s"]
        found[name] = {
            "value": value,
            **{label: variants[top][key] / variants[bottom][key] for label, key in spreads.items()},
            "target_max": target,
            "met": None if target is None else value <= target,
        }
    return found
