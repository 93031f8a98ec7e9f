"""Measuring a deployment: timings with warm-up and repeats, generation latency, memory, energy, cost.

Lesson 12's toolkit. Everything a learner measures goes through a few honest habits:
- **warm up** first (the first call pays one-off costs: memory allocation, kernel selection, caches);
- **repeat** and report the **median** with its **spread** (min-max and interquartile range), never one run;
- on a GPU, **synchronize** before reading the clock (kernels run asynchronously);
- separate **time to first token** (prefill: the whole prompt in one forward pass) from **decode speed**
  (one token per forward pass, each re-reading all the weights).

It measures: timers, generation latency, memory readings, the memory bandwidth reached here, the kernel
launches of a decode step, and energy (RAPL / NVML meters where readable, else a labelled estimate).
The cost model that turns these into estimates for another device lives in `slmcourse.planner`; its
names (plan_deployment, TARGETS, Measured, ...) stay importable from here.
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

from .checks import positive_number, whole_number
from .errors import CourseError
from .memory import MiB

# ---------------------------------------------------------------------------------------------
# Validation
# ---------------------------------------------------------------------------------------------


def _whole(name: str, value, minimum: int) -> int:
    return whole_number(name, value, minimum)


_positive = positive_number  # (name, value, allow_zero=False): the package's shared checker


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
# Bandwidth and framework overhead, measured here
# ---------------------------------------------------------------------------------------------


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


# Operations that only re-describe a tensor (no kernel runs) or that do nothing for same-dtype input.
VIEW_OPS = frozenset({"aten::view", "aten::reshape", "aten::transpose", "aten::slice", "aten::unsqueeze",
                      "aten::squeeze", "aten::expand", "aten::alias", "aten::as_strided", "aten::select",
                      "aten::t", "aten::split", "aten::detach", "aten::to", "aten::lift_fresh",
                      "aten::_unsafe_view", "aten::contiguous", "aten::is_nonzero", "aten::item",
                      "aten::_local_scalar_dense", "aten::size", "aten::resolve_conj", "aten::resolve_neg"})


class _quiet_stderr:
    """Silence file descriptor 2 for a moment: the profiler's C++ side logs timestamped start/stop lines there,
    which a notebook would show (and which differ on every run)."""

    def __enter__(self):
        import os
        import sys

        sys.stderr.flush()
        self.saved = os.dup(2)
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 2)
        os.close(devnull)
        return self

    def __exit__(self, *exc):
        import os
        import sys

        sys.stderr.flush()
        os.dup2(self.saved, 2)
        os.close(self.saved)
        return False


@torch.no_grad()
def count_decode_ops(model: torch.nn.Module, input_ids: torch.Tensor) -> int:
    """Operations that launch a kernel in ONE decode step (after a prefill of `input_ids`), counted with
    torch.profiler: top-level aten operations, views and no-op conversions left out.

    In eager PyTorch each of them is dispatched from Python (and, on a GPU, launched) one by one: the
    planner's per-step overhead (`planner.FRAMEWORKS["eager"]`) is this count x a cost per launch.
    """
    from torch.profiler import ProfilerActivity, profile

    device = _model_device(model)
    ids = input_ids.to(device)
    out = model(input_ids=ids, use_cache=True)
    token = out.logits[:, -1].argmax(-1, keepdim=True)
    mask = torch.ones(ids.shape[0], ids.shape[1] + 1, dtype=torch.long, device=device)
    with _quiet_stderr(), profile(activities=[ProfilerActivity.CPU]) as prof:
        model(input_ids=token, attention_mask=mask, past_key_values=out.past_key_values, use_cache=True)
    count = 0
    for event in prof.events():
        parent = event.cpu_parent
        top = parent is None or not parent.name.startswith("aten::")
        if top and event.name.startswith("aten::") and event.name not in VIEW_OPS:
            count += 1
    return count


# ---------------------------------------------------------------------------------------------
# Energy: measured where a meter is readable, else estimated from a stated power
# ---------------------------------------------------------------------------------------------

POWERCAP = "/sys/class/powercap"


def rapl_domains(root: str = POWERCAP) -> list[str]:
    """Readable top-level Intel/AMD RAPL package domains under Linux powercap (empty elsewhere, or when the
    counters are readable by root only, as on most systems since 2020)."""
    import os

    found = []
    try:
        names = sorted(os.listdir(root))
    except OSError:
        return []
    for name in names:
        # top-level package domains are "intel-rapl:N" (also used by AMD); "intel-rapl:N:M" are sub-domains
        if name.startswith("intel-rapl:") and name.count(":") == 1:
            path = os.path.join(root, name, "energy_uj")
            try:
                with open(path) as f:
                    int(f.read().strip())
            except (OSError, ValueError):
                continue
            found.append(os.path.join(root, name))
    return found


def _read_int(path: str) -> int:
    with open(path) as f:
        return int(f.read().strip())


def _nvml_handles():
    """NVML handles of the visible NVIDIA GPUs, or [] without pynvml / a driver."""
    try:
        import pynvml  # nvidia-ml-py; optional, not pinned by the course
    except ImportError:
        return None, []
    try:
        pynvml.nvmlInit()
        handles = [pynvml.nvmlDeviceGetHandleByIndex(i) for i in range(pynvml.nvmlDeviceGetCount())]
        for h in handles:
            pynvml.nvmlDeviceGetTotalEnergyConsumption(h)   # millijoules since the driver loaded (Volta+)
        return pynvml, handles
    except Exception:  # noqa: BLE001 - any NVML failure means "no meter here"
        return None, []


def energy_meters(root: str = POWERCAP) -> list[str]:
    """Names of the energy meters this machine lets us read: 'RAPL <domain>' and/or 'NVML GPU <i>'."""
    meters = [f"RAPL {_domain_name(d)}" for d in rapl_domains(root)]
    _, handles = _nvml_handles()
    meters += [f"NVML GPU {i}" for i in range(len(handles))]
    return meters


def _domain_name(path: str) -> str:
    import os

    try:
        with open(os.path.join(path, "name")) as f:
            return f.read().strip()
    except OSError:
        return os.path.basename(path)


@dataclass(frozen=True)
class EnergyReading:
    """Energy used while a function ran: measured by a meter, or estimated from a stated power."""

    joules: float
    seconds: float
    measured: bool
    source: str                     # the meters read, or the assumed power
    result: Any = field(default=None, repr=False, compare=False)

    @property
    def watts(self) -> float:
        return self.joules / self.seconds if self.seconds > 0 else float("nan")

    @property
    def label(self) -> str:
        """'measured (...)' or 'estimated (assumed N W)': every energy figure says which it is."""
        return f"measured ({self.source})" if self.measured else f"estimated ({self.source})"

    def per(self, tokens: int) -> float:
        """Joules per token for `tokens` tokens generated during the run."""
        return self.joules / _whole("tokens", tokens, 1)


def measure_energy(fn: Callable[[], Any], assumed_watts: float, root: str = POWERCAP,
                   clock: Callable[[], float] = time.perf_counter) -> EnergyReading:
    """Run `fn()` once and return the energy it used.

    Measured where the machine allows it: Linux RAPL package counters (/sys/class/powercap, CPU package and
    memory controller of the whole machine - other programs' work is counted too) and NVML's energy counter
    on NVIDIA GPUs (through pynvml, if installed). Otherwise estimated as seconds x `assumed_watts`, and
    labelled so. A counter that wraps around (RAPL's max_energy_range_uj) is corrected once.
    """
    import os

    if not callable(fn):
        raise CourseError("measure_energy needs a function to call (for example: lambda: model(ids))")
    _positive("the assumed power (W)", assumed_watts)
    domains = rapl_domains(root)
    nvml, handles = _nvml_handles()
    before = [_read_int(os.path.join(d, "energy_uj")) for d in domains]
    gpu_before = [nvml.nvmlDeviceGetTotalEnergyConsumption(h) for h in handles] if handles else []
    start = clock()
    result = fn()
    synchronize()
    seconds = clock() - start
    joules, meters = 0.0, []
    for d, b in zip(domains, before):
        now = _read_int(os.path.join(d, "energy_uj"))
        if now < b:                                   # the counter wrapped around
            try:
                now += _read_int(os.path.join(d, "max_energy_range_uj"))
            except (OSError, ValueError):
                continue
        joules += (now - b) / 1e6
        meters.append(f"RAPL {_domain_name(d)}")
    for i, (h, b) in enumerate(zip(handles, gpu_before)):
        joules += (nvml.nvmlDeviceGetTotalEnergyConsumption(h) - b) / 1e3
        meters.append(f"NVML GPU {i}")
    if meters:
        return EnergyReading(joules, seconds, True, ", ".join(meters), result)
    return EnergyReading(seconds * assumed_watts, seconds, False, f"assumed {assumed_watts:g} W", result)


# ---------------------------------------------------------------------------------------------
# Bytes one decode step reads (the numerator of the bandwidth bound)
# ---------------------------------------------------------------------------------------------
def weight_bytes_read(model: torch.nn.Module) -> int:
    """Weight bytes one batch-1 decode step of `model` reads: its stored weights (`quant.model_size_bytes`),
    except that an embedding table used only for lookup costs one row, not the whole table.

    With tied embeddings the LM head multiplies by the same matrix, so it is read whole anyway; once the
    head is untied from it (PyTorch's dynamic int8 quantizes the head, not the embedding), the float32
    embedding is only gathered, one row per token, and counting it whole overstates the bytes read.
    """
    from .quant import model_size_bytes

    if not isinstance(model, torch.nn.Module):
        raise CourseError("weight_bytes_read needs a torch.nn.Module")
    total = model_size_bytes(model)
    embeddings = [m for m in model.modules() if isinstance(m, torch.nn.Embedding)]
    others = {id(p) for m in model.modules() if not isinstance(m, torch.nn.Embedding)
              for p in m.parameters(recurse=False)}
    for m in {id(e.weight): e for e in embeddings}.values():
        if id(m.weight) not in others:                          # only looked up: one row per token
            w = m.weight
            total -= w.numel() * w.element_size() - w[0].numel() * w.element_size()
    return total


# ---------------------------------------------------------------------------------------------
# The cost model lives in slmcourse.planner; its names stay importable from here.
# ---------------------------------------------------------------------------------------------
from .planner import (  # noqa: E402,F401  (re-exported for lesson 14's chooser and older notebooks)
    FRAMEWORKS, TARGETS, Framework, Measured, Plan, Step, Target, bandwidth_bound_tokens_per_s,
    bytes_per_token, cost_per_million_tokens, decode_step, energy_per_token, energy_range, flops_per_token,
    plan_all, plan_deployment,
)

from .checks import guard_public as _guard_public  # noqa: E402 - issue 20: typed arguments checked on entry

_guard_public(globals())
