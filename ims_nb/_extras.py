"""Optional extras: a feature whose packages are missing fails at once with one line naming the extra to install."""

from __future__ import annotations

import importlib.util
from typing import Final

#: Extra -> the top-level modules it installs (as in ``pyproject.toml``'s optional dependencies).
EXTRAS: Final[dict[str, tuple[str, ...]]] = {
    "charts": ("matplotlib",),
    "widgets": ("ipywidgets",),
    "parquet": ("pyarrow",),
    "lab": ("jupyterlab", "voila", "ipywidgets", "matplotlib"),
    "postgres": ("psycopg",),
}
#: Which extra brings a module, for errors raised by an ``import`` that failed.
_EXTRA_OF: Final[dict[str, str]] = {module: extra for extra, modules in reversed(EXTRAS.items()) for module in modules}


class MissingExtraError(ImportError):
    """A feature was used without the optional packages it needs; the message names the extra to install."""


def install_hint(extra: str) -> str:
    """What to run to get ``extra``."""
    return f"pip install 'ims-nb[{extra}]'"


def missing_extra(feature: str, module: str, extra: str | None = None) -> MissingExtraError:
    """The one-line error for ``feature`` needing ``module``, which ``extra`` (default: its own) installs."""
    extra = extra or _EXTRA_OF.get(module.split(".")[0], "lab")
    return MissingExtraError(f"{feature} needs {module}, which is not installed: {install_hint(extra)}", name=module)


def from_import_error(feature: str, exc: ModuleNotFoundError) -> ImportError:
    """``exc`` turned into the one-line error when it is an optional package that is missing; else ``exc``."""
    top = (exc.name or "").split(".")[0]
    return missing_extra(feature, top) if top in _EXTRA_OF else exc


def require(feature: str, extra: str) -> None:
    """Raise ``MissingExtraError`` unless every module of ``extra`` is installed (no module is imported)."""
    for module in EXTRAS[extra]:
        if importlib.util.find_spec(module) is None:
            raise missing_extra(feature, module, extra)
