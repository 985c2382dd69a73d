"""Wan 2.1 / 2.2 (``WanTransformer3DModel``): one group of blocks with self-attention, cross-attention, FFN.

Covers the text-to-video models (Wan2.1-T2V-1.3B/14B, both experts of Wan2.2-T2V-A14B: the
pipeline's ``transformer`` and ``transformer_2`` are each described by this adapter on its own),
the image-to-video ones (Wan2.1-I2V/FLF2V: ``image_dim`` set, CLIP image tokens in front of the
512 text tokens) and Wan2.2-TI2V-5B (48-channel latents, one timestep per token).
"""

from __future__ import annotations

from ..schedule import Architecture, BlockGroup
from .base import ArchitectureAdapter, arg

COMPONENTS = ("attn1", "attn2", "ffn")
#: CLIP ViT-H/14 image tokens per conditioning image (256 patches + class token), I2V models
IMAGE_TOKENS = 257
#: text tokens the I2V attention processors assume (hard-coded in diffusers: 512 UMT5 tokens)
I2V_TEXT_TOKENS = 512
#: latent channels of the Wan2.2 VAE (TI2V-5B): its pipeline runs with ``expand_timesteps=True``,
#: one timestep per latent token (the transformer config has no flag for it)
EXPANDED_TIMESTEP_CHANNELS = 48


def patch_size(config) -> tuple[int, int, int]:
    p = config.get("patch_size") or (1, 2, 2)
    return int(p[0]), int(p[1]), int(p[2])


def check_latents(config, latent_height: int, latent_width: int, where: str) -> None:
    _, ph, pw = patch_size(config)
    if latent_height % ph or latent_width % pw:
        raise ValueError(f"{where} patches {ph}x{pw} latents: the latent height and width must be multiples of them, "
                         f"got {latent_height}x{latent_width}")


def image_inputs(config, batch_size: int, text_len: int, device) -> dict:
    """``encoder_hidden_states_image`` for an image-conditioned (I2V / FLF2V) config, else nothing."""
    import torch

    image_dim = config.get("image_dim")
    if not image_dim:
        return {}
    if config.get("added_kv_proj_dim") and text_len != I2V_TEXT_TOKENS:
        raise ValueError(f"image-conditioned {config.get('_class_name', 'Wan')} models split the context after "
                         f"{I2V_TEXT_TOKENS} text tokens (hard-coded in diffusers): text_len must be "
                         f"{I2V_TEXT_TOKENS}, got {text_len}")
    pos = config.get("pos_embed_seq_len")
    if pos:  # first-last-frame: two images' tokens, folded to one sequence of `pos` tokens
        shape = (2 * batch_size, int(pos) // 2, int(image_dim))
    else:
        shape = (batch_size, IMAGE_TOKENS, int(image_dim))
    return {"encoder_hidden_states_image": torch.zeros(*shape, device=device)}


class WanAdapter(ArchitectureAdapter):
    """Wan 2.1 / 2.2 (``WanTransformer3DModel``): ``blocks[i].{attn1, attn2, ffn}``."""

    transformer_class = "WanTransformer3DModel"
    family = "wan"
    checkpoints = ("Wan2.1 T2V 1.3B/14B", "Wan2.1 I2V 14B 480P/720P", "Wan2.1 FLF2V 14B", "Wan2.2 T2V A14B (each expert)",
                   "Wan2.2 I2V A14B (each expert)", "Wan2.2 TI2V 5B")
    default_text_len = 512  # the pipelines pad UMT5 embeddings to max_sequence_length=512
    component_aliases = {"self_attn": "attn1", "attn": "attn1", "cross_attn": "attn2", "ff": "ffn", "mlp": "ffn"}
    temporal_compression = 4  # AutoencoderKLWan (2.1 and 2.2): 4 frames per latent frame
    default_num_frames = 81

    def architecture(self, config):
        return Architecture(self.transformer_class,
                            (BlockGroup("blocks", int(config.get("num_layers", 40)), COMPONENTS),))

    def fast_path(self, block):
        if type(block).__name__ != "WanTransformerBlock" or getattr(block, "scale_shift_table", None) is None:
            return None
        return wan_block_fast

    def latent_size(self, config, height, width, vae_scale_factor):
        h, w = super().latent_size(config, height, width, vae_scale_factor)
        check_latents(config, h, w, self.transformer_class)
        return h, w

    def profile_inputs(self, config, latent_height, latent_width, batch_size, text_len, device, latent_frames=None):
        import torch

        check_latents(config, latent_height, latent_width, self.transformer_class)
        frames = int(latent_frames or self.latent_frame_count(self.default_num_frames))
        channels = int(config.get("in_channels", 16))
        kw = dict(
            hidden_states=torch.zeros(batch_size, channels, frames, latent_height, latent_width, device=device),
            timestep=torch.ones(batch_size, device=device),
            encoder_hidden_states=torch.zeros(batch_size, text_len, int(config.get("text_dim", 4096)), device=device),
        )
        if channels == EXPANDED_TIMESTEP_CHANNELS and not config.get("image_dim"):
            pt, ph, pw = patch_size(config)
            tokens = (frames // pt) * (latent_height // ph) * (latent_width // pw)
            kw["timestep"] = torch.ones(batch_size, tokens, device=device)
        kw.update(image_inputs(config, batch_size, text_len, device))
        return kw

    def default_resolution(self, config, vae_scale_factor):
        return 480  # the 480p short side (the pipelines default to 480x832)

    def encode_prompts(self, pipe, prompts, *, guidance_scale, max_sequence_length, device):
        cfg = self.uses_cfg(guidance_scale)
        pe, ne = pipe.encode_prompt(prompt=prompts, negative_prompt="", do_classifier_free_guidance=cfg,
                                    num_videos_per_prompt=1, max_sequence_length=max_sequence_length, device=device)
        out = {"prompt_embeds": pe}
        if cfg:
            out["negative_prompt_embeds"] = ne
        return out

    def expert_switch_step(self, pipe, timesteps):
        """Wan 2.2 A14B: ``transformer`` denoises while ``t >= boundary_ratio x num_train_timesteps``,
        ``transformer_2`` after (``WanPipeline``'s rule)."""
        ratio = getattr(getattr(pipe, "config", None), "boundary_ratio", None) if pipe is not None else None
        if ratio is None or getattr(pipe, "transformer_2", None) is None:
            return None
        boundary = ratio * pipe.scheduler.config.num_train_timesteps
        for i, t in enumerate(timesteps):
            if float(t) < boundary:
                return i if i > 0 else None
        return None

    def call_kwargs(self, settings, *, prompt_embeds):
        kw = {"max_sequence_length": settings["max_sequence_length"]}
        if settings.get("num_frames"):
            kw["num_frames"] = settings["num_frames"]
        return kw


def wan_block_fast(block, cached, args, kwargs):
    """``WanTransformerBlock`` with ``attn1``, ``attn2`` and ``ffn`` reused."""
    hidden_states = arg(args, kwargs, "hidden_states", 0)
    temb = arg(args, kwargs, "temb", 2)
    if hidden_states is None or temb is None or not set(COMPONENTS) <= set(cached):
        return None
    if temb.ndim == 4:  # Wan2.2 TI2V: (batch, seq_len, 6, dim)
        _, _, gate_msa, _, _, c_gate_msa = (block.scale_shift_table.unsqueeze(0) + temb.float()).chunk(6, dim=2)
        gate_msa, c_gate_msa = gate_msa.squeeze(2), c_gate_msa.squeeze(2)
    else:  # (batch, 6, dim)
        _, _, gate_msa, _, _, c_gate_msa = (block.scale_shift_table + temb.float()).chunk(6, dim=1)
    return block_tail(cached, hidden_states, gate_msa, c_gate_msa)


def block_tail(cached, hidden_states, gate_msa, c_gate_msa):
    """The residual updates of a Wan-style block (also SkyReels-V2's) from its reused outputs."""
    hidden_states = (hidden_states.float() + cached["attn1"] * gate_msa).type_as(hidden_states)
    hidden_states = hidden_states + cached["attn2"]
    hidden_states = (hidden_states.float() + cached["ffn"].float() * c_gate_msa).type_as(hidden_states)
    return hidden_states


ADAPTERS = (WanAdapter(),)
