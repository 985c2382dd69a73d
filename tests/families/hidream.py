"""HiDream-I1 (``HiDreamImageTransformer2DModel``): wrapped blocks, dotted components, MoE feed-forwards.

Double-stream blocks {block.attn1, block.ff_i, block.ff_t}, single-stream blocks {block.attn1, block.ff_i}.
The cases build the adapter's ``model_class()``: diffusers' class whose mixture-of-experts can also
run on the ``meta`` device (MAC profiling); on CPU tensors its forward is diffusers' own (checked
bit for bit against the plain class in ``tests/test_pipelines_image_a.py``).
"""

from families import FamilyCase


def tiny_hidream_config(**overrides) -> dict:
    """A HiDream-I1-like config: 4 routed experts (2 active) + a shared expert, T5 + Llama-3.1 text."""
    cfg = dict(
        patch_size=2,
        in_channels=4,
        out_channels=4,
        num_layers=2,
        num_single_layers=2,
        attention_head_dim=8,
        num_attention_heads=2,
        caption_channels=[24, 20],  # [T5, Llama] widths
        text_emb_dim=12,  # pooled CLIP-L + CLIP-G
        num_routed_experts=4,
        num_activated_experts=2,
        axes_dims_rope=(4, 2, 2),  # sums to attention_head_dim
        max_resolution=(16, 16),  # non-square latents are padded to 16 x 16 / 2^2 = 64 tokens
        llama_layers=[0, 1, 2, 2],  # one Llama layer per block (num_layers + num_single_layers)
    )
    cfg.update(overrides)
    return {"_class_name": "HiDreamImageTransformer2DModel", **cfg}


CASES = [
    FamilyCase("hidream-i1", tiny_hidream_config(), text_len=9,
               notes="MoE ff_i (4 experts, top-2); 9 text tokens = 3 T5 + 2 x 3 Llama"),
    FamilyCase("hidream-i1-nonsquare", tiny_hidream_config(num_layers=3, num_single_layers=1, llama_layers=[0, 1, 1, 3]),
               batch_size=1, latent_size=(8, 12), text_len=6,
               notes="non-square latents: patchified, padded to max_resolution and masked"),
    FamilyCase("hidream-dense", tiny_hidream_config(num_routed_experts=0), text_len=6,
               notes="num_routed_experts=0: plain SwiGLU ff_i"),
]
