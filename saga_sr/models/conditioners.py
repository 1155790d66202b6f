"""Conditioners that turn batch metadata into (embedding, mask) pairs, under stable-audio-tools' names.

Owns: the learned Fourier number embedding (NumberConditioner; SAO's seconds_start / seconds_total and the
paper's roll-off numbers), the T5 text encoder (T5Conditioner) and MultiConditioner (`conditioners.<id>.*`).

Shape legend: B batch, L T5 max_length, D output_dim.
Every conditioner's forward(values: list, device) returns (embeddings [B,N,D], mask [B,N]).
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any, Sequence

import torch
from torch import nn

from ..config.schema import T5_DIMS
from ..errors import DataError, ModelLoadError

T5_PATH_ENV = "SAGA_SR_T5_PATH"


class Conditioner(nn.Module):
    """Base: `proj_out` is Linear(dim, output_dim) when the widths differ (or project_out), else Identity."""

    def __init__(self, dim: int, output_dim: int, project_out: bool = False) -> None:
        super().__init__()
        self.dim, self.output_dim = dim, output_dim
        self.proj_out = nn.Linear(dim, output_dim) if (dim != output_dim or project_out) else nn.Identity()


class LearnedPositionalEmbedding(nn.Module):
    """x [N] -> [x, sin(2 pi x w), cos(2 pi x w)] [N, dim+1] with `weights` w [dim/2] learned."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        if dim % 2:
            raise ValueError(f"LearnedPositionalEmbedding: dim must be even, got {dim}")
        self.weights = nn.Parameter(torch.randn(dim // 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x[:, None]
        freqs = x * self.weights[None, :] * 2 * math.pi
        return torch.cat((x, freqs.sin(), freqs.cos()), dim=-1)


class NumberEmbedder(nn.Module):
    """Learned Fourier features followed by Linear(dim+1, features); keys `embedding.0.weights`, `embedding.1.*`."""

    def __init__(self, features: int, dim: int = 256) -> None:
        super().__init__()
        self.features = features
        self.embedding = nn.Sequential(LearnedPositionalEmbedding(dim), nn.Linear(dim + 1, features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = x.shape
        return self.embedding(x.reshape(-1)).view(*shape, self.features)


class NumberConditioner(Conditioner):
    """Floats clamped to [min_val, max_val], normalised to [0,1], embedded: -> ([B,1,D], ones [B,1])."""

    def __init__(self, output_dim: int, min_val: float = 0, max_val: float = 1) -> None:
        super().__init__(output_dim, output_dim)
        if max_val <= min_val:
            raise ValueError(f"NumberConditioner: max_val {max_val} must exceed min_val {min_val}")
        self.min_val, self.max_val = float(min_val), float(max_val)
        self.embedder = NumberEmbedder(features=output_dim)

    def normalize(self, values: Sequence[float] | torch.Tensor, device: torch.device | str) -> torch.Tensor:
        x = (
            torch.as_tensor(values if torch.is_tensor(values) else [float(v) for v in values], dtype=torch.float32)
            .to(device)
            .reshape(-1)
        )
        return (x.clamp(self.min_val, self.max_val) - self.min_val) / (self.max_val - self.min_val)

    def forward(
        self, values: Sequence[float] | torch.Tensor, device: torch.device | str = "cpu"
    ) -> tuple[torch.Tensor, torch.Tensor]:
        weight = self.embedder.embedding[1].weight
        x = self.normalize(values, weight.device).to(weight.dtype)
        emb = self.embedder(x).unsqueeze(1).to(device)
        return emb, torch.ones(emb.shape[0], 1, device=device)


def resolve_t5_source(t5_model_name: str, text_encoder_path: str | os.PathLike | None = None) -> str:
    """Where pretrained T5 weights come from: the argument, else $SAGA_SR_T5_PATH, else the model name
    (looked up in the Hugging Face cache only, never downloaded). Raises ModelLoadError for a missing folder."""
    path = text_encoder_path or os.environ.get(T5_PATH_ENV)
    if path:
        if not Path(path).is_dir():
            raise ModelLoadError(
                f"T5 text encoder folder {path} does not exist (from "
                f"{'text_encoder_path' if text_encoder_path else '$' + T5_PATH_ENV})"
            )
        return str(path)
    return t5_model_name


def _load_pretrained_t5(t5_model_name: str, text_encoder_path: str | os.PathLike | None) -> tuple[Any, nn.Module]:
    from transformers import AutoTokenizer, T5EncoderModel  # lazy: heavy, and only needed when this model is built

    source = resolve_t5_source(t5_model_name, text_encoder_path)
    candidates = [source] if source != t5_model_name else [t5_model_name, f"google-t5/{t5_model_name}"]
    errors = []
    for name in candidates:
        try:
            tokenizer = AutoTokenizer.from_pretrained(name, local_files_only=True)
            model = T5EncoderModel.from_pretrained(name, local_files_only=True)
            return tokenizer, model
        except (OSError, ValueError, ImportError) as exc:
            errors.append(f"{name}: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
    raise ModelLoadError(
        f"T5 text encoder {t5_model_name!r} not found offline ({'; '.join(errors)}). Provide it as a local folder "
        f"(tokenizer + weights, e.g. saved with save_pretrained) via text_encoder_path / --text-encoder-path or the "
        f"{T5_PATH_ENV} environment variable, or place it in the Hugging Face cache (HF_HOME)."
    )


class T5Conditioner(Conditioner):
    """Frozen T5 encoder: texts -> (last_hidden_state -> proj_out, zeroed at padding [B,L,D], mask [B,L] bool).

    Pretrained weights (`t5_model_name`) load lazily on first use from a local folder only (see
    `resolve_t5_source`); like SAO, that encoder is not a submodule (not in state_dict). With `t5_config`
    (a transformers.T5Config dict) a small encoder is built offline with a fixed-seed init and a ByT5 byte
    tokenizer, and IS registered as `.model`, so its weights travel in checkpoints.
    Cache-friendly path: `encode_text` (frozen, so its output may be cached per text) then `project`."""

    def __init__(
        self,
        output_dim: int,
        t5_model_name: str = "t5-base",
        max_length: int = 128,
        enable_grad: bool = False,
        project_out: bool = False,
        t5_config: dict | None = None,
        text_encoder_path: str | os.PathLike | None = None,
        seed: int = 0,
    ) -> None:
        if enable_grad:
            raise NotImplementedError("T5Conditioner: enable_grad=True (fine-tuning T5) is not implemented")
        if t5_config is not None:
            dim = int(t5_config.get("d_model", 512))
        elif t5_model_name in T5_DIMS:
            dim = T5_DIMS[t5_model_name]
        else:
            raise ValueError(
                f"T5Conditioner: unknown t5_model_name {t5_model_name!r}; known: {sorted(T5_DIMS)} (or give t5_config)"
            )
        super().__init__(dim, output_dim, project_out=project_out)
        self.t5_model_name, self.max_length = t5_model_name, max_length
        self.text_encoder_path = text_encoder_path
        self._pretrained: tuple[Any, nn.Module] | None = None
        self.tokenizer: Any = None
        if t5_config is not None:
            self._build_offline(t5_config, seed)

    def _build_offline(self, t5_config: dict, seed: int) -> None:
        # lazy: heavy, and only needed when this model is built
        from transformers import ByT5Tokenizer, T5Config, T5EncoderModel

        config = T5Config(**{"dropout_rate": 0.0, **t5_config})
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.model = T5EncoderModel(config)
        self.model.requires_grad_(False).eval()
        self.tokenizer = ByT5Tokenizer()

    def train(self, mode: bool = True) -> T5Conditioner:
        super().train(mode)
        if "model" in self._modules:
            self.model.eval()  # frozen encoder: never dropout
        return self

    def _encoder(self, device: torch.device | str) -> tuple[Any, nn.Module]:
        if "model" in self._modules:
            return self.tokenizer, self.model
        if self._pretrained is None:
            tokenizer, model = _load_pretrained_t5(self.t5_model_name, self.text_encoder_path)
            if model.config.d_model != self.dim:
                raise ModelLoadError(
                    f"T5 text encoder from {self.text_encoder_path or self.t5_model_name} has "
                    f"width {model.config.d_model}, but {self.t5_model_name} needs {self.dim}"
                )
            self._pretrained = (tokenizer, model.requires_grad_(False).eval())
        tokenizer, model = self._pretrained
        dtype = torch.float16 if torch.device(device).type == "cuda" else torch.float32
        return tokenizer, model.to(device=device, dtype=dtype)

    @torch.no_grad()
    def encode_text(
        self, texts: Sequence[str], device: torch.device | str = "cpu"
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Texts -> (T5 last_hidden_state [B,L,dim] fp32, mask [B,L] bool); frozen, hence cacheable."""
        tokenizer, model = self._encoder(device)
        batch = tokenizer(
            [str(t) for t in texts],
            truncation=True,
            max_length=self.max_length,
            padding="max_length",
            return_tensors="pt",
        )
        ids = batch["input_ids"].to(device)
        mask = batch["attention_mask"].to(device).bool()
        hidden = model(input_ids=ids, attention_mask=mask).last_hidden_state
        return hidden.float(), mask

    def project(self, hidden: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Apply the (trainable) proj_out and zero the padding positions."""
        if isinstance(self.proj_out, nn.Linear):
            hidden = hidden.to(self.proj_out.weight.dtype)
        emb = self.proj_out(hidden)
        return emb * mask[..., None].to(emb.dtype), mask

    def forward(self, texts: Sequence[str], device: torch.device | str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
        return self.project(*self.encode_text(texts, device))


def _unwrap(value: Any) -> Any:
    return value[0] if isinstance(value, (list, tuple)) and len(value) == 1 else value


class MultiConditioner(nn.Module):
    """Runs each conditioner on its metadata field: forward(metadata list[dict], device) -> {id: (emb, mask)}.

    `default_keys` maps an id to the metadata field used when the id itself is missing."""

    def __init__(
        self,
        conditioners: dict[str, nn.Module],
        default_keys: dict[str, str] | None = None,
        pre_encoded_keys: Sequence[str] | None = None,
    ) -> None:
        super().__init__()
        if pre_encoded_keys:
            raise NotImplementedError("MultiConditioner: pre_encoded_keys are not implemented")
        self.conditioners = nn.ModuleDict(conditioners)
        self.default_keys = dict(default_keys or {})

    def forward(
        self, metadata: Sequence[dict], device: torch.device | str = "cpu"
    ) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        out = {}
        for key, conditioner in self.conditioners.items():
            values = []
            for i, item in enumerate(metadata):
                field = key if key in item else self.default_keys.get(key)
                if field is None or field not in item:
                    raise DataError(
                        f"metadata item {i} has no field {key!r} needed by its conditioner (fields: {sorted(item)})"
                    )
                values.append(_unwrap(item[field]))
            out[key] = tuple(conditioner(values, device))
        return out


__all__ = [
    "T5_DIMS",
    "T5_PATH_ENV",
    "Conditioner",
    "LearnedPositionalEmbedding",
    "NumberEmbedder",
    "NumberConditioner",
    "T5Conditioner",
    "MultiConditioner",
    "resolve_t5_source",
]
