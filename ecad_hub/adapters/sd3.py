"""Stable Diffusion 3 / 3.5 (``SD3Transformer2DModel``): joint blocks, ``attn2`` in dual-attention layers."""

from __future__ import annotations

from ..schedule import Architecture, BlockGroup
from .base import ArchitectureAdapter, arg, is_ada_zero, modulation

#: CLIP tokens SD3's pipelines prepend to the T5 tokens
CLIP_TOKENS = 77


class SD3Adapter(ArchitectureAdapter):
    """Stable Diffusion 3 / 3.5 (``SD3Transformer2DModel``): joint blocks, ``attn2`` in dual-attention layers.

    The last block is ``context_pre_only`` and has no ``ff_context``; blocks outside
    ``dual_attention_layers`` have no ``attn2``. Those sub-modules are declared ``absent``.
    """

    transformer_class = "SD3Transformer2DModel"
    family = "sd3"
    default_text_len = CLIP_TOKENS + 256
    checkpoints = ("SD3 Medium", "SD3.5 Medium", "SD3.5 Large", "SD3.5 Large Turbo")
    component_aliases = {"mlp": "ff", "self_attn": "attn"}

    def architecture(self, config):
        n = int(config.get("num_layers", 18))
        dual = sorted(int(i) for i in (config.get("dual_attention_layers") or ()))
        comps = ["attn"] + (["attn2"] if dual else []) + ["ff", "ff_context"]
        absent = {("ff_context", n - 1)}
        if dual:
            absent |= {("attn2", i) for i in range(n) if i not in dual}
        return Architecture(self.transformer_class, (BlockGroup("transformer_blocks", n, tuple(comps), frozenset(absent)),))

    def faster_cache_cfg_kwargs(self, config):
        return super().faster_cache_cfg_kwargs(config) + ("pooled_projections",)

    def taylorseer_identifiers(self, config):
        # the last block is context_pre_only: it returns no text stream, which TaylorSeer cannot forecast
        n = int(config.get("num_layers", 18))
        return [rf"transformer_blocks\.{i}" for i in range(n - 1)]

    def fast_path(self, block):
        if type(block).__name__ != "JointTransformerBlock":
            return None
        chunks = 9 if getattr(block, "use_dual_attention", False) else 6
        if not is_ada_zero(getattr(block, "norm1", None), chunks):
            return None
        if not block.context_pre_only and not is_ada_zero(getattr(block, "norm1_context", None), 6):
            return None
        return _sd3_block_fast

    def profile_inputs(self, config, latent_height, latent_width, batch_size, text_len, device, latent_frames=None):
        import torch

        return dict(
            hidden_states=torch.zeros(batch_size, config.get("in_channels", 16), latent_height, latent_width, device=device),
            encoder_hidden_states=torch.zeros(batch_size, text_len, config.get("joint_attention_dim", 4096), device=device),
            pooled_projections=torch.zeros(batch_size, config.get("pooled_projection_dim", 2048), device=device),
            timestep=torch.ones(batch_size, device=device),
        )

    def text_len(self, max_sequence_length):
        return int(max_sequence_length) + CLIP_TOKENS

    def encode_prompts(self, pipe, prompts, *, guidance_scale, max_sequence_length, device):
        cfg = self.uses_cfg(guidance_scale)
        pe, ne, pooled, npooled = pipe.encode_prompt(
            prompt=prompts, prompt_2=None, prompt_3=None, device=device, num_images_per_prompt=1,
            do_classifier_free_guidance=cfg, negative_prompt="", max_sequence_length=max_sequence_length)
        out = {"prompt_embeds": pe, "pooled_prompt_embeds": pooled}
        if cfg:
            out.update(negative_prompt_embeds=ne, negative_pooled_prompt_embeds=npooled)
        return out

    def call_kwargs(self, settings, *, prompt_embeds):
        return {"max_sequence_length": settings["max_sequence_length"]}


def _sd3_block_fast(block, cached, args, kwargs):
    """``JointTransformerBlock`` (SD3 / SD3.5, with ``attn2`` in dual-attention layers)."""
    hidden_states = arg(args, kwargs, "hidden_states", 0)
    encoder_hidden_states = arg(args, kwargs, "encoder_hidden_states", 1)
    temb = arg(args, kwargs, "temb", 2)
    needed = {"attn", "ff"} | ({"attn2"} if block.use_dual_attention else set()) | (set() if block.context_pre_only else {"ff_context"})
    if hidden_states is None or temb is None or not needed <= set(cached):
        return None
    if block.use_dual_attention:
        _, _, gate_msa, _, _, gate_mlp, _, _, gate_msa2 = modulation(block.norm1, temb, 9)
    else:
        _, _, gate_msa, _, _, gate_mlp = modulation(block.norm1, temb, 6)
    attention = cached["attn"]
    attn_output, context_attn_output = (attention[0], attention[1]) if isinstance(attention, tuple) else (attention, None)
    attn_output = gate_msa.unsqueeze(1) * attn_output
    hidden_states = hidden_states + attn_output
    if block.use_dual_attention:
        attn_output2 = gate_msa2.unsqueeze(1) * cached["attn2"]
        hidden_states = hidden_states + attn_output2
    ff_output = gate_mlp.unsqueeze(1) * cached["ff"]
    hidden_states = hidden_states + ff_output
    if block.context_pre_only:
        encoder_hidden_states = None
    else:
        if encoder_hidden_states is None or context_attn_output is None:
            return None
        _, _, c_gate_msa, _, _, c_gate_mlp = modulation(block.norm1_context, temb, 6)
        context_attn_output = c_gate_msa.unsqueeze(1) * context_attn_output
        encoder_hidden_states = encoder_hidden_states + context_attn_output
        encoder_hidden_states = encoder_hidden_states + c_gate_mlp.unsqueeze(1) * cached["ff_context"]
    return encoder_hidden_states, hidden_states


ADAPTERS = (SD3Adapter(),)
