"""``ims-nb --help`` and every verb's ``--help`` are plain text: no reStructuredText markup from docstrings."""

from __future__ import annotations

import pytest

from ims_nb.cli._main import main
from ims_nb.cli._verbs import VERBS

pytestmark = pytest.mark.usefixtures("bare_env")


@pytest.mark.parametrize("verb", ["", *VERBS])
def test_help_is_plain_text_without_rst_backticks(verb: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main([verb, "--help"] if verb else ["--help"])
    assert exited.value.code == 0
    shown = capsys.readouterr().out
    assert shown.startswith("usage: ims-nb") and "``" not in shown, shown
