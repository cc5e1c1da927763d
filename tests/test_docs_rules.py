"""The README's preflight rule table documents exactly the rules the code applies, with their code and severity."""

from __future__ import annotations

from pathlib import Path

from ims_nb.rules import RULES

README = (Path(__file__).parent.parent / "README.md").read_text()
HEADER = "| Rule | Meaning | Severity | Code | Source | Fix |"

#: The rule ids DESIGN.md ("Interfaces other parts rely on") promises, in its order.
DESIGN_RULE_IDS = (
    "image-not-private", "image-not-active", "full-ecs-image", "iso-image", "restricted-os-origin",
    "koogallery-origin", "size-limit", "fast-export-required", "encrypted-fast-export", "format-unsupported",
    "format-with-fast-export", "bucket-url-invalid", "bucket-not-found", "bucket-region-mismatch",
    "bucket-not-standard", "object-exists", "object-extension-mismatch", "already-exporting",
)  # fmt: skip


def rule_table() -> list[dict[str, str]]:
    """The rows of the rule table in the README's Preflight section, cell by cell."""
    section = README.split("\n## Preflight\n", 1)[1].split("\n## ", 1)[0]
    lines = section.split(HEADER + "\n", 1)[1].splitlines()
    assert set(lines[0]) <= set("|-"), "the rule table has no separator row"
    rows = []
    for line in lines[1:]:
        if not line.startswith("|"):
            break
        cells = [cell.strip() for cell in line.strip().strip("|").split(" | ")]
        assert len(cells) == 6, f"a rule-table row does not have 6 cells: {line}"
        rows.append(dict(zip(("rule", "meaning", "severity", "code", "source", "fix"), cells, strict=True)))
    return rows


def test_the_table_lists_every_rule_id_once_in_the_order_preflight_applies_them() -> None:
    ids = [row["rule"].strip("`") for row in rule_table()]
    assert ids == [rule.id for rule in RULES]


def test_the_table_lists_the_rule_ids_design_promises() -> None:
    ids = [row["rule"].strip("`") for row in rule_table()]
    assert sorted(ids) == sorted(DESIGN_RULE_IDS) and len(ids) == len(DESIGN_RULE_IDS)


def test_each_rule_has_the_code_severity_and_source_of_the_table() -> None:
    rows = {row["rule"].strip("`"): row for row in rule_table()}
    for rule in RULES:
        row = rows[rule.id]
        assert row["severity"] == rule.severity.value, rule.id
        assert row["code"] == (f"`{rule.code}`" if rule.code else "—"), rule.id
        assert row["source"] == rule.source, rule.id
