"""The deployment cost model: will a model fit on a device, how fast will it decode, at what energy and cost.

Lesson 12's planner, as pure arithmetic on catalogue cards (`slmcourse.catalogue.ModelCard`, resolved once
and passed down). `slmcourse.bench` measures on this machine; this module *estimates* for another one, and
every figure it gives rests on the stated assumptions below.

One decode step of `batch` sequences that each hold `context` tokens in their KV cache costs

    memory time  = (weight bytes + batch x KV-cache bytes) / (efficiency x bandwidth)
    compute time = batch x (2 x parameters + attention FLOPs) / (compute efficiency x peak FLOP/s)
    step time    = max(memory time, compute time) + framework overhead
    overhead     = layers x kernel launches per layer x seconds per launch   (per step, not per sequence)

- the weights are read once per step, whatever the batch; each sequence reads its own KV cache, at the
  cache's own precision (`memory.KV_PRECISIONS`), so a long context costs bandwidth too;
- attention FLOPs per token: 4 x (query heads x head size) x cached tokens per layer (scores Q.K and the
  weighted sum of V, a multiply and an add each), sliding-window layers counting only their window;
- an *eager* framework (PyTorch/transformers, one Python-dispatched kernel per operation) pays a fixed
  overhead per layer per step that the smallest models cannot hide; a *compiled* runtime (llama.cpp,
  CUDA graphs, ONNX Runtime) fuses operations and replays them cheaply. See FRAMEWORKS for the figures
  and where they come from;
- energy per token = power x step time / batch: a batch shares the power drawn during a step. Power is a
  stated range (TARGETS), so every energy figure here is labelled "estimated (assumed ... W)";
  `bench.measure_energy` *measures* it where the machine exposes a meter.
Weights are priced at the real bits per weight of `memory.FORMATS` (GGUF Q4_0 4.5, Q4_K_M 5.43, ...);
bare "int8"/"int4" remain only as labelled ideal lower bounds.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from . import checks
from .catalogue import ModelCard, get
from .checks import positive_number, whole_number
from .errors import CourseError
from .memory import FORMATS, GiB, KV_PRECISIONS, PRECISIONS, fit, model_kv_cache_bytes

# ---------------------------------------------------------------------------------------------
# Validation
# ---------------------------------------------------------------------------------------------


def _whole(name: str, value, minimum: int) -> int:
    return whole_number(name, value, minimum)


_positive = positive_number  # (name, value, allow_zero=False): the package's shared checker


def _share(name: str, value) -> float:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0 < value <= 1:
        raise CourseError(f"{name} must be a share in (0, 1], got {value!r}")
    return float(value)


def _format(precision: str) -> float:
    return PRECISIONS[checks.one_of("precision", precision, PRECISIONS)]


def default_kv_precision(precision: str) -> str:
    """The KV cache's precision when none is given: fp32 beside fp32 weights, else fp16 (as memory.fit)."""
    _format(precision)
    return "fp32" if precision == "fp32" else "fp16"


def _kv_format(kv_precision: str) -> float:
    if kv_precision not in KV_PRECISIONS:
        raise CourseError(f"unknown KV-cache precision {kv_precision!r}; choose one of {', '.join(KV_PRECISIONS)}")
    return KV_PRECISIONS[kv_precision]


def _decoder(card: ModelCard) -> ModelCard:
    card = get(card)  # a catalogue name is accepted; anything else is a CourseError naming the closest models
    if card.family == "encoder":
        raise CourseError(f"{card.name} is an encoder: it does not generate tokens one by one, so a decode speed "
                          f"makes no sense for it (time one forward pass with bench.time_it instead)")
    return card


# ---------------------------------------------------------------------------------------------
# Arithmetic per token: FLOPs and bytes
# ---------------------------------------------------------------------------------------------


def flops_per_token(n_params: int) -> int:
    """Weight FLOPs of one token's forward pass: 2 x parameters (a multiply and an add per weight)."""
    _whole("the number of parameters", n_params, 0)
    return 2 * n_params


def cached_tokens_per_layer(card: ModelCard, context: int) -> list[int]:
    """Tokens each decoder layer attends over with `context` tokens generated so far (windows respected)."""
    _whole("context", context, 0)
    card = get(card)
    window = card.sliding_window
    if card.era:  # lesson 7's 2024-26 block: recurrent layers attend over nothing (their state is fixed)
        from .newest import RECURRENT_LAYERS, SLIDING_LAYERS, layer_kinds

        return [0 if kind in RECURRENT_LAYERS else min(context, window) if kind in SLIDING_LAYERS and window
                else context for kind in layer_kinds(card)]
    layer_types = card.config.get("layer_types")
    if layer_types:
        return [min(context, window) if t == "sliding_attention" else context for t in layer_types]
    return [min(context, window) if window else context] * card.decoder_layers


def attention_flops_per_token(card: ModelCard, context: int) -> int:
    """FLOPs of attention for one new token over `context` cached ones: 4 x heads x head size per cached
    token and layer (Q.K scores and the weighted sum of V, 2 FLOPs per multiply-add each)."""
    card = get(card)
    width = card.heads * card.head_dim
    return int(sum(4 * width * tokens for tokens in cached_tokens_per_layer(_decoder(card), context)))


def decode_flops_per_token(card: ModelCard, context: int) -> int:
    """Weights plus attention: FLOPs to decode one token with `context` tokens in the cache. A mixture of
    experts multiplies by its *active* parameters only: each token runs through k of its experts."""
    card = get(card)
    return flops_per_token(card.active_params or card.params) + attention_flops_per_token(card, context)


def experts_of(card: ModelCard) -> tuple[int, int]:
    """(routed experts per MoE layer, experts each token is routed to) from the card's config; (0, 0) if dense."""
    card = get(card)
    if not card.is_moe:
        return 0, 0
    cfg = card.config
    experts = cfg.get("num_experts") or cfg.get("n_routed_experts") or cfg.get("num_local_experts") or 0
    k = cfg.get("num_experts_per_tok") or 0
    if not experts or not k or k >= experts:
        raise CourseError(f"{card.name}: its config names no routed experts and top-k (got {experts} and {k})")
    return int(experts), int(k)


def weights_read_per_step(card: ModelCard, batch: int = 1) -> int:
    """Parameters whose weights one decode step of `batch` sequences reads from memory.

    A dense model reads every weight. A mixture of experts *holds* every weight (memory follows the total,
    card.params) but a step reads only the experts its tokens were routed to: at batch 1 exactly the active
    parameters (card.active_params). With `batch` sequences each MoE layer reads the union of their choices:
    1 - (1 - k/E)^batch of its routed experts on average if tokens pick experts independently and evenly.
    """
    _whole("batch", batch, 1)
    card = get(card)
    if not card.is_moe:
        return card.params
    experts, k = experts_of(card)
    share = k / experts
    routed = (card.params - card.active_params) / (1 - share)   # all routed-expert weights
    always = card.params - routed                               # attention, norms, embeddings, shared experts
    return round(always + routed * (1 - (1 - share) ** batch))


def bytes_per_token(n_params: int, precision: str = "fp32") -> int:
    """Bytes of weights read by one decode step: every weight once, at its format's real size."""
    _whole("the number of parameters", n_params, 0)
    return int(n_params * _format(precision))


def kv_bytes_read(card: ModelCard, context: int, kv_precision: str = "fp16") -> int:
    """Bytes of KV cache one sequence reads per decode step: its whole cache of `context` tokens."""
    _whole("context", context, 0)
    return model_kv_cache_bytes(_decoder(card), context, 1, _kv_format(kv_precision)) if context else 0


def bytes_per_step(card: ModelCard, precision: str, context: int, batch: int = 1,
                   kv_precision: str | None = None) -> int:
    """Bytes read by one decode step of `batch` sequences: the weights once, plus every sequence's cache.
    For a mixture of experts only the weights the step's tokens use are read (`weights_read_per_step`:
    the active parameters at batch 1), although memory must hold them all."""
    _whole("batch", batch, 1)
    card = get(card)
    kv = kv_precision or default_kv_precision(precision)
    return bytes_per_token(weights_read_per_step(card, batch), precision) + batch * kv_bytes_read(card, context, kv)


def bandwidth_bound_tokens_per_s(n_bytes: float, bandwidth_bytes_per_s: float) -> float:
    """Upper limit of batch-1 decode speed: memory bandwidth / bytes read per token."""
    _positive("the bytes read per token", n_bytes)
    _positive("the memory bandwidth", bandwidth_bytes_per_s)
    return bandwidth_bytes_per_s / n_bytes


# ---------------------------------------------------------------------------------------------
# Energy and cost
# ---------------------------------------------------------------------------------------------


def energy_per_token(seconds_per_token: float, watts: float) -> float:
    """Joules per token = time per token x power drawn."""
    return _positive("the time per token", seconds_per_token) * _positive("the power", watts)


def energy_range(seconds_per_token: float, watts_low: float, watts_high: float) -> tuple[float, float]:
    """(low, high) joules per token for a power figure known only as a range."""
    if watts_low > watts_high:
        raise CourseError(f"the low power figure ({watts_low} W) is above the high one ({watts_high} W)")
    return energy_per_token(seconds_per_token, watts_low), energy_per_token(seconds_per_token, watts_high)


def cost_per_million_tokens(tokens_per_s: float, price_per_hour: float) -> float:
    """Price of a million generated tokens on a machine rented at `price_per_hour`, busy all the time."""
    _positive("the throughput", tokens_per_s)
    _positive("the price per hour", price_per_hour, allow_zero=True)
    return price_per_hour / (tokens_per_s * 3600) * 1e6


# ---------------------------------------------------------------------------------------------
# Targets and frameworks: the stated assumptions
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """A deployment target: a device of slmcourse.memory.DEVICES plus speed, power and price figures."""

    device: str                 # key into memory.DEVICES (memory size and usable share)
    bandwidth_gb_s: float       # peak memory bandwidth, vendor figure (GB/s = 1e9 bytes/s)
    watts: tuple[float, float]  # power drawn while generating: a (low, high) range, stated
    price_per_hour: float | None  # rough on-demand cloud price in USD; None for a device you own
    source: str
    peak_tflops: float = 1.0    # peak 16-bit tensor-core FLOP/s on GPUs, fp32 SIMD FLOP/s on CPUs (10^12)
    compute_source: str = ""

    @property
    def is_gpu(self) -> bool:
        return self.price_per_hour is not None

    @property
    def power_label(self) -> str:
        return f"estimated (assumed {self.watts[0]:g}-{self.watts[1]:g} W)"


# Bandwidths and GPU FLOP/s are the vendors' published peak figures; CPU FLOP/s are cores x clock x
# SIMD FLOPs per cycle; power ranges and prices are the course's stated assumptions (whole-device draw
# under load for the small devices, board power for the GPUs; typical 2025 on-demand prices).
TARGETS = {t.device: t for t in (
    Target("Raspberry Pi 5 (8 GB)", 17.1, (5.0, 10.0), None,
           "LPDDR4X-4267, 32-bit bus (raspberrypi.com product brief); board 5-10 W under load",
           0.15, "4 Cortex-A76 cores x 2.4 GHz x 16 fp32 FLOPs per cycle (2 x 128-bit FMA)"),
    Target("Phone (8 GB RAM)", 68.3, (3.0, 8.0), None,
           "LPDDR5X-8533, 64-bit bus, a 2024 flagship; 3-8 W while computing",
           0.4, "8 Arm cores of a 2024 flagship, ~0.4 TFLOP/s fp32 on the CPU (an estimate)"),
    Target("Laptop (16 GB RAM)", 89.6, (15.0, 45.0), None,
           "dual-channel DDR5-5600; 15-45 W package power under load",
           0.9, "8 cores x 3.5 GHz x 32 fp32 FLOPs per cycle (AVX2, 2 x 256-bit FMA)"),
    Target("NVIDIA T4 (16 GB)", 320.0, (40.0, 70.0), 0.35,
           "nvidia.com T4 datasheet: 320 GB/s, 70 W; ~0.35 USD/h on demand",
           65.0, "nvidia.com T4 datasheet: 65 TFLOP/s fp16 tensor cores"),
    Target("NVIDIA RTX 4090 (24 GB)", 1008.0, (200.0, 450.0), 0.70,
           "nvidia.com: 1008 GB/s, 450 W; ~0.70 USD/h on GPU marketplaces",
           165.2, "NVIDIA Ada whitepaper: 165.2 TFLOP/s fp16 tensor, fp32 accumulate, dense"),
    Target("NVIDIA A100 (80 GB)", 2039.0, (250.0, 400.0), 3.00,
           "nvidia.com A100 80GB SXM: 2039 GB/s, 400 W; ~3 USD/h on demand",
           312.0, "nvidia.com A100 datasheet: 312 TFLOP/s bf16 tensor cores, dense"),
)}


def get_target(name: str | Target) -> Target:
    """A Target by device name (a Target is passed through)."""
    if isinstance(name, Target):
        return name
    return TARGETS[checks.one_of("target", name, TARGETS)]


@dataclass(frozen=True)
class Framework:
    """How a runtime executes a decode step: kernel launches per layer and the cost of each (an assumption)."""

    name: str
    launches_per_layer: int
    seconds_per_launch: float
    source: str

    def overhead_s(self, layers: int) -> float:
        """Fixed cost of one decode step, whatever the batch: layers x launches x seconds per launch."""
        return layers * self.launches_per_layer * self.seconds_per_launch


FRAMEWORKS = {f.name: f for f in (
    Framework("eager", 36, 10e-6,
              "36 kernel-launching operations per layer: counted with torch.profiler in one decode step of "
              "transformers' Llama (SmolLM2-135M, 1,100 of them over 30 layers; bench.count_decode_ops "
              "recounts it). 10 us per launch (Python dispatch + launch): an assumption, a lower bound - at most "
              "11 us fits SmolLM2's idle-CPU decode in course/DEPLOYMENT.md, and the PyTorch blog's eager Llama-7B "
              "on an A100 (25.5 tokens/s, 'heavily CPU overhead bound'; 'Accelerating Generative AI with PyTorch "
              "II: GPT, Fast', 2023) implies ~25 us"),
    Framework("compiled", 12, 2e-6,
              "a fused graph (llama.cpp, CUDA graphs via torch.compile, ONNX Runtime): about a dozen kernels "
              "per layer replayed at ~2 us each - an assumption"),
)}


def get_framework(name: str | Framework) -> Framework:
    """A Framework by name (a Framework is passed through)."""
    if isinstance(name, Framework):
        return name
    name = checks.one_of("framework", name, FRAMEWORKS)
    return FRAMEWORKS[name]


DEFAULT_EFFICIENCY = 0.7          # share of the bandwidth a decode step's matrix-vector products reach
DEFAULT_COMPUTE_EFFICIENCY = 0.5  # share of the peak FLOP/s reached by the batched products


# ---------------------------------------------------------------------------------------------
# One decode step
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Step:
    """The estimated cost of one decode step of `batch` sequences (seconds, bytes, FLOPs)."""

    batch: int
    context: int
    bytes_read: int
    flops: float
    memory_s: float
    compute_s: float
    overhead_s: float

    @property
    def seconds(self) -> float:
        return max(self.memory_s, self.compute_s) + self.overhead_s

    @property
    def tokens_per_s(self) -> float:
        """Decode speed each sequence sees (tokens per second per sequence)."""
        return 1.0 / self.seconds

    @property
    def throughput(self) -> float:
        """New tokens per second over the whole batch."""
        return self.batch / self.seconds

    @property
    def bound(self) -> str:
        """What dominates the step: 'memory', 'compute' or 'overhead'."""
        parts = {"memory": self.memory_s, "compute": self.compute_s, "overhead": self.overhead_s}
        return max(parts, key=parts.get)


def decode_step(card: ModelCard, tgt: Target, precision: str = "bf16", context: int = 2048, batch: int = 1,
                kv_precision: str | None = None, runtime: str | Framework = "eager",
                efficiency: float = DEFAULT_EFFICIENCY,
                compute_efficiency: float = DEFAULT_COMPUTE_EFFICIENCY) -> Step:
    """Estimate one decode step of `card` on `tgt` (see the module docstring for the formula)."""
    _decoder(card)
    tgt = get_target(tgt)
    _whole("batch", batch, 1)
    _share("efficiency", efficiency)
    _share("compute efficiency", compute_efficiency)
    n_bytes = bytes_per_step(card, precision, context, batch, kv_precision)
    flops = batch * decode_flops_per_token(card, context)
    return Step(batch=batch, context=context, bytes_read=n_bytes, flops=flops,
                memory_s=n_bytes / (efficiency * tgt.bandwidth_gb_s * 1e9),
                compute_s=flops / (compute_efficiency * tgt.peak_tflops * 1e12),
                overhead_s=get_framework(runtime).overhead_s(card.decoder_layers))


# ---------------------------------------------------------------------------------------------
# A speed measured here, as a yardstick
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Measured:
    """A decode speed measured on this machine (batch 1), the yardstick the planner scales from.

    `efficiency` is the share of the measured bandwidth that the memory traffic reached once the
    framework's per-step overhead is taken out of the measured step time.
    """

    model: str | ModelCard
    precision: str
    decode_tokens_per_s: float
    bandwidth_bytes_per_s: float   # measured here with bench.measure_bandwidth
    context: int = 64              # tokens in the cache while it was measured (a short prompt)
    runtime: str = "eager"
    kv_precision: str | None = None

    @property
    def card(self) -> ModelCard:
        return get(self.model)

    @property
    def step_s(self) -> float:
        return 1.0 / _positive("the measured decode speed", self.decode_tokens_per_s)

    @property
    def overhead_s(self) -> float:
        return get_framework(self.runtime).overhead_s(self.card.decoder_layers)

    @property
    def efficiency(self) -> float:
        """Share of the bandwidth bound reached by the memory part of a step, clipped to [0.05, 1]."""
        n_bytes = bytes_per_step(self.card, self.precision, self.context, 1, self.kv_precision)
        memory_s = max(self.step_s - self.overhead_s, 1e-12)
        return min(1.0, max(0.05, n_bytes / self.bandwidth_bytes_per_s / memory_s))


# ---------------------------------------------------------------------------------------------
# The plan
# ---------------------------------------------------------------------------------------------


@dataclass
class Plan:
    model: str
    precision: str
    target: str
    fits: bool
    memory_needed: int
    memory_usable: int
    tokens_per_s: float            # per sequence
    ms_per_token: float            # per sequence (the latency a user feels)
    latency_budget_ms: float
    joules_per_token: tuple[float, float]
    cost_per_million: float | None
    notes: list[str] = field(default_factory=list)
    batch: int = 1
    context: int = 2048
    kv_precision: str = "fp16"
    runtime: str = "eager"
    step: Step | None = None
    energy_label: str = "estimated"

    @property
    def throughput(self) -> float:
        return self.batch * self.tokens_per_s

    @property
    def meets_budget(self) -> bool:
        return self.fits and self.ms_per_token <= self.latency_budget_ms

    @property
    def verdict(self) -> str:
        if not self.fits:
            return "does not fit in memory"
        return "fits and meets the latency budget" if self.meets_budget else "fits but is too slow for the budget"

    def summary(self) -> str:
        text = (f"{self.model} at {self.precision} on {self.target} ({self.runtime}, batch {self.batch}, "
                f"{self.context:,} tokens of context): {self.verdict}. Memory "
                f"{self.memory_needed / GiB:.2f} of {self.memory_usable / GiB:.2f} GiB usable; expected "
                f"~{self.tokens_per_s:.0f} tokens per second per sequence ({self.ms_per_token:.1f} ms per token, "
                f"budget {self.latency_budget_ms:g} ms)")
        if self.step is not None:
            text += f", limited by {self.step.bound}"
        text += (f"; energy {self.joules_per_token[0]:.3f}-{self.joules_per_token[1]:.3f} J per token, "
                 f"{self.energy_label}")
        if self.cost_per_million is not None:
            text += f"; ~{self.cost_per_million:.2f} USD per million tokens at batch {self.batch}"
        return text


def plan_deployment(model: str | ModelCard, target: str | Target, precision: str = "bf16",
                    latency_budget_ms: float = 100.0, measured: Measured | None = None,
                    efficiency: float | None = None, context: int = 2048, batch: int = 1,
                    kv_precision: str | None = None, runtime: str | Framework = "eager") -> Plan:
    """What fits on `target` and how fast it should decode.

    Memory comes from slmcourse.memory.fit (weights + KV cache + activations for `context` tokens and
    `batch` sequences). Speed comes from `decode_step`, with `efficiency` (the share of the bandwidth the
    memory traffic reaches) given, taken from a speed measured here (`measured.efficiency`), or 0.7.
    A context longer than the model handles is clamped to its maximum.
    """
    card = _decoder(get(model))
    tgt = get_target(target)
    _format(precision)
    _positive("the latency budget (ms per token)", latency_budget_ms)
    if efficiency is None:
        efficiency = measured.efficiency if measured is not None else DEFAULT_EFFICIENCY
    _share("efficiency", efficiency)
    _whole("context", context, 1)
    kv = kv_precision or default_kv_precision(precision)
    _kv_format(kv)
    ctx = min(context, card.context_length)
    report = fit(card, precision=precision, context=ctx, batch=_whole("batch", batch, 1), device=tgt.device,
                 kv_precision=kv)
    fw = get_framework(runtime)
    step = decode_step(card, tgt, precision, ctx, batch, kv, fw, efficiency)
    notes = list(report.notes)
    if ctx < context:
        notes.append(f"context clamped to the model's maximum of {card.context_length:,} tokens")
    if step.bound == "overhead":
        notes.append(f"the {fw.name} framework's per-step overhead ({step.overhead_s * 1e3:.1f} ms: "
                     f"{card.decoder_layers} layers x {fw.launches_per_layer} launches) dominates, not the "
                     f"bandwidth: a compiled runtime or a larger batch helps more than a faster device")
    if FORMATS[precision].ideal:
        notes.append(f"{precision} is an ideal lower bound (bare bits); real {precision[-1]}-bit files read more")
    if precision not in ("fp32", "bf16", "fp16"):
        notes.append("the speed assumes kernels that read the weights at that size (llama.cpp, ONNX Runtime, "
                     "torchao); simulated quantization saves no time")
    seconds = step.seconds
    return Plan(model=card.name, precision=precision, target=tgt.device, fits=report.fits,
                memory_needed=report.total, memory_usable=report.available, tokens_per_s=step.tokens_per_s,
                ms_per_token=seconds * 1e3, latency_budget_ms=float(latency_budget_ms),
                joules_per_token=energy_range(seconds / batch, *tgt.watts),
                cost_per_million=(cost_per_million_tokens(step.throughput, tgt.price_per_hour)
                                  if tgt.price_per_hour is not None else None),
                notes=notes, batch=batch, context=ctx, kv_precision=kv, runtime=fw.name, step=step,
                energy_label=tgt.power_label)


def plan_all(target: str | Target, precision: str = "bf16", latency_budget_ms: float = 100.0,
             measured: Measured | None = None, efficiency: float | None = None, context: int = 2048,
             batch: int = 1, kv_precision: str | None = None, runtime: str | Framework = "eager") -> list[Plan]:
    """`plan_deployment` for every generating model of the catalogue, fastest first."""
    from .catalogue import all_cards

    plans = [plan_deployment(c, target, precision, latency_budget_ms, measured, efficiency, context, batch,
                             kv_precision, runtime)
             for c in all_cards() if c.family != "encoder"]
    return sorted(plans, key=lambda p: (not p.meets_budget, not p.fits, -p.tokens_per_s))


def plan_targets(model: str | ModelCard, precision: str = "bf16", latency_budget_ms: float = 100.0,
                 efficiency: float | None = None, measured: Measured | None = None, context: int = 2048,
                 batch: int = 1, kv_precision: str | None = None, runtime: str | Framework = "eager") -> list[Plan]:
    """`plan_deployment` of one model on every target, in the order of TARGETS."""
    card = get(model)
    return [plan_deployment(card, t, precision, latency_budget_ms, measured, efficiency, context, batch,
                            kv_precision, runtime) for t in TARGETS.values()]

from .checks import guard_public as _guard_public  # noqa: E402 - issue 20: typed arguments checked on entry

_guard_public(globals())
