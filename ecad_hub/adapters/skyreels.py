"""SkyReels-V2 (``SkyReelsV2Transformer3DModel``): Wan-style blocks with self-attention, cross-attention, FFN.

The text-to-video and image-to-video checkpoints run like Wan (one timestep per sample). The
diffusion-forcing pipelines pass one timestep per latent frame (``enable_diffusion_forcing``)
and, for the checkpoints trained with it (``inject_sample_info``, SkyReels-V2-DF-1.3B), an fps
flag; a block-causal attention mask when ``num_frame_per_block`` > 1.
"""

from __future__ import annotations

from ..schedule import Architecture, BlockGroup
from .base import arg
from .wan import COMPONENTS, WanAdapter, block_tail, check_latents, image_inputs


class SkyReelsV2Adapter(WanAdapter):
    """SkyReels-V2 (``SkyReelsV2Transformer3DModel``): ``blocks[i].{attn1, attn2, ffn}``.

    Wan's latent checks, prompt encoding, call arguments and aliases; its own blocks, profile
    inputs (diffusion forcing) and default resolution.

    Profile inputs: a config with ``inject_sample_info`` only runs in the diffusion-forcing
    pipelines (which pass ``fps``); those get per-frame timesteps at batch 1, the only batch size
    diffusers' fps embedding supports with diffusion forcing (at larger batches the per-sample
    form, whose MACs differ only in the timestep embedding, is profiled).
    """

    transformer_class = "SkyReelsV2Transformer3DModel"
    family = "skyreels-v2"
    checkpoints = ("SkyReels-V2 T2V 14B 540P/720P", "SkyReels-V2 I2V 1.3B/14B", "SkyReels-V2 DF 1.3B/14B")
    default_text_len = 512
    default_num_frames = 97  # SkyReelsV2Pipeline / DiffusionForcing pipelines

    def architecture(self, config):
        return Architecture(self.transformer_class,
                            (BlockGroup("blocks", int(config.get("num_layers", 32)), COMPONENTS),))

    def fast_path(self, block):
        if type(block).__name__ != "SkyReelsV2TransformerBlock" or getattr(block, "scale_shift_table", None) is None:
            return None
        return _skyreels_block_fast

    def profile_inputs(self, config, latent_height, latent_width, batch_size, text_len, device, latent_frames=None):
        import torch

        check_latents(config, latent_height, latent_width, self.transformer_class)
        frames = int(latent_frames or self.latent_frame_count(self.default_num_frames))
        per_block = int(config.get("num_frame_per_block") or 1)
        if frames % per_block:
            raise ValueError(f"{self.transformer_class} with num_frame_per_block={per_block} needs a multiple of "
                             f"{per_block} latent frames, got {frames}")
        kw = dict(
            hidden_states=torch.zeros(batch_size, int(config.get("in_channels", 16)), frames, latent_height,
                                      latent_width, device=device),
            timestep=torch.ones(batch_size, device=device),
            encoder_hidden_states=torch.zeros(batch_size, text_len, int(config.get("text_dim", 4096)), device=device),
        )
        kw.update(image_inputs(config, batch_size, text_len, device))
        if config.get("inject_sample_info"):
            kw["fps"] = [0] * batch_size  # the pipelines' flag: 0 for 16 fps, 1 otherwise
            if batch_size == 1:
                kw["timestep"] = torch.ones(batch_size, frames, device=device)
                kw["enable_diffusion_forcing"] = True
        return kw

    def default_resolution(self, config, vae_scale_factor):
        return 544  # the 540P short side (the pipelines default to 544x960)



def _skyreels_block_fast(block, cached, args, kwargs):
    """``SkyReelsV2TransformerBlock`` with ``attn1``, ``attn2`` and ``ffn`` reused."""
    hidden_states = arg(args, kwargs, "hidden_states", 0)
    temb = arg(args, kwargs, "temb", 2)
    if hidden_states is None or temb is None or not set(COMPONENTS) <= set(cached):
        return None
    if temb.dim() == 3:
        _, _, gate_msa, _, _, c_gate_msa = (block.scale_shift_table + temb.float()).chunk(6, dim=1)
    elif temb.dim() == 4:  # diffusion forcing: (batch, 6, f * pp_h * pp_w, dim)
        e = (block.scale_shift_table.unsqueeze(2) + temb.float()).chunk(6, dim=1)
        gate_msa, c_gate_msa = e[2].squeeze(1), e[5].squeeze(1)
    else:
        return None
    return block_tail(cached, hidden_states, gate_msa, c_gate_msa)


ADAPTERS = (SkyReelsV2Adapter(),)
