"""FLUX.1 (``FluxTransformer2DModel``): double-stream and single-stream block groups."""

from __future__ import annotations

from ..schedule import Architecture, BlockGroup
from .base import ArchitectureAdapter, LegacyLayout, arg, is_ada_zero, modulation, positive_int

#: ECAD-reference component names -> diffusers names, per group
LEGACY_DOUBLE = {"full_attn": "attn", "full_ff": "ff", "full_ff_context": "ff_context"}
LEGACY_SINGLE = {"single_attn": "attn", "single_proj_mlp": "proj_mlp", "single_proj_out": "proj_out"}


class FluxAdapter(ArchitectureAdapter):
    """FLUX.1 (``FluxTransformer2DModel``): double-stream and single-stream block groups."""

    transformer_class = "FluxTransformer2DModel"
    family = "flux"
    default_text_len = 512
    checkpoints = ("FLUX.1 dev", "FLUX.1 schnell", "FLUX.1 Kontext", "FLUX.1 Fill")
    component_aliases = {**LEGACY_DOUBLE, **LEGACY_SINGLE}

    def architecture(self, config):
        return Architecture(
            self.transformer_class,
            (
                BlockGroup("transformer_blocks", int(config.get("num_layers", 19)), tuple(LEGACY_DOUBLE.values())),
                BlockGroup("single_transformer_blocks", int(config.get("num_single_layers", 38)),
                           tuple(LEGACY_SINGLE.values())),
            ),
        )

    def fast_path(self, block):
        name = type(block).__name__
        if name == "FluxTransformerBlock" and is_ada_zero(getattr(block, "norm1", None), 6) \
                and is_ada_zero(getattr(block, "norm1_context", None), 6):
            return _flux_double_fast
        if name == "FluxSingleTransformerBlock" and is_ada_zero(getattr(block, "norm", None), 3):
            return _flux_single_fast
        return None

    def latent_size(self, config, height, width, vae_scale_factor):
        h, w = super().latent_size(config, height, width, vae_scale_factor)
        if h % 2 or w % 2:
            raise ValueError("FLUX packs 2x2 latent patches: height and width must be multiples of 2 x the VAE scale factor")
        return h, w

    def profile_inputs(self, config, latent_height, latent_width, batch_size, text_len, device, latent_frames=None):
        import torch

        tokens = (latent_height // 2) * (latent_width // 2)
        kw = dict(
            hidden_states=torch.zeros(batch_size, tokens, config.get("in_channels", 64), device=device),
            encoder_hidden_states=torch.zeros(batch_size, text_len, config.get("joint_attention_dim", 4096), device=device),
            pooled_projections=torch.zeros(batch_size, config.get("pooled_projection_dim", 768), device=device),
            timestep=torch.ones(batch_size, device=device),
            img_ids=torch.zeros(tokens, 3, device=device),
            txt_ids=torch.zeros(text_len, 3, device=device),
        )
        if config.get("guidance_embeds"):
            kw["guidance"] = torch.ones(batch_size, device=device)
        return kw

    def default_resolution(self, config, vae_scale_factor):
        return 1024  # sample_size is FLUX's RoPE extent, not its training resolution

    def uses_cfg(self, guidance_scale):
        return False  # guidance-distilled: the scale is an input, not a second pass

    def encode_prompts(self, pipe, prompts, *, guidance_scale, max_sequence_length, device):
        pe, pooled, _ = pipe.encode_prompt(prompt=prompts, prompt_2=None, device=device,
                                           num_images_per_prompt=1, max_sequence_length=max_sequence_length)
        return {"prompt_embeds": pe, "pooled_prompt_embeds": pooled}

    def call_kwargs(self, settings, *, prompt_embeds):
        return {"max_sequence_length": settings["max_sequence_length"]}

    def cache_timestep(self, args, kwargs):
        # the FLUX pipelines pass timestep / 1000 to the transformer
        t = super().cache_timestep(args, kwargs)
        return None if t is None else t * 1000.0

    def faster_cache_tensor_format(self, config):
        return None  # packed latent tokens [B, S, C] (FasterCache handles image/video layouts only)

    def legacy_layout(self, cs, source):
        sched = cs.get("schedule") or {}
        if "num_single_blocks" not in cs and not any(
                isinstance(b, str) and b.startswith("single_")
                for blocks in sched.values() if isinstance(blocks, dict) for b in blocks):
            return None
        n = positive_int(cs.get("num_blocks"), "cache_schedule.num_blocks", source)
        single = positive_int(cs.get("num_single_blocks"), "cache_schedule.num_single_blocks", source)
        arch = self.architecture({"num_layers": n, "num_single_layers": single})
        return LegacyLayout(arch, {
            "transformer_blocks": ([str(i) for i in range(n)], LEGACY_DOUBLE),
            "single_transformer_blocks": ([f"single_{i}" for i in range(single)], LEGACY_SINGLE),
        })


def _flux_double_fast(block, cached, args, kwargs):
    """``FluxTransformerBlock`` (FLUX double-stream block)."""
    import torch

    if len(cached) != 3:
        return None
    hidden_states = arg(args, kwargs, "hidden_states", 0)
    encoder_hidden_states = arg(args, kwargs, "encoder_hidden_states", 1)
    temb = arg(args, kwargs, "temb", 2)
    attention_outputs = cached["attn"]
    if hidden_states is None or encoder_hidden_states is None or temb is None or len(attention_outputs) not in (2, 3):
        return None
    _, _, gate_msa, _, _, gate_mlp = modulation(block.norm1, temb, 6)
    _, _, c_gate_msa, _, _, c_gate_mlp = modulation(block.norm1_context, temb, 6)
    attn_output, context_attn_output = attention_outputs[0], attention_outputs[1]
    attn_output = gate_msa.unsqueeze(1) * attn_output
    hidden_states = hidden_states + attn_output
    ff_output = gate_mlp.unsqueeze(1) * cached["ff"]
    hidden_states = hidden_states + ff_output
    if len(attention_outputs) == 3:
        hidden_states = hidden_states + attention_outputs[2]
    context_attn_output = c_gate_msa.unsqueeze(1) * context_attn_output
    encoder_hidden_states = encoder_hidden_states + context_attn_output
    encoder_hidden_states = encoder_hidden_states + c_gate_mlp.unsqueeze(1) * cached["ff_context"]
    if encoder_hidden_states.dtype == torch.float16:
        encoder_hidden_states = encoder_hidden_states.clip(-65504, 65504)
    return encoder_hidden_states, hidden_states


def _flux_single_fast(block, cached, args, kwargs):
    """``FluxSingleTransformerBlock``: only ``proj_out``'s output reaches the residual stream."""
    import torch

    if "proj_out" not in cached:
        return None
    hidden_states = arg(args, kwargs, "hidden_states", 0)
    encoder_hidden_states = arg(args, kwargs, "encoder_hidden_states", 1)
    temb = arg(args, kwargs, "temb", 2)
    if hidden_states is None or encoder_hidden_states is None or temb is None:
        return None
    text_seq_len = encoder_hidden_states.shape[1]
    hidden_states = torch.cat([encoder_hidden_states, hidden_states], dim=1)
    residual = hidden_states
    _, _, gate = modulation(block.norm, temb, 3)
    gate = gate.unsqueeze(1)
    hidden_states = gate * cached["proj_out"]
    hidden_states = residual + hidden_states
    if hidden_states.dtype == torch.float16:
        hidden_states = hidden_states.clip(-65504, 65504)
    return hidden_states[:, :text_seq_len], hidden_states[:, text_seq_len:]


ADAPTERS = (FluxAdapter(),)
