"""The automatic adapter (``ecad_hub/adapters/auto.py``) and ``ecad-hub inspect``.

The conformance suite (``tests/test_conformance.py``) runs the cases of ``tests/families/auto.py``
(CogView3Plus, EasyAnimate, Bria, ConsisID with synthesised inputs; Kandinsky5 from example inputs:
classes with no hand adapter) through the automatic adapter like any other case. Here: the lookup fallback and its refusals, the derivation rules on a
toy transformer built to break each of them, input synthesis and rescaling, a class whose inputs
cannot be synthesised scheduled from example inputs (checked against the reference semantics and
the MAC model), the warning, and the ``inspect`` command.
"""

from __future__ import annotations

import argparse
import json
import warnings

import pytest
import torch
import torch.nn as nn
from torch.utils.flop_counter import FlopCounterMode

from ecad_hub import CacheSchedule, apply_schedule, architecture_of, profile_macs
from ecad_hub.adapters import PixArtAdapter, adapter_for, find_adapter
from ecad_hub.adapters.auto import AutoAdapter, AutoAdapterWarning, clear_cache, derive_adapter
from ecad_hub.errors import EcadError, HubError, UnsupportedModelError
from ecad_hub.macs import counted_global

from families.auto import CASES
from semantics import STEPS, Reference, _loop, _random_schedule
from tiny_models import single_threaded, tiny_pixart_config



# --------------------------------------------------------------------------------------------
# a toy diffusers transformer breaking each rule once
# --------------------------------------------------------------------------------------------

def _toy_classes():
    from diffusers.configuration_utils import ConfigMixin, register_to_config
    from diffusers.models.attention import FeedForward
    from diffusers.models.attention_processor import Attention
    from diffusers.models.modeling_utils import ModelMixin

    def attention(dim):
        return Attention(dim, heads=2, dim_head=dim // 2)

    class Wrapper(nn.Module):  # neither attention nor feed-forward: its children are looked at
        def __init__(self, dim):
            super().__init__()
            self.norm = nn.LayerNorm(dim)
            self.cross_attn = attention(dim)

        def forward(self, x):
            return x + self.cross_attn(self.norm(x))

    class ToyBlock(nn.Module):
        def __init__(self, dim, shared, index):
            super().__init__()
            self.norm = nn.LayerNorm(dim)
            self.attn = attention(dim)
            self.ff = FeedForward(dim, mult=2)
            self.mlp = nn.Sequential(nn.Linear(dim, 2 * dim), nn.GELU(), nn.Linear(2 * dim, dim))  # a GELU-Linear stack
            self.shared_ff = shared  # the same module in every block
            self.unused_ff = FeedForward(dim, mult=2)  # never called
            self.leaky_attn = attention(dim)  # output stashed and read by the transformer
            self.side_ff = FeedForward(dim, mult=2)  # called by the transformer, outside the block
            self.inplace_ff = FeedForward(dim, mult=2)  # output modified in place
            self.extra_ff = FeedForward(dim, mult=2) if index == 0 else None  # only in block 0
            self.wrapper = Wrapper(dim)
            self.modulation = nn.Sequential(nn.SiLU(), nn.Linear(dim, dim))  # one linear: not a feed-forward

        def forward(self, x):
            h = self.norm(x)
            x = x * (1 + 0.1 * self.modulation(h.mean(1, keepdim=True)))
            y = self.inplace_ff(h)
            y.mul_(0.5)
            x = x + y + self.attn(h)
            h = self.norm(x)
            x = x + self.ff(h) + self.mlp(h) + self.shared_ff(h)
            x = self.wrapper(x)
            self.stash = self.leaky_attn(self.norm(x))
            if self.extra_ff is not None:
                x = x + self.extra_ff(self.norm(x))
            return x

    class RefinerBlock(nn.Module):
        def __init__(self, dim):
            super().__init__()
            self.norm = nn.LayerNorm(dim)
            self.self_attn = attention(dim)
            self.mlp = FeedForward(dim, mult=2)

        def forward(self, x):
            x = x + self.self_attn(self.norm(x))
            return x + self.mlp(self.norm(x))

    class Refiner(nn.Module):
        def __init__(self, dim, n):
            super().__init__()
            self.blocks = nn.ModuleList([RefinerBlock(dim) for _ in range(n)])

    class ToyTransformer2DModel(ModelMixin, ConfigMixin):
        @register_to_config
        def __init__(self, in_channels: int = 4, dim: int = 16, num_layers: int = 3, num_refiner_layers: int = 2):
            super().__init__()
            self.proj_in = nn.Linear(in_channels, dim)
            shared = FeedForward(dim, mult=2)
            self.blocks = nn.ModuleList([ToyBlock(dim, shared, i) for i in range(num_layers)])
            self.refiner = Refiner(dim, num_refiner_layers)  # registered after `blocks`, runs before them
            self.proj_out = nn.Linear(dim, in_channels)

        def forward(self, hidden_states, timestep=None, return_dict=True):
            x = self.proj_in(hidden_states)
            for block in self.refiner.blocks:
                x = block(x)
            for block in self.blocks:
                x = block(x)
            x = x + self.blocks[-1].side_ff(x) + sum(b.stash for b in self.blocks)
            return (self.proj_out(x),)

    class NoBlocksTransformer2DModel(ModelMixin, ConfigMixin):
        @register_to_config
        def __init__(self, in_channels: int = 4):
            super().__init__()
            self.proj = nn.Linear(in_channels, in_channels)

        def forward(self, hidden_states, return_dict=True):
            return (self.proj(hidden_states),)

    # stand-ins for diffusers transformer classes (the automatic adapter accepts only those)
    for cls in (ToyTransformer2DModel, NoBlocksTransformer2DModel):
        cls.__module__ = "diffusers.models.transformers.toy_for_tests"
    return ToyTransformer2DModel, NoBlocksTransformer2DModel


TOY, NO_BLOCKS = _toy_classes()


@pytest.fixture(autouse=True)
def fresh_cache():
    clear_cache()
    yield
    clear_cache()


def test_the_derivation_rules_on_a_toy_transformer():
    adapter = derive_adapter(TOY())
    d = adapter.derivation
    assert d.verified and d.device == "meta" and d.layout == "tokens"
    assert d.input_shapes == {"hidden_states": [2, 64, 4], "timestep": [2]}
    refiner, blocks = d.architecture.groups  # execution order, not registration order
    assert (refiner.name, refiner.num_blocks, refiner.components) == ("refiner.blocks", 2, ("self_attn", "mlp"))
    assert (blocks.name, blocks.num_blocks) == ("blocks", 3)
    assert blocks.components == ("attn", "ff", "mlp", "extra_ff", "wrapper.cross_attn")
    assert blocks.absent == {("extra_ff", 1), ("extra_ff", 2)}
    reasons = {e.path: e.reason for e in d.excluded}
    assert set(reasons) == {f"blocks.*.{c}" for c in ("shared_ff", "unused_ff", "leaky_attn", "side_ff", "inplace_ff")}
    assert "shared with blocks.1.shared_ff" in reasons["blocks.*.shared_ff"]
    assert "never ran" in reasons["blocks.*.unused_ff"]
    assert "used outside its block" in reasons["blocks.*.leaky_attn"]
    assert "runs outside its block's forward" in reasons["blocks.*.side_ff"]
    assert "modified in place" in reasons["blocks.*.inplace_ff"]
    assert d.kinds["blocks.*.mlp"] == "feed-forward" and d.kinds["blocks.*.wrapper.cross_attn"] == "attention"

    # the derived adapter drives the hooks: a random schedule gives the reference semantics
    with single_threaded():
        model = _random_weights(TOY())
        inputs = [{"hidden_states": torch.randn(2, 9, 4, generator=torch.Generator().manual_seed(s))}
                  for s in range(STEPS)]
        with pytest.warns(AutoAdapterWarning, match="excluded blocks.*shared_ff"):
            arch = architecture_of(model)
        _check_against_reference(model, arch, inputs, seed=1)


def test_lookup_falls_back_to_the_automatic_adapter_and_refuses_the_rest():
    case = CASES[0]
    by_name = adapter_for(case.transformer_class)
    assert isinstance(by_name, AutoAdapter) and by_name.derivation is None
    assert find_adapter(case.transformer_class) is None  # not registered: supported_classes() is unchanged
    by_config = adapter_for(case.config)
    assert isinstance(by_config, AutoAdapter) and by_config.family == "cogview3plus"
    again = derive_adapter(dict(case.config))
    assert again.derivation is by_config.derivation  # cached per class and config
    with pytest.warns(AutoAdapterWarning, match="ecad-hub has no adapter for CogView3PlusTransformer2DModel"):
        assert by_name.architecture(case.config) == by_config.derivation.architecture
    # hand adapters win
    assert isinstance(adapter_for({"_class_name": "PixArtTransformer2DModel", **tiny_pixart_config()}), PixArtAdapter)

    from diffusers import UNet2DModel

    unet = UNet2DModel(sample_size=8, block_out_channels=(8, 8), norm_num_groups=4,
                       down_block_types=("DownBlock2D", "DownBlock2D"), up_block_types=("UpBlock2D", "UpBlock2D"))
    for obj, message in [(unet, "no ecad-hub adapter for UNet2DModel"),
                         ({"_class_name": "UNet2DConditionModel"}, "no ecad-hub adapter for UNet2DConditionModel"),
                         ("NoSuchTransformer2DModel", "no ecad-hub adapter for NoSuchTransformer2DModel"),
                         (NO_BLOCKS(), "none could be derived: no ModuleList of blocks")]:
        with pytest.raises(UnsupportedModelError, match=message) as err:
            adapter_for(obj)
        assert "\n" not in str(err.value)


def test_a_class_whose_inputs_cannot_be_synthesised_is_refused_until_example_inputs_are_given():
    """Kandinsky5 takes channels-last latents and RoPE position lists: the synthesis reports the
    argument it cannot make; with one forward's example inputs the adapter is verified and the
    schedule semantics, executed forwards and executed MACs check out as for any case."""
    from diffusers import Kandinsky5Transformer3DModel

    config = dict(in_visual_dim=4, in_text_dim=16, in_text_dim2=8, time_dim=16, out_visual_dim=4, patch_size=(1, 2, 2),
                  model_dim=32, ff_dim=64, num_text_blocks=1, num_visual_blocks=2, axes_dims=(4, 6, 6))
    with single_threaded():
        model = _random_weights(Kandinsky5Transformer3DModel.from_config(config))
    d = adapter_for(model).derivation
    assert not d.verified and "required argument `visual_rope_pos`" in d.input_problem
    assert [g.name for g in d.architecture.groups] == ["text_transformer_blocks", "visual_transformer_blocks"]
    with pytest.raises(UnsupportedModelError, match="unverified .*example_inputs"):
        architecture_of(model)

    def example(step):
        g = torch.Generator().manual_seed(step)
        return dict(hidden_states=torch.randn(2, 2, 8, 8, 4, generator=g),
                    encoder_hidden_states=torch.randn(2, 6, 16, generator=torch.Generator().manual_seed(99)),
                    timestep=torch.full((2,), 900.0 - 200 * step), pooled_projections=torch.ones(2, 8),
                    visual_rope_pos=[torch.arange(2), torch.arange(4), torch.arange(4)], text_rope_pos=torch.arange(6))

    adapter = derive_adapter(model, example_inputs=example(0))
    d = adapter.derivation
    assert d.verified and d.recipe.source == "example" and d.layout == "unknown"
    groups = d.architecture.groups
    assert [(g.name, g.components) for g in groups] == [
        ("text_transformer_blocks", ("self_attention", "feed_forward")),
        ("visual_transformer_blocks", ("self_attention", "cross_attention", "feed_forward"))]
    inputs = [example(s) for s in range(STEPS)]
    with single_threaded(), warnings.catch_warnings():
        warnings.simplefilter("ignore", AutoAdapterWarning)
        arch = architecture_of(model)
        _check_against_reference(model, arch, inputs, seed=2)
        # an unrecognised layout is not rescaled: profile_inputs returns the example's size (with a warning)
        profile = profile_macs(model, 8, 8, batch_size=2, text_len=6, vae_scale_factor=1, num_frames=2,
                               vae_temporal_factor=1)
        _check_executed_macs(model, arch, inputs, profile)


def test_inputs_are_synthesised_per_layout_and_rebuilt_at_any_size():
    by_id = {c.id: c for c in CASES}
    expect = {  # case -> (layout, hidden_states at latents 12x16, batch 3, 5 text tokens, 4 frames)
        "auto-cogview3plus": ("image", [3, 4, 12, 16]),
        "auto-easyanimate": ("video", [3, 4, 4, 12, 16]),
        "auto-consisid": ("video-fc", [3, 4, 4, 12, 16]),
        "auto-bria": ("tokens", [3, 48, 16]),
    }
    for case_id, (layout, shape) in expect.items():
        case = by_id[case_id]
        adapter = derive_adapter(case.config)
        assert adapter.derivation.layout == layout, case_id
        kw = adapter.profile_inputs(case.config, 12, 16, 3, 5, "meta", latent_frames=4)
        assert list(kw["hidden_states"].shape) == shape, case_id
        assert adapter.temporal_compression == (4 if layout.startswith("video") else None)
    bria = derive_adapter(by_id["auto-bria"].config)
    kw = bria.profile_inputs(by_id["auto-bria"].config, 12, 16, 3, 5, "cpu")
    assert list(kw["img_ids"].shape) == [48, 3] and list(kw["txt_ids"].shape) == [5, 3]
    assert list(kw["encoder_hidden_states"].shape) == [3, 5, 16] and list(kw["timestep"].shape) == [3]
    with pytest.raises(ValueError, match="packed 2x2"):
        bria.latent_size(by_id["auto-bria"].config, 24, 24, 8)
    cog = derive_adapter(by_id["auto-cogview3plus"].config)
    kw = cog.profile_inputs(by_id["auto-cogview3plus"].config, 12, 16, 3, 5, "cpu")
    assert {k: list(v.shape) for k, v in kw.items()} == {
        "hidden_states": [3, 4, 12, 16], "encoder_hidden_states": [3, 5, 16], "timestep": [3],
        "original_size": [3, 2], "target_size": [3, 2], "crop_coords": [3, 2]}

    # example inputs: the keys synthesis can rebuild are rebuilt; a kept one that depends on the size refuses
    case = by_id["auto-easyanimate"]
    from diffusers import EasyAnimateTransformer3DModel

    model = EasyAnimateTransformer3DModel.from_config({**_clean(case.config), "text_embed_dim_t5": 12}).eval()
    example = {"hidden_states": torch.randn(2, 4, 2, 8, 8), "timestep": torch.ones(2),
               "encoder_hidden_states": torch.randn(2, 8, 16),
               "encoder_hidden_states_t5": torch.randn(2, 5, 12)}  # a second text length: kept as given
    adapter = derive_adapter(model, example_inputs=example)
    d = adapter.derivation
    assert d.verified, d.problem
    assert d.layout == "video" and set(d.recipe.keys) == {"hidden_states", "timestep", "encoder_hidden_states"}
    assert set(d.recipe.fixed) == {"encoder_hidden_states_t5"}
    kw = adapter.profile_inputs(dict(model.config), 4, 6, 2, 3, "meta", latent_frames=2)
    assert list(kw["hidden_states"].shape) == [2, 4, 2, 4, 6] and list(kw["encoder_hidden_states"].shape) == [2, 3, 16]
    assert list(kw["encoder_hidden_states_t5"].shape) == [2, 5, 12]
    with pytest.raises(ValueError, match="cannot rescale example input `encoder_hidden_states_t5`"):
        adapter.profile_inputs(dict(model.config), 4, 6, 3, 3, "meta", latent_frames=2)  # batch 3


def test_using_a_derived_adapter_warns_once_with_what_was_derived():
    case = next(c for c in CASES if c.id == "auto-easyanimate")
    model = _build(case)
    arch = derive_adapter(model).derivation.architecture
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(2):
            with apply_schedule(model, CacheSchedule.all_compute(arch, STEPS)):
                pass
        profile_macs(model, 8, 8, batch_size=1, text_len=4, vae_scale_factor=1, num_frames=2, vae_temporal_factor=1)
    mine = [str(w.message) for w in caught if issubclass(w.category, AutoAdapterWarning)]
    assert len(mine) == 1, mine
    assert mine[0].startswith("ecad-hub has no adapter for EasyAnimateTransformer3DModel; derived groups "
                              "transformer_blocks[3]x{attn1,ff,txt_ff} (absent: txt_ff in block 2); excluded none")
    assert mine[0].endswith("check with `ecad-hub inspect`")


def test_the_derivation_agrees_with_hand_written_adapters():
    """The rules find exactly what the PixArt and SD3 adapters declare (SD3: dual attention in block 0
    only, no ff_context in the last block)."""
    from tiny_models import tiny_sd3_config

    for config in ({"_class_name": "PixArtTransformer2DModel", **tiny_pixart_config()},
                   {"_class_name": "SD3Transformer2DModel", **tiny_sd3_config()}):
        d = derive_adapter(config).derivation
        assert d.verified and not d.excluded
        assert d.architecture == find_adapter(config["_class_name"]).architecture(config)


def test_the_conformance_cases_have_no_hand_adapter():
    """tests/families/auto.py must keep exercising the automatic adapter: pick another class if one gets an adapter."""
    assert len(CASES) >= 2
    for case in CASES:
        assert find_adapter(case.transformer_class) is None, f"{case.transformer_class} now has a hand adapter"
        assert isinstance(adapter_for(case.transformer_class), AutoAdapter)


# --------------------------------------------------------------------------------------------
# ecad-hub inspect
# --------------------------------------------------------------------------------------------

def _cli(argv: list[str]) -> int:
    """``ecad-hub ARGV`` through ``ecad_hub.cli.main`` once inspect is registered there, else through a
    parser built the same way (the registration is the lead's)."""
    from ecad_hub import cli
    from ecad_hub.cli import inspect as inspect_commands

    if inspect_commands in cli.COMMAND_MODULES:
        return cli.main(argv)
    parser = argparse.ArgumentParser(prog="ecad-hub")
    sub = parser.add_subparsers(dest="command")
    inspect_commands.add_parsers(sub)
    args = parser.parse_args(argv)
    try:
        return args.handler(args)
    except EcadError as e:
        import sys

        print(f"error: {e}", file=sys.stderr)
        return 1


def test_inspect_prints_the_derived_architecture_exclusions_and_mac_split(tmp_path, capsys):
    case = next(c for c in CASES if c.id == "auto-easyanimate")
    path = tmp_path / "config.json"
    path.write_text(json.dumps(case.config))
    assert _cli(["inspect", str(path), "--height", "64", "--width", "64", "--num-frames", "5"]) == 0
    out = capsys.readouterr().out
    assert "EasyAnimateTransformer3DModel" in out and "derived automatically" in out and "verified" in out
    assert "transformer_blocks    3 blocks x {attn1 (attention), ff (feed-forward), txt_ff (feed-forward)}" in out
    assert "absent: txt_ff in block 2" in out and "excluded candidates: none" in out
    assert "video latents [B, C, F, H, W]" in out and "MACs of one step at 64x64x5 frames, batch 2" in out

    # --json, from the folder holding transformer/config.json
    (tmp_path / "model" / "transformer").mkdir(parents=True)
    (tmp_path / "model" / "transformer" / "config.json").write_text(json.dumps(case.config))
    assert _cli(["inspect", str(tmp_path / "model"), "--json", "--height", "64", "--width", "64",
                 "--num-frames", "5", "--batch-size", "1", "--text-len", "4"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["adapter"]["kind"] == "derived" and report["verified"] and report["excluded"] == []
    assert report["architecture"]["groups"][0]["absent"] == {"txt_ff": [2]}
    m = report["macs"]
    assert (m["height"], m["width"], m["num_frames"], m["batch_size"], m["text_len"]) == (64, 64, 5, 1, 4)
    assert m["full_step_macs"] == m["always_macs"] + sum(g["total"] for g in m["groups"])
    expected = profile_macs(case.config, 64, 64, batch_size=1, text_len=4, num_frames=5)
    assert m["full_step_macs"] == expected.full_step_macs

    from ecad_hub.cli.inspect import format_report, inspect_config

    report = inspect_config(dict(case.config), "cfg", macs=False)
    assert report["macs"] is None and "MACs" not in format_report(report)


def test_inspect_shows_hand_adapters_and_unverified_derivations_and_refuses_bad_input(tmp_path, capsys, hub):
    pixart = tmp_path / "pixart.json"
    pixart.write_text(json.dumps({"_class_name": "PixArtTransformer2DModel", **tiny_pixart_config()}))
    assert _cli(["inspect", str(pixart), "--height", "64", "--width", "64"]) == 0
    out = capsys.readouterr().out
    assert "adapter: hand-written (ecad_hub.adapters.pixart.PixArtAdapter" in out and "excluded" not in out

    k5 = tmp_path / "k5.json"
    k5.write_text(json.dumps({"_class_name": "Kandinsky5Transformer3DModel", "num_visual_blocks": 2,
                              "num_text_blocks": 1, "model_dim": 32, "ff_dim": 64, "axes_dims": [4, 6, 6]}))
    assert _cli(["inspect", str(k5)]) == 0
    out = capsys.readouterr().out
    assert "NOT verified: cannot synthesise inputs: required argument `visual_rope_pos`" in out
    assert "visual_transformer_blocks    2 blocks x {self_attention (attention)" in out
    assert "MACs: unavailable" in out

    # a Hub repo: transformer/config.json of a pipeline repo, or config.json of a transformer repo
    case = CASES[0]
    hub.seed("someone/pipeline-repo", {"model_index.json": "{}", "transformer/config.json": json.dumps(case.config)})
    hub.seed("someone/transformer-repo", {"config.json": json.dumps(case.config)})
    for repo, shown in (("someone/pipeline-repo", "someone/pipeline-repo:transformer/config.json"),
                        ("someone/transformer-repo", "someone/transformer-repo:config.json")):
        assert _cli(["inspect", repo, "--no-macs"]) == 0
        out = capsys.readouterr().out
        assert f"CogView3PlusTransformer2DModel  ({shown})" in out and "transformer_blocks    2 blocks" in out

    (tmp_path / "unet.json").write_text(json.dumps({"_class_name": "UNet2DConditionModel"}))
    (tmp_path / "model_index.json").write_text(json.dumps({
        "_class_name": "PixArtAlphaPipeline", "_diffusers_version": "0.42.1",
        "transformer": ["diffusers", "PixArtTransformer2DModel"]}))
    (tmp_path / "no_class.json").write_text(json.dumps({"num_layers": 2}))
    (tmp_path / "empty").mkdir()
    for argv, message in [
        ([str(tmp_path / "unet.json")], "no ecad-hub adapter for UNet2DConditionModel"),
        ([str(tmp_path / "model_index.json")], "a pipeline's model_index.json, not a transformer config"),
        ([str(tmp_path / "no_class.json")], "no _class_name: not a diffusers model config"),
        ([str(tmp_path / "missing.json")], "no such file or folder, and not a Hub repo id"),
        ([str(tmp_path / "empty")], "no config.json or transformer/config.json in this folder"),
        (["someone/no-such-repo"], "someone/no-such-repo: no such model repo"),
    ]:
        assert _cli(["inspect", *argv]) == 1
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1, err


def test_inspect_errors_are_ecad_errors():
    from ecad_hub.cli.inspect import InspectError, resolve_config

    assert issubclass(InspectError, EcadError)
    with pytest.raises(HubError):
        resolve_config("someone/absent-repo")


# --------------------------------------------------------------------------------------------
# helpers: an independent reference of the semantics (as in tests/test_conformance.py)
# --------------------------------------------------------------------------------------------

def _clean(config):
    return {k: v for k, v in config.items() if not k.startswith("_")}


def _build(case):
    from ecad_hub.adapters.auto import _class_of

    cls = _class_of(case.transformer_class)
    return cls.from_config({k: v for k, v in case.config.items() if not k.startswith("_")}).eval()


def _random_weights(model, seed: int = 0):
    import math

    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.ndim >= 2:
                p.copy_(torch.randn(p.shape, generator=g) / math.sqrt(max(1, math.prod(p.shape[1:]))))
            else:
                p.copy_(0.05 * torch.randn(p.shape, generator=g) + (1.0 if name.endswith("weight") else 0.0))
    return model.float().eval()


def _check_against_reference(model, arch, inputs, seed: int):
    """All-compute bit-identical, a random schedule equal to the reference, counts = mask, remove restores."""
    plain = _loop(model, inputs)
    with apply_schedule(model, CacheSchedule.all_compute(arch, STEPS)):
        assert all(torch.equal(a, b) for a, b in zip(plain, _loop(model, inputs)))
    schedule = _random_schedule(arch, seed)
    ref = Reference(model, schedule)
    try:
        expected = ref.run(model, inputs)
    finally:
        ref.remove()
    with apply_schedule(model, schedule) as handle:
        got = _loop(model, inputs)
        counts, hooked = handle.computed_counts(), set(handle._component_hooks)
    for a, b in zip(got, expected):
        assert torch.allclose(a, b, atol=1e-5, rtol=1e-4), (a - b).abs().max()
    assert any(not torch.equal(a, b) for a, b in zip(plain, got)), "the random schedule changed nothing"
    eff = schedule.effective_masks()
    for gi, g in enumerate(arch.groups):
        for bi in range(g.num_blocks):
            for ci in range(len(g.components)):
                if (gi, bi, ci) in hooked:
                    per = ref.per_forward[(gi, bi, ci)]
                    assert per >= 1 and list(counts[g.name][:, bi, ci]) == list(eff[g.name][:, bi, ci].astype(int) * per)
    assert all(torch.equal(a, b) for a, b in zip(plain, _loop(model, inputs)))
    assert not any(getattr(m, "_diffusers_hook", None) is not None and m._diffusers_hook.hooks for m in model.modules())


def _check_executed_macs(model, arch, inputs, profile):
    schedule = _random_schedule(arch, 3)
    executed = []
    with apply_schedule(model, schedule, fast_path=False), torch.no_grad():
        for kw in inputs:
            counter = FlopCounterMode(display=False, depth=None)
            with counter:
                model(**kw, return_dict=False)
            executed.append(counted_global(counter.get_flop_counts(), False))
    assert executed == profile.step_macs(schedule)
    assert executed[0] == profile.full_step_macs and min(executed) < profile.full_step_macs
