"""Lesson 7's architecture explorer driven headless: the counts, the cache, and messages for nonsense."""
import pytest

import slmcourse
from slmcourse import CourseError
from slmcourse.explorers.newest import design_summary, newest_explorer, plot_design

PNG = b"\x89PNG\r\n\x1a\n"


def test_dense_gqa_design_counts_like_a_llama_model():
    # Llama-3.2-1B's shape: the summary's count is the real model's (no biases, tied embeddings)
    s = design_summary(hidden=2048, layers=16, vocab=128256, heads=32, kv_heads=8, ffn=8192)
    assert s.params == s.active_params == slmcourse.count_parameters(slmcourse.full_size("llama-3.2-1b"))
    assert s.kv_bytes_per_token == 2 * 16 * 8 * 64 * 2 and s.state_bytes == 0
    assert s.cache_bytes(1000) == 1000 * s.kv_bytes_per_token


def test_experts_latent_and_linear_layers():
    dense = design_summary()
    moe = design_summary(experts=8, top_k=2)
    assert moe.params - dense.params == 24 * 7 * 3 * 2048 * 6144 + 24 * 2048 * 8
    assert moe.active_params - dense.active_params == 24 * 3 * 2048 * 6144 + 24 * 2048 * 8
    mla = design_summary(latent_rank=256)
    assert mla.kv_bytes_per_token == 24 * (256 + 64) * 2
    hybrid = design_summary(linear_share=0.75)
    assert (hybrid.attention_layers, hybrid.linear_layers) == (6, 18)
    assert hybrid.state_bytes == 18 * 16 * 128 * 128 * 2
    assert hybrid.cache_bytes(10 ** 6) < dense.cache_bytes(10 ** 6) / 3
    assert "active per token" in moe.text() and "128K" in moe.text()


def test_nonsense_is_explained():
    with pytest.raises(CourseError, match="more than the 4 experts"):
        design_summary(experts=4, top_k=5)
    with pytest.raises(CourseError, match="evenly"):
        design_summary(heads=16, kv_heads=3)
    with pytest.raises(CourseError, match="between 0 and 1"):
        design_summary(linear_share=1.5)
    with pytest.raises(CourseError, match="latent_rank"):
        design_summary(latent_rank=-1)


def test_the_explorer_updates_and_shows_messages():
    box = newest_explorer()
    assert "parameters" in box.result.value and box.figure.value[:8] == PNG
    box.controls["experts"].value = 8
    box.controls["top_k"].value = 2
    assert "active per token" in box.result.value
    box.controls["top_k"].value = 9
    assert "Cannot compute" in box.result.value
    assert plot_design(design_summary()) is not None
