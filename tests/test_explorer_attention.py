"""Lessons 4-6 explorers driven headless: logic functions, controls change results, nonsense gives a message."""
import pytest
import torch

from slmcourse import CourseError
from slmcourse.attention import kv_cache_bytes, sliding_window_mask
from slmcourse.explorers.kv_cache import kv_cache_explorer, kv_cache_summary, preset
from slmcourse.explorers.masks import mask_explorer, mask_summary
from slmcourse.explorers.positions import position_explorer, position_summary
from slmcourse.memory import model_kv_cache_bytes

PNG = b"\x89PNG\r\n\x1a\n"


def test_kv_cache_summary_compares_mha_gqa_mqa():
    s = kv_cache_summary(layers=30, heads=9, kv_heads=3, head_dim=64, context=8192, batch=1, precision="fp16")
    assert s.bytes == kv_cache_bytes(30, 3, 64, 8192, 1, 2) == 188743680
    assert (s.mha_bytes, s.mqa_bytes, s.kind, s.saving) == (3 * s.bytes, s.bytes // 3, "GQA", 3.0)
    assert "GQA (9 query heads, 3 KV heads): 180.0 MiB" in s.text()
    # the preset of a model without sliding windows gives the catalogue calculator's number
    p = preset("smollm2-135m")
    assert kv_cache_summary(**p, context=2048).bytes == model_kv_cache_bytes("smollm2-135m", 2048)
    with pytest.raises(CourseError, match="cannot be shared evenly"):
        kv_cache_summary(30, 9, 2, 64, 100)
    with pytest.raises(CourseError, match="more than the 4 query heads"):
        kv_cache_summary(30, 4, 8, 64, 100)
    with pytest.raises(CourseError, match="encoder"):
        preset("bert-tiny")


def test_kv_cache_explorer_presets_controls_and_errors():
    box = kv_cache_explorer()
    first = box.result.value
    assert "GQA" in first and box.figure.value[:8] == PNG
    box.controls["preset"].value = "phi-2"
    assert box.controls["kv_heads"].value == box.controls["heads"].value and "MHA" in box.result.value
    box.controls["kv_heads"].value = 7
    assert "Cannot compute this" in box.result.value and box.figure.value == b""
    assert box.controls["preset"].value == ""  # edited by hand: no longer the preset
    box.controls["kv_heads"].value = 1
    assert "MQA" in box.result.value


def test_mask_summary_and_explorer():
    s = mask_summary(16, 4, layers=3)
    assert torch.equal(s.mask, sliding_window_mask(16, 4)) and s.field == 10 and s.pairs == 4 * 5 // 2 + 12 * 4
    with pytest.raises(CourseError, match="longer than the 8-token sequence"):
        mask_summary(8, 9)
    box = mask_explorer(seq_len=32, window=4, layers=1)
    assert "after 1 layer the last token draws on 4 tokens" in box.result.value and box.figure.value[:8] == PNG
    box.controls["layers"].value = 4
    assert "draws on 13 tokens" in box.result.value
    box.controls["window"].value = 40
    assert "Cannot compute this" in box.result.value
    box.controls["window"].value = 8
    assert "Cannot compute this" not in box.result.value


def test_position_summary_and_explorer():
    s = position_summary(heads=8, seq_len=5, head=2)
    assert s.slopes.tolist()[2] == 2.0 ** -3 and torch.isnan(s.bias[0, 1]) and s.bias[4, 0] == -4 * 2.0 ** -3
    assert s.angles.shape == (5, 32)
    with pytest.raises(CourseError, match="head must be between 0 and 7"):
        position_summary(heads=8, head=8)
    box = position_explorer()
    assert "ALiBi: 8 heads" in box.result.value and box.figure.value[:8] == PNG
    box.controls["head"].value = 20
    assert "Cannot compute this" in box.result.value
    box.controls["heads"].value = 24
    assert "ALiBi: 24 heads" in box.result.value
    box.controls["head_dim"].value = 4
    assert "RoPE (head dim 4" in box.result.value
