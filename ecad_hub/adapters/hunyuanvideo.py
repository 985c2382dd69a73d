"""HunyuanVideo (``HunyuanVideoTransformer3DModel``) and HunyuanVideo-1.5 (``HunyuanVideo15Transformer3DModel``).

Both run the text tokens through a token refiner first (``context_embedder.token_refiner.refiner_blocks``,
the first scheduled blocks of a forward), then dual-stream blocks (``transformer_blocks``);
HunyuanVideo adds single-stream blocks (``single_transformer_blocks``).
"""

from __future__ import annotations

from ..schedule import Architecture, BlockGroup
from .base import ArchitectureAdapter, arg, is_ada_zero, modulation

REFINER = "context_embedder.token_refiner.refiner_blocks"
REFINER_COMPONENTS = ("attn", "ff")
DOUBLE_COMPONENTS = ("attn", "ff", "ff_context")
SINGLE_COMPONENTS = ("attn", "proj_mlp", "proj_out")

#: HunyuanVideo-1.5 pipelines: ByT5 glyph tokens (``tokenizer_2_max_length``) and SigLIP image
#: tokens (``vision_num_semantic_tokens``) that join the Qwen2.5-VL text tokens in every block
HV15_BYT5_TOKENS = 256
HV15_IMAGE_TOKENS = 729
#: HunyuanVideo-1.5 pipelines pad the Qwen2.5-VL prompt to this many tokens (after the template)
HV15_TEXT_TOKENS = 1000


def _patches(config, latent_height: int, latent_width: int, name: str) -> None:
    p = int(config.get("patch_size", 2))
    if latent_height % p or latent_width % p:
        raise ValueError(f"{name} patches {p}x{p} latents: the latent height and width must be multiples of {p}, "
                         f"got {latent_height}x{latent_width}")


def _frames(config, latent_frames: int, name: str) -> int:
    pt = int(config.get("patch_size_t", 1) or 1)
    if latent_frames % pt:
        raise ValueError(f"{name} patches {pt} latent frames together: got {latent_frames} latent frames")
    return latent_frames


def _ones_mask(batch_size: int, length: int, device):
    import torch

    return torch.ones(batch_size, length, dtype=torch.int64, device=device)


class HunyuanVideoAdapter(ArchitectureAdapter):
    """HunyuanVideo (``HunyuanVideoTransformer3DModel``), text-to-video and image-to-video.

    Groups, in execution order: the token refiner's ``refiner_blocks`` ({attn, ff}),
    ``transformer_blocks`` ({attn, ff, ff_context}), ``single_transformer_blocks``
    ({attn, proj_mlp, proj_out}). Guidance-distilled (``guidance_embeds``): one forward per step.
    """

    transformer_class = "HunyuanVideoTransformer3DModel"
    family = "hunyuanvideo"
    checkpoints = ("HunyuanVideo", "HunyuanVideo-I2V")
    default_text_len = 256  # HunyuanVideoPipeline's max_sequence_length (Llama tokens after the template)
    component_aliases = {"self_attn": "attn", "mlp": "ff", "full_attn": "attn", "full_ff": "ff",
                         "full_ff_context": "ff_context", "single_attn": "attn", "single_proj_mlp": "proj_mlp",
                         "single_proj_out": "proj_out"}
    temporal_compression = 4  # AutoencoderKLHunyuanVideo
    default_num_frames = 129

    def architecture(self, config):
        return Architecture(self.transformer_class, (
            BlockGroup(REFINER, int(config.get("num_refiner_layers", 2)), REFINER_COMPONENTS),
            BlockGroup("transformer_blocks", int(config.get("num_layers", 20)), DOUBLE_COMPONENTS),
            BlockGroup("single_transformer_blocks", int(config.get("num_single_layers", 40)), SINGLE_COMPONENTS),
        ))

    def fast_path(self, block):
        name = type(block).__name__
        if name == "HunyuanVideoIndividualTokenRefinerBlock":
            return refiner_block_fast
        if name == "HunyuanVideoTransformerBlock" and _ada_zero(block, "norm1", 6) and _ada_zero(block, "norm1_context", 6):
            return double_block_fast
        if name == "HunyuanVideoSingleTransformerBlock" and _ada_zero(block, "norm", 3):
            return _single_block_fast
        return None  # the token-replace (I2V) blocks gate the first frame's tokens separately

    def latent_size(self, config, height, width, vae_scale_factor):
        h, w = super().latent_size(config, height, width, vae_scale_factor)
        _patches(config, h, w, self.transformer_class)
        return h, w

    def profile_inputs(self, config, latent_height, latent_width, batch_size, text_len, device, latent_frames=None):
        import torch

        _patches(config, latent_height, latent_width, self.transformer_class)
        frames = _frames(config, int(latent_frames or self.latent_frame_count(self.default_num_frames)),
                         self.transformer_class)
        kw = dict(
            hidden_states=torch.zeros(batch_size, int(config.get("in_channels", 16)), frames, latent_height,
                                      latent_width, device=device),
            timestep=torch.ones(batch_size, device=device),
            encoder_hidden_states=torch.zeros(batch_size, text_len, int(config.get("text_embed_dim", 4096)),
                                              device=device),
            encoder_attention_mask=_ones_mask(batch_size, text_len, device),
            pooled_projections=torch.zeros(batch_size, int(config.get("pooled_projection_dim", 768)), device=device),
        )
        if config.get("guidance_embeds", True):
            kw["guidance"] = torch.ones(batch_size, device=device)
        return kw

    def default_resolution(self, config, vae_scale_factor):
        return 720  # the 720p short side (HunyuanVideoPipeline defaults to 720x1280)

    def uses_cfg(self, guidance_scale):
        return False  # guidance-distilled: the scale feeds the guidance embedding (true CFG is true_cfg_scale)

    def encode_prompts(self, pipe, prompts, *, guidance_scale, max_sequence_length, device):
        pe, pooled, mask = pipe.encode_prompt(prompt=prompts, prompt_2=None, num_videos_per_prompt=1, device=device,
                                              max_sequence_length=max_sequence_length)
        return {"prompt_embeds": pe, "pooled_prompt_embeds": pooled, "prompt_attention_mask": mask}

    def call_kwargs(self, settings, *, prompt_embeds):
        kw = {"max_sequence_length": settings["max_sequence_length"]}
        if settings.get("num_frames"):
            kw["num_frames"] = settings["num_frames"]
        return kw


class HunyuanVideo15Adapter(ArchitectureAdapter):
    """HunyuanVideo-1.5 (``HunyuanVideo15Transformer3DModel``), text- and image-to-video.

    Groups, in execution order: the token refiner's ``refiner_blocks`` ({attn, ff}) over the
    Qwen2.5-VL text tokens, then ``transformer_blocks`` ({attn, ff, ff_context}) whose context
    stream holds the text, 256 ByT5 glyph tokens and 729 SigLIP image tokens (zeros and masked out
    for text-to-video: the attention still runs over them).

    ``text_len`` is the Qwen2.5-VL token count (the pipelines always pad it to 1000).
    """

    transformer_class = "HunyuanVideo15Transformer3DModel"
    family = "hunyuanvideo-1.5"
    checkpoints = ("HunyuanVideo-1.5 480p/720p T2V/I2V", "HunyuanVideo-1.5 distilled")
    default_text_len = HV15_TEXT_TOKENS
    component_aliases = {"self_attn": "attn", "mlp": "ff"}
    temporal_compression = 4  # AutoencoderKLHunyuanVideo15
    default_num_frames = 121

    def architecture(self, config):
        return Architecture(self.transformer_class, (
            BlockGroup(REFINER, int(config.get("num_refiner_layers", 2)), REFINER_COMPONENTS),
            BlockGroup("transformer_blocks", int(config.get("num_layers", 54)), DOUBLE_COMPONENTS),
        ))

    def fast_path(self, block):
        name = type(block).__name__
        if name == "HunyuanVideo15IndividualTokenRefinerBlock":
            return refiner_block_fast
        if name == "HunyuanVideo15TransformerBlock" and _ada_zero(block, "norm1", 6) and _ada_zero(block, "norm1_context", 6):
            return double_block_fast
        return None

    def latent_size(self, config, height, width, vae_scale_factor):
        h, w = super().latent_size(config, height, width, vae_scale_factor)
        _patches(config, h, w, self.transformer_class)
        return h, w

    def profile_inputs(self, config, latent_height, latent_width, batch_size, text_len, device, latent_frames=None):
        import torch

        _patches(config, latent_height, latent_width, self.transformer_class)
        frames = _frames(config, int(latent_frames or self.latent_frame_count(self.default_num_frames)),
                         self.transformer_class)
        kw = dict(
            hidden_states=torch.zeros(batch_size, int(config.get("in_channels", 65)), frames, latent_height,
                                      latent_width, device=device),
            timestep=torch.ones(batch_size, device=device),
            encoder_hidden_states=torch.zeros(batch_size, text_len, int(config.get("text_embed_dim", 3584)),
                                              device=device),
            encoder_attention_mask=_ones_mask(batch_size, text_len, device),
            encoder_hidden_states_2=torch.zeros(batch_size, HV15_BYT5_TOKENS, int(config.get("text_embed_2_dim", 1472)),
                                                device=device),
            encoder_attention_mask_2=_ones_mask(batch_size, HV15_BYT5_TOKENS, device),
            image_embeds=torch.zeros(batch_size, HV15_IMAGE_TOKENS, int(config.get("image_embed_dim", 1152)),
                                     device=device),
        )
        if config.get("use_meanflow"):
            kw["timestep_r"] = torch.ones(batch_size, device=device)
        return kw

    def profile_forward(self, model, inputs):
        """One forward with the same sub-module calls and shapes as ``model(**inputs)``, runnable on the
        meta device: the data-dependent token reordering (``tensor[mask]``, ``if torch.all(...)``) is
        replaced by a concatenation of the same length (every token is kept, masked or not).

        Runs through ``model.__call__`` (the forward is swapped on the instance for the call), so
        module-level counters see the same module tree as for the model's own forward.
        """
        import functools

        model.forward = functools.partial(hv15_meta_forward, model)
        try:
            return model(**inputs, return_dict=False)
        finally:
            del model.forward

    def default_resolution(self, config, vae_scale_factor):
        target = int(config.get("target_size", 640))
        return 480 if target <= 640 else 720  # the 480p / 720p checkpoints

    def text_len(self, max_sequence_length):
        return HV15_TEXT_TOKENS  # the pipelines pad to 1000 tokens whatever max_sequence_length says

    def encode_prompts(self, pipe, prompts, *, guidance_scale, max_sequence_length, device):
        pe, pm, pe2, pm2 = pipe.encode_prompt(prompt=prompts, device=device, batch_size=len(prompts),
                                              num_videos_per_prompt=1)
        out = {"prompt_embeds": pe, "prompt_embeds_mask": pm, "prompt_embeds_2": pe2, "prompt_embeds_mask_2": pm2}
        if self.uses_cfg(guidance_scale):
            ne, nm, ne2, nm2 = pipe.encode_prompt(prompt=[""] * len(prompts), device=device, batch_size=len(prompts),
                                                  num_videos_per_prompt=1)
            out.update(negative_prompt_embeds=ne, negative_prompt_embeds_mask=nm, negative_prompt_embeds_2=ne2,
                       negative_prompt_embeds_mask_2=nm2)
        return out

    def call_kwargs(self, settings, *, prompt_embeds):
        # the guidance scale lives in the pipeline's guider; there is no max_sequence_length argument
        return {"num_frames": settings["num_frames"]} if settings.get("num_frames") else {}


def _ada_zero(block, name: str, chunks: int) -> bool:
    return is_ada_zero(getattr(block, name, None), chunks)


# --------------------------------------------------------------------------------------------
# Fast paths: the residual updates of fully reused blocks, line for line as in diffusers
# --------------------------------------------------------------------------------------------

def refiner_block_fast(block, cached, args, kwargs):
    """``HunyuanVideo(15)IndividualTokenRefinerBlock`` with ``attn`` and ``ff`` reused."""
    hidden_states = arg(args, kwargs, "hidden_states", 0)
    temb = arg(args, kwargs, "temb", 1)
    if hidden_states is None or temb is None or not set(REFINER_COMPONENTS) <= set(cached):
        return None
    gate_msa, gate_mlp = block.norm_out(temb)
    hidden_states = hidden_states + cached["attn"] * gate_msa
    hidden_states = hidden_states + cached["ff"] * gate_mlp
    return hidden_states


def double_block_fast(block, cached, args, kwargs):
    """``HunyuanVideo(15)TransformerBlock`` with ``attn``, ``ff`` and ``ff_context`` reused."""
    hidden_states = arg(args, kwargs, "hidden_states", 0)
    encoder_hidden_states = arg(args, kwargs, "encoder_hidden_states", 1)
    temb = arg(args, kwargs, "temb", 2)
    attention = cached.get("attn")
    if (hidden_states is None or encoder_hidden_states is None or temb is None
            or not set(DOUBLE_COMPONENTS) <= set(cached) or not isinstance(attention, tuple) or len(attention) != 2):
        return None
    _, _, gate_msa, _, _, gate_mlp = modulation(block.norm1, temb, 6)
    _, _, c_gate_msa, _, _, c_gate_mlp = modulation(block.norm1_context, temb, 6)
    attn_output, context_attn_output = attention
    hidden_states = hidden_states + attn_output * gate_msa.unsqueeze(1)
    encoder_hidden_states = encoder_hidden_states + context_attn_output * c_gate_msa.unsqueeze(1)
    hidden_states = hidden_states + gate_mlp.unsqueeze(1) * cached["ff"]
    encoder_hidden_states = encoder_hidden_states + c_gate_mlp.unsqueeze(1) * cached["ff_context"]
    return hidden_states, encoder_hidden_states


def _single_block_fast(block, cached, args, kwargs):
    """``HunyuanVideoSingleTransformerBlock``: only ``proj_out``'s output reaches the residual stream."""
    import torch

    hidden_states = arg(args, kwargs, "hidden_states", 0)
    encoder_hidden_states = arg(args, kwargs, "encoder_hidden_states", 1)
    temb = arg(args, kwargs, "temb", 2)
    if hidden_states is None or encoder_hidden_states is None or temb is None or "proj_out" not in cached:
        return None
    text_seq_length = encoder_hidden_states.shape[1]
    hidden_states = torch.cat([hidden_states, encoder_hidden_states], dim=1)
    residual = hidden_states
    _, _, gate = modulation(block.norm, temb, 3)
    hidden_states = gate.unsqueeze(1) * cached["proj_out"]
    hidden_states = hidden_states + residual
    return hidden_states[:, :-text_seq_length, :], hidden_states[:, -text_seq_length:, :]


# --------------------------------------------------------------------------------------------
# HunyuanVideo-1.5 on the meta device
# --------------------------------------------------------------------------------------------

def hv15_meta_forward(model, hidden_states, timestep, encoder_hidden_states, encoder_attention_mask,
                      timestep_r=None, encoder_hidden_states_2=None, encoder_attention_mask_2=None,
                      image_embeds=None, attention_kwargs=None, return_dict=False):
    """``HunyuanVideo15Transformer3DModel.forward`` (diffusers 0.36-0.42) with the per-sample
    token reordering replaced by a plain concatenation.

    diffusers moves each sample's valid tokens (image, ByT5, text) in front of the invalid ones
    with boolean indexing, which needs the masks' values; the reordered sequence always holds
    every token, so ``[image, ByT5, text]`` with an all-ones mask has the same shapes and runs the
    same sub-modules on them: the same MACs.
    """
    import torch

    batch_size, _, num_frames, height, width = hidden_states.shape
    cfg = model.config
    p_t, p_h, p_w = cfg.patch_size_t, cfg.patch_size, cfg.patch_size
    image_rotary_emb = model.rope(hidden_states)
    temb = model.time_embed(timestep, timestep_r=timestep_r)
    hidden_states = model.x_embedder(hidden_states)
    encoder_hidden_states = model.context_embedder(encoder_hidden_states, timestep, encoder_attention_mask)
    encoder_hidden_states = encoder_hidden_states + model.cond_type_embed(
        torch.zeros_like(encoder_hidden_states[:, :, 0], dtype=torch.long))
    encoder_hidden_states_2 = model.context_embedder_2(encoder_hidden_states_2)
    encoder_hidden_states_2 = encoder_hidden_states_2 + model.cond_type_embed(
        torch.ones_like(encoder_hidden_states_2[:, :, 0], dtype=torch.long))
    encoder_hidden_states_3 = model.image_embedder(image_embeds)
    encoder_hidden_states_3 = encoder_hidden_states_3 + model.cond_type_embed(
        2 * torch.ones_like(encoder_hidden_states_3[:, :, 0], dtype=torch.long))
    encoder_hidden_states = torch.cat([encoder_hidden_states_3, encoder_hidden_states_2, encoder_hidden_states], dim=1)
    encoder_attention_mask = torch.ones(encoder_hidden_states.shape[:2], dtype=torch.bool,
                                        device=encoder_hidden_states.device)
    for block in model.transformer_blocks:
        hidden_states, encoder_hidden_states = block(hidden_states, encoder_hidden_states, temb,
                                                     encoder_attention_mask, image_rotary_emb)
    hidden_states = model.norm_out(hidden_states, temb)
    hidden_states = model.proj_out(hidden_states)
    hidden_states = hidden_states.reshape(batch_size, num_frames // p_t, height // p_h, width // p_w, -1, p_t, p_h, p_w)
    hidden_states = hidden_states.permute(0, 4, 1, 5, 2, 6, 3, 7)
    return (hidden_states.flatten(6, 7).flatten(4, 5).flatten(2, 3),)


ADAPTERS = (HunyuanVideoAdapter(), HunyuanVideo15Adapter())
