"""Lumina-Image 2.0 (``Lumina2Transformer2DModel``): context refiner, noise refiner and main layers."""

from __future__ import annotations

import functools

from ..schedule import Architecture, BlockGroup
from .base import ArchitectureAdapter

#: every group's blocks are Lumina2TransformerBlocks: self-attention and a SwiGLU feed-forward
COMPONENTS = ("attn", "feed_forward")


class Lumina2Adapter(ArchitectureAdapter):
    """Lumina-Image 2.0 (``Lumina2Transformer2DModel``): three groups of {attn, feed_forward}.

    In execution order: ``context_refiner`` (text tokens only, no timestep modulation),
    ``noise_refiner`` (image tokens only), then ``layers`` over the joint sequence.

    The joint sequence holds each caption's *valid* tokens (the attention mask's ones), not the
    ``max_sequence_length`` the Gemma tokenizer pads to; the profile counts ``text_len`` valid tokens,
    an upper bound for real prompts (the context refiner always runs on the padded length).
    """

    transformer_class = "Lumina2Transformer2DModel"
    family = "lumina2"
    default_text_len = 256  # Lumina2Pipeline's max_sequence_length
    component_aliases = {"attn1": "attn", "self_attn": "attn", "ff": "feed_forward", "mlp": "feed_forward"}

    def architecture(self, config):
        refiners = int(config.get("num_refiner_layers", 2))
        return Architecture(self.transformer_class, (
            BlockGroup("context_refiner", refiners, COMPONENTS),
            BlockGroup("noise_refiner", refiners, COMPONENTS),
            BlockGroup("layers", int(config.get("num_layers", 26)), COMPONENTS),
        ))

    def latent_size(self, config, height, width, vae_scale_factor):
        h, w = super().latent_size(config, height, width, vae_scale_factor)
        p = int(config.get("patch_size", 2))
        if h % p or w % p:
            raise ValueError(f"Lumina2 patchifies {p}x{p} latents: height and width must be multiples of "
                             f"{p} x the VAE scale factor")
        return h, w

    def profile_inputs(self, config, latent_height, latent_width, batch_size, text_len, device, latent_frames=None):
        import torch

        mask = torch.ones(batch_size, text_len, dtype=torch.int64)
        return dict(
            hidden_states=torch.zeros(batch_size, config.get("in_channels", 16), latent_height, latent_width,
                                      device=device),
            timestep=torch.ones(batch_size, device=device),
            encoder_hidden_states=torch.zeros(batch_size, text_len, config.get("cap_feat_dim", 1024), device=device),
            # the RoPE embedder reads the caption lengths from the mask (`.tolist()`): on the meta
            # device the mask carries its values along
            encoder_attention_mask=with_values(mask, device),
        )

    def encode_prompts(self, pipe, prompts, *, guidance_scale, max_sequence_length, device):
        cfg = self.uses_cfg(guidance_scale)
        pe, pm, ne, nm = pipe.encode_prompt(prompts, do_classifier_free_guidance=cfg, negative_prompt="",
                                            num_images_per_prompt=1, device=device,
                                            max_sequence_length=max_sequence_length)
        out = {"prompt_embeds": pe, "prompt_attention_mask": pm}
        if cfg:
            out.update(negative_prompt_embeds=ne, negative_prompt_attention_mask=nm)
        return out

    def call_kwargs(self, settings, *, prompt_embeds):
        return {"max_sequence_length": settings["max_sequence_length"]}


# --------------------------------------------------------------------------------------------
# Meta-device tensors that keep their values (small integer / boolean inputs such as masks)
# --------------------------------------------------------------------------------------------

def with_values(values, device):
    """``values`` on ``device``; on the ``meta`` device a :class:`MetaWithValues` that keeps them.

    MAC profiles run on the meta device, where a forward that reads a mask's values (Lumina2's
    caption lengths via ``.tolist()``, HunyuanImage's boolean-mask reordering of text tokens)
    cannot run. Such an input is given as a meta tensor that carries its CPU values along
    (``meta_with_values_class()``).
    """
    import torch

    if torch.device(device).type != "meta":
        return values.to(device)
    return meta_with_values_class().wrap(torch.empty_like(values, device="meta"), values)


@functools.lru_cache(maxsize=None)
def meta_with_values_class():
    """The class :class:`MetaWithValues` (built on first use: importing an adapter does not import torch)."""
    import torch
    from torch.utils._pytree import tree_leaves, tree_map

    class MetaWithValues(torch.Tensor):
        """A meta tensor with its values on the CPU (``_values``), for inputs whose values steer a forward.

        Every torch operation runs on the meta tensor; when all its tensor operands carry values,
        it also runs on those, so derived masks keep theirs. ``tolist()`` and ``item()`` answer from
        the values, and indexing a plain meta tensor with such a tensor indexes with the values (the
        result's shape is then the real one). Tensors mixing plain meta operands get plain meta results.
        """

        @staticmethod
        def wrap(meta, values):
            out = torch.Tensor._make_subclass(MetaWithValues, meta)
            out._values = values
            return out

        @classmethod
        def __torch_function__(cls, func, types, args=(), kwargs=None):
            kwargs = kwargs or {}
            if func in (torch.Tensor.tolist, torch.Tensor.item):
                return func(args[0]._values)
            if func is torch.Tensor.__iter__:
                return iter(args[0].unbind(0))
            tensors = [a for a in tree_leaves((args, kwargs)) if isinstance(a, torch.Tensor)]
            known = all(isinstance(a, MetaWithValues) for a in tensors)
            with torch._C.DisableTorchFunctionSubclass():
                if func in (torch.Tensor.__getitem__, torch.Tensor.__setitem__):
                    # indexing by known values (a boolean mask): index the meta tensor with the values
                    index = tree_map(_values_of, args[1])
                    out = func(_plain(args[0]), index, *tree_map(_plain, args[2:]))
                else:
                    out = func(*tree_map(_plain, args), **tree_map(_plain, kwargs))
                if not known:
                    return out
                values = func(*tree_map(_values_of, args), **tree_map(_values_of, kwargs))
            return _rewrap(out, values)

    def _plain(a):
        return a.as_subclass(torch.Tensor) if isinstance(a, MetaWithValues) else a

    def _values_of(a):
        if isinstance(a, MetaWithValues):
            return a._values
        if isinstance(a, torch.device) and a.type == "meta":
            return torch.device("cpu")  # `.to(meta_tensor.device)` keeps the values on the CPU
        if isinstance(a, str) and a == "meta":
            return "cpu"
        return a

    def _rewrap(out, values):
        if isinstance(out, torch.Tensor) and isinstance(values, torch.Tensor):
            if out.device.type != "meta" or values.device.type == "meta" or out.shape != values.shape:
                return out
            return MetaWithValues.wrap(out, values)
        if isinstance(out, (tuple, list)) and isinstance(values, (tuple, list)) and len(out) == len(values):
            wrapped = [_rewrap(o, v) for o, v in zip(out, values)]
            return wrapped if isinstance(out, list) else tuple(wrapped)
        return out

    return MetaWithValues


ADAPTERS = (Lumina2Adapter(),)
