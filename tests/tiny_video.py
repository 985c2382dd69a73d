"""Tiny random-weight video pipelines (Wan, CogVideoX) built from configs, for tests (no downloads)."""

from __future__ import annotations

from tiny_models import _seeded, tiny_t5_encoder, tiny_t5_tokenizer

MAX_SEQUENCE_LENGTH = 16
T5_D_MODEL = 32  # the tiny T5 / UMT5 width (the transformers' text_dim)


def tiny_umt5_encoder(vocab_size: int, seed: int = 0):
    """A random 2-layer ``UMT5EncoderModel`` (Wan's text encoder family), width :data:`T5_D_MODEL`."""
    from transformers import UMT5Config, UMT5EncoderModel

    config = UMT5Config(vocab_size=vocab_size, d_model=T5_D_MODEL, d_kv=8, d_ff=64, num_layers=2, num_heads=4,
                        relative_attention_num_buckets=8, relative_attention_max_distance=32, dropout_rate=0.0,
                        feed_forward_proj="gated-gelu", is_encoder_decoder=False, use_cache=False,
                        pad_token_id=0, eos_token_id=1, decoder_start_token_id=0)
    with _seeded(seed + 2):
        return UMT5EncoderModel(config).eval()


def tiny_wan_pipeline(seed: int = 0):
    """A ``WanPipeline``: 2-block Wan transformer, tiny ``AutoencoderKLWan`` (8x spatial, 4x temporal), tiny UMT5."""
    from diffusers import AutoencoderKLWan, UniPCMultistepScheduler, WanPipeline, WanTransformer3DModel

    tokenizer = tiny_t5_tokenizer()
    with _seeded(seed):
        transformer = WanTransformer3DModel(
            patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=12, in_channels=16, out_channels=16,
            text_dim=T5_D_MODEL, freq_dim=32, ffn_dim=32, num_layers=2, cross_attn_norm=True,
            qk_norm="rms_norm_across_heads", rope_max_seq_len=32).eval()
    with _seeded(seed + 1):
        vae = AutoencoderKLWan(base_dim=3, z_dim=16, dim_mult=[1, 1, 1, 1], num_res_blocks=1,
                               temperal_downsample=[False, True, True]).eval()
    scheduler = UniPCMultistepScheduler(prediction_type="flow_prediction", use_flow_sigmas=True, flow_shift=3.0,
                                        num_train_timesteps=1000)
    return WanPipeline(tokenizer=tokenizer, text_encoder=tiny_umt5_encoder(len(tokenizer), seed), vae=vae,
                       transformer=transformer, scheduler=scheduler)


def tiny_cogvideox_pipeline(seed: int = 0):
    """A ``CogVideoXPipeline``: 2-block CogVideoX-5b-like transformer (3D RoPE), tiny CogVideoX VAE, tiny T5."""
    from diffusers import AutoencoderKLCogVideoX, CogVideoXDDIMScheduler, CogVideoXPipeline, CogVideoXTransformer3DModel

    tokenizer = tiny_t5_tokenizer()
    with _seeded(seed):
        transformer = CogVideoXTransformer3DModel(
            num_attention_heads=2, attention_head_dim=16, in_channels=4, out_channels=4, time_embed_dim=16,
            text_embed_dim=T5_D_MODEL, num_layers=2, sample_width=4, sample_height=4, sample_frames=9, patch_size=2,
            temporal_compression_ratio=4, max_text_seq_length=MAX_SEQUENCE_LENGTH,
            use_rotary_positional_embeddings=True).eval()
    with _seeded(seed + 1):
        vae = AutoencoderKLCogVideoX(
            in_channels=3, out_channels=3, down_block_types=("CogVideoXDownBlock3D",) * 4,
            up_block_types=("CogVideoXUpBlock3D",) * 4, block_out_channels=(8, 8, 8, 8), latent_channels=4,
            layers_per_block=1, norm_num_groups=2, temporal_compression_ratio=4).eval()
    scheduler = CogVideoXDDIMScheduler(beta_schedule="scaled_linear", prediction_type="v_prediction",
                                       rescale_betas_zero_snr=True, timestep_spacing="trailing", snr_shift_scale=1.0,
                                       set_alpha_to_one=True, clip_sample=False)
    return CogVideoXPipeline(tokenizer=tokenizer, text_encoder=tiny_t5_encoder(len(tokenizer), seed), vae=vae,
                             transformer=transformer, scheduler=scheduler)


