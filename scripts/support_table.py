"""The README's support table, generated from the adapters and the tests (so it cannot drift).

    python scripts/support_table.py            # print the table
    python scripts/support_table.py --write    # replace it in README.md (between the support-table markers)

Columns: the diffusers class; the checkpoints its adapter covers (``adapter.checkpoints``); its
groups x components (from the published configuration when one is in ``scripts/published_configs``,
else the tiny conformance case); whether the conformance suite runs it (``tests/families``); the
published configurations whose MACs are profiled (``scripts/bench_macs.py``); whether a test runs
its diffusers pipeline / a search (test modules list the classes in ``PIPELINES_TESTED`` /
``SEARCH_TESTED``). ``tests/test_support_table.py`` checks that README.md holds this table.
"""

from __future__ import annotations

import argparse
import ast
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
START, END = "<!-- support-table:start -->", "<!-- support-table:end -->"


def _declared(name: str) -> set[str]:
    """Class names listed in module-level ``name = (...)`` of the test modules."""
    found: set[str] = set()
    for path in sorted((ROOT / "tests").glob("test_*.py")):
        tree = ast.parse(path.read_text(), str(path))
        for node in tree.body:
            if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name for t in node.targets):
                found |= {c for c in ast.literal_eval(node.value)}
    return found


def _conformance_cases() -> dict[str, list[str]]:
    sys.path.insert(0, str(ROOT / "tests"))
    from families import all_cases

    out: dict[str, list[str]] = {}
    for case in all_cases():
        out.setdefault(case.transformer_class, []).append(case.id)
    return out


def _published() -> dict[str, list[tuple[str, dict]]]:
    out: dict[str, list[tuple[str, dict]]] = {}
    for path in sorted((ROOT / "scripts" / "published_configs").glob("*.json")):
        config = json.loads(path.read_text())
        out.setdefault(config.get("_class_name", "?"), []).append((path.stem, config))
    return out


def _structure(adapter, config: dict) -> str:
    arch = adapter.architecture(config)
    return "; ".join(f"`{g.name}` x {{{', '.join(g.components)}}}" for g in arch.groups)


def table() -> str:
    from ecad_hub.adapters import adapters

    cases = _conformance_cases()
    published = _published()
    pipelines, searched = _declared("PIPELINES_TESTED"), _declared("SEARCH_TESTED")
    rows = ["| class | checkpoints | groups x components | conformance | published configs (MACs) | pipeline | search |",
            "|---|---|---|---|---|:-:|:-:|"]
    for adapter in adapters():
        cls = adapter.transformer_class
        configs = published.get(cls, [])
        if configs:
            structure = _structure(adapter, configs[0][1])
        else:
            from families import all_cases

            tiny = next((c.config for c in all_cases() if c.transformer_class == cls), None)
            structure = _structure(adapter, tiny) if tiny else "-"
        rows.append(
            f"| `{cls}` | {', '.join(adapter.checkpoints) or '-'} | {structure} | "
            f"{'yes (' + ', '.join(cases[cls]) + ')' if cls in cases else 'no'} | "
            f"{', '.join(name for name, _ in configs) or '-'} | "
            f"{'yes' if cls in pipelines else '-'} | {'yes' if cls in searched else '-'} |")
    return "\n".join(rows) + "\n"


def readme_table(text: str) -> str:
    if START not in text or END not in text:
        raise SystemExit(f"README.md has no {START} ... {END} section")
    return text.split(START, 1)[1].split(END, 1)[0].strip("\n") + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--write", action="store_true", help="replace the table in README.md")
    args = ap.parse_args(argv)
    generated = table()
    if not args.write:
        print(generated, end="")
        return 0
    text = README.read_text()
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    README.write_text(f"{head}{START}\n{generated}{END}{tail}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
