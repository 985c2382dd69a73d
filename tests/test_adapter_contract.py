"""The adapter contract: a transformer family ecad-hub has never seen is one adapter class away.

The adapter below is defined only in this file (a PixArt-style transformer under a new class name
and family tag). If any module outside ``ecad_hub/adapters/`` still branched on a family name,
one of apply / MACs / search / export / load would fail or differ for it. A second test checks
the source itself: no module outside the adapters names a family in code.
"""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest
import torch

import ecad_hub.adapters as adapters_module
from ecad_hub import CacheSchedule, ECADPipeline, Frontier, apply_schedule, architecture_of, profile_macs
from ecad_hub.adapters import PixArtAdapter, adapter_for
from ecad_hub.search import SearchConfig, run_search

from tiny_models import SEARCH_PROMPTS, pipeline_call_kwargs, single_threaded, tiny_pixart_pipeline

PACKAGE = Path(__file__).resolve().parents[1] / "ecad_hub"


def _new_dit_class():
    from diffusers import PixArtTransformer2DModel

    class NewDiT2DModel(PixArtTransformer2DModel):
        """A diffusers transformer class no ecad-hub adapter knows (same blocks as PixArt)."""

    return NewDiT2DModel


class NewDiTAdapter(PixArtAdapter):
    """The whole of ecad-hub's knowledge of the new family: a class name, a tag, a model class."""

    transformer_class = "NewDiT2DModel"
    family = "newdit"

    def model_class(self):
        return NEW_DIT


NEW_DIT = _new_dit_class()


@pytest.fixture
def new_family(monkeypatch):
    """The test adapter registered (for this test only) and a tiny pipeline whose transformer is a NewDiT."""
    adapter = NewDiTAdapter()
    monkeypatch.setitem(adapters_module._ADAPTERS, adapter.transformer_class, adapter)
    with single_threaded():
        pipe = tiny_pixart_pipeline(0)
        plain = pipe.transformer
        new = NEW_DIT.from_config({k: v for k, v in plain.config.items() if not k.startswith("_")})
        new.load_state_dict(plain.state_dict())
        new.eval()
        pipe.register_modules(transformer=new)
        pipe.set_progress_bar_config(disable=True)
        yield pipe, plain


def _schedule(arch, steps: int, seed: int = 0) -> CacheSchedule:
    rng = np.random.default_rng(seed)
    masks = {g.name: rng.random((steps, g.num_blocks, len(g.components))) < 0.5 for g in arch.groups}
    return CacheSchedule("random-mix", steps, arch, masks)


def _images(pipe, steps: int):
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        return pipe(SEARCH_PROMPTS[0], **pipeline_call_kwargs("pixart", num_inference_steps=steps), generator=gen).images


def test_an_adapter_defined_only_here_goes_through_apply_macs_search_export_and_load(new_family, tmp_path):
    pipe, plain = new_family
    arch = architecture_of(pipe)
    assert arch.transformer_class == "NewDiT2DModel" and adapter_for(pipe.transformer).family == "newdit"

    # apply: the new class gives exactly what the PixArt adapter gives on the same weights
    steps = 4
    schedule = _schedule(arch, steps)
    with apply_schedule(pipe, schedule) as handle:
        cached = _images(pipe, steps)
        counts = handle.computed_counts()
    eff = schedule.effective_masks()
    for g in arch.groups:
        assert (counts[g.name] == eff[g.name]).all()  # each computed bit ran once (CFG is one batched forward)
    pipe.register_modules(transformer=plain)
    pixart_schedule = CacheSchedule("random-mix", steps, architecture_of(plain), schedule.masks)
    with apply_schedule(pipe, pixart_schedule):
        expected = _images(pipe, steps)
    assert torch.equal(cached, expected)

    # MACs: profiled from the module and from its config (the adapter's model_class), same as PixArt
    new = NEW_DIT.from_config({k: v for k, v in plain.config.items() if not k.startswith("_")})
    by_module = profile_macs(new, 64, 64)
    by_config = profile_macs({**dict(plain.config), "_class_name": "NewDiT2DModel"}, 64, 64)
    as_pixart = profile_macs(plain, 64, 64)
    assert by_module.full_step_macs == by_config.full_step_macs == as_pixart.full_step_macs > 0
    assert by_module.speedup(schedule) == pytest.approx(as_pixart.speedup(pixart_schedule))

    # search on the new family, then export and load the frontier back onto the pipeline
    new.load_state_dict(plain.state_dict())
    new.eval()
    pipe.register_modules(transformer=new)
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("\n".join(SEARCH_PROMPTS) + "\n")
    cfg = SearchConfig(base_model="local/new-dit", num_inference_steps=steps, metric="fidelity",
                       metric_kwargs={"max_psnr": 200.0}, prompts=str(prompts), max_sequence_length=16,
                       height=64, width=64, population=4, generations=2, num_threads=1, seed=0)
    result = run_search(cfg, tmp_path / "run", pipe=pipe, progress=False, quiet=True)
    assert result.front and all(s.architecture.transformer_class == "NewDiT2DModel" for s in result.front)

    frontier = Frontier.load(tmp_path / "run")
    assert frontier.family == "newdit"
    out = frontier.save_pretrained(tmp_path / "export")
    loaded = Frontier.load(out)
    assert loaded == frontier
    ecad = ECADPipeline.from_pipe(pipe, out, schedule=loaded.names[-1])
    assert ecad.schedule.architecture.transformer_class == "NewDiT2DModel"
    images = _images(ecad, steps)
    assert images.shape[0] == 1 and torch.isfinite(images).all()


# --------------------------------------------------------------------------------------------
# the source: no family knowledge outside ecad_hub/adapters/
# --------------------------------------------------------------------------------------------

#: the embedded digits model *is* a PixArt pipeline: its package builds one (data, not a branch)
_NOT_CHECKED = ("adapters", "embedded")


#: names of other projects that happen to contain a family tag (cache-dit is a package, not the DiT family)
_THIRD_PARTY = {"cache_dit", "cache-dit"}


def _family_words() -> set[str]:
    words = set()
    for adapter in adapters_module.adapters():
        words.add(adapter.family.lower())
        words.add(adapter.transformer_class.lower())
    return words


def _words(identifier: str) -> list[str]:
    """``is_flux`` -> is, flux; ``PixArtLayout`` -> pix, art, layout, pixart...: snake/camel parts, lower case,
    plus each pair of neighbours joined (``PixArt`` is one family word)."""
    import re

    parts = [p.lower() for chunk in identifier.split("_") for p in re.findall(r"[A-Z]+(?![a-z])|[A-Z]?[a-z0-9]+", chunk)]
    return parts + [a + b for a, b in zip(parts, parts[1:])]


def _code_strings_and_names(tree: ast.AST):
    """Identifiers and non-docstring string constants of a module (docstrings are documentation)."""
    docstrings = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = getattr(node, "body", [])
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                docstrings.add(id(body[0].value))
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
            yield node.lineno, node.value
        elif isinstance(node, ast.Name):
            yield node.lineno, node.id
        elif isinstance(node, ast.Attribute):
            yield node.lineno, node.attr


def test_no_module_outside_the_adapters_names_a_family():
    words = _family_words()
    assert {"pixart", "flux", "sd3"} <= words
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE)
        if rel.parts[0] in _NOT_CHECKED:
            continue
        for line, text in _code_strings_and_names(ast.parse(path.read_text(), str(path))):
            # a bare tag or class name ("flux", "PixArtTransformer2DModel") or an identifier built
            # on one (is_flux, PIXART_LAYOUT, fluxBlocks); example repo ids in help texts
            # ("user/pixart-ecad") are data, and words merely containing a tag ("flatten") are not one
            if text in _THIRD_PARTY:
                continue
            tokens = {text.lower()} | (set(_words(text)) if text.isidentifier() else set())
            if tokens & words:
                found.append(f"{rel}:{line}: {text!r}")
    assert not found, "family knowledge outside ecad_hub/adapters/:\n" + "\n".join(found)
