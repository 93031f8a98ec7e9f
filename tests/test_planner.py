"""slmcourse.planner: the deployment cost model, checked against numbers worked out by hand."""
import pytest

from slmcourse import CourseError, catalogue
from slmcourse import bench as B
from slmcourse import planner as P
from slmcourse.memory import DEVICES, FORMATS, KV_PRECISIONS

SMOL = catalogue.get("smollm2-135m")      # 134,515,008 params, 30 layers, 9 heads, 3 KV heads, head size 64
GEMMA = catalogue.get("gemma-3-270m")     # 18 layers, 5 of 6 sliding (window 512), 1 KV head of 256
A100 = P.TARGETS["NVIDIA A100 (80 GB)"]


def test_targets_are_known_devices_with_sources():
    assert set(P.TARGETS) <= set(DEVICES)
    for t in P.TARGETS.values():
        assert t.bandwidth_gb_s > 0 and t.peak_tflops > 0 and t.source and t.compute_source
        assert t.watts[0] <= t.watts[1]
        assert t.power_label == f"estimated (assumed {t.watts[0]:g}-{t.watts[1]:g} W)"
    assert all(f.source for f in P.FRAMEWORKS.values())


def test_bench_keeps_the_old_names():
    for name in ("TARGETS", "Measured", "Plan", "plan_deployment", "plan_all", "bytes_per_token", "flops_per_token",
                 "bandwidth_bound_tokens_per_s", "energy_per_token", "energy_range", "cost_per_million_tokens"):
        assert getattr(B, name) is getattr(P, name)


def test_bytes_include_the_kv_cache_at_its_own_precision():
    weights = int(SMOL.params * FORMATS["bf16"].bytes_per_weight)
    kv_per_token = 2 * 30 * 3 * 64 * 2                      # K and V, layers, KV heads, head size, fp16
    assert P.bytes_per_token(SMOL.params, "bf16") == weights
    assert P.kv_bytes_read(SMOL, 1000, "fp16") == 1000 * kv_per_token
    assert P.kv_bytes_read(SMOL, 1000, "Q8_0") == int(1000 * kv_per_token * KV_PRECISIONS["Q8_0"] / 2)
    assert P.bytes_per_step(SMOL, "bf16", 1000) == weights + 1000 * kv_per_token
    assert P.bytes_per_step(SMOL, "bf16", 1000, batch=4) == weights + 4 * 1000 * kv_per_token
    assert P.bytes_per_step(SMOL, "fp32", 10) == int(SMOL.params * 4) + 10 * kv_per_token * 2   # fp32 cache
    # real formats: Q4_K_M at its measured 5.43 bits, not 4
    assert P.bytes_per_token(SMOL.params, "Q4_K_M") == int(SMOL.params * 5.43 / 8)
    assert P.bytes_per_token(SMOL.params, "int4") == SMOL.params // 2


def test_attention_flops_respect_sliding_windows():
    assert P.attention_flops_per_token(SMOL, 1000) == 4 * 9 * 64 * 1000 * 30
    assert P.decode_flops_per_token(SMOL, 0) == 2 * SMOL.params
    # Gemma 3: 15 sliding layers see at most 512 tokens, 3 full layers see all 4000
    assert P.cached_tokens_per_layer(GEMMA, 4000).count(512) == 15
    assert P.attention_flops_per_token(GEMMA, 4000) == 4 * 4 * 256 * (15 * 512 + 3 * 4000)


def test_decode_step_by_hand():
    step = P.decode_step(SMOL, A100, "bf16", context=1000, batch=2, efficiency=0.5, compute_efficiency=0.25)
    n_bytes = int(SMOL.params * 2) + 2 * 1000 * 2 * 30 * 3 * 64 * 2
    flops = 2 * (2 * SMOL.params + 4 * 9 * 64 * 1000 * 30)
    assert step.bytes_read == n_bytes and step.flops == flops
    assert step.memory_s == pytest.approx(n_bytes / (0.5 * 2039e9))
    assert step.compute_s == pytest.approx(flops / (0.25 * 312e12))
    assert step.overhead_s == pytest.approx(30 * 36 * 10e-6)
    assert step.seconds == pytest.approx(max(step.memory_s, step.compute_s) + step.overhead_s)
    assert step.throughput == pytest.approx(2 / step.seconds)


def test_tiny_models_on_gpus_are_overhead_bound_not_thousands_of_tokens_per_s():
    eager = P.plan_deployment(SMOL, A100.device, "bf16")
    assert eager.step.bound == "overhead" and eager.tokens_per_s < 200
    assert any("overhead" in n for n in eager.notes)
    compiled = P.plan_deployment(SMOL, A100.device, "bf16", runtime="compiled")
    assert compiled.tokens_per_s > 5 * eager.tokens_per_s
    # a 7B model on a Raspberry Pi is limited by the bandwidth, whatever the framework
    pi = P.plan_deployment("mistral-7b", "Raspberry Pi 5 (8 GB)", "Q4_0")
    assert pi.step.bound == "memory" and pi.tokens_per_s < 5


def test_longer_context_is_slower():
    short = P.plan_deployment("mistral-7b", "NVIDIA T4 (16 GB)", "Q4_K_M", context=256)
    long = P.plan_deployment("mistral-7b", "NVIDIA T4 (16 GB)", "Q4_K_M", context=4096)
    assert long.tokens_per_s < short.tokens_per_s


def test_batch_shares_the_weights_and_the_energy():
    one = P.plan_deployment(SMOL, A100.device, "bf16", context=512)
    four = P.plan_deployment(SMOL, A100.device, "bf16", context=512, batch=4)
    assert four.ms_per_token >= one.ms_per_token                       # each sequence waits as long or longer
    assert four.throughput == pytest.approx(4 * four.tokens_per_s)
    assert 3 < four.throughput / one.throughput <= 4
    assert four.joules_per_token[0] == pytest.approx(four.step.seconds / 4 * A100.watts[0])
    assert four.joules_per_token[0] < one.joules_per_token[0] / 3
    assert four.cost_per_million == pytest.approx(P.cost_per_million_tokens(four.throughput, 3.0))
    assert four.energy_label == "estimated (assumed 250-400 W)" and "estimated (assumed" in four.summary()


def test_measured_efficiency_round_trip():
    here = P.Target("Laptop (16 GB RAM)", 40.0, (10.0, 30.0), None, "a test machine", 0.5, "test")
    step = P.decode_step(SMOL, here, "fp32", context=64, efficiency=0.4)
    assert step.bound == "memory"
    measured = P.Measured("smollm2-135m", "fp32", decode_tokens_per_s=1 / step.seconds, bandwidth_bytes_per_s=40e9)
    assert measured.efficiency == pytest.approx(0.4)
    plan = P.plan_deployment(SMOL, "Laptop (16 GB RAM)", "fp32", measured=measured, context=64)
    expected = P.decode_step(SMOL, P.TARGETS["Laptop (16 GB RAM)"], "fp32", context=64, efficiency=0.4)
    assert plan.tokens_per_s == pytest.approx(expected.tokens_per_s)


def test_plan_fits_and_verdicts():
    big = P.plan_deployment("mistral-7b", "Raspberry Pi 5 (8 GB)", precision="fp32")
    assert not big.fits and big.verdict == "does not fit in memory"
    slow = P.plan_deployment("phi-2", "Laptop (16 GB RAM)", precision="bf16", latency_budget_ms=10)
    assert slow.fits and not slow.meets_budget
    ideal = P.plan_deployment(SMOL, "Laptop (16 GB RAM)", precision="int4")
    assert any("ideal lower bound" in n for n in ideal.notes)
    clamped = P.plan_deployment("opt-125m", "Laptop (16 GB RAM)", context=100_000)
    assert clamped.context == catalogue.get("opt-125m").context_length


def test_plan_errors():
    with pytest.raises(CourseError, match="unknown target"):
        P.plan_deployment(SMOL, "a toaster")
    with pytest.raises(CourseError, match="encoder"):
        P.plan_deployment("bert-tiny", "Laptop (16 GB RAM)")
    with pytest.raises(CourseError, match="efficiency"):
        P.plan_deployment(SMOL, "Laptop (16 GB RAM)", efficiency=1.5)
    with pytest.raises(CourseError, match="latency"):
        P.plan_deployment(SMOL, "Laptop (16 GB RAM)", latency_budget_ms=0)
    with pytest.raises(CourseError, match="batch"):
        P.plan_deployment(SMOL, "Laptop (16 GB RAM)", batch=0)
    with pytest.raises(CourseError, match="KV-cache precision"):
        P.plan_deployment(SMOL, "Laptop (16 GB RAM)", kv_precision="fp8")
    with pytest.raises(CourseError, match="framework"):
        P.plan_deployment(SMOL, "Laptop (16 GB RAM)", runtime="magic")
    with pytest.raises(CourseError, match="precision"):
        P.plan_deployment(SMOL, "Laptop (16 GB RAM)", precision="fp8")


def test_arithmetic():
    assert P.flops_per_token(1000) == 2000
    assert P.bandwidth_bound_tokens_per_s(1e9, 50e9) == pytest.approx(50.0)
    assert P.energy_per_token(0.02, 15) == pytest.approx(0.3)
    assert P.energy_range(0.1, 5, 10) == pytest.approx((0.5, 1.0))
    assert P.cost_per_million_tokens(100, 3.6) == pytest.approx(10.0)
    with pytest.raises(CourseError):
        P.energy_range(0.1, 10, 5)
    with pytest.raises(CourseError):
        P.bandwidth_bound_tokens_per_s(0, 1e9)


def test_plan_all_and_plan_targets():
    plans = P.plan_all("Phone (8 GB RAM)", precision="Q4_0", latency_budget_ms=50)
    assert all(catalogue.get(p.model).family != "encoder" for p in plans)
    flags = [p.meets_budget for p in plans]
    assert flags == sorted(flags, reverse=True) and any(flags) and not all(flags)
    per_target = P.plan_targets(SMOL, "bf16")
    assert [p.target for p in per_target] == list(P.TARGETS)


def test_moe_memory_follows_the_total_and_batch_1_decode_bytes_follow_the_active():
    from slmcourse import catalogue
    from slmcourse.memory import FORMATS, fit
    planner = P

    for key in ("olmoe-1b-7b", "deepseek-v2-lite"):
        card = catalogue.get(key)
        bits = FORMATS["bf16"].bits_per_weight / 8
        kv = planner.kv_bytes_read(card, 2048, "fp16")
        # batch 1: the weights read are the active parameters, not the total
        assert planner.weights_read_per_step(card, 1) == card.active_params
        assert planner.bytes_per_step(card, "bf16", 2048) == int(card.active_params * bits) + kv
        # memory still holds every expert
        assert fit(card, precision="bf16", context=2048, device="Laptop (16 GB RAM)").weights >= card.params * bits * 0.999
        # a bigger batch reads more experts (the union of their choices), never more than all of them
        reads = [planner.weights_read_per_step(card, b) for b in (1, 2, 8, 64, 4096)]
        assert reads == sorted(reads) and reads[0] < reads[1] and reads[-1] <= card.params
        assert reads[-1] > 0.999 * card.params
        # the compute follows the active parameters too
        assert planner.decode_flops_per_token(card, 1) - planner.attention_flops_per_token(card, 1) == 2 * card.active_params
    # OLMoE by hand: 64 experts, 8 per token: at batch 2 each layer reads 1 - (56/64)^2 of its routed experts
    card = catalogue.get("olmoe-1b-7b")
    routed = (card.params - card.active_params) / (1 - 8 / 64)
    assert planner.weights_read_per_step(card, 2) == round(card.params - routed + routed * (1 - (56 / 64) ** 2))
    # a dense model reads all of its weights whatever the batch
    dense = catalogue.get("smollm2-135m")
    assert planner.weights_read_per_step(dense, 1) == planner.weights_read_per_step(dense, 32) == dense.params
    assert planner.experts_of(dense) == (0, 0) and planner.experts_of(card) == (64, 8)
    # so a MoE decodes at batch 1 about as fast as a dense model of its active size, on the same device
    moe = planner.decode_step(card, A100, "bf16", context=512)
    assert moe.bytes_read < 0.25 * card.params * 2


def test_hybrids_attend_only_in_their_attention_layers():
    qwen = catalogue.get("qwen3.5-0.8b")                 # 18 gated DeltaNet + 6 attention layers
    tokens = P.cached_tokens_per_layer(qwen, 1000)
    assert len(tokens) == 24 and tokens.count(0) == 18 and tokens.count(1000) == 6
    falcon = P.cached_tokens_per_layer(catalogue.get("falcon-h1-0.5b"), 1000)
    assert falcon == [1000] * 36                         # attention beside Mamba-2 in every layer
    gemma = P.cached_tokens_per_layer(catalogue.get("gemma-3-1b"), 4096)
    assert gemma.count(512) == 22 and gemma.count(4096) == 4
