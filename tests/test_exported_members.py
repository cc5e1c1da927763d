"""The public surface: ``ims_nb.__all__`` names every public member, and each one exists."""

from __future__ import annotations

import ims_nb


def test_all_is_complete_and_sorted() -> None:
    public = {name for name in dir(ims_nb) if not name.startswith("_") and not _is_module(name)} - {"annotations"}
    assert public == set(ims_nb.__all__) - {"__version__"}
    assert list(ims_nb.__all__) == sorted(ims_nb.__all__)


def test_every_exported_name_resolves() -> None:
    for name in ims_nb.__all__:
        assert getattr(ims_nb, name) is not None


def _is_module(name: str) -> bool:
    return type(getattr(ims_nb, name)).__name__ == "module"
