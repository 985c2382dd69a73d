"""NVIDIA Cosmos world models (``CosmosTransformer3DModel``): one group of ``CosmosTransformerBlock``.

Each block: adaLN-LoRA-modulated self-attention with 3D RoPE (``attn1``), cross-attention on the
T5 caption (``attn2``) and a feed-forward (``ff``), each gated. The same class serves Cosmos 1.0
(text2world / video2world: learnable positional embedding, 7B and 14B), Cosmos 2 (Predict2
text2image / video2world) and Cosmos 2.5 (cross-attention projection of the text features,
optional image context). The pipelines run classifier-free guidance as two forwards of one
video each and pass a padding mask that the transformer concatenates as an extra channel.
The Cosmos tokenizer (CV8x8x8) compresses 8x spatially and 8x in time.
"""

from __future__ import annotations

from ..schedule import Architecture, BlockGroup
from .base import ArchitectureAdapter, arg

COMPONENTS = ("attn1", "attn2", "ff")


class CosmosAdapter(ArchitectureAdapter):
    """Cosmos (``CosmosTransformer3DModel``): 1 group of blocks x {attn1, attn2, ff}."""

    transformer_class = "CosmosTransformer3DModel"
    family = "cosmos"
    checkpoints = ("Cosmos-1.0-Diffusion 7B/14B Text2World/Video2World", "Cosmos-Predict2 2B/14B",
                   "Cosmos-Predict2.5 2B/14B")
    default_text_len = 512  # CosmosTextToWorldPipeline's max_sequence_length
    component_aliases = {"attn": "attn1", "self_attn": "attn1", "cross": "attn2", "cross_attn": "attn2",
                         "mlp": "ff"}
    temporal_compression = 8  # AutoencoderKLCosmos (CV8x8x8)
    default_num_frames = 121  # CosmosTextToWorldPipeline's default: 16 latent frames
    fps = 30  # CosmosTextToWorldPipeline's default frame rate (RoPE temporal scaling)

    def architecture(self, config):
        return Architecture(
            self.transformer_class,
            (BlockGroup("transformer_blocks", int(config.get("num_layers", 28)), COMPONENTS),),
        )

    def fast_path(self, block):
        if (type(block).__name__ != "CosmosTransformerBlock" or getattr(block, "before_proj", None) is not None
                or getattr(block, "after_proj", None) is not None):
            return None
        return _cosmos_block_fast

    def profile_inputs(self, config, latent_height, latent_width, batch_size, text_len, device, latent_frames=None):
        import torch

        frames = int(latent_frames if latent_frames is not None else
                     self.latent_frame_count(self.default_num_frames))
        pt, ph, pw = (int(x) for x in config.get("patch_size", (1, 2, 2)))
        if frames % pt or latent_height % ph or latent_width % pw:
            raise ValueError(f"Cosmos patches {pt}x{ph}x{pw} latents: got {frames}x{latent_height}x{latent_width}")
        text_dim = (config.get("crossattn_proj_in_channels", 1024) if config.get("use_crossattn_projection")
                    else config.get("text_embed_dim", 1024))
        text = torch.zeros(batch_size, text_len, text_dim, device=device)
        if config.get("img_context_dim_in"):
            image = torch.zeros(batch_size, int(config.get("img_context_num_tokens", 256)),
                                int(config["img_context_dim_in"]), device=device)
            encoder_hidden_states = (text, image)
        else:
            encoder_hidden_states = text
        kw = dict(
            # a video2world config counts the condition-mask channel in in_channels (same shapes, same MACs)
            hidden_states=torch.zeros(batch_size, config.get("in_channels", 16), frames, latent_height, latent_width,
                                      device=device),
            timestep=torch.ones(batch_size, device=device),
            encoder_hidden_states=encoder_hidden_states,
            fps=self.fps,
        )
        if config.get("concat_padding_mask", True):
            kw["padding_mask"] = torch.zeros(1, 1, latent_height, latent_width, device=device)
        return kw

    def profile_forward(self, model, inputs):
        """diffusers resizes the padding mask with torchvision (a nearest-neighbour resize: no MACs);
        where torchvision is not installed, a torch stand-in serves for the MAC profile only."""
        import sys
        import types

        module = sys.modules[type(model).__mro__[0].__module__]
        if "transforms" in vars(module) or not model.config.concat_padding_mask:
            return model(**inputs, return_dict=False)
        import torch.nn.functional as F

        shim = types.SimpleNamespace(
            InterpolationMode=types.SimpleNamespace(NEAREST="nearest"),
            functional=types.SimpleNamespace(resize=lambda x, size, interpolation=None: F.interpolate(
                x, size=tuple(size), mode="nearest")))
        module.transforms = shim
        try:
            return model(**inputs, return_dict=False)
        finally:
            del module.transforms

    def default_resolution(self, config, vae_scale_factor):
        return 704  # CosmosTextToWorldPipeline's default height (width 1280)

    def encode_prompts(self, pipe, prompts, *, guidance_scale, max_sequence_length, device):
        cfg = self.uses_cfg(guidance_scale)
        # negative_prompt=None: the pipeline's DEFAULT_NEGATIVE_PROMPT, as in a call without one
        pe, ne = pipe.encode_prompt(
            prompt=prompts, negative_prompt=None, do_classifier_free_guidance=cfg,
            num_videos_per_prompt=1, max_sequence_length=max_sequence_length, device=device)
        out = {"prompt_embeds": pe}
        if cfg:
            out["negative_prompt_embeds"] = ne
        return out

    def call_kwargs(self, settings, *, prompt_embeds):
        return {"max_sequence_length": settings["max_sequence_length"]}


def _gate(norm, embedded_timestep, temb):
    """The gate of a ``CosmosAdaLayerNormZero``, without the norm of the input it no longer needs."""
    embedded_timestep = norm.activation(embedded_timestep)
    embedded_timestep = norm.linear_1(embedded_timestep)
    embedded_timestep = norm.linear_2(embedded_timestep)
    if temb is not None:
        embedded_timestep = embedded_timestep + temb
    _, _, gate = embedded_timestep.chunk(3, dim=-1)
    if embedded_timestep.ndim == 2:
        gate = gate.unsqueeze(1)
    return gate


def _cosmos_block_fast(block, cached, args, kwargs):
    """``CosmosTransformerBlock`` (no ControlNet projections): three gated residual updates."""
    if len(cached) != 3:
        return None
    hidden_states = arg(args, kwargs, "hidden_states", 0)
    embedded_timestep = arg(args, kwargs, "embedded_timestep", 2)
    temb = arg(args, kwargs, "temb", 3)
    extra_pos_emb = arg(args, kwargs, "extra_pos_emb", 5)
    controlnet_residual = arg(args, kwargs, "controlnet_residual", 7)
    if hidden_states is None or embedded_timestep is None:
        return None
    if extra_pos_emb is not None:
        hidden_states = hidden_states + extra_pos_emb
    hidden_states = hidden_states + _gate(block.norm1, embedded_timestep, temb) * cached["attn1"]
    hidden_states = hidden_states + _gate(block.norm2, embedded_timestep, temb) * cached["attn2"]
    hidden_states = hidden_states + _gate(block.norm3, embedded_timestep, temb) * cached["ff"]
    if controlnet_residual is not None:
        hidden_states += controlnet_residual
    return hidden_states


ADAPTERS = (CosmosAdapter(),)
