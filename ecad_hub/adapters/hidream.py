"""HiDream-I1 (``HiDreamImageTransformer2DModel``): double-stream then single-stream block groups.

diffusers wraps every block in a ``HiDreamBlock`` whose ``block`` attribute is the transformer block,
so component names are dotted paths: double-stream blocks run ``block.attn1`` (joint attention,
image and text outputs), ``block.ff_i`` (the image feed-forward: a mixture of experts in the
published checkpoints) and ``block.ff_t`` (the text feed-forward); single-stream blocks run
``block.attn1`` and ``block.ff_i``. Each is called once per block forward. The blocks' own
``adaLN_modulation`` projections always run.

Text: the transformer sees the T5 tokens, the last Llama-3.1 layer's tokens and, per block, one
more Llama layer's tokens: ``t5 + 2 x llama`` tokens. ``HiDreamImagePipeline`` pads both encoders to
``max_sequence_length`` (128), so :meth:`HiDreamAdapter.text_len` is ``3 x max_sequence_length``.

MoE and MAC profiling: ``MOEFeedForwardSwiGLU`` routes tokens with data-dependent bookkeeping
(``bincount().cpu()``) and ``unpatchify`` reads the patch grid size back from a tensor, neither of
which can run on the ``meta`` device. :meth:`HiDreamAdapter.model_class` therefore returns
diffusers' class with two changes that apply on ``meta`` tensors only: the routed experts run on
``tokens x num_activated_experts`` rows, which is exactly the work (and the MACs) of any routing,
since every token goes to ``num_activated_experts`` experts of one shape; and the patch grid size
is kept as Python ints. On real tensors the forward is diffusers' own. (``profile_macs`` of a live
``diffusers.HiDreamImageTransformer2DModel`` with experts still fails: it builds the meta copy from
the live model's own class.)
"""

from __future__ import annotations

import functools

from ..schedule import Architecture, BlockGroup
from .base import ArchitectureAdapter

DOUBLE = ("block.attn1", "block.ff_i", "block.ff_t")
SINGLE = ("block.attn1", "block.ff_i")
#: Llama-3.1-8B-Instruct hidden states the pipeline stacks (``hidden_states[1:]``)
LLAMA_HIDDEN_LAYERS = 32


class HiDreamAdapter(ArchitectureAdapter):
    """HiDream-I1 Full / Dev / Fast (``HiDreamImageTransformer2DModel``), driven by ``HiDreamImagePipeline``.

    CFG is batched (``guidance_scale > 1``; Dev and Fast are guidance-distilled and run with 0).

    Prompt embeddings: ``prompt_embeds_llama3`` is ``[llama layers, batch, tokens, dim]`` (the
    batch on dim 1), unlike every other embedding, which has the batch on dim 0.
    """

    transformer_class = "HiDreamImageTransformer2DModel"
    family = "hidream"
    default_text_len = 3 * 128  # T5 + 2 x Llama tokens at HiDreamImagePipeline's max_sequence_length=128

    def architecture(self, config):
        return Architecture(
            self.transformer_class,
            (
                BlockGroup("double_stream_blocks", int(config.get("num_layers", 16)), DOUBLE),
                BlockGroup("single_stream_blocks", int(config.get("num_single_layers", 32)), SINGLE),
            ),
        )

    def model_class(self):
        return _meta_routable_class()

    def latent_size(self, config, height, width, vae_scale_factor):
        h, w = super().latent_size(config, height, width, vae_scale_factor)
        p = int(config.get("patch_size") or 2)
        if h % p or w % p:
            raise ValueError(f"HiDream patches {p}x{p} latents: height and width must be multiples of "
                             f"{p} x the VAE scale factor")
        return h, w

    def profile_inputs(self, config, latent_height, latent_width, batch_size, text_len, device, latent_frames=None):
        """What ``HiDreamImagePipeline`` passes: 4-D latents (the transformer patchifies them and pads
        non-square ones to ``max_resolution``), T5 states, the stacked Llama hidden states and the
        pooled CLIP embedding. ``text_len`` tokens are split as T5 + 2 x Llama (see the module doc)."""
        import torch

        llama_len = max(1, text_len // 3)
        t5_len = max(1, text_len - 2 * llama_len)
        t5_dim, llama_dim = (config.get("caption_channels") or (4096, 4096))[:2]
        layers = max(int(i) for i in (config.get("llama_layers") or (LLAMA_HIDDEN_LAYERS - 1,))) + 1
        return dict(
            hidden_states=torch.zeros(batch_size, config.get("in_channels", 16), latent_height, latent_width,
                                      device=device),
            timesteps=torch.ones(batch_size, device=device),
            encoder_hidden_states_t5=torch.zeros(batch_size, t5_len, t5_dim, device=device),
            encoder_hidden_states_llama3=torch.zeros(layers, batch_size, llama_len, llama_dim, device=device),
            pooled_embeds=torch.zeros(batch_size, config.get("text_emb_dim", 2048), device=device),
        )

    def default_resolution(self, config, vae_scale_factor):
        return 1024  # HiDreamImagePipeline's default_sample_size (128) x 8

    def text_len(self, max_sequence_length):
        return 3 * int(max_sequence_length)

    def encode_prompts(self, pipe, prompts, *, guidance_scale, max_sequence_length, device):
        cfg = self.uses_cfg(guidance_scale)
        t5, nt5, llama, nllama, pooled, npooled = pipe.encode_prompt(
            prompt=list(prompts), device=device, num_images_per_prompt=1, do_classifier_free_guidance=cfg,
            negative_prompt="", max_sequence_length=max_sequence_length)
        out = {"prompt_embeds_t5": t5, "prompt_embeds_llama3": llama, "pooled_prompt_embeds": pooled}
        if cfg:
            out.update(negative_prompt_embeds_t5=nt5, negative_prompt_embeds_llama3=nllama,
                       negative_pooled_prompt_embeds=npooled)
        return out

    def call_kwargs(self, settings, *, prompt_embeds):
        return {"max_sequence_length": settings["max_sequence_length"]}


# --------------------------------------------------------------------------------------------
# MAC profiling of the mixture of experts on the meta device
# --------------------------------------------------------------------------------------------

@functools.lru_cache(maxsize=None)
def _meta_routable_class():
    """diffusers' ``HiDreamImageTransformer2DModel`` (same name, same forward) whose MoE feed-forwards
    can run on the ``meta`` device."""
    import diffusers
    import torch
    from diffusers.models.transformers import transformer_hidream_image as hd

    class MetaRoutableMoE(hd.MOEFeedForwardSwiGLU):
        """``MOEFeedForwardSwiGLU``; on meta tensors the routed experts run on every (token, expert) pair."""

        def moe_infer(self, x, flat_expert_indices, flat_expert_weights):
            if x.device.type != "meta":
                return super().moe_infer(x, flat_expert_indices, flat_expert_weights)
            # Each token goes to num_activated_experts experts, all of one shape: running one expert on
            # tokens x num_activated_experts rows is the MACs of any routing (scatter/mul are no MACs).
            rows = x.new_empty(flat_expert_indices.shape[0], x.shape[-1])
            self.experts[0](rows)
            return torch.zeros_like(x)

    base = diffusers.HiDreamImageTransformer2DModel

    class HiDreamImageTransformer2DModel(base):
        __doc__ = _meta_routable_class.__doc__

        @classmethod
        def from_config(cls, config=None, **kwargs):
            out = super().from_config(config, **kwargs)
            model = out[0] if isinstance(out, tuple) else out
            for module in model.modules():
                if type(module) is hd.MOEFeedForwardSwiGLU:
                    module.__class__ = MetaRoutableMoE
            return out

        def patchify(self, hidden_states):
            out = super().patchify(hidden_states)
            if hidden_states.device.type != "meta":
                return out
            # img_sizes is an int tensor made here; on meta its values are unknown, which unpatchify
            # (reading them as Python ints) cannot take: give the same sizes as Python ints.
            patched, masks, _, img_ids = out
            p = self.config.patch_size
            sizes = [(hidden_states.shape[-2] // p, hidden_states.shape[-1] // p)] * hidden_states.shape[0]
            return patched, masks, sizes, img_ids

    return HiDreamImageTransformer2DModel


ADAPTERS = (HiDreamAdapter(),)
