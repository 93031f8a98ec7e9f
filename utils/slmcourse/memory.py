"""Memory calculators: weights at each precision, KV cache, activations, and "will it fit?".

Pure arithmetic on catalogue entries - no model is built. Lesson 1's explorer and lesson 12's
deployment planner are thin widgets over `fit`.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from .attention import kv_cache_bytes
from .catalogue import ModelCard, get
from . import checks
from .errors import CourseError

GiB = 1024 ** 3
MiB = 1024 ** 2

@dataclass(frozen=True)
class Format:
    """A weight format priced at its real bits per weight (scales and zero points included)."""
    name: str
    bits_per_weight: float
    source: str
    ideal: bool = False  # True: a bare bit width with no scales, a lower bound no real file reaches

    @property
    def bytes_per_weight(self) -> float:
        return self.bits_per_weight / 8


# Real formats at their real bits per weight. The GGUF block types are computed from ggml's block
# layouts (gguf.GGML_QUANT_SIZES: Q8_0 = 32 int8 + one fp16 scale = 34 bytes per 32 weights = 8.5 bits);
# Q4_K_M is a *mix* of block types, measured on the bundled Gemma-3-270M file over its transformer-block
# weights (tests/test_memory.py recomputes both from the files). "int8"/"int4" are the bare bit widths:
# labelled ideal lower bounds that no real file reaches (each real 4-bit block stores a scale too).
FORMATS = {f.name: f for f in (
    Format("fp32", 32.0, "IEEE-754 single precision"),
    Format("bf16", 16.0, "bfloat16"),
    Format("fp16", 16.0, "IEEE-754 half precision"),
    Format("Q8_0", 8.5, "ggml block: 32 int8 weights + 1 fp16 scale"),
    Format("Q5_K_M", 5.5, "ggml Q5_K block layout (the _M mix keeps a few tensors at Q6_K: a lower bound)"),
    Format("Q4_K_M", 5.43, "measured: bundled Gemma-3-270M Q4_K_M file, transformer-block weights "
                           "(its 640-wide rows push some tensors to Q5_0/Q6_K)"),
    Format("Q4_1", 5.0, "ggml block: 32 4-bit weights + fp16 scale + fp16 minimum"),
    Format("Q4_0", 4.5, "ggml block: 32 4-bit weights + 1 fp16 scale"),
    Format("int8", 8.0, "ideal lower bound: bare 8 bits, no scales", ideal=True),
    Format("int4", 4.0, "ideal lower bound: bare 4 bits, no scales", ideal=True),
)}

# Bytes per weight of every format (the view most calculators need).
PRECISIONS = {name: f.bytes_per_weight for name, f in FORMATS.items()}

# Precisions a KV cache can be stored in (its own control: the weights' format does not decide it).
KV_PRECISIONS = {"fp32": 4.0, "bf16": 2.0, "fp16": 2.0, "Q8_0": 8.5 / 8, "int8": 1.0, "int4": 0.5}


@dataclass(frozen=True)
class Device:
    name: str
    memory_gib: float
    usable_fraction: float  # share of the memory one model can realistically use (an assumption, stated)
    note: str

    @property
    def usable_bytes(self) -> int:
        return int(self.memory_gib * GiB * self.usable_fraction)


# Memory sizes are the vendors' published figures; the usable fractions are the course's assumptions
# (the operating system, other apps or the CUDA context keep the rest).
DEVICES = {d.name: d for d in (
    Device("mybinder.org session", 2, 1.0, "mybinder.org's per-user memory limit (2 GB)"),
    Device("Raspberry Pi 5 (8 GB)", 8, 0.75, "raspberrypi.com product brief; 25% left to the OS"),
    Device("Phone (8 GB RAM)", 8, 0.5, "a typical 2024 flagship; mobile OSes keep about half for themselves and other apps"),
    Device("Laptop (16 GB RAM)", 16, 0.75, "a typical laptop; 25% left to the OS and other programs"),
    Device("NVIDIA T4 (16 GB)", 16, 0.9, "nvidia.com T4 datasheet; 10% to the CUDA context and fragmentation"),
    Device("NVIDIA RTX 4090 (24 GB)", 24, 0.9, "nvidia.com RTX 4090 specifications"),
    Device("NVIDIA A100 (80 GB)", 80, 0.9, "nvidia.com A100 datasheet"),
)}


def _check_precision(precision: str) -> float:
    return PRECISIONS[checks.one_of("precision", precision, PRECISIONS)]


def _check_sizes(card: ModelCard, seq_len, batch, bytes_per_element) -> None:
    """Token counts within the model's context, a batch >= 1, bytes per element a positive number."""
    checks.whole_number("seq_len", seq_len, minimum=0)
    # the positions the architecture can address (a sliding-window model such as Mistral 7B v0.1 was
    # trained on 8k tokens but addresses 32k): the calculators price what the model can be run at
    limit = max(card.context_length, int(card.config.get("max_position_embeddings") or 0))
    if seq_len > limit and card.position != "relative":   # T5's relative buckets address any length
        raise CourseError(f"seq_len={seq_len:,} is beyond the {limit:,} positions {card.name} can address")
    checks.whole_number("batch", batch, minimum=1, maximum=1_000_000)
    checks.positive_number("bytes_per_element", bytes_per_element, maximum=64)


def weights_bytes(n_params: int, precision: str = "fp32") -> int:
    """Bytes to hold `n_params` weights in a format of FORMATS (fp32, bf16, Q8_0, Q4_K_M, ...)."""
    if not isinstance(n_params, int) or isinstance(n_params, bool) or n_params < 0:
        raise CourseError(f"the number of parameters must be a whole number >= 0, got {n_params!r}")
    return int(n_params * _check_precision(precision))


def training_bytes(n_params: int) -> int:
    """Full fine-tuning with Adam in fp32: weights + gradients + two optimizer states = 16 bytes/param."""
    return 4 * weights_bytes(n_params, "fp32")


def model_kv_cache_bytes(name: str | ModelCard, seq_len: int, batch: int = 1,
                         bytes_per_element: float = 2.0) -> int:
    """KV cache of a catalogued model holding `seq_len` tokens.

    Sliding-window layers keep only the last `window` tokens (a rolling buffer, as in Mistral and
    Gemma 3); an encoder keeps no cache; an encoder-decoder's decoder also caches the cross-attention
    keys and values of the `seq_len` encoder tokens.
    """
    card = get(name)
    _check_sizes(card, seq_len, batch, bytes_per_element)
    if card.family == "encoder":
        return 0
    if card.era:  # lesson 7's 2024-26 block: latent attention, recurrent layers (fixed state), layer mixes
        from .newest import cache_bytes
        grown = cache_bytes(card, seq_len, bytes_per_element)
        return int(round((grown["kv"] + grown["state"]) * batch))
    config = card.config
    window = card.sliding_window
    layer_types = config.get("layer_types")
    if layer_types:
        per_layer = [min(seq_len, window) if t == "sliding_attention" else seq_len for t in layer_types]
    else:
        per_layer = [min(seq_len, window) if window else seq_len] * card.decoder_layers
    total = sum(kv_cache_bytes(1, card.kv_heads, card.head_dim, tokens, batch, bytes_per_element)
                for tokens in per_layer)
    if card.family == "encoder-decoder":
        total *= 2  # self-attention cache + cross-attention cache
    return total


def activation_bytes(name: str | ModelCard, seq_len: int, batch: int = 1, bytes_per_element: float = 2.0,
                     eager_attention: bool = False) -> int:
    """Estimate of the largest working buffers of a forward pass over `seq_len` tokens.

    Counted: one layer's hidden states and MLP activations and the float32 logits of the last
    position; with `eager_attention=True` also one layer's full attention-score matrix, which plain
    attention materialises and memory-efficient kernels (PyTorch SDPA, FlashAttention) avoid.
    An estimate for planning, not a measurement (lesson 12 measures).
    """
    card = get(name)
    _check_sizes(card, seq_len, batch, bytes_per_element)
    if not isinstance(eager_attention, bool):
        raise CourseError(f"eager_attention must be True or False, got {eager_attention!r}")
    c = card.config
    hidden = card.hidden_size
    inter = int(c.get("intermediate_size") or c.get("ffn_dim") or c.get("d_ff") or c.get("hidden_dim")
                or hidden * int(c.get("expansion_ratio", 4)))
    states = batch * seq_len * (4 * hidden + 2 * inter) * bytes_per_element
    scores = batch * card.heads * seq_len * seq_len * bytes_per_element if eager_attention else 0
    logits = batch * int(c.get("vocab_size", 0)) * 4 if card.family != "encoder" else 0
    return int(states + scores + logits)


@dataclass
class FitReport:
    model: str
    precision: str
    context: int
    batch: int
    device: str
    weights: int
    kv_cache: int
    activations: int
    available: int
    notes: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        return self.weights + self.kv_cache + self.activations

    @property
    def fits(self) -> bool:
        return self.total <= self.available

    @property
    def headroom(self) -> int:
        return self.available - self.total

    def summary(self) -> str:
        verdict = "fits" if self.fits else "does NOT fit"
        return (f"{self.model} at {self.precision}, {self.context} tokens x batch {self.batch}: "
                f"{self.total / GiB:.2f} GiB needed (weights {self.weights / GiB:.2f}, KV cache "
                f"{self.kv_cache / GiB:.2f}, activations {self.activations / GiB:.2f}) of "
                f"{self.available / GiB:.2f} GiB usable on {self.device}: {verdict}")


def fit(model: str | ModelCard, precision: str = "fp16", context: int = 2048, batch: int = 1,
        device: str = "Laptop (16 GB RAM)", kv_precision: str | None = None) -> FitReport:
    """Will `model` run on `device`? Weights + KV cache + activations against the usable memory.

    Raises CourseError with a readable message for inputs that make no sense (unknown model or
    device, a context longer than the model was built for, a batch below 1, ...).
    """
    card = get(model)
    precision = _check_precision(precision) and checks.one_of("precision", precision, PRECISIONS)
    # The KV cache is its own control: by default it stays in 16-bit when weights are quantized
    # (the usual practice of llama.cpp and transformers), fp32 when the weights are fp32.
    if kv_precision is None:
        kv_precision = "fp32" if precision == "fp32" else "fp16"
    kv_precision = checks.one_of("kv_precision", kv_precision, KV_PRECISIONS, label="KV-cache precision")
    kv_bytes = KV_PRECISIONS[kv_precision]
    device = checks.one_of("device", device, DEVICES)
    for what, value in (("context", context), ("batch", batch)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise CourseError(f"{what} must be a whole number of at least 1, got {value!r}")
    if context > card.context_length:
        raise CourseError(f"{card.name} handles at most {card.context_length:,} tokens of context; "
                          f"{context:,} is beyond what it was trained for")
    notes = []
    if card.family == "encoder":
        notes.append("an encoder reads its whole input at once: no KV cache")
    if card.sliding_window and context > card.sliding_window:
        notes.append(f"sliding-window layers cache only the last {card.sliding_window} tokens")
    if FORMATS[precision].ideal:
        notes.append(f"{precision} is an ideal lower bound (bare bits, no scales); real files need more, "
                     f"e.g. Q4_0 {FORMATS['Q4_0'].bits_per_weight} or Q4_K_M {FORMATS['Q4_K_M'].bits_per_weight} bits per weight")
    return FitReport(
        model=card.name, precision=precision, context=context, batch=batch, device=device,
        weights=weights_bytes(card.params, precision),
        kv_cache=model_kv_cache_bytes(card, context, batch, kv_bytes),
        activations=activation_bytes(card, context, batch, kv_bytes),
        available=DEVICES[device].usable_bytes, notes=notes)

from .checks import guard_public as _guard_public  # noqa: E402 - issue 20: typed arguments checked on entry

_guard_public(globals())
