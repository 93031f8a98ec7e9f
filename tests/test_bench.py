"""slmcourse.bench: statistics, timing with warm-up, generation timing, memory, launches, energy; the planner's
re-exported names and its explorer (the cost model itself: tests/test_planner.py)."""
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
    assert B.bytes_per_token(1000, "Q4_0") == 562          # 4.5 real bits per weight
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


def test_count_decode_ops_matches_the_planners_launch_figure(tiny):
    """The eager framework's launches per layer (planner.FRAMEWORKS) is a count, not a guess: recount it."""
    from slmcourse.planner import FRAMEWORKS

    from transformers import AutoModelForCausalLM

    config = tiny.config.__class__.from_dict(tiny.config.to_dict())
    config.num_hidden_layers = tiny.config.num_hidden_layers + 2
    deeper = AutoModelForCausalLM.from_config(config).eval()
    ids = torch.ones(1, 6, dtype=torch.long)
    per_layer = (B.count_decode_ops(deeper, ids) - B.count_decode_ops(tiny, ids)) / 2   # fixed ops cancel
    assert abs(per_layer - FRAMEWORKS["eager"].launches_per_layer) <= 3, per_layer


def _fake_rapl(root, energy_uj, max_uj=10**9):
    d = root / "intel-rapl:0"
    d.mkdir(parents=True, exist_ok=True)
    (d / "name").write_text("package-0\n")
    (d / "energy_uj").write_text(f"{energy_uj}\n")
    (d / "max_energy_range_uj").write_text(f"{max_uj}\n")
    sub = root / "intel-rapl:0:0"          # a sub-domain: not counted twice
    sub.mkdir(exist_ok=True)
    (sub / "energy_uj").write_text("5\n")
    return d


def test_measure_energy_reads_rapl(tmp_path):
    d = _fake_rapl(tmp_path, 1_000_000)
    assert B.rapl_domains(str(tmp_path)) == [str(d)]
    assert B.energy_meters(str(tmp_path))[0] == "RAPL package-0"
    ticks = iter([0.0, 2.0])

    def work():
        (d / "energy_uj").write_text("7000000\n")   # 6 J used while "working"
        return "done"

    reading = B.measure_energy(work, assumed_watts=99, root=str(tmp_path), clock=lambda: next(ticks))
    assert reading.measured and reading.result == "done"
    assert reading.joules == pytest.approx(6.0) and reading.watts == pytest.approx(3.0)
    assert reading.label == "measured (RAPL package-0)" and reading.per(3) == pytest.approx(2.0)


def test_measure_energy_corrects_a_wrapped_counter(tmp_path):
    d = _fake_rapl(tmp_path, 9_000_000, max_uj=10_000_000)
    reading = B.measure_energy(lambda: (d / "energy_uj").write_text("1000000\n"), 10, root=str(tmp_path))
    assert reading.joules == pytest.approx(2.0)


def test_measure_energy_falls_back_to_a_labelled_estimate(tmp_path):
    ticks = iter([0.0, 0.5])
    reading = B.measure_energy(lambda: None, assumed_watts=20, root=str(tmp_path / "none"),
                               clock=lambda: next(ticks))
    if reading.measured:                      # a machine with an NVIDIA GPU and pynvml measures instead
        assert reading.label.startswith("measured (NVML")
        return
    assert reading.joules == pytest.approx(10.0) and reading.label == "estimated (assumed 20 W)"
    with pytest.raises(CourseError, match="power"):
        B.measure_energy(lambda: None, assumed_watts=0)
    with pytest.raises(CourseError, match="function"):
        B.measure_energy(42, assumed_watts=10)


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


def test_weight_bytes_read_counts_a_lookup_only_embedding_as_one_row():
    """The bandwidth bound's numerator: a tied embedding is read whole (the LM head multiplies by it); an
    embedding that is only looked up (untied, as after dynamic int8 of the head) costs one row per token."""
    from torch import nn

    from slmcourse import quant as Q

    class Tiny(nn.Module):
        def __init__(self, tied):
            super().__init__()
            self.embed, self.head = nn.Embedding(100, 8), nn.Linear(8, 100, bias=False)
            if tied:
                self.head.weight = self.embed.weight

    tied, untied = Tiny(True), Tiny(False)
    assert B.weight_bytes_read(tied) == Q.model_size_bytes(tied) == 100 * 8 * 4
    assert Q.model_size_bytes(untied) == 2 * 100 * 8 * 4
    assert B.weight_bytes_read(untied) == 100 * 8 * 4 + 8 * 4            # the head whole, one embedding row
    quantized = Q.dynamic_int8(Tiny(True))                               # the head becomes int8, the table stays
    assert B.weight_bytes_read(quantized) == Q.model_size_bytes(quantized) - 100 * 8 * 4 + 8 * 4
