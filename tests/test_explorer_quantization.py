"""The quantization explorer, driven headless on a scaled-down SmolLM2 (random weights)."""
import pytest

from slmcourse import CourseError, scaled_down
from slmcourse.explorers.quantization import explore_quantization, layer_matrices, quantization_explorer
from slmcourse.quant import quantized_size_bytes, round_trip_error


@pytest.fixture(scope="module")
def small():
    # scaled down: hidden 96, MLP 128 -> rows of 96 and 128 weights
    return scaled_down("smollm2-135m", hidden_size=96, intermediate_size=128)


def test_layer_matrices(small):
    mats = layer_matrices(small, 0)
    assert set(mats) == {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
                         "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"}
    with pytest.raises(CourseError, match="no Linear layers"):
        layer_matrices(small, 99)


def test_explore_function_matches_the_helpers(small):
    w = layer_matrices(small, 0)["mlp.up_proj"]
    out = explore_quantization(w, 4, "zeropoint", 32, small)
    assert out["error"].rmse == round_trip_error(w, bits=4, scheme="zeropoint", group_size=32).rmse
    assert out["model_bytes"] == quantized_size_bytes(small, 4, "zeropoint", 32)
    assert out["matrix_fp32_bytes"] == w.numel() * 4


def test_controls_change_the_result(small):
    box = quantization_explorer(small, bits=4, scheme="absmax", group_size=32)
    first = box.result.value
    assert "4-bit absmax" in first and "4.500 bits per weight" in first and "MB" in first
    assert box.figure.value[:8] == b"\x89PNG\r\n\x1a\n"
    box.controls["bits"].value = 8
    assert "8-bit absmax" in box.result.value and box.result.value != first
    box.controls["scheme"].value = "zeropoint"
    assert "8-bit zeropoint" in box.result.value
    box.controls["group_size"].value = None
    assert "whole matrix" not in box.result.value  # the text reports sizes, not labels
    box.controls["matrix"].value = "mlp.down_proj"
    assert "96×128" in box.result.value


def test_nonsense_group_size_gives_a_message(small):
    box = quantization_explorer(small, group_size=32)
    box.controls["group_size"].value = 192           # rows of 96 weights
    assert "Cannot compute this" in box.result.value and "does not divide" in box.result.value
    assert box.figure.value == b""
    box.controls["group_size"].value = 16            # and it recovers
    assert "Cannot compute this" not in box.result.value


def test_unknown_matrix_is_refused(small):
    with pytest.raises(CourseError, match="no matrix"):
        quantization_explorer(small, matrix="mlp.nothing")
