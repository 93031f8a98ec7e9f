"""Lesson 11's LoRA from scratch: the layer's maths, injection, merge/unmerge to 1e-5, the same adapter
in peft gives the same outputs, the explorer's budget agrees with a real injection on the full-size model."""
import copy

import pytest
import torch
from torch import nn

from slmcourse import CourseError, count_parameters, full_size, scaled_down
from slmcourse.lora import (LoRALinear, inject_lora, linear_module_names, lora_budget, lora_layers, lora_state_dict,
                            merge_lora, remove_lora, target_choices, trainable_summary, unmerge_lora)


def test_lora_linear_maths():
    torch.manual_seed(0)
    base = nn.Linear(12, 20)
    layer = LoRALinear(base, r=4, alpha=8)
    x = torch.randn(3, 5, 12)
    assert torch.equal(layer(x), base(x))                          # B = 0: starts as the unchanged layer
    nn.init.normal_(layer.lora_B)
    expected = x @ base.weight.T + base.bias + 2.0 * (x @ layer.lora_A.T @ layer.lora_B.T)
    assert torch.allclose(layer(x), expected, atol=1e-5)
    assert layer.scaling == 2.0 and layer.delta_weight().shape == (20, 12)
    assert [n for n, p in layer.named_parameters() if p.requires_grad] == ["lora_A", "lora_B"]
    assert sum(p.numel() for p in layer.parameters() if p.requires_grad) == 4 * (12 + 20)


def test_merge_and_unmerge_are_exact():
    torch.manual_seed(1)
    base = nn.Linear(64, 48)
    original = base.weight.detach().clone()
    layer = LoRALinear(base, r=8, alpha=16)
    nn.init.normal_(layer.lora_B, std=0.1)
    x = torch.randn(7, 64)
    before = layer(x)
    layer.merge()
    assert layer.merged and torch.allclose(layer(x), before, atol=1e-5)
    assert torch.allclose(layer(x), base(x), atol=1e-5)            # a plain Linear again
    layer.merge()                                                  # merging twice changes nothing
    assert torch.allclose(layer(x), before, atol=1e-5)
    layer.unmerge()
    assert not layer.merged and torch.allclose(base.weight, original, atol=1e-6)
    assert torch.allclose(layer(x), before, atol=1e-5)


def test_lora_linear_errors():
    with pytest.raises(CourseError, match="larger than the layer"):
        LoRALinear(nn.Linear(4, 8), r=5)
    with pytest.raises(CourseError, match="whole number"):
        LoRALinear(nn.Linear(4, 8), r=0)
    with pytest.raises(CourseError, match="nn.Linear"):
        LoRALinear(nn.Conv1d(2, 2, 1), r=1)


@pytest.fixture()
def tiny():
    return scaled_down("smollm2-135m", seed=0, num_hidden_layers=2)


def test_inject_counts_and_model_merge(tiny):
    total = count_parameters(tiny)
    wrapped = inject_lora(tiny, ["q_proj", "v_proj"], r=4, alpha=8)
    assert wrapped == ["model.layers.0.self_attn.q_proj", "model.layers.0.self_attn.v_proj",
                       "model.layers.1.self_attn.q_proj", "model.layers.1.self_attn.v_proj"]
    cfg = tiny.config
    kv = cfg.num_key_value_heads * cfg.hidden_size // cfg.num_attention_heads
    per_layer = 4 * (cfg.hidden_size + cfg.hidden_size) + 4 * (cfg.hidden_size + kv)
    summary = trainable_summary(tiny)
    assert summary["trainable"] == 2 * per_layer
    assert summary["total"] == total + 2 * per_layer
    assert len(lora_state_dict(tiny)) == 8
    for layer in lora_layers(tiny):
        nn.init.normal_(layer.lora_B, std=0.05)
    ids = torch.randint(0, cfg.vocab_size, (2, 10), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        before = tiny(input_ids=ids).logits
        assert merge_lora(tiny) == 4
        merged = tiny(input_ids=ids).logits
        unmerge_lora(tiny)
        after = tiny(input_ids=ids).logits
    assert torch.allclose(before, merged, atol=1e-5) and torch.allclose(before, after, atol=1e-5)


def test_inject_errors(tiny):
    with pytest.raises(CourseError, match="its Linear layers are"):
        inject_lora(tiny, ["query"])
    with pytest.raises(CourseError, match="at least one"):
        inject_lora(tiny, [])
    assert "q_proj" in linear_module_names(tiny)


def test_same_adapter_in_peft_gives_same_outputs(tiny):
    peft = pytest.importorskip("peft")
    reference = copy.deepcopy(tiny)
    untouched = copy.deepcopy(tiny)

    def reference_copy(ids):
        return untouched(input_ids=ids).logits
    inject_lora(tiny, ["q_proj", "v_proj"], r=4, alpha=8)
    for layer in lora_layers(tiny):
        nn.init.normal_(layer.lora_B, std=0.05)
    config = peft.LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], lora_dropout=0.0, bias="none")
    theirs = peft.get_peft_model(reference, config)
    trainable, _total = theirs.get_nb_trainable_parameters()
    assert trainable == trainable_summary(tiny)["trainable"]
    for name, module in tiny.named_modules():
        if isinstance(module, LoRALinear):
            peft_layer = theirs.base_model.model.get_submodule(name)
            peft_layer.lora_A["default"].weight.data.copy_(module.lora_A.data)
            peft_layer.lora_B["default"].weight.data.copy_(module.lora_B.data)
    ids = torch.randint(0, tiny.config.vocab_size, (2, 9), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        ours = tiny(input_ids=ids).logits
        assert torch.allclose(ours, theirs(input_ids=ids).logits, atol=1e-5)
    # remove_lora gives back the base model and the adapters; the same adapters in peft on it agree again
    with torch.no_grad():
        plain = reference_copy(ids)
    adapters = remove_lora(tiny)
    assert not lora_layers(tiny) and len(adapters) == 4
    with torch.no_grad():
        assert torch.allclose(tiny(input_ids=ids).logits, plain, atol=1e-6)
    again = peft.get_peft_model(tiny, config)
    for name, weights in adapters.items():
        layer = again.base_model.model.get_submodule(name)
        layer.lora_A["default"].weight.data.copy_(weights["lora_A"])
        layer.lora_B["default"].weight.data.copy_(weights["lora_B"])
    with torch.no_grad():
        assert torch.allclose(again(input_ids=ids).logits, ours, atol=1e-5)
    with pytest.raises(CourseError, match="no LoRA"):
        remove_lora(nn.Sequential(nn.Linear(2, 2)))


def test_budget_matches_an_injection_on_the_full_size_model():
    b = lora_budget("smollm2-135m", 8, ["q_proj", "v_proj"])
    # SmolLM2: 30 layers; q_proj 576 -> 576, v_proj 576 -> 192 (3 KV heads of 64)
    assert b.lora_params == 30 * (8 * (576 + 576) + 8 * (576 + 192)) == 460_800
    assert b.total_params == 134_515_008 and b.adapted_layers == 60
    meta = full_size("smollm2-135m")
    inject_lora(meta, ["q_proj", "v_proj"], r=8)
    assert trainable_summary(meta)["trainable"] == b.lora_params
    assert b.full_ft_bytes == 16 * 134_515_008
    assert b.lora_bytes == 4 * 134_515_008 + 16 * 460_800
    assert lora_budget("mistral-7b", 16, ["q_proj", "k_proj", "v_proj", "o_proj"]).lora_params == 13_631_488
    assert "Wqkv" in target_choices("mpt-7b")


def test_budget_errors():
    with pytest.raises(CourseError, match="no Linear layer called 'q_proj'"):
        lora_budget("bert-tiny", 8, ["q_proj"])
    with pytest.raises(CourseError, match="at least one"):
        lora_budget("smollm2-135m", 8, [])
    with pytest.raises(CourseError, match="larger than"):
        lora_budget("bert-tiny", 256, ["query"])
    with pytest.raises(CourseError):
        lora_budget("no-such-model", 8, ["q_proj"])


def test_lora_explorer_headless():
    from slmcourse.explorers.lora import lora_explorer

    box = lora_explorer()
    assert "460,800" in box.result.value and len(box.figure.value) > 0
    box.controls["rank"].value = 16
    assert "921,600" in box.result.value
    box.controls["targets"].value = ()
    assert "Cannot compute" in box.result.value
    box.controls["model"].value = "bert-tiny"
    assert "query" in box.controls["targets"].options
    box.controls["targets"].value = ("query", "value")
    assert "BERT-Tiny" in box.result.value and "Cannot" not in box.result.value
    box.controls["rank"].value = 512
    assert "Cannot compute" in box.result.value and "larger than" in box.result.value
