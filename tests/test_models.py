"""full_size / scaled_down / load and the parameter breakdown."""
import time

import pytest
import torch

import slmcourse
from slmcourse import catalogue
from slmcourse.errors import CourseError, OfflineError
from slmcourse.models import PARTS, parameter_part


def test_full_size_is_on_meta_without_memory():
    model = slmcourse.full_size("mistral-7b")
    assert {p.device.type for p in model.parameters()} == {"meta"}


def test_flan_t5_shares_its_input_embedding_but_has_its_own_head():
    model = slmcourse.full_size("flan-t5-small")
    assert model.encoder.embed_tokens.weight is model.shared.weight
    assert model.decoder.embed_tokens.weight is model.shared.weight
    assert model.lm_head.weight is not model.shared.weight


@pytest.mark.parametrize("key", catalogue.names())
def test_scaled_down_runs_a_forward_pass_quickly_and_deterministically(key):
    card = catalogue.get(key)
    ids = torch.randint(0, 500, (2, 9), generator=torch.Generator().manual_seed(0))
    outs = []
    for _ in range(2):
        model = slmcourse.scaled_down(key, seed=3)
        assert type(model).__name__ == type(slmcourse.full_size(key)).__name__  # same architecture class
        with torch.no_grad():
            kwargs = {"decoder_input_ids": ids[:, :3]} if card.family == "encoder-decoder" else {}
            out = model(input_ids=ids, **kwargs)
        outs.append(out[0])
    assert torch.equal(outs[0], outs[1])
    # the real vocabulary is kept so the real tokenizer works: Gemma's 262k x 64 embedding is 16.8M, and Gemma 3n
    # adds its per-layer embeddings (262k x 8 per layer x 4 layers = 8.4M); everything else is tiny
    assert slmcourse.count_parameters(model) < 30_000_000


def test_scaled_down_overrides_and_bad_heads():
    model = slmcourse.scaled_down("smollm2-135m", num_hidden_layers=3)
    assert model.config.num_hidden_layers == 3
    with pytest.raises(CourseError, match="evenly"):
        slmcourse.scaled_down("smollm2-135m", num_attention_heads=3, num_key_value_heads=2)
    with pytest.raises(CourseError, match="divisible"):
        slmcourse.scaled_down("bert-tiny", hidden_size=30, num_attention_heads=4)


# architectures with blocks that are neither embeddings, attention, MLP, norms nor head
PARTS_BEYOND_THE_STANDARD_SIX = {"gemma-3n-e4b"}


def test_breakdown_sums_to_the_count_and_names_parts():
    for key in catalogue.names():
        model = slmcourse.full_size(key)
        parts = slmcourse.parameter_breakdown(model)
        assert list(parts) == list(PARTS)
        assert sum(parts.values()) == slmcourse.count_parameters(model)
        if key in PARTS_BEYOND_THE_STANDARD_SIX:
            # e.g. Gemma 3n's per-layer-input projections and gates, LAuReL and AltUp blocks: about 1 % of it
            assert 0 < parts["other"] < 0.02 * sum(parts.values()), (key, parts["other"])
        else:
            assert parts["other"] == 0, key
        assert parts["attention"] > 0 and parts["mlp"] > 0 and parts["embeddings"] > 0
    assert parameter_part("model.layers.0.post_attention_layernorm.weight") == "norms"
    assert parameter_part("model.layers.0.self_attn.q_proj.weight") == "attention"
    assert parameter_part("lm_head.weight") == "head"


def test_albert_shares_its_layers():
    model = slmcourse.full_size("albert-base")
    # 12 layers, but one set of layer weights: the count is that of ONE layer plus embeddings
    assert slmcourse.count_parameters(model) < 12_000_000


def test_hub_ids_fail_fast_and_clearly_offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    start = time.perf_counter()
    with pytest.raises(OfflineError, match="offline") as err:
        slmcourse.load("TinyLlama/TinyLlama-1.1B-Chat-v1.0")
    assert "smollm2-135m" in str(err.value) and "scaled_down" in str(err.value)
    assert time.perf_counter() - start < 5
    with pytest.raises(OfflineError):
        slmcourse.load("phi-2")  # catalogued but not bundled: goes to the Hub
    with pytest.raises(CourseError, match="valid Hub id"):
        slmcourse.load("this is not a model")


def test_is_online_never_hangs(monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    start = time.perf_counter()
    slmcourse.is_online(host="10.255.255.1", timeout=0.5)  # unroutable
    assert time.perf_counter() - start < 2


def test_environment_report_and_device():
    report = slmcourse.environment_report(check_network=False)
    assert report["torch"] == torch.__version__.split("+")[0] or report["torch"].startswith("2.")
    assert slmcourse.pick_device("cpu").type == "cpu"
    assert slmcourse.pick_device().type in ("cpu", "cuda", "mps")
