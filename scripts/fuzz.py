#!/usr/bin/env python
"""Fuzz ecad-hub's readers with damaged schedule files and frontier folders.

Each iteration takes a valid input of the target, applies one to three random mutations (byte flips,
truncation, inserted/deleted bytes; JSON-aware edits: type swaps, numbers such as ``20.0``, ``1e400``,
``-0``, ``2**63``, strings with unicode, control characters, trailing newlines, ``../``, lone surrogates;
shape changes: dropped, added, duplicated or shortened keys, lists and mask rows) and loads it. Allowed
outcomes:

* ``refused``: an :class:`~ecad_hub.errors.EcadError` with a one-line message;
* ``loaded``: the input loads, and then saves and loads back equal (``CacheSchedule.save`` /
  ``Frontier.save_pretrained``).

Anything else is a violation: ``exception`` (any other exception type), ``multi-line`` (a message of
several lines, or with raw control characters) or ``load-but-can't-save`` (it loads, but saving fails
or reloads different). Targets:

* ``schedules``: a schedule file (PixArt, FLUX with two block groups, SD3 with absent sub-modules,
  two experts), read with ``CacheSchedule.load``;
* ``frontiers``: an exported frontier folder, one of ``ecad_config.json``, ``frontier.json`` or a
  schedule file damaged, read with ``Frontier.load``.

A new target (e.g. search run directories) is a :class:`Target` subclass added to :data:`TARGETS`.
Usage::

    python scripts/fuzz.py --target schedules --n 20000 [--seed 0] [--show 5]
    python scripts/fuzz.py --target run-dirs --n 20000 --jobs 2   # shards: seeds seed..seed+jobs-1

Prints a summary (inputs tried, loaded, refused, exceptions by type, multi-line messages,
load-but-can't-save) and exits 1 if there is a violation. ``tests/test_fuzz.py`` runs the same
mutations under hypothesis with a CI-sized budget.
"""

from __future__ import annotations

import argparse
import collections
import copy
import importlib.util
import json
import os
import random
import shutil
import sys
import tempfile
import time
import traceback
import warnings
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parents[1]
if importlib.util.find_spec("ecad_hub") is None:  # run from a checkout without the package installed
    sys.path.insert(0, str(ROOT))


# --------------------------------------------------------------------------------------------
# random choices: a random.Random, or hypothesis' data.draw (tests/test_fuzz.py) behind one interface
# --------------------------------------------------------------------------------------------

class Chooser:
    """The random decisions a mutation makes. :class:`random.Random` based; tests/test_fuzz.py subclasses it
    with hypothesis draws so that hypothesis can shrink a failing input."""

    def __init__(self, seed: int | random.Random = 0):
        self.rng = seed if isinstance(seed, random.Random) else random.Random(seed)

    def integer(self, low: int, high: int) -> int:
        return self.rng.randint(low, high)

    def choice(self, items):
        items = list(items)
        return items[self.integer(0, len(items) - 1)]

    def chance(self, p: float) -> bool:
        return self.integer(0, 999) < int(p * 1000)


# --------------------------------------------------------------------------------------------
# mutations
# --------------------------------------------------------------------------------------------

NUMBERS: list[Any] = [0, -0, -0.0, 1, -1, 2, 20.0, 3.5, 1e-300, 1e308, -1e308, 2**31, 2**53 + 1, 2**63, 2**63 - 1,
                      -(2**63), 10**40, True, False]
#: Number literals spliced into the JSON text (Python's json cannot write them): 1e400 reads as infinity.
NUMBER_TEXTS = ["1e400", "-1e400", "1E309", "20.0", "2e1", "-0", "-0.0", "0.0000", "1" * 400, "NaN", "Infinity",
                "-Infinity", "1.0e+0", "9" * 4400]
STRINGS = ["", " ", "a", "0", "1", "01", "x" * 121, "x" * 5000, "evil\n", "\n", "a\r\nb", "\x00", "\x1b[31mred\x1b[0m",
           "\u2028", "\u202e", "\ufeff", "é", "日本語", "🦊", "../../etc/passwd", "/abs", "a/b", "a/b\n", "C:\\x",
           "schedules/x.json", "ecad-1.00x", "transformer_blocks", "attn1", "ff", "PixArtTransformer2DModel",
           "a.b.c.d.e", "0" * 64, "1" * 28, "0" * 28 + "\n", "%s%n", "{{7*7}}", "<script>"]
#: String escapes spliced into the JSON text (lone surrogates cannot be written by Python's json).
STRING_TEXTS = ['"\\ud800"', '"\\udfff"', '"a\\ud83db"', '"\\ud83d\\ude00"', '"\\u0000"', '"\\u001b[2J"']


def _paths(doc, prefix=()):
    yield prefix
    if isinstance(doc, dict):
        for k, v in doc.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            yield from _paths(v, prefix + (i,))


def _get(doc, path):
    for p in path:
        doc = doc[p]
    return doc


def _set(doc, path, value):
    if not path:
        return value
    _get(doc, path[:-1])[path[-1]] = value
    return doc


def _random_value(c: Chooser, depth: int = 0):
    kind = c.choice(["number", "string", "null", "list", "dict"] if depth < 2 else ["number", "string", "null"])
    if kind == "number":
        return c.choice(NUMBERS)
    if kind == "string":
        return c.choice(STRINGS)
    if kind == "null":
        return None
    if kind == "list":
        return [_random_value(c, depth + 1) for _ in range(c.integer(0, 3))]
    return {c.choice(STRINGS): _random_value(c, depth + 1) for _ in range(c.integer(0, 2))}


def mutate_doc(doc, c: Chooser):
    """One JSON-aware edit of a parsed document; returns the new document."""
    doc = copy.deepcopy(doc)
    path = c.choice(list(_paths(doc)))
    value = _get(doc, path)
    op = c.choice(["swap-type", "number", "string", "drop", "add-key", "rename-key", "duplicate", "shorten",
                   "row", "wrap", "copy-node"])
    if op == "number" or (op == "swap-type" and isinstance(value, (int, float))):
        new = c.choice(NUMBERS)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and c.chance(0.5):
            new = c.choice([value + 1, value - 1, -value, value * 2, float(value), value / 3 if value else 0.5,
                            int(value) if abs(value) < 1e18 else 0, value + 1e-9])
        return _set(doc, path, new)
    if op == "string" and isinstance(value, str):
        new = c.choice([value + c.choice(STRINGS), c.choice(STRINGS) + value, value[: c.integer(0, len(value))],
                        value.upper(), value.replace("1", "0"), c.choice(STRINGS)])
        return _set(doc, path, new)
    if op == "swap-type":
        return _set(doc, path, _random_value(c))
    if op == "drop" and path:
        parent = _get(doc, path[:-1])
        del parent[path[-1]]
        return doc
    if op == "add-key" and isinstance(value, dict):
        value[c.choice(STRINGS + list(value))] = _random_value(c)
        return doc
    if op == "rename-key" and isinstance(value, dict) and value:
        key = c.choice(list(value))
        value[c.choice([key + "\n", key.upper(), key + "x", c.choice(STRINGS)])] = value.pop(key)
        return doc
    if op == "duplicate" and isinstance(value, list) and value:
        value.insert(c.integer(0, len(value)), copy.deepcopy(c.choice(value)))
        return doc
    if op == "shorten" and isinstance(value, list) and value:
        del value[c.integer(0, len(value) - 1)]
        return doc
    if op == "row":  # a mask row (or any 0/1 string): longer, shorter, another character
        rows = [p for p in _paths(doc) if isinstance(_get(doc, p), str) and set(_get(doc, p)) <= {"0", "1"}
                and _get(doc, p)]
        if rows:
            p = c.choice(rows)
            row = _get(doc, p)
            i = c.integer(0, len(row) - 1)
            new = c.choice([row + "1", row[:-1], row[:i] + c.choice("0123 \n x") + row[i + 1:], row + "\n",
                            row[:i] + ("1" if row[i] == "0" else "0") + row[i + 1:]])
            return _set(doc, p, new)
    if op == "wrap":
        return _set(doc, path, c.choice([[value], {"value": value}]))
    if op == "copy-node":
        other = _get(doc, c.choice(list(_paths(doc))))
        if path:
            return _set(doc, path, copy.deepcopy(other))
    return _set(doc, path, _random_value(c)) if path else doc


def mutate_text(text: str, c: Chooser) -> str:
    """A textual edit of JSON: splice a number or string literal JSON cannot carry in Python objects."""
    import re

    if c.chance(0.5):
        spots = [m.span() for m in re.finditer(r"-?\d+(\.\d+)?([eE][+-]?\d+)?", text)]
        literals = NUMBER_TEXTS
    else:
        spots = [m.span() for m in re.finditer(r'"(?:[^"\\]|\\.)*"', text)]
        literals = STRING_TEXTS
    if not spots:
        return text
    start, end = c.choice(spots)
    return text[:start] + c.choice(literals) + text[end:]


def mutate_bytes(data: bytes, c: Chooser) -> bytes:
    """A byte-level edit: flip, truncate, insert, delete or duplicate."""
    if not data:
        return bytes([c.integer(0, 255)])
    op = c.choice(["flip", "truncate", "insert", "delete", "duplicate", "set"])
    i = c.integer(0, len(data) - 1)
    if op == "flip":
        return data[:i] + bytes([data[i] ^ (1 << c.integer(0, 7))]) + data[i + 1:]
    if op == "truncate":
        return data[:i]
    if op == "insert":
        return data[:i] + bytes(c.integer(0, 255) for _ in range(c.integer(1, 4))) + data[i:]
    if op == "delete":
        return data[:i] + data[i + c.integer(1, 16):]
    if op == "duplicate":
        j = min(len(data), i + c.integer(1, 64))
        return data[:j] + data[i:j] + data[j:]
    return data[:i] + c.choice([b"\n", b"\x00", b"\xff", b"\xc3", b"{", b"]", b'"', b"\\", b",", b"e9"]) + data[i + 1:]


def mutate_file(data: bytes, c: Chooser) -> bytes:
    """One to three stacked mutations of a JSON file's bytes (JSON-aware most of the time)."""
    for _ in range(c.integer(1, 3)):
        kind = c.choice(["doc", "doc", "doc", "text", "bytes"])
        if kind == "bytes":
            data = mutate_bytes(data, c)
            continue
        try:
            doc = json.loads(data.decode("utf-8"))
        except ValueError:
            data = mutate_bytes(data, c)
            continue
        if kind == "doc":
            data = json.dumps(mutate_doc(doc, c), ensure_ascii=c.chance(0.3), indent=c.choice([None, 2])).encode(
                "utf-8", "surrogatepass")
        else:
            data = mutate_text(data.decode("utf-8"), c).encode("utf-8", "surrogatepass")
    return data


# --------------------------------------------------------------------------------------------
# outcomes
# --------------------------------------------------------------------------------------------

class Outcome:
    """The result of one input: ``kind`` is loaded / refused / exception / multi-line / load-but-can't-save /
    silent (a run directory resumed into different results)."""

    VIOLATIONS = ("exception", "multi-line", "load-but-can't-save", "silent")

    def __init__(self, kind: str, detail: str = "", trace: str = ""):
        self.kind, self.detail, self.trace = kind, detail, trace

    @property
    def violation(self) -> bool:
        return self.kind in self.VIOLATIONS

    def __repr__(self) -> str:
        return f"Outcome({self.kind}: {self.detail[:200]})"


def _unsafe(message: str) -> bool:
    return len(message.splitlines()) != 1 or any(ch in message for ch in "\x1b\r\x00\u2028\u2029\x85")


def check(load: Callable[[], Any], save_and_reload: Callable[[Any], Any]) -> Outcome:
    """Run ``load``; classify its failure, or check that what loaded saves and reloads equal."""
    from ecad_hub.errors import EcadError

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            obj = load()
        except EcadError as e:
            if _unsafe(str(e)):
                return Outcome("multi-line", repr(str(e)))
            return Outcome("refused", str(e))
        except Exception as e:  # noqa: BLE001 - the finding
            return Outcome("exception", f"{type(e).__name__}: {e}", traceback.format_exc())
        try:
            again = save_and_reload(obj)
        except Exception as e:  # noqa: BLE001 - the finding
            return Outcome("load-but-can't-save", f"{type(e).__name__}: {e}", traceback.format_exc())
    if again != obj:
        return Outcome("load-but-can't-save", "reloads different")
    return Outcome("loaded")


# --------------------------------------------------------------------------------------------
# targets
# --------------------------------------------------------------------------------------------

class Target:
    """A kind of input to fuzz: a corpus of valid inputs, a way to damage one and to load it."""

    name = ""

    def __init__(self, workdir: Path):
        self.workdir = Path(workdir)

    def run(self, c: Chooser) -> Outcome:  # pragma: no cover - abstract
        raise NotImplementedError


def corpus_schedules() -> list:
    """Valid schedules covering the format: groups, absent sub-modules, dotted names, two experts, metadata."""
    import numpy as np

    from ecad_hub import Architecture, BlockGroup, CacheSchedule

    rng = np.random.default_rng(0)
    pixart = Architecture("PixArtTransformer2DModel", (BlockGroup("transformer_blocks", 6, ("attn1", "attn2", "ff")),))
    flux = Architecture("FluxTransformer2DModel", (BlockGroup("transformer_blocks", 3, ("attn", "ff", "ff_context")),
                                                   BlockGroup("single_transformer_blocks", 4,
                                                              ("attn", "proj_mlp", "proj_out"))))
    sd3 = Architecture("SD3Transformer2DModel", (BlockGroup("transformer_blocks", 4, ("attn", "attn2", "ff", "ff_context"),
                                                            frozenset({("ff_context", 3), ("attn2", 2)})),))
    nested = Architecture("WanTransformer3DModel", (BlockGroup("blocks", 3, ("attn1", "block.ffn")),))

    def masks(arch, steps):
        return {g.name: rng.random((steps, g.num_blocks, len(g.components))) < 0.6 for g in arch.groups}

    per_step = [100, 60, 60, 40]
    metrics = {"macs": {"per_step": per_step, "total": sum(per_step), "all_compute_total": 400,
                        "ratio": sum(per_step) / 400, "speedup": 400 / sum(per_step),
                        "profile": {"height": 256, "width": 256, "batch_size": 2, "text_len": 120,
                                    "attention_scores": False}},
               "latency": {"ms_per_image": 84.09, "speedup": 1.79, "device": "cpu", "dtype": "float32", "runs": 3},
               "quality": [{"metric": "image-reward", "value": 0.93, "all_compute_value": 0.95, "num_images": 8,
                            "prompt_set_sha256": "0" * 64}]}
    return [
        CacheSchedule("pixart", 4, pixart, masks(pixart, 4), metrics=metrics, description="a schedule",
                      generation={"base_model": "PixArt-alpha/PixArt-XL-2-256x256", "height": 256, "width": 256,
                                  "guidance_scale": 4.5},
                      provenance={"ecad_hub_version": "0.1.0", "generation": 3, "candidate": 7,
                                  "imported_from": {"format": "ecad-legacy", "file": "x.json", "sha256": "a" * 64}}),
        CacheSchedule("flux", 3, flux, masks(flux, 3)),
        CacheSchedule("sd3", 5, sd3, masks(sd3, 5), generation={"height": 64, "width": 64}),
        CacheSchedule("wan-2.2", 6, nested, masks(nested, 6), generation={"num_frames": 9, "expert_switch_step": 3}),
    ]


def corpus_frontier():
    """A valid frontier (four schedules with MACs and quality, search provenance, guidance scale)."""
    import numpy as np

    from ecad_hub import Architecture, BlockGroup, CacheSchedule, Frontier

    arch = Architecture("PixArtTransformer2DModel", (BlockGroup("transformer_blocks", 2, ("attn1", "attn2", "ff")),))
    per_block = np.array([100, 50, 200])
    schedules = []
    for i, (reuse, q) in enumerate([({}, 0.9), ({1: [2]}, 0.88), ({1: [2], 2: [0, 1]}, 0.84),
                                    ({1: [0, 1, 2], 2: [0, 2], 3: [0, 1, 2]}, 0.7)]):
        m = np.ones((4, 2, 3), dtype=bool)
        for step, comps in reuse.items():
            m[step, :, comps] = False
        per_step = [int(30 + (per_block[None, :] * m[s]).sum()) for s in range(4)]
        per_step[0] = int(30 + per_block.sum() * 2)
        full = 4 * int(30 + per_block.sum() * 2)
        schedules.append(CacheSchedule(f"s{i}", 4, arch, {"transformer_blocks": m}, metrics={
            "macs": {"per_step": per_step, "total": sum(per_step), "all_compute_total": full},
            "quality": [{"metric": "image_reward", "value": q}]}))
    search = {"metric": {"name": "image_reward", "higher_is_better": True},
              "prompt_set": {"name": "tiny", "sha256": "ab" * 32, "num_prompts": 4, "images_per_prompt": 1},
              "population": 8, "generations": 3, "seed": 0, "ecad_hub_version": "0.1.0"}
    return Frontier.from_schedules(schedules, base_model="test-user/tiny-pixart", revision="0" * 40,
                                   pipeline_class="PixArtAlphaPipeline", height=64, width=64, search=search,
                                   guidance_scale=4.5)


class SchedulesTarget(Target):
    """A damaged schedule file, read with ``CacheSchedule.load``; what loads must save and reload equal."""

    name = "schedules"

    def __init__(self, workdir: Path):
        super().__init__(workdir)
        self.corpus = [s.to_json().encode() for s in corpus_schedules()]

    def run(self, c: Chooser) -> Outcome:
        from ecad_hub import CacheSchedule

        data = mutate_file(c.choice(self.corpus), c)
        path = self.workdir / "input.json"
        path.write_bytes(data)
        out = self.workdir / "saved.json"

        def save_and_reload(schedule):
            schedule.save(out)
            return CacheSchedule.load(out)

        return check(lambda: CacheSchedule.load(path), save_and_reload)


class FrontiersTarget(Target):
    """A frontier folder with one of its JSON files damaged, read with ``Frontier.load``; what loads must save
    (``save_pretrained``: config, index, schedules, card, figures) and reload equal."""

    name = "frontiers"

    def __init__(self, workdir: Path):
        super().__init__(workdir)
        self.pristine = self.workdir / "pristine"
        corpus_frontier().save_pretrained(self.pristine)
        self.files = sorted(p.relative_to(self.pristine).as_posix() for p in self.pristine.rglob("*.json"))

    def run(self, c: Chooser) -> Outcome:
        from ecad_hub import Frontier

        folder = self.workdir / "input"
        if folder.exists():
            shutil.rmtree(folder)
        shutil.copytree(self.pristine, folder)
        for _ in range(c.integer(1, 2)):
            rel = c.choice(self.files)
            (folder / rel).write_bytes(mutate_file((folder / rel).read_bytes(), c))
        out = self.workdir / "saved"

        def save_and_reload(frontier):
            frontier.save_pretrained(out)
            return Frontier.load(out)

        try:
            return check(lambda: Frontier.load(folder), save_and_reload)
        finally:
            shutil.rmtree(out, ignore_errors=True)


class RunDirsTarget(Target):
    """A damaged search run directory, resumed with ``run_search(resume=True)``: the mutations and the
    reference search of ``scripts/fuzz_run_dir.py`` (one small finished search, copied, half the time with its
    last generation removed, one to three files damaged). A resume must refuse with a one-line EcadError or
    recover the uninterrupted run's generation records exactly; ``silent`` is a resume into other results."""

    name = "run-dirs"
    KINDS = {"refused": "refused", "recovered": "loaded", "crash": "exception", "multi-line": "multi-line",
             "silent": "silent"}

    def __init__(self, workdir: Path):
        super().__init__(workdir)
        spec = importlib.util.spec_from_file_location("ecad_fuzz_run_dir", Path(__file__).with_name("fuzz_run_dir.py"))
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        self.fuzzer = module.RunDirFuzzer(self.workdir).setup()

    def run(self, c: Chooser) -> Outcome:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            outcome, what, text = self.fuzzer.once(c.rng)
        kind = self.KINDS[outcome]
        if kind == "exception":
            last = text.strip().splitlines()[-1] if text.strip() else "?"
            return Outcome(kind, f"{last} (damage: {', '.join(what)})", text)
        return Outcome(kind, text if kind == "refused" else f"{text} (damage: {', '.join(what)})")


TARGETS: dict[str, type[Target]] = {t.name: t for t in (SchedulesTarget, FrontiersTarget, RunDirsTarget)}


# --------------------------------------------------------------------------------------------
# command line
# --------------------------------------------------------------------------------------------

def summary_lines(target: str, counts: collections.Counter, exceptions: collections.Counter, seconds: float,
                  n: int) -> list[str]:
    exc = ", ".join(f"{k} {v}" for k, v in exceptions.most_common()) or "none"
    cannot_save = counts["load-but-can't-save"]
    return [
        f"target {target}: {n} inputs tried in {seconds:.0f} s",
        (f"  resumed into the uninterrupted run's records: {counts['loaded']}" if target == "run-dirs" else
         f"  loaded ok (saved and reloaded equal): {counts['loaded']}"),
        f"  refused with a one-line EcadError: {counts['refused']}",
        f"  exceptions by type (not EcadError): {exc}",
        f"  multi-line messages: {counts['multi-line']}",
        f"  load-but-can't-save: {cannot_save}",
    ] + ([f"  silent (resumed into different results): {counts['silent']}"] if target == "run-dirs" else [])


def _shard(target: str, n: int, seed: int, time_limit, show: int):
    """Try ``n`` inputs of ``target`` with ``seed``; prints the first ``show`` violations as they happen
    and progress every 500 inputs. Returns ``(counts by outcome kind, exceptions by type)``."""
    counts: collections.Counter = collections.Counter()
    exceptions: collections.Counter = collections.Counter()
    shown = 0
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix=f"ecad-fuzz-{target}-") as tmp:
        t = TARGETS[target](Path(tmp))
        chooser = Chooser(seed)
        for i in range(n):
            if time_limit is not None and time.perf_counter() - start > time_limit:
                break
            outcome = t.run(chooser)
            counts[outcome.kind] += 1
            if outcome.kind == "exception":
                exceptions[outcome.detail.split(":")[0]] += 1
            if outcome.violation and shown < show:
                shown += 1
                print(f"--- violation (seed {seed}, input {i}): {outcome.kind}: {outcome.detail[:500]}\n"
                      + (outcome.trace[-3000:] if outcome.trace else ""), flush=True)
            if (i + 1) % 500 == 0:
                print(f"  ... seed {seed}: {i + 1} inputs, {time.perf_counter() - start:.0f} s: {dict(counts)}",
                      flush=True)
    return counts, exceptions


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--target", choices=sorted(TARGETS), default="schedules")
    parser.add_argument("--n", type=int, default=1000, help="inputs to try (default 1000)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--time-limit", type=float, default=None, help="stop after this many seconds")
    parser.add_argument("--show", type=int, default=3, help="print the first N violations in full (per shard)")
    parser.add_argument("--jobs", type=int, default=1,
                        help="processes; shard k tries its share of --n with seed --seed + k (default 1)")
    args = parser.parse_args(argv)

    start = time.perf_counter()
    if args.jobs > 1:
        import concurrent.futures
        import multiprocessing

        sizes = [args.n // args.jobs + (1 if k < args.n % args.jobs else 0) for k in range(args.jobs)]
        with concurrent.futures.ProcessPoolExecutor(args.jobs,
                                                    mp_context=multiprocessing.get_context("spawn")) as pool:
            futures = [pool.submit(_shard, args.target, size, args.seed + k, args.time_limit, args.show)
                       for k, size in enumerate(sizes)]
            results = [f.result() for f in futures]
        print(f"{args.jobs} shards, seeds {args.seed}..{args.seed + args.jobs - 1}")
    else:
        results = [_shard(args.target, args.n, args.seed, args.time_limit, args.show)]
    counts: collections.Counter = collections.Counter()
    exceptions: collections.Counter = collections.Counter()
    for c, e in results:
        counts.update(c)
        exceptions.update(e)
    for line in summary_lines(args.target, counts, exceptions, time.perf_counter() - start, sum(counts.values())):
        print(line)
    violations = sum(counts[k] for k in Outcome.VIOLATIONS)
    print(f"  violations: {violations}")
    return 1 if violations else 0


if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing here needs the network (not set when imported by tests)
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    sys.exit(main())
