"""The README's support table is the one generated from the adapters and the tests (it cannot drift)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _generator():
    spec = importlib.util.spec_from_file_location("support_table", ROOT / "scripts" / "support_table.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_readme_support_table_matches_the_adapters_and_tests():
    gen = _generator()
    assert gen.readme_table((ROOT / "README.md").read_text()) == gen.table(), \
        "README.md's support table is stale: run `python scripts/support_table.py --write`"


def test_every_registered_adapter_has_a_conformance_case():
    gen = _generator()
    from ecad_hub.adapters import supported_classes

    cases = gen._conformance_cases()
    assert [c for c in supported_classes() if c not in cases] == []
