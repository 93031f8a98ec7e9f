"""Measuring a deployment: timings with warm-up and repeats, generation latency, memory, energy, cost.

Lesson 10's toolkit. Everything a learner measures goes through a few honest habits:
- **warm up** first (the first call pays one-off costs: memory allocation, kernel selection, caches);
- **repeat** and report the **median** with its **spread** (min-max and interquartile range), never one run;
- on a GPU, **synchronize** before reading the clock (kernels run asynchronously);
- separate **time to first token** (prefill: the whole prompt in one forward pass) from **decode speed**
  (one token per forward pass, each re-reading all the weights).

The arithmetic helpers (FLOPs, energy, cost, bandwidth bound) are pure functions; the planner turns a
speed measured here into an estimate for another device through memory bandwidth, and says so.
"""
from __future__ import annotations

import math
import statistics
import threading
import time
import tracemalloc
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import torch

from .catalogue import ModelCard, get
from .errors import CourseError
from .memory import GiB, MiB, PRECISIONS, fit

# ---------------------------------------------------------------------------------------------
# Validation
# ---------------------------------------------------------------------------------------------


def _whole(name: str, value, minimum: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise CourseError(f"{name} must be a whole number of at least {minimum}, got {value!r}")
    return value


def _positive(name: str, value, allow_zero: bool = False) -> float:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or value < 0 or (value == 0 and not allow_zero):
        raise CourseError(f"{name} must be a number {'>= 0' if allow_zero else '> 0'}, got {value!r}")
    return float(value)


# ---------------------------------------------------------------------------------------------
# Timing
# ---------------------------------------------------------------------------------------------


def synchronize(device: str | torch.device | None = None) -> None:
    """Wait until queued GPU work is done (CUDA and MPS run asynchronously); nothing on a CPU."""
    kind = torch.device(device).type if device is not None else ("cuda" if torch.cuda.is_available() else "cpu")
    if kind == "cuda" and torch.cuda.is_available():
        torch.cuda.synchronize()
    elif kind == "mps" and hasattr(torch, "mps") and torch.backends.mps.is_available():
        torch.mps.synchronize()


@dataclass(frozen=True)
class Timing:
    """Repeated measurements of one thing, in seconds."""

    samples: tuple[float, ...]
    warmup: int = 0

    def __post_init__(self):
        if not self.samples:
            raise CourseError("a Timing needs at least one sample")

    @property
    def n(self) -> int:
        return len(self.samples)

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    @property
    def mean(self) -> float:
        return statistics.fmean(self.samples)

    @property
    def minimum(self) -> float:
        return min(self.samples)

    @property
    def maximum(self) -> float:
        return max(self.samples)

    @property
    def stdev(self) -> float:
        return statistics.stdev(self.samples) if self.n > 1 else 0.0

    @property
    def iqr(self) -> tuple[float, float]:
        """25th and 75th percentiles (linear interpolation, like numpy's default)."""
        return _percentile(self.samples, 25), _percentile(self.samples, 75)

    @property
    def spread(self) -> float:
        """Relative spread: (max - min) / median. 0.1 means runs differ by 10 % of the median."""
        return (self.maximum - self.minimum) / self.median if self.median > 0 else 0.0

    def summary(self, unit: str = "ms") -> str:
        scale = {"s": 1.0, "ms": 1e3, "us": 1e6}[unit]
        return (f"median {self.median * scale:.2f} {unit} (min {self.minimum * scale:.2f} {unit}, "
                f"max {self.maximum * scale:.2f} {unit}, {self.n} runs after {self.warmup} warm-up)")


def _percentile(values: Sequence[float], q: float) -> float:
    data = sorted(values)
    if len(data) == 1:
        return data[0]
    pos = (len(data) - 1) * q / 100
    lo, hi = math.floor(pos), math.ceil(pos)
    return data[lo] + (data[hi] - data[lo]) * (pos - lo)


def time_it(fn: Callable[[], Any], repeats: int = 5, warmup: int = 1, device: str | torch.device | None = None,
            clock: Callable[[], float] = time.perf_counter) -> Timing:
    """Call `fn()` `warmup` times untimed, then `repeats` times timed; return the Timing.

    `device` names where the work runs, so a GPU is synchronized before each clock reading.
    """
    if not callable(fn):
        raise CourseError("time_it needs a function to call (for example: lambda: model(ids))")
    _whole("repeats", repeats, 1)
    _whole("warmup", warmup, 0)
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(repeats):
        synchronize(device)
        start = clock()
        fn()
        synchronize(device)
        samples.append(clock() - start)
    return Timing(tuple(samples), warmup)


# ---------------------------------------------------------------------------------------------
# Generation latency: time to first token and decode speed
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GenerationTiming:
    """One greedy generation, timed token by token (seconds)."""

    prompt_tokens: int
    batch: int
    first_token_s: float            # prefill: the prompt in one pass -> first new token
    step_s: tuple[float, ...]       # each further token: one decode step with the KV cache
    new_ids: tuple[tuple[int, ...], ...] = ()

    @property
    def new_tokens(self) -> int:
        return 1 + len(self.step_s)

    @property
    def decode_s_per_token(self) -> float:
        return statistics.median(self.step_s) if self.step_s else float("nan")

    @property
    def decode_tokens_per_s(self) -> float:
        """Tokens per second per sequence while decoding (median step)."""
        return 1.0 / self.decode_s_per_token if self.step_s else float("nan")

    @property
    def total_s(self) -> float:
        return self.first_token_s + sum(self.step_s)

    @property
    def throughput_tokens_per_s(self) -> float:
        """New tokens per second summed over the batch, first token included."""
        return self.batch * self.new_tokens / self.total_s


def _model_device(model: torch.nn.Module) -> torch.device:
    try:
        return next(model.parameters()).device
    except StopIteration:
        return torch.device("cpu")


@torch.no_grad()
def time_generation(model: torch.nn.Module, input_ids: torch.Tensor, new_tokens: int = 16,
                    attention_mask: torch.Tensor | None = None) -> GenerationTiming:
    """Greedy-generate `new_tokens` tokens with a KV cache, timing the prefill and every decode step.

    `input_ids` is (batch, prompt length); every row is decoded in parallel, no stop token, so each
    run does exactly the same work. Works with any transformers causal LM.
    """
    if not isinstance(input_ids, torch.Tensor) or input_ids.dim() != 2 or input_ids.shape[1] < 1:
        raise CourseError("input_ids must be a (batch, prompt length) tensor of token ids with at least one token")
    _whole("new_tokens", new_tokens, 1)
    device = _model_device(model)
    ids = input_ids.to(device)
    mask = torch.ones_like(ids) if attention_mask is None else attention_mask.to(device)
    synchronize(device)
    start = time.perf_counter()
    out = model(input_ids=ids, attention_mask=mask, use_cache=True)
    token = out.logits[:, -1].argmax(-1, keepdim=True)
    synchronize(device)
    first = time.perf_counter() - start
    past, chosen, steps = out.past_key_values, [token], []
    for _ in range(new_tokens - 1):
        mask = torch.cat([mask, torch.ones_like(token)], dim=1)
        start = time.perf_counter()
        out = model(input_ids=token, attention_mask=mask, past_key_values=past, use_cache=True)
        token = out.logits[:, -1].argmax(-1, keepdim=True)
        synchronize(device)
        steps.append(time.perf_counter() - start)
        past = out.past_key_values
        chosen.append(token)
    new = torch.cat(chosen, dim=1).cpu().tolist()
    return GenerationTiming(prompt_tokens=ids.shape[1], batch=ids.shape[0], first_token_s=first,
                            step_s=tuple(steps), new_ids=tuple(tuple(r) for r in new))


@dataclass(frozen=True)
class LatencyReport:
    """Repeated generations: medians and spreads of time to first token and decode speed."""

    runs: tuple[GenerationTiming, ...]
    warmup: int

    @property
    def first_token(self) -> Timing:
        return Timing(tuple(r.first_token_s for r in self.runs), self.warmup)

    @property
    def decode_step(self) -> Timing:
        return Timing(tuple(s for r in self.runs for s in r.step_s) or (float("nan"),), self.warmup)

    @property
    def ttft_s(self) -> float:
        return self.first_token.median

    @property
    def decode_tokens_per_s(self) -> float:
        return 1.0 / self.decode_step.median

    @property
    def throughput_tokens_per_s(self) -> float:
        return statistics.median(r.throughput_tokens_per_s for r in self.runs)

    @property
    def new_ids(self):
        return self.runs[-1].new_ids

    def as_dict(self) -> dict:
        lo, hi = self.decode_step.minimum, self.decode_step.maximum
        return {"ttft_ms": round(self.ttft_s * 1e3, 2), "decode_tokens_per_s": round(self.decode_tokens_per_s, 2),
                "decode_ms_per_token": round(self.decode_step.median * 1e3, 2),
                "decode_ms_per_token_min_max": [round(lo * 1e3, 2), round(hi * 1e3, 2)],
                "throughput_tokens_per_s": round(self.throughput_tokens_per_s, 2),
                "batch": self.runs[0].batch, "prompt_tokens": self.runs[0].prompt_tokens,
                "new_tokens": self.runs[0].new_tokens, "repeats": len(self.runs)}


def measure_latency(model: torch.nn.Module, input_ids: torch.Tensor, new_tokens: int = 16, repeats: int = 3,
                    warmup: int = 1, attention_mask: torch.Tensor | None = None) -> LatencyReport:
    """`time_generation` after `warmup` short untimed runs, `repeats` times."""
    _whole("repeats", repeats, 1)
    _whole("warmup", warmup, 0)
    for _ in range(warmup):
        time_generation(model, input_ids, new_tokens=min(new_tokens, 2), attention_mask=attention_mask)
    runs = tuple(time_generation(model, input_ids, new_tokens, attention_mask) for _ in range(repeats))
    return LatencyReport(runs, warmup)


# ---------------------------------------------------------------------------------------------
# Memory
# ---------------------------------------------------------------------------------------------


def process_memory_bytes() -> int:
    """The process's resident set size (RSS) now: what the operating system has given it."""
    import psutil

    return psutil.Process().memory_info().rss


@dataclass(frozen=True)
class PeakMemory:
    """Memory while a function ran (bytes). Each tool sees something different:

    - rss_*: the whole process as the OS sees it (psutil, sampled every few ms, so a very short peak
      can be missed); rss_peak_increase is the peak above the level before the call;
    - python_peak: allocations made through Python's allocator (tracemalloc) - pure-Python objects;
      PyTorch tensors use their own allocator and do NOT show up here;
    - cuda_peak: the CUDA caching allocator's peak (torch.cuda.max_memory_allocated), None without CUDA.
    """

    rss_before: int
    rss_peak: int
    python_peak: int
    cuda_peak: int | None
    seconds: float
    result: Any = field(default=None, repr=False, compare=False)

    @property
    def rss_peak_increase(self) -> int:
        return max(0, self.rss_peak - self.rss_before)

    def summary(self) -> str:
        text = (f"process peak ~{self.rss_peak / MiB:.0f} MiB (~{self.rss_peak_increase / MiB:.0f} MiB above the "
                f"start), Python objects ~{self.python_peak / MiB:.1f} MiB")
        if self.cuda_peak is not None:
            text += f", CUDA ~{self.cuda_peak / MiB:.0f} MiB"
        return text


def peak_memory(fn: Callable[[], Any], interval: float = 0.002, trace_python: bool = True) -> PeakMemory:
    """Run `fn()` once and record its peak memory three ways (see PeakMemory). Returns it with `.result`."""
    if not callable(fn):
        raise CourseError("peak_memory needs a function to call (for example: lambda: model(ids))")
    _positive("interval", interval)
    cuda = torch.cuda.is_available()
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    before = process_memory_bytes()
    peak = [before]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], process_memory_bytes())
            done.wait(interval)

    sampler = threading.Thread(target=sample, daemon=True)
    was_tracing = tracemalloc.is_tracing()
    if trace_python and not was_tracing:
        tracemalloc.start()
    if tracemalloc.is_tracing():
        tracemalloc.reset_peak()
    sampler.start()
    start = time.perf_counter()
    try:
        result = fn()
        if cuda:
            torch.cuda.synchronize()
    finally:
        seconds = time.perf_counter() - start
        done.set()
        sampler.join()
        python_peak = tracemalloc.get_traced_memory()[1] if tracemalloc.is_tracing() else 0
        if trace_python and not was_tracing:
            tracemalloc.stop()
    peak[0] = max(peak[0], process_memory_bytes())
    return PeakMemory(rss_before=before, rss_peak=peak[0], python_peak=python_peak,
                      cuda_peak=torch.cuda.max_memory_allocated() if cuda else None, seconds=seconds, result=result)


# ---------------------------------------------------------------------------------------------
# Arithmetic: FLOPs, bandwidth bound, energy, cost
# ---------------------------------------------------------------------------------------------


def flops_per_token(n_params: int) -> int:
    """Forward-pass FLOPs per generated token, to first order: 2 x parameters (one multiply and one add
    per weight; attention over the context adds 2 x layers x context x width more, small for short contexts)."""
    _whole("the number of parameters", n_params, 0)
    return 2 * n_params


def bytes_per_token(n_params: int, precision: str = "fp32") -> int:
    """Bytes of weights read from memory for one decode step at batch 1: every weight once."""
    _whole("the number of parameters", n_params, 0)
    if precision not in PRECISIONS:
        raise CourseError(f"unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)}")
    return int(n_params * PRECISIONS[precision])


def bandwidth_bound_tokens_per_s(n_bytes: float, bandwidth_bytes_per_s: float) -> float:
    """Upper limit of batch-1 decode speed: memory bandwidth / bytes read per token."""
    _positive("the bytes read per token", n_bytes)
    _positive("the memory bandwidth", bandwidth_bytes_per_s)
    return bandwidth_bytes_per_s / n_bytes


def measure_bandwidth(mib: int = 256, repeats: int = 5, device: str | torch.device = "cpu") -> float:
    """Memory bandwidth reached by a large tensor copy here, in bytes/s (read + write counted).

    A copy of `mib` MiB reads and writes that much; the median of `repeats` runs is used. This is the
    bandwidth a simple kernel reaches, a realistic ceiling for reading weights (the vendor's peak figure
    is higher).
    """
    _whole("mib", mib, 1)
    src = torch.ones(mib * MiB // 4, dtype=torch.float32, device=device)
    dst = torch.empty_like(src)
    timing = time_it(lambda: dst.copy_(src), repeats=repeats, warmup=1, device=device)
    del src, dst
    return 2 * mib * MiB / timing.median


def energy_per_token(seconds_per_token: float, watts: float) -> float:
    """Joules per token = time per token x power drawn (a power figure you state, not one measured)."""
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
# Targets and the deployment planner
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """A deployment target: a device of slmcourse.memory.DEVICES plus speed, power and price figures."""

    device: str                 # key into memory.DEVICES (memory size and usable share)
    bandwidth_gb_s: float       # peak memory bandwidth, vendor figure (GB/s = 1e9 bytes/s)
    watts: tuple[float, float]  # power drawn while generating: a (low, high) range, stated
    price_per_hour: float | None  # rough on-demand cloud price in USD; None for a device you own
    source: str


# Bandwidths are the vendors' published peak figures; power ranges and prices are the course's stated
# assumptions (whole-device draw under load for the small devices, board power for the GPUs; prices
# are typical 2025 on-demand list prices - check your provider).
TARGETS = {t.device: t for t in (
    Target("Raspberry Pi 5 (8 GB)", 17.1, (5.0, 10.0), None,
           "LPDDR4X-4267, 32-bit bus (raspberrypi.com product brief); board 5-10 W under load"),
    Target("Phone (8 GB RAM)", 68.3, (3.0, 8.0), None,
           "LPDDR5X-8533, 64-bit bus, a 2024 flagship; 3-8 W while computing"),
    Target("Laptop (16 GB RAM)", 89.6, (15.0, 45.0), None,
           "dual-channel DDR5-5600; 15-45 W package power under load"),
    Target("NVIDIA T4 (16 GB)", 320.0, (40.0, 70.0), 0.35,
           "nvidia.com T4 datasheet: 320 GB/s, 70 W; ~0.35 USD/h on demand"),
    Target("NVIDIA RTX 4090 (24 GB)", 1008.0, (200.0, 450.0), 0.70,
           "nvidia.com: 1008 GB/s, 450 W; ~0.70 USD/h on GPU marketplaces"),
    Target("NVIDIA A100 (80 GB)", 2039.0, (250.0, 400.0), 3.00,
           "nvidia.com A100 80GB SXM: 2039 GB/s, 400 W; ~3 USD/h on demand"),
)}


@dataclass(frozen=True)
class Measured:
    """A decode speed measured on this machine, the yardstick the planner scales from."""

    model: str
    precision: str
    decode_tokens_per_s: float
    bandwidth_bytes_per_s: float   # measured here with measure_bandwidth

    @property
    def efficiency(self) -> float:
        """Share of the bandwidth bound reached here (1.0 = reading the weights is the only cost)."""
        n = get(self.model).params
        bound = bandwidth_bound_tokens_per_s(bytes_per_token(n, self.precision), self.bandwidth_bytes_per_s)
        return min(1.0, self.decode_tokens_per_s / bound)


@dataclass
class Plan:
    model: str
    precision: str
    target: str
    fits: bool
    memory_needed: int
    memory_usable: int
    tokens_per_s: float
    ms_per_token: float
    latency_budget_ms: float
    joules_per_token: tuple[float, float]
    cost_per_million: float | None
    notes: list[str] = field(default_factory=list)

    @property
    def meets_budget(self) -> bool:
        return self.fits and self.ms_per_token <= self.latency_budget_ms

    @property
    def verdict(self) -> str:
        if not self.fits:
            return "does not fit in memory"
        return "fits and meets the latency budget" if self.meets_budget else "fits but is too slow for the budget"

    def summary(self) -> str:
        text = (f"{self.model} at {self.precision} on {self.target}: {self.verdict}. Memory "
                f"{self.memory_needed / GiB:.2f} of {self.memory_usable / GiB:.2f} GiB usable; expected "
                f"~{self.tokens_per_s:.0f} tokens per second ({self.ms_per_token:.1f} ms per token, budget "
                f"{self.latency_budget_ms:g} ms); energy {self.joules_per_token[0]:.3f}-"
                f"{self.joules_per_token[1]:.3f} J per token")
        if self.cost_per_million is not None:
            text += f"; ~{self.cost_per_million:.2f} USD per million tokens at batch 1"
        return text


def plan_deployment(model: str | ModelCard, target: str, precision: str = "bf16", latency_budget_ms: float = 100.0,
                    measured: Measured | None = None, efficiency: float | None = None,
                    context: int = 2048) -> Plan:
    """What fits on `target` and how fast it should decode, from a speed measured on this machine.

    Memory comes from slmcourse.memory.fit (weights + KV cache + activations for `context` tokens).
    Speed is a first-order estimate: batch-1 decode reads every weight once per token, so
        tokens/s = efficiency x bandwidth(target) / bytes per token,
    with `efficiency` the share of the bandwidth bound measured here (`measured.efficiency`) or given
    directly (default 0.5 when neither is given). It ignores compute limits, the KV cache reads and
    the framework's per-token overhead, which dominate for the smallest models on fast GPUs.
    """
    card = get(model)
    if target not in TARGETS:
        raise CourseError(f"unknown target {target!r}; choose one of: {', '.join(TARGETS)}")
    _positive("the latency budget (ms per token)", latency_budget_ms)
    if card.family == "encoder":
        raise CourseError(f"{card.name} is an encoder: it does not generate tokens one by one, so a decode speed "
                          f"makes no sense for it (time one forward pass with time_it instead)")
    if efficiency is None:
        efficiency = measured.efficiency if measured is not None else 0.5
    if not isinstance(efficiency, (int, float)) or not 0 < efficiency <= 1:
        raise CourseError(f"efficiency must be a share in (0, 1], got {efficiency!r}")
    tgt = TARGETS[target]
    report = fit(card, precision=precision, context=min(context, card.context_length), device=target)
    tokens_per_s = efficiency * bandwidth_bound_tokens_per_s(bytes_per_token(card.params, precision),
                                                             tgt.bandwidth_gb_s * 1e9)
    seconds = 1.0 / tokens_per_s
    notes = list(report.notes)
    if card.params < 500_000_000 and tgt.price_per_hour is not None:
        notes.append("a model this small is limited by per-token overhead (kernel launches, Python) on a GPU, "
                     "not by bandwidth: expect less than this estimate at batch 1")
    if precision in ("int8", "int4"):
        notes.append("the speed assumes integer kernels that read the weights at that size (llama.cpp, "
                     "ONNX Runtime, torchao); simulated quantization saves no time")
    return Plan(model=card.name, precision=precision, target=target, fits=report.fits,
                memory_needed=report.total, memory_usable=report.available, tokens_per_s=tokens_per_s,
                ms_per_token=seconds * 1e3, latency_budget_ms=float(latency_budget_ms),
                joules_per_token=energy_range(seconds, *tgt.watts),
                cost_per_million=(cost_per_million_tokens(tokens_per_s, tgt.price_per_hour)
                                  if tgt.price_per_hour is not None else None),
                notes=notes)


def plan_all(target: str, precision: str = "bf16", latency_budget_ms: float = 100.0,
             measured: Measured | None = None, efficiency: float | None = None, context: int = 2048) -> list[Plan]:
    """`plan_deployment` for every generating model of the catalogue, fastest first."""
    from .catalogue import all_cards

    plans = [plan_deployment(c, target, precision, latency_budget_ms, measured, efficiency, context)
             for c in all_cards() if c.family != "encoder"]
    return sorted(plans, key=lambda p: (not p.meets_budget, not p.fits, -p.tokens_per_s))
