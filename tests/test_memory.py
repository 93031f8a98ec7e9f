"""The memory calculators behind the "will it fit?" explorer."""
import pytest

from slmcourse import catalogue
from slmcourse.attention import kv_cache_bytes
from slmcourse.errors import CourseError
from slmcourse.memory import DEVICES, GiB, fit, model_kv_cache_bytes, training_bytes, weights_bytes


def test_weights_bytes_at_each_precision():
    n = 1_000_000
    assert [weights_bytes(n, p) for p in ("fp32", "bf16", "fp16", "int8", "int4")] == [4e6, 2e6, 2e6, 1e6, 5e5]
    assert training_bytes(n) == 16 * n
    with pytest.raises(CourseError, match="unknown precision"):
        weights_bytes(n, "fp8")
    with pytest.raises(CourseError):
        weights_bytes(-1)


def test_kv_cache_formula():
    assert kv_cache_bytes(30, 3, 64, 8192, 1, 2) == 2 * 30 * 3 * 64 * 8192 * 2
    assert kv_cache_bytes(1, 1, 1, 0) == 0
    with pytest.raises(CourseError, match="layers"):
        kv_cache_bytes(-1, 1, 1, 1)
    with pytest.raises(CourseError):
        kv_cache_bytes(1, 1, 1, 1.5)


def test_model_kv_cache_knows_windows_families_and_gqa():
    smol = catalogue.get("smollm2-135m")
    assert model_kv_cache_bytes("smollm2-135m", 1000) == kv_cache_bytes(30, 3, 64, 1000)
    assert model_kv_cache_bytes("all-minilm-l6-v2", 256) == 0
    # Gemma 3: 15 sliding layers keep 512 tokens, 3 global layers keep all 4096
    assert model_kv_cache_bytes("gemma-3-270m", 4096) == kv_cache_bytes(15, 1, 256, 512) + kv_cache_bytes(3, 1, 256, 4096)
    # Mistral's rolling buffer stops growing at its window
    assert model_kv_cache_bytes("mistral-7b", 8000) == model_kv_cache_bytes("mistral-7b", 4096)
    assert smol.attention == "GQA"


def test_fit_reports_and_refuses_nonsense():
    report = fit("smollm2-135m", "fp32", 2048, 1, "mybinder.org session")
    assert report.fits and report.total == report.weights + report.kv_cache + report.activations
    assert "fits" in report.summary()
    assert not fit("mistral-7b", "fp16", 4096, 1, "Raspberry Pi 5 (8 GB)").fits
    assert fit("mistral-7b", "int4", 4096, 1, "Laptop (16 GB RAM)").fits
    with pytest.raises(CourseError, match="at most 8,192 tokens"):
        fit("smollm2-135m", "fp16", 10_000)
    with pytest.raises(CourseError, match="batch"):
        fit("smollm2-135m", batch=0)
    with pytest.raises(CourseError, match="unknown device"):
        fit("smollm2-135m", device="toaster")
    with pytest.raises(CourseError, match="not in the course catalogue"):
        fit("gpt-5")
    assert all(d.usable_bytes <= d.memory_gib * GiB for d in DEVICES.values())


def test_format_bits_match_ggml_block_layouts_and_the_bundled_file():
    """The real-bit formats are computed from ggml's block layouts and measured on the bundled file."""
    from gguf import GGML_QUANT_SIZES, GGMLQuantizationType

    from slmcourse import gguf_inspect
    from slmcourse.memory import FORMATS

    for name in ("Q8_0", "Q4_1", "Q4_0"):
        block, size = GGML_QUANT_SIZES[GGMLQuantizationType[name]]
        assert FORMATS[name].bits_per_weight == 8 * size / block
    block, size = GGML_QUANT_SIZES[GGMLQuantizationType["Q5_K"]]
    assert FORMATS["Q5_K_M"].bits_per_weight == 8 * size / block
    table = gguf_inspect.tensor_table(gguf_inspect.bundled_gguf("gemma-3-270m"))
    blocks = [r for r in table if r["name"].startswith("blk.") and r["type"] != "F32"]
    measured = 8 * sum(r["bytes"] for r in blocks) / sum(r["weights"] for r in blocks)
    assert round(measured, 2) == FORMATS["Q4_K_M"].bits_per_weight
    assert FORMATS["int4"].ideal and not FORMATS["Q4_0"].ideal


def test_mistral_7b_at_a_real_4bit_format_does_not_fit_an_8gb_phone():
    from slmcourse.memory import fit

    assert not fit("Mistral-7B", "Q4_0", context=2048, device="Phone (8 GB RAM)").fits
    assert not fit("Mistral-7B", "Q4_K_M", context=2048, device="Phone (8 GB RAM)").fits
    report = fit("Mistral-7B", "int4", context=2048, device="Phone (8 GB RAM)")
    assert any("ideal lower bound" in n for n in report.notes)
