"""Captions with Qwen2-Audio, as the SAGA-SR authors made them (their `SRTextPreprocessor`).

The base model (Qwen2-Audio-7B, not Instruct) with the prompt
"<|audio_bos|><|AUDIO|><|audio_eos|>Generate the caption in English:", audio resampled to 16 kHz mono,
greedy `generate` with a length budget of 256 tokens, special tokens and surrounding whitespace stripped.
Paper: training uses captions of the HR audio, inference captions of the LR input.

Length budget: the authors' `max_length=256` counted the text prompt with one placeholder token for the
audio (older transformers expanded the audio inside the model). Current processors expand <|AUDIO|> into
one token per 40 ms in `input_ids`, so we give `max_new_tokens = 256 - (prompt tokens, audio as one)`.
The Whisper feature extractor sees at most 30 s: a longer file is captioned from its first 30 s.

Loads from a LOCAL folder only (`local_files_only=True`); nothing is downloaded.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from saga_sr.data.index import sidecar_path
from saga_sr.errors import ModelLoadError

__all__ = ["CAPTION_PROMPT", "CAPTION_SR", "MAX_LENGTH", "MAX_SECONDS", "Captioner", "sidecar_path"]

CAPTION_PROMPT = "<|audio_bos|><|AUDIO|><|audio_eos|>Generate the caption in English:"
CAPTION_SR = 16000
MAX_LENGTH = 256
MAX_SECONDS = 30.0


class Captioner:
    """A Qwen2-Audio model + processor from a local folder; `caption(list of 16 kHz mono arrays)`."""

    def __init__(
        self,
        model_path: str | os.PathLike,
        device: str = "cpu",
        dtype: str = "auto",
        *,
        max_new_tokens: int | None = None,
    ) -> None:
        path = Path(model_path)
        if not path.is_dir() or not (path / "config.json").is_file():
            raise ModelLoadError(
                f"{path}: not a local Qwen2-Audio folder (needs config.json, weights and the "
                "processor files; nothing is downloaded)"
            )
        # lazy: heavy, and only needed when this model is built
        from transformers import AutoProcessor, Qwen2AudioForConditionalGeneration

        torch_dtype = {"auto": "auto", "fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[dtype]
        try:
            self.processor = AutoProcessor.from_pretrained(path, local_files_only=True)
            self.model = (
                Qwen2AudioForConditionalGeneration.from_pretrained(path, local_files_only=True, dtype=torch_dtype)
                .to(device)
                .eval()
            )
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ModelLoadError(f"{path}: cannot load Qwen2-Audio ({exc})") from exc
        self.device = device
        tokenizer = self.processor.tokenizer
        tokenizer.padding_side = "left"  # decoder-only batch generation
        prompt_ids = tokenizer(CAPTION_PROMPT, add_special_tokens=False)["input_ids"]
        self.max_new_tokens = max_new_tokens or max(1, MAX_LENGTH - len(prompt_ids))

    def caption(self, waves: Sequence[np.ndarray]) -> list[str]:
        """16 kHz mono float arrays [L] -> one caption each (greedy, deterministic)."""
        clips = [np.asarray(w, dtype=np.float32).reshape(-1)[: int(MAX_SECONDS * CAPTION_SR)] for w in waves]
        inputs = self.processor(
            text=[CAPTION_PROMPT] * len(clips), audio=clips, sampling_rate=CAPTION_SR, return_tensors="pt", padding=True
        )
        inputs = {k: v.to(self.device) for k, v in inputs.items()}
        if "input_features" in inputs:
            inputs["input_features"] = inputs["input_features"].to(self.model.dtype)
        tokenizer = self.processor.tokenizer
        with torch.no_grad():
            out = self.model.generate(
                **inputs, max_new_tokens=self.max_new_tokens, do_sample=False, pad_token_id=tokenizer.pad_token_id
            )
        new = out[:, inputs["input_ids"].shape[1] :]
        texts = self.processor.batch_decode(new, skip_special_tokens=True, clean_up_tokenization_spaces=False)
        return [t.strip() for t in texts]
