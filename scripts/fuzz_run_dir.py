"""Fuzz ``run_search(resume=True)`` with damaged run directories.

One small finished search (a tiny random PixArt pipeline, the configuration of
``tests/test_search.py``) is made once; each iteration copies it, removes its last generation file
half of the time (an interrupted run), damages one to three of its files (JSON-aware edits, byte
edits, deletions, a folder or a file in the place of the other, tensor edits of the reference
images) and resumes it in-process. Allowed outcomes:

* ``refused``: an :class:`~ecad_hub.errors.EcadError` with a one-line message;
* ``recovered``: the resume succeeds and the generation records equal the uninterrupted run's
  (the files it writes byte for byte, the others as JSON documents).

Anything else is a finding: ``crash`` (another exception), ``multi-line`` (a message of several
lines) or ``silent`` (a resume that succeeds with different generation records). Usage::

    python scripts/fuzz_run_dir.py --n 2000 [--seed 0] [--time-limit 600] [--show 5]

Exit status 1 if there is a finding. Needs ``tests/tiny_models.py`` (run from the repository).
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import random
import shutil
import sys
import tempfile
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

GENERATIONS = 3
VALUES = [None, True, False, 0, -1, 1, 2, 1.5, -0.0, 1e308, 200.0, "", "x", "zz", "00", "0" * 64, [], {}, [1], {"a": 1}]


def make_config(tiny: Path):
    from ecad_hub.search import SearchConfig

    return SearchConfig(base_model=str(tiny), num_inference_steps=4, metric="fidelity",
                        metric_kwargs={"max_psnr": 200.0}, prompts=str(tiny.parent / "prompts.txt"),
                        max_sequence_length=16, population=6, generations=GENERATIONS, num_threads=1, seed=0)


# --- mutations ---------------------------------------------------------------------------------

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


def mutate_json(doc, rng: random.Random):
    """One random edit of a parsed JSON document (returns the new document)."""
    paths = list(_paths(doc))
    path = rng.choice(paths)
    value = _get(doc, path)
    op = rng.choice(["replace", "delete", "number", "string", "list", "copy"])
    if op == "number" and isinstance(value, (int, float)) and not isinstance(value, bool):
        other = int(value) if isinstance(value, float) else float(value)
        new = rng.choice([value + 1, value * 2, -value, value / 3, other, value + 1e-9])
    elif op == "string" and isinstance(value, str) and value:
        i = rng.randrange(len(value))
        new = rng.choice([value[:i], value[:i] + rng.choice("0123456789abcdefABCDEF xg") + value[i + 1:],
                          value + "00", value.upper(), " " + value])
    elif op == "list" and isinstance(value, list):
        v = list(value)
        choice = rng.randrange(5)
        if choice == 0:
            v.reverse()
        elif choice == 1 and v:
            v.append(v[rng.randrange(len(v))])
        elif choice == 2:
            v = v[: rng.randrange(len(v) + 1)]
        elif choice == 3 and len(v) >= 2:
            i, j = rng.sample(range(len(v)), 2)
            v[i], v[j] = v[j], v[i]
        else:
            v = []
        new = v
    elif op == "copy":
        new = json.loads(json.dumps(_get(doc, rng.choice(paths))))
    elif op == "delete" and path:
        parent = _get(doc, path[:-1])
        del parent[path[-1]]
        return doc
    else:
        new = json.loads(json.dumps(rng.choice(VALUES)))
    if not path:
        return new
    _get(doc, path[:-1])[path[-1]] = new
    return doc


def mutate_bytes(data: bytes, rng: random.Random) -> bytes:
    op = rng.randrange(5)
    if op == 0 or not data:
        return data[: rng.randrange(len(data) + 1)] if data else b"\x00"
    if op == 1:
        b = bytearray(data)
        for _ in range(rng.randint(1, 4)):
            b[rng.randrange(len(b))] = rng.randrange(256)
        return bytes(b)
    if op == 2:
        return data + bytes(rng.randrange(256) for _ in range(rng.randint(1, 16)))
    if op == 3:
        return b""
    return b"\x00" * len(data)


def mutate_images(path: Path, rng: random.Random) -> None:
    import torch
    from safetensors.torch import load_file, save_file

    try:
        images = load_file(str(path))["images"]
    except Exception:  # noqa: BLE001 - already damaged
        return
    op = rng.randrange(6)
    if op == 0:
        images = torch.zeros_like(images)
    elif op == 1:
        images = images + 1e-3 * torch.randn(images.shape, generator=torch.Generator().manual_seed(rng.randrange(99)))
    elif op == 2:
        images = images[:1]
    elif op == 3:
        images = images.double()
    elif op == 4:
        images = images.clone()
        images.view(-1)[rng.randrange(images.numel())] = float("nan")
    else:
        save_file({"images": images, "extra": torch.zeros(1)}, str(path))
        return
    save_file({"images": images.contiguous()}, str(path))


def damage(run: Path, rng: random.Random) -> list[str]:
    """Apply one to three random damages to the run directory; returns their descriptions."""
    done = []
    for _ in range(rng.choice([1, 1, 1, 2, 3])):
        files = sorted(p for p in run.rglob("*") if p.is_file())  # sorted: the listing order varies by folder
        folders = [p for p in (run / "generations", run / "front") if p.is_dir()]
        target = rng.choice(files + folders)
        rel = target.relative_to(run)
        kind = rng.random()
        if target.is_dir():
            shutil.rmtree(target)
            if kind < 0.5:
                target.write_text("not a folder")
            done.append(f"{rel}: {'a file' if kind < 0.5 else 'deleted'}")
            continue
        if kind < 0.08:
            target.unlink()
            done.append(f"{rel}: deleted")
        elif kind < 0.12:
            target.unlink()
            target.mkdir()
            done.append(f"{rel}: a folder")
        elif target.suffix == ".safetensors" and kind < 0.6:
            mutate_images(target, rng)
            done.append(f"{rel}: tensor edit")
        elif target.suffix == ".json" and kind < 0.8:
            try:
                doc = json.loads(target.read_text())
            except Exception:  # noqa: BLE001 - already damaged
                doc = None
            if doc is not None:
                for _ in range(rng.choice([1, 1, 2])):
                    doc = mutate_json(doc, rng)
                target.write_text(json.dumps(doc, indent=rng.choice([None, 2])))
                done.append(f"{rel}: JSON edit")
        else:
            target.write_bytes(mutate_bytes(target.read_bytes(), rng))
            done.append(f"{rel}: byte edit")
    return done


# --- the loop ------------------------------------------------------------------------------------

def generations(run: Path) -> dict:
    out = {}
    gd = run / "generations"
    for k in range(GENERATIONS):
        p = gd / f"gen_{k:04d}.json"
        out[k] = p.read_bytes() if p.is_file() else None
    return out


def _memoize_profile_macs() -> None:
    """Compute each MAC profile once per process. Every resume re-profiles the (never damaged) tiny model's
    MACs from its config, the same deterministic computation each time (about 40% of an iteration); the
    damage is to the run directory, not to the model, so a cached copy of the result changes nothing checked."""
    import copy

    from ecad_hub import macs

    if getattr(macs.profile_macs, "_fuzz_memo", False):
        return
    original, memo = macs.profile_macs, {}

    def profile_macs(config, *args, **kwargs):
        key = json.dumps([config, args, kwargs], sort_keys=True, default=repr)
        if key not in memo:
            memo[key] = original(config, *args, **kwargs)
        return copy.deepcopy(memo[key])

    profile_macs._fuzz_memo = True
    macs.profile_macs = profile_macs


class RunDirFuzzer:
    """One finished reference run in ``work`` (made by :meth:`setup`) and :meth:`once`: copy it,
    damage the copy, resume it, classify the outcome. ``scripts/fuzz.py`` can wrap it as a target."""

    def __init__(self, work: Path):
        self.work = Path(work)

    def setup(self) -> "RunDirFuzzer":
        import torch

        torch.set_num_threads(1)
        from tiny_models import SEARCH_PROMPTS, save_tiny_pipeline, tiny_pixart_pipeline

        from ecad_hub.search import run_search
        from ecad_hub.search.model import load_pipeline

        _memoize_profile_macs()
        tiny = self.work / "tiny"
        save_tiny_pipeline(tiny_pixart_pipeline(0), tiny)
        (self.work / "prompts.txt").write_text("\n".join(SEARCH_PROMPTS) + "\n")
        self.config = make_config(tiny)
        self.pipe = load_pipeline(str(tiny), None, dtype="float32", device="cpu")
        self.reference = self.work / "reference"
        run_search(self.config, self.reference, pipe=self.pipe, progress=False, quiet=True)
        self.want = generations(self.reference)
        self.want_docs = {k: json.loads(v) for k, v in self.want.items()}
        return self

    def once(self, rng: random.Random) -> tuple[str, list[str], str]:
        """``(outcome, damages, detail)``; outcome: refused, recovered, crash, multi-line or silent."""
        from ecad_hub.errors import EcadError
        from ecad_hub.search import run_search
        from ecad_hub.search.run_dir import first_difference

        run = self.work / "run"
        if run.exists() or run.is_symlink():
            shutil.rmtree(run) if run.is_dir() else run.unlink()
        shutil.copytree(self.reference, run)
        if rng.random() < 0.5:
            (run / "generations" / f"gen_{GENERATIONS - 1:04d}.json").unlink()
        what = damage(run, rng)
        before = generations(run)
        try:
            run_search(self.config, run, pipe=self.pipe, resume=True, progress=False, quiet=True)
        except EcadError as err:
            text = str(err)
            if "\n" in text or "\r" in text:
                return "multi-line", what, text
            return "refused", what, _kind_of(text, run)
        except Exception:  # noqa: BLE001 - what the fuzzer looks for
            return "crash", what, traceback.format_exc()
        got = generations(run)
        silent = []
        for k in range(GENERATIONS):
            if got[k] is None:
                silent.append(f"gen {k} missing")
            elif before[k] == got[k] and before[k] is not None:  # not rewritten: compare as JSON
                try:
                    d = first_difference(json.loads(got[k]), self.want_docs[k])
                except ValueError:
                    d = ("(not JSON)", None, None)
                if d:
                    silent.append(f"gen {k}: {d[0]}")
            elif got[k] != self.want[k]:
                silent.append(f"gen {k} rewritten differently")
        return ("silent", what, "; ".join(silent)) if silent else ("recovered", what, "")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=200, help="iterations")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--time-limit", type=float, default=None, help="stop after this many seconds")
    ap.add_argument("--show", type=int, default=5, help="findings to print in full")
    args = ap.parse_args(argv)

    work = Path(tempfile.mkdtemp(prefix="fuzz-run-dir-"))
    try:
        fuzzer = RunDirFuzzer(work).setup()
        rng = random.Random(args.seed)
        counts = collections.Counter()
        findings = []
        messages = collections.Counter()
        t0 = time.time()
        n = 0
        for n in range(1, args.n + 1):
            if args.time_limit and time.time() - t0 > args.time_limit:
                n -= 1
                break
            outcome, what, text = fuzzer.once(rng)
            counts[outcome] += 1
            if outcome == "refused":
                messages[text] += 1
            elif outcome != "recovered":
                findings.append((outcome, what, text))
            if n % 100 == 0:
                print(f"  ... {n} iterations, {time.time() - t0:.0f} s: {dict(counts)}", flush=True)
        seconds = time.time() - t0
        print(f"fuzz_run_dir: {n} iterations in {seconds:.0f} s (seed {args.seed})")
        for k in ("refused", "recovered", "crash", "multi-line", "silent"):
            print(f"  {k:10s} {counts[k]}")
        print("  refusals by the file they name:")
        for k, v in messages.most_common():
            print(f"    {v:5d}  {k}")
        for kind, what, text in findings[: args.show]:
            print(f"--- {kind}: {', '.join(what)}\n{text}")
        return 1 if findings else 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _kind_of(message: str, run: Path) -> str:
    """The file a refusal names (relative to the run directory; ``<run>``: the directory itself)."""
    text = message.replace(str(run) + "/", "").replace(str(run), "<run>")
    name = text.split(":", 1)[0].split(" -> ")[-1].split(" (")[0].strip()
    if name.startswith("failed") or name.startswith("<run> is a different search"):
        name = "<run> (search.json: a different search)" if "different search" in name else name
    if name.startswith("--resume"):
        name = "<run> (search.json missing)"
    return name


if __name__ == "__main__":
    # nothing here needs the network (not set when imported, e.g. by scripts/fuzz.py inside the tests:
    # the variable would leak into every later test's subprocesses)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    sys.exit(main())
