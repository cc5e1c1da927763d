"""The verbs of ``ims-nb`` and their help lines, so that ``ims-nb --help`` imports no verb module."""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, Final


@dataclass(frozen=True)
class Verb:
    """One verb: its name and help line; ``ims_nb.cli.<name>`` has ``add_<name>_parser(verbs)``, which sets ``run``."""

    name: str
    help: str

    @property
    def module(self) -> str:
        return f"ims_nb.cli.{self.name}"

    def add_parser(self, verbs: Any) -> None:
        """Import the verb's module and let it add its sub-parser to ``verbs`` (argparse's subparsers action)."""
        getattr(importlib.import_module(self.module), f"add_{self.name}_parser")(verbs)


#: Every verb, in ``--help`` order.
VERBS: Final[dict[str, Verb]] = {
    verb.name: verb
    for verb in (
        Verb("sim", "serve the embedded IMS/OBS/IAM simulator; prints one JSON line"),
        Verb("lab", "start the simulator and JupyterLab on notebooks/, pointed at it"),
        Verb("app", "the export dashboard in Voilà, on a simulator it starts (or your account)"),
        Verb("images", "list images with filters, as a table, CSV, JSON or Parquet"),
        Verb("preflight", "which exports the service would refuse, and why (exit 3 when any)"),
        Verb("export", "plan, check and launch exports to OBS, each once (ledger); --watch follows them"),
        Verb("coverage", "which images have a current verified export, which not and why (exit 4 on a gap)"),
        Verb("jobs", "the export ledger: state, progress, duration, throughput, errors; --watch follows live jobs"),
        Verb("ledger", "the ledger as a whole: upgrade its schema, info, copy it (SQLite <-> PostgreSQL)"),
    )
}
