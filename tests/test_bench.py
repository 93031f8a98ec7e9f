"""slmcourse.bench: statistics, timing with warm-up, generation timing, memory, arithmetic, planner."""
import statistics

import numpy as np
import pytest
import torch

from slmcourse import CourseError, scaled_down
from slmcourse import bench as B
from slmcourse.memory import DEVICES


def test_timing_statistics_match_numpy():
    samples = (0.3, 0.1, 0.4, 0.15, 0.9)
    t = B.Timing(samples, warmup=2)
    assert t.median == pytest.approx(np.median(samples))
    assert t.mean == pytest.approx(np.mean(samples))
    assert t.stdev == pytest.approx(np.std(samples, ddof=1))
    assert t.iqr == pytest.approx((np.percentile(samples, 25), np.percentile(samples, 75)))
    assert t.spread == pytest.approx((0.9 - 0.1) / 0.3)
    assert "5 runs after 2 warm-up" in t.summary()
    with pytest.raises(CourseError):
        B.Timing(())


def test_time_it_warms_up_then_repeats_with_a_fake_clock():
    calls = []
    ticks = iter(range(100))
    t = B.time_it(lambda: calls.append(1), repeats=4, warmup=3, clock=lambda: float(next(ticks)))
    assert len(calls) == 7          # 3 warm-up + 4 timed
    assert t.samples == (1.0, 1.0, 1.0, 1.0) and t.warmup == 3
    with pytest.raises(CourseError, match="repeats"):
        B.time_it(lambda: None, repeats=0)
    with pytest.raises(CourseError, match="function"):
        B.time_it(42)


@pytest.fixture(scope="module")
def tiny():
    return scaled_down("smollm2-135m")   # SCALED-DOWN random-weight Llama


def test_time_generation_matches_greedy_generate(tiny):
    torch.manual_seed(0)
    ids = torch.randint(0, tiny.config.vocab_size, (2, 5))
    timing = B.time_generation(tiny, ids, new_tokens=6)
    ref = tiny.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=6, min_new_tokens=6,
                        do_sample=False, pad_token_id=0)
    assert [list(r) for r in timing.new_ids] == ref[:, 5:].tolist()
    assert timing.new_tokens == 6 and len(timing.step_s) == 5 and timing.batch == 2
    assert timing.total_s == pytest.approx(timing.first_token_s + sum(timing.step_s))
    assert timing.throughput_tokens_per_s == pytest.approx(12 / timing.total_s)
    assert timing.decode_tokens_per_s == pytest.approx(1 / statistics.median(timing.step_s))


def test_measure_latency_reports(tiny):
    ids = torch.ones(1, 4, dtype=torch.long)
    report = B.measure_latency(tiny, ids, new_tokens=4, repeats=3, warmup=1)
    assert len(report.runs) == 3 and report.first_token.n == 3 and report.decode_step.n == 9
    d = report.as_dict()
    assert d["repeats"] == 3 and d["new_tokens"] == 4 and d["decode_tokens_per_s"] > 0
    with pytest.raises(CourseError, match="input_ids"):
        B.time_generation(tiny, torch.ones(4, dtype=torch.long))


def test_peak_memory_sees_python_and_process_allocations():
    def allocate():
        block = bytearray(20 * 1024 * 1024)       # through Python's allocator: tracemalloc sees it
        t = torch.ones(40 * 1024 * 1024 // 4)     # through torch's allocator: only RSS sees it
        return len(block) + t.numel()

    pm = B.peak_memory(allocate)
    assert pm.result == 20 * 1024 * 1024 + 10 * 1024 * 1024
    assert pm.python_peak >= 20 * 1024 * 1024
    assert pm.python_peak < 30 * 1024 * 1024      # the tensor's 40 MiB are invisible to tracemalloc
    assert pm.rss_peak >= pm.rss_before
    assert pm.cuda_peak is None or pm.cuda_peak >= 0
    assert "MiB" in pm.summary()


def test_arithmetic():
    assert B.flops_per_token(134_515_008) == 269_030_016
    assert B.bytes_per_token(1000, "bf16") == 2000 and B.bytes_per_token(1000, "int4") == 500
    assert B.bandwidth_bound_tokens_per_s(2e8, 1e10) == pytest.approx(50.0)
    assert B.energy_per_token(0.05, 30) == pytest.approx(1.5)
    assert B.energy_range(0.1, 10, 20) == pytest.approx((1.0, 2.0))
    # 100 tokens/s for an hour = 360,000 tokens for 1 USD -> 2.78 USD per million
    assert B.cost_per_million_tokens(100, 1.0) == pytest.approx(1e6 / 360_000)
    for bad in (lambda: B.energy_per_token(-1, 10), lambda: B.energy_range(1, 20, 10),
                lambda: B.cost_per_million_tokens(0, 1), lambda: B.bytes_per_token(10, "fp8"),
                lambda: B.flops_per_token(1.5)):
        with pytest.raises(CourseError):
            bad()


def test_bandwidth_measurement_is_plausible():
    bw = B.measure_bandwidth(mib=16, repeats=2)
    assert 1e8 < bw < 1e13


def test_targets_are_known_devices():
    assert set(B.TARGETS) <= set(DEVICES)


def test_plan_deployment():
    plan = B.plan_deployment("smollm2-135m", "Raspberry Pi 5 (8 GB)", precision="bf16", latency_budget_ms=100,
                             efficiency=0.5)
    expected = 0.5 * 17.1e9 / (134_515_008 * 2)
    assert plan.tokens_per_s == pytest.approx(expected)
    assert plan.ms_per_token == pytest.approx(1000 / expected)
    assert plan.fits and plan.meets_budget and plan.cost_per_million is None
    assert plan.joules_per_token == pytest.approx((5 / expected, 10 / expected))
    big = B.plan_deployment("mistral-7b", "Raspberry Pi 5 (8 GB)", precision="fp32")
    assert not big.fits and big.verdict == "does not fit in memory"
    slow = B.plan_deployment("phi-2", "Laptop (16 GB RAM)", precision="bf16", latency_budget_ms=10)
    assert slow.fits and not slow.meets_budget
    gpu = B.plan_deployment("tinyllama-1.1b", "NVIDIA T4 (16 GB)", precision="fp16", efficiency=1.0)
    assert gpu.cost_per_million == pytest.approx(B.cost_per_million_tokens(gpu.tokens_per_s, 0.35))
    assert "per-token overhead" not in " ".join(gpu.notes)
    assert "USD per million" in gpu.summary()


def test_plan_uses_measured_efficiency():
    n = 134_515_008
    measured = B.Measured("smollm2-135m", "fp32", decode_tokens_per_s=10.0, bandwidth_bytes_per_s=10e9)
    assert measured.efficiency == pytest.approx(10.0 / (10e9 / (4 * n)))
    plan = B.plan_deployment("smollm2-135m", "Laptop (16 GB RAM)", precision="fp32", measured=measured)
    assert plan.tokens_per_s == pytest.approx(measured.efficiency * 89.6e9 / (4 * n))


def test_plan_errors():
    with pytest.raises(CourseError, match="unknown target"):
        B.plan_deployment("smollm2-135m", "a toaster")
    with pytest.raises(CourseError, match="encoder"):
        B.plan_deployment("bert-tiny", "Laptop (16 GB RAM)")
    with pytest.raises(CourseError, match="efficiency"):
        B.plan_deployment("smollm2-135m", "Laptop (16 GB RAM)", efficiency=1.5)
    with pytest.raises(CourseError, match="latency"):
        B.plan_deployment("smollm2-135m", "Laptop (16 GB RAM)", latency_budget_ms=0)


def test_plan_all_ranks_models_meeting_the_budget_first():
    plans = B.plan_all("Phone (8 GB RAM)", precision="int4", latency_budget_ms=50, efficiency=0.5)
    assert all(p.model not in ("BERT-Tiny", "DistilBERT", "ALBERT-Base", "all-MiniLM-L6-v2") for p in plans)
    flags = [p.meets_budget for p in plans]
    assert flags == sorted(flags, reverse=True)
    assert any(flags) and not all(flags)


# --- the deployment planner explorer, driven headless ------------------------------------------
def test_planner_explorer_updates_and_reports_nonsense():
    from slmcourse.explorers.deployment import plan_targets, planner_explorer

    box = planner_explorer(model="smollm2-135m", target="Raspberry Pi 5 (8 GB)", precision="bf16",
                           latency_budget_ms=100, efficiency=0.5)
    first = box.result.value
    plan = B.plan_deployment("smollm2-135m", "Raspberry Pi 5 (8 GB)", "bf16", 100, efficiency=0.5)
    assert "Fits and meets the latency budget" in first and f"{plan.ms_per_token:.1f} ms per token" in first
    assert box.figure.value[:8] == b"\x89PNG\r\n\x1a\n"
    box.controls["model"].value = "mistral-7b"
    box.controls["precision"].value = "fp32"
    assert "Does not fit in memory" in box.result.value
    box.controls["model"].value = "tinyllama-1.1b"
    box.controls["target"].value = "NVIDIA A100 (80 GB)"
    assert "USD per million" in box.result.value
    # a context the model was never trained for is clamped, a model that cannot decode is refused
    box.update()
    with pytest.raises(CourseError):
        B.plan_deployment("albert-base", "Laptop (16 GB RAM)")
    plans = plan_targets("smollm2-135m", "int8", 50, efficiency=0.4)
    assert [p.target for p in plans] == list(B.TARGETS)
    assert plans[0].tokens_per_s < plans[-1].tokens_per_s


def test_planner_explorer_shows_a_message_for_bad_efficiency(monkeypatch):
    from slmcourse.explorers.deployment import planner_explorer

    box = planner_explorer()
    box.controls["efficiency"].max = 2.0
    box.controls["efficiency"].value = 1.5
    assert "Cannot compute this" in box.result.value and "efficiency" in box.result.value
    assert box.figure.value == b""
