"""Number, T5 (offline tiny) and multi conditioners; the roll-off conditioner."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from saga_sr.errors import DataError, ModelLoadError
from saga_sr.models.conditioners import MultiConditioner, NumberConditioner, T5Conditioner
from saga_sr.models.rolloff import RolloffFourierConditioner

FIX = Path(__file__).parent / "fixtures"
TINY_T5 = {"vocab_size": 384, "d_model": 32, "d_kv": 16, "d_ff": 64, "num_layers": 2, "num_heads": 2}


@pytest.fixture(scope="module")
def tiny_t5():
    return T5Conditioner(48, max_length=16, t5_config=TINY_T5)


def test_number_conditioner_matches_fixture():
    spec = json.loads((FIX / "number_conditioner_768.json").read_text())
    io = load_file(FIX / "number_conditioner_768.io.safetensors")
    reference = load_file(FIX / "number_conditioner_768.state_dict.safetensors")
    torch.manual_seed(0)
    cond = NumberConditioner(**spec["kwargs"])
    assert {k: list(v.shape) for k, v in cond.state_dict().items()} == spec["state_dict_keys"]
    # float results (seeded init, normalisation, sin/cos, matmul) are compared at 1e-6: the fixture was written on
    # another CPU, whose kernels round differently (6e-7 seen); the boolean mask is exact
    for k, v in cond.state_dict().items():  # same seeded init as SAT
        torch.testing.assert_close(v, reference[k], rtol=1e-6, atol=1e-6, msg=k)
    with torch.no_grad():
        emb, mask = cond(io["values"].tolist(), "cpu")
        torch.testing.assert_close(cond.normalize(io["values"], "cpu"), io["normalized"], rtol=1e-6, atol=1e-6)
        torch.testing.assert_close(
            cond.embedder.embedding[0](io["normalized"]), io["fourier_features"], rtol=1e-6, atol=1e-6
        )
    torch.testing.assert_close(emb, io["embeds"], rtol=1e-6, atol=1e-6)
    assert torch.equal(mask, io["mask"])


def test_t5_tiny_offline_registered_frozen_and_masked(tiny_t5):
    keys = list(tiny_t5.state_dict())
    assert "proj_out.weight" in keys and any(k.startswith("model.encoder.block.0.") for k in keys)
    assert not any(p.requires_grad for p in tiny_t5.model.parameters())
    tiny_t5.train()
    assert tiny_t5.training and not tiny_t5.model.training
    emb, mask = tiny_t5(["hi", "a longer caption text"], "cpu")
    assert emb.shape == (2, 16, 48) and mask.dtype == torch.bool
    assert mask[0].sum() == 3 and mask[1].all()  # 2 bytes + </s>; the long one is truncated to 16
    assert emb[0, 3:].abs().max() == 0 and emb[0, :3].abs().max() > 0
    hidden, m = tiny_t5.encode_text(["hi", "a longer caption text"], "cpu")
    assert torch.equal(tiny_t5.project(hidden, m)[0], emb)  # cached T5 output + projection == forward


def test_t5_tiny_init_is_seeded_and_leaves_global_rng_alone():
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    a = T5Conditioner(32, max_length=8, t5_config=TINY_T5)
    after = torch.rand(1)
    b = T5Conditioner(32, max_length=8, t5_config=TINY_T5)
    assert torch.equal(before, after)
    assert isinstance(a.proj_out, torch.nn.Identity)  # d_model 32 == output 32
    assert torch.equal(a.model.shared.weight, b.model.shared.weight)


def test_pretrained_t5_is_lazy_and_missing_weights_raise_model_load_error(tmp_path, monkeypatch):
    cond = T5Conditioner(768)  # building never loads or downloads
    assert not any("model" in k for k in cond.state_dict())
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("SAGA_SR_T5_PATH", raising=False)
    from huggingface_hub import try_to_load_from_cache

    if not any(isinstance(try_to_load_from_cache(n, "config.json"), str) for n in ("t5-base", "google-t5/t5-base")):
        with pytest.raises(ModelLoadError, match="SAGA_SR_T5_PATH"):
            cond(["text"], "cpu")
    with pytest.raises(ModelLoadError, match="does not exist"):
        T5Conditioner(768, text_encoder_path=tmp_path / "missing")(["text"], "cpu")
    with pytest.raises(ValueError, match="t5_model_name"):
        T5Conditioner(768, t5_model_name="t5-huge")


def test_multi_conditioner_keys_unwrap_defaults_and_errors(tiny_t5):
    torch.manual_seed(0)
    multi = MultiConditioner(
        {"prompt": tiny_t5, "seconds_total": NumberConditioner(48, 0, 512)}, default_keys={"prompt": "caption"}
    )
    assert any(k.startswith("conditioners.seconds_total.embedder.") for k in multi.state_dict())
    out = multi([{"caption": "x", "seconds_total": [3.0]}, {"prompt": "y", "seconds_total": 600}], "cpu")
    assert out["prompt"][0].shape == (2, 16, 48) and out["seconds_total"][0].shape == (2, 1, 48)
    assert not torch.equal(out["seconds_total"][0][0], out["seconds_total"][0][1])
    with pytest.raises(DataError, match="seconds_total"):
        multi([{"prompt": "x"}], "cpu")


def test_rolloff_conditioner_shapes_learning_and_dropout():
    torch.manual_seed(0)
    cond = RolloffFourierConditioner(24, 40, dropout_rate=0.5, num_frequencies=8)
    low, high = torch.tensor([0.1, 0.2, 0.3, 0.4] * 8), torch.tensor([0.9] * 32)
    cond.eval()
    cross, glob = cond(low, high)
    assert cross.shape == (32, 1, 24) and glob.shape == (32, 40)
    assert not torch.allclose(cross[0], cross[1])
    assert torch.equal(cond(low, high + 5.0)[1], cond(low, torch.ones(32))[1])  # clamped to [0, 1]
    cond.train()
    dropped, glob_train = cond(low, high, generator=torch.Generator().manual_seed(0))
    zero = dropped.abs().sum(dim=(1, 2)) == 0
    assert 4 <= zero.sum() <= 28  # about half the cross tokens dropped, never the global vector
    assert torch.allclose(dropped[~zero], cross[~zero]) and torch.allclose(glob_train, glob)
    (dropped.sum() + glob_train.sum()).backward()
    assert cond.low_embedder.weights.grad.abs().sum() > 0  # Fourier frequencies are learned
    with pytest.raises(ValueError, match="dropout_rate"):
        RolloffFourierConditioner(8, 8, dropout_rate=1.0)


def test_pretrained_t5_from_local_folder_is_not_a_submodule(tmp_path, monkeypatch):
    from transformers import ByT5Tokenizer, T5Config, T5EncoderModel

    torch.manual_seed(0)
    T5EncoderModel(T5Config(**{**TINY_T5, "d_model": 512, "num_layers": 1})).save_pretrained(tmp_path / "t5")
    ByT5Tokenizer().save_pretrained(tmp_path / "t5")
    monkeypatch.setenv("SAGA_SR_T5_PATH", str(tmp_path / "t5"))
    cond = T5Conditioner(64, t5_model_name="t5-small", max_length=8)
    emb, mask = cond(["abc"], "cpu")
    assert emb.shape == (1, 8, 64) and mask.sum() == 4
    assert sorted(cond.state_dict()) == ["proj_out.bias", "proj_out.weight"]
    with pytest.raises(ModelLoadError, match="width 512"):
        T5Conditioner(64, t5_model_name="t5-base", text_encoder_path=tmp_path / "t5")(["abc"], "cpu")
