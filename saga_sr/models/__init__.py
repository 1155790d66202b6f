"""saga-sr's neural modules, re-implemented under stable-audio-tools' (SAT) class names, keyword arguments and
parameter names, so SAT / Stable Audio Open checkpoints load with strict=True. Only `build.py` reads configs;
every class here takes plain arguments (the JSON `config` dicts can be passed as **kwargs). Options SAT has but
saga-sr does not implement raise NotImplementedError naming the option.

transformer.py
  LayerNorm(dim, bias=False, fix_scale=False, eps=1e-5)                 keys gamma (param), beta (zero buffer)
  RotaryEmbedding(dim, base=10000)                                      key inv_freq (persistent buffer)
  Attention(dim, dim_heads=64, dim_context=None, causal=False, zero_init_output=True, qk_norm="none")
  FeedForward(dim, dim_out=None, mult=4, zero_init_output=True)         keys ff.0.proj.*, ff.2.*
  TransformerBlock(dim, dim_heads=64, cross_attend=False, dim_context=None, causal=False,
                   zero_init_branch_outputs=True, attn_kwargs=None, ff_kwargs=None, norm_kwargs=None)
  ContinuousTransformer(dim, depth, *, dim_in=None, dim_out=None, dim_heads=64, cross_attend=False,
                   cond_token_dim=None, final_cross_attn_ix=-1, causal=False, rotary_pos_emb=True,
                   zero_init_branch_outputs=True, use_checkpointing=False, use_cross_attn_mask=False, ...)
dit.py
  DiffusionTransformer(io_channels=32, patch_size=1, embed_dim=768, cond_token_dim=0, project_cond_tokens=True,
                   global_cond_dim=0, project_global_cond=True, input_concat_dim=0, prepend_cond_dim=0, depth=12,
                   num_heads=8, transformer_type="continuous_transformer", global_cond_type="prepend",
                   timestep_cond_type="global", diffusion_objective="v", **ContinuousTransformer kwargs
                   (use_checkpointing, use_cross_attn_mask, ...))
    .forward(x, t, cross_attn_cond=None, cross_attn_cond_mask=None, input_concat_cond=None, global_embed=None,
             prepend_cond=None, prepend_cond_mask=None, return_info=False, conditioning_projected=False,
             cross_attn_kv=None)
    .timestep_embedding(t) -> [B, embed_dim];  .project_conditioning(cross_attn_cond, global_embed, prepend_cond)
             -> the projected conditioning plus every block's cross-attention keys/values (`cross_attn_kv`)
    No classifier-free guidance inside (see saga_sr.inference.guidance).
  DiTWrapper(model=None, **DiffusionTransformer kwargs)                 keys model.*
conditioners.py
  NumberConditioner(output_dim, min_val=0, max_val=1)                  keys embedder.embedding.{0.weights,1.*}
  T5Conditioner(output_dim, t5_model_name="t5-base", max_length=128, enable_grad=False, project_out=False,
                t5_config=None, text_encoder_path=None, seed=0)          .encode_text(texts, device), .project(h, m)
  MultiConditioner(conditioners: dict, default_keys=None)              keys conditioners.<id>.*
    .forward(metadata: list[dict], device) -> {id: (emb [B,N,D], mask [B,N])}
rolloff.py
  RolloffFourierConditioner(embedding_dim_cross, embedding_dim_global, dropout_rate=0.1, num_frequencies=128)
    .forward(low [B], high [B], generator=None) -> (cross [B,1,Dc], global [B,Dg])
autoencoder.py
  OobleckEncoder(in_channels=2, channels=128, latent_dim=32, c_mults=(1,2,4,8), strides=(2,4,8,8), use_snake=False)
  OobleckDecoder(out_channels=2, channels=128, latent_dim=32, c_mults=..., strides=..., use_snake=False,
                 final_tanh=True)
  VAEBottleneck(sample=True)
  AudioAutoencoder(encoder, decoder, latent_dim, downsampling_ratio, sample_rate, io_channels=2, bottleneck=None,
                   in_channels=None, out_channels=None, soft_clip=False)   keys encoder.*, decoder.*
pretransforms.py
  AutoencoderPretransform(model, scale=1.0, iterate_batch=False)        keys model.*; encode(x, sample=None)
  PatchedPretransform(channels, patch_size)                             no keys
"""

from .autoencoder import AudioAutoencoder, OobleckDecoder, OobleckEncoder, VAEBottleneck
from .conditioners import MultiConditioner, NumberConditioner, T5Conditioner
from .dit import DiffusionTransformer, DiTWrapper
from .pretransforms import AutoencoderPretransform, PatchedPretransform, Pretransform
from .rolloff import RolloffFourierConditioner
from .transformer import ContinuousTransformer

__all__ = [
    "AudioAutoencoder",
    "OobleckDecoder",
    "OobleckEncoder",
    "VAEBottleneck",
    "MultiConditioner",
    "NumberConditioner",
    "T5Conditioner",
    "DiffusionTransformer",
    "DiTWrapper",
    "AutoencoderPretransform",
    "PatchedPretransform",
    "Pretransform",
    "RolloffFourierConditioner",
    "ContinuousTransformer",
]
