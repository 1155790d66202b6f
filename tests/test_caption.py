"""Qwen2-Audio captioning with a tiny randomly initialised model built and saved here (offline)."""

import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from saga_sr.cli import main
from saga_sr.data.caption import CAPTION_PROMPT, Captioner, sidecar_path
from saga_sr.errors import ModelLoadError

SPECIALS = ["<|im_start|>", "<|im_end|>", "<|AUDIO|>", "<|audio_bos|>", "<|audio_eos|>"]


def byte_vocab() -> dict[str, int]:
    """GPT-2 style byte -> printable character table (a byte-level BPE with no merges)."""
    printable = set(range(33, 127)) | set(range(161, 173)) | set(range(174, 256))
    chars, extra = [], 0
    for b in range(256):
        if b in printable:
            chars.append(chr(b))
        else:
            chars.append(chr(256 + extra))
            extra += 1
    vocab = {c: i for i, c in enumerate(chars)}
    vocab["<|endoftext|>"] = 256
    return vocab


@pytest.fixture(scope="module")
def qwen_dir(tmp_path_factory):
    torch = pytest.importorskip("torch")
    from transformers import (
        Qwen2AudioConfig,
        Qwen2AudioForConditionalGeneration,
        Qwen2AudioProcessor,
        Qwen2Tokenizer,
        WhisperFeatureExtractor,
    )

    tok = Qwen2Tokenizer(
        vocab=byte_vocab(),
        merges=[],
        unk_token=None,
        bos_token=None,
        eos_token="<|endoftext|>",
        pad_token="<|endoftext|>",
    )
    tok.add_special_tokens({"additional_special_tokens": SPECIALS})
    proc = Qwen2AudioProcessor(feature_extractor=WhisperFeatureExtractor(feature_size=128), tokenizer=tok)
    cfg = Qwen2AudioConfig(
        audio_config=dict(
            d_model=32, encoder_layers=2, encoder_attention_heads=2, encoder_ffn_dim=64, num_mel_bins=128
        ),
        text_config=dict(
            hidden_size=32,
            num_hidden_layers=2,
            num_attention_heads=2,
            num_key_value_heads=2,
            intermediate_size=64,
            vocab_size=len(tok),
        ),
        audio_token_index=tok.convert_tokens_to_ids("<|AUDIO|>"),
    )
    torch.manual_seed(0)
    model = Qwen2AudioForConditionalGeneration(cfg).eval()
    out = tmp_path_factory.mktemp("qwen2audio")
    model.save_pretrained(out)
    proc.save_pretrained(out)
    return out


def test_captioner_deterministic_text(qwen_dir):
    full = Captioner(qwen_dir)
    assert full.max_new_tokens == 256 - len(
        full.processor.tokenizer(CAPTION_PROMPT, add_special_tokens=False)["input_ids"]
    )
    cap = Captioner(qwen_dir, max_new_tokens=12)  # a random model never stops early: keep the test short
    rng = np.random.default_rng(0)
    waves = [0.1 * rng.standard_normal(16000).astype(np.float32), 0.1 * rng.standard_normal(8000).astype(np.float32)]
    a = cap.caption(waves)
    b = cap.caption(waves[:1])
    assert len(a) == 2 and all(isinstance(t, str) for t in a)
    assert a[0] == b[0]  # greedy, and left padding does not change a clip's caption
    assert all("<|" not in t and t == t.strip() for t in a)  # special tokens and whitespace stripped
    assert 0 < len(a[0].encode("utf-8", "surrogatepass")) <= 12 * 4


def test_missing_model_folder(tmp_path):
    with pytest.raises(ModelLoadError, match="local"):
        Captioner(tmp_path / "nowhere")


def test_caption_help():
    out = subprocess.run([sys.executable, "-m", "saga_sr", "caption", "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "--overwrite" in out.stdout and "--model" in out.stdout


def test_caption_cli_writes_sidecars(tmp_path, qwen_dir, capsys):
    t = np.arange(24000) / 48000
    sf.write(tmp_path / "a.wav", 0.3 * np.sin(2 * np.pi * 440 * t), 48000)
    sf.write(tmp_path / "b.flac", np.stack([0.2 * np.sin(2 * np.pi * 220 * t)] * 2, 1), 48000)
    (tmp_path / "bad.wav").write_bytes(b"nope")
    sidecar_path(tmp_path / "b.flac").write_text("kept\n")
    code = main(["caption", str(tmp_path), "--model", str(qwen_dir), "--device", "cpu", "--max-new-tokens", "8"])
    assert code == 1  # bad.wav failed alone
    assert sidecar_path(tmp_path / "a.wav").is_file()
    assert sidecar_path(tmp_path / "b.flac").read_text() == "kept\n"
    assert "1 ok, 1 failed, 1 kept" in capsys.readouterr().out
    code = main(
        [
            "caption",
            str(tmp_path / "b.flac"),
            "--model",
            str(qwen_dir),
            "--overwrite",
            "--device",
            "cpu",
            "--max-new-tokens",
            "8",
        ]
    )
    assert code == 0 and sidecar_path(tmp_path / "b.flac").read_text() != "kept\n"
