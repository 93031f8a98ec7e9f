"""Quantization and pruning from scratch (lesson 9).

Quantization stores each weight as a small integer code plus a few floating-point numbers per group
of weights (a scale, and for the zero-point scheme an integer offset). Two classic schemes:

* **absmax** (symmetric): ``scale = max|x| / (2**(bits-1) - 1)``, ``q = round(x / scale)``, codes in
  ``[-(2**(bits-1) - 1), 2**(bits-1) - 1]``; de-quantized as ``q * scale``. GGUF's Q8_0 is absmax
  int8 with groups of 32 weights.
* **zero-point** (asymmetric, Jacob et al. 2018): the range ``[min(x, 0), max(x, 0)]`` is mapped onto
  ``[0, 2**bits - 1]``; ``scale = (hi - lo) / (2**bits - 1)``, ``zero = round(-lo / scale)``,
  ``q = round(x / scale) + zero``; de-quantized as ``(q - zero) * scale``. Keeping 0 inside the range
  makes zero exactly representable (GPTQ and PyTorch's observers do the same).

Both work on groups of ``group_size`` consecutive weights along the last dimension (a weight
matrix's input dimension): ``group_size=None`` uses one group for the whole tensor, ``"row"`` one
group per row (one scale per output channel), and small groups (32, 64) give "group-wise" int4. Scales are stored in ``scale_dtype`` (float16 by default, as in GGUF): they are rounded to it
before use, so what is de-quantized is exactly what the stored bytes would give back.

Everything here is *simulated* quantization: a quantized model keeps float32 weights holding the
de-quantized values, so its quality is the quantized model's quality, while its true storage size
is computed from the codes, scales and zero points that a real format would write.

Pruning: magnitude pruning sets the smallest weights to zero (unstructured: any weight; structured:
whole MLP channels, which are removed, so the matrices really shrink). Both can also rank weights by
what they do on calibration text (weight size times the size of the input they meet, as Wanda does)
instead of by weight size alone. The building blocks are public so lesson 9 can check its own
versions against them: `wanda_score` / `wanda_mask`, and the channel surgery `mlp_channel_scores`,
`channels_to_keep`, `cut_mlp_channels`.
"""
from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass, field
from typing import Iterable, Sequence

import torch
from torch import nn

from .errors import CourseError
from .perplexity import perplexity  # noqa: F401  (re-exported: the one protocol)

SCHEMES = ("absmax", "zeropoint")
SCALE_DTYPES = {torch.float16: 2, torch.bfloat16: 2, torch.float32: 4}


# ---------------------------------------------------------------------------------------------
# Tensors
# ---------------------------------------------------------------------------------------------
@dataclass
class QuantizedTensor:
    """Integer codes plus per-group scales (and zero points) of a quantized tensor.

    ``codes`` has shape ``(n_groups, group_size)``; ``scale`` and ``zero`` have shape ``(n_groups, 1)``.
    """

    codes: torch.Tensor
    scale: torch.Tensor
    zero: torch.Tensor | None
    shape: torch.Size
    bits: int
    scheme: str
    group_size: int
    scale_dtype: torch.dtype = torch.float16

    @property
    def numel(self) -> int:
        return math.prod(self.shape)

    @property
    def n_groups(self) -> int:
        return self.codes.shape[0]

    @property
    def storage_bytes(self) -> int:
        """Bytes a real format needs: codes packed at `bits` bits, scales, zero points packed too."""
        return storage_bytes(self.numel, self.bits, self.scheme, self.group_size, self.scale_dtype)

    @property
    def bits_per_weight(self) -> float:
        return 8 * self.storage_bytes / self.numel

    def dequantize(self) -> torch.Tensor:
        return dequantize(self)


def _check_bits(bits: int) -> int:
    if isinstance(bits, bool) or not isinstance(bits, int) or not 2 <= bits <= 8:
        raise CourseError(f"bits must be a whole number from 2 to 8, got {bits!r}")
    return bits


def _check_scheme(scheme: str) -> str:
    if scheme not in SCHEMES:
        raise CourseError(f"unknown quantization scheme {scheme!r}; choose one of {', '.join(SCHEMES)}")
    return scheme


def _check_scale_dtype(scale_dtype: torch.dtype) -> torch.dtype:
    if scale_dtype not in SCALE_DTYPES:
        raise CourseError(f"scale_dtype must be one of {[str(d) for d in SCALE_DTYPES]}, got {scale_dtype}")
    return scale_dtype


def valid_group_sizes(row_length: int) -> list[int]:
    """Group sizes that divide a row of this length (every divisor from 2 up)."""
    return [g for g in range(2, row_length + 1) if row_length % g == 0]


def _check_group_size(group_size: int | None, shape: Sequence[int]) -> int:
    """The group size to use for a tensor of this shape (None: one group for the whole tensor)."""
    if len(shape) == 0 or math.prod(shape) == 0:
        raise CourseError("cannot quantize an empty tensor")
    if group_size is None:
        return math.prod(shape)
    if group_size == "row":
        return shape[-1]
    if isinstance(group_size, bool) or not isinstance(group_size, int) or group_size < 1:
        raise CourseError(f"group_size must be a positive whole number, 'row' or None, got {group_size!r}")
    row = shape[-1]
    if row % group_size:
        sizes = [g for g in (8, 16, 32, 64, 96, 128, 192, 256) if row % g == 0]
        raise CourseError(
            f"group_size {group_size} does not divide the row length {row}: each group must lie inside "
            f"one row. Group sizes that work here include {sizes or valid_group_sizes(row)[:8]}, "
            f"or {row} (one scale per row), or None (one scale for the whole tensor).")
    return group_size


def storage_bytes(numel: int, bits: int, scheme: str = "absmax", group_size: int | str | None = None,
                  scale_dtype: torch.dtype = torch.float16) -> int:
    """Bytes to store `numel` weights: packed codes + one scale per group (+ packed zero points)."""
    _check_bits(bits)
    _check_scheme(scheme)
    scale_size = SCALE_DTYPES[_check_scale_dtype(scale_dtype)]
    group = numel if group_size is None else group_size
    if isinstance(group, bool) or not isinstance(group, int) or group < 1:
        raise CourseError(f"storage_bytes needs a whole-number group size (or None), got {group_size!r}")
    if numel % group:
        raise CourseError(f"group_size {group} does not divide {numel} weights")
    groups = numel // group
    total = math.ceil(numel * bits / 8) + groups * scale_size
    if scheme == "zeropoint":
        total += math.ceil(groups * bits / 8)
    return total


def quantize(x: torch.Tensor, bits: int = 8, scheme: str = "absmax", group_size: int | str | None = None,
             scale_dtype: torch.dtype = torch.float16) -> QuantizedTensor:
    """Quantize a float tensor to `bits`-bit integer codes with the given scheme and group size."""
    _check_bits(bits)
    _check_scheme(scheme)
    _check_scale_dtype(scale_dtype)
    if not isinstance(x, torch.Tensor) or not x.is_floating_point():
        raise CourseError("quantize needs a floating-point torch tensor")
    if x.device.type == "meta":
        raise CourseError("this tensor lives on the meta device and has no values to quantize")
    group = _check_group_size(group_size, tuple(x.shape))
    if not torch.isfinite(x).all():
        raise CourseError("the tensor holds inf or NaN values, which cannot be quantized")
    groups = x.detach().float().reshape(-1, group)
    if scheme == "absmax":
        qmax = 2 ** (bits - 1) - 1
        amax = groups.abs().amax(dim=1, keepdim=True)
        scale = (amax / qmax).to(scale_dtype).float()
        scale = torch.where(scale == 0, torch.ones_like(scale), scale)
        codes = torch.clamp(torch.round(groups / scale), -qmax, qmax).to(torch.int16)
        zero = None
    else:
        qmax = 2 ** bits - 1
        lo = groups.amin(dim=1, keepdim=True).clamp(max=0)
        hi = groups.amax(dim=1, keepdim=True).clamp(min=0)
        scale = ((hi - lo) / qmax).to(scale_dtype).float()
        scale = torch.where(scale == 0, torch.ones_like(scale), scale)
        zero = torch.clamp(torch.round(-lo / scale), 0, qmax).to(torch.int16)
        codes = torch.clamp(torch.round(groups / scale) + zero, 0, qmax).to(torch.int16)
    return QuantizedTensor(codes=codes, scale=scale, zero=zero, shape=x.shape, bits=bits, scheme=scheme,
                           group_size=group, scale_dtype=scale_dtype)


def dequantize(qt: QuantizedTensor) -> torch.Tensor:
    """The float32 tensor the codes stand for: ``q * scale`` or ``(q - zero) * scale``."""
    if not isinstance(qt, QuantizedTensor):
        raise CourseError("dequantize needs the QuantizedTensor that quantize() returned")
    codes = qt.codes.float()
    if qt.zero is not None:
        codes = codes - qt.zero.float()
    return (codes * qt.scale).reshape(qt.shape)


def quantize_absmax(x: torch.Tensor, bits: int = 8, group_size: int | str | None = None,
                    scale_dtype: torch.dtype = torch.float16) -> QuantizedTensor:
    """Symmetric ("absmax") quantization; int8 with one scale per tensor by default."""
    return quantize(x, bits=bits, scheme="absmax", group_size=group_size, scale_dtype=scale_dtype)


def quantize_zeropoint(x: torch.Tensor, bits: int = 8, group_size: int | str | None = None,
                       scale_dtype: torch.dtype = torch.float16) -> QuantizedTensor:
    """Asymmetric ("zero-point") quantization; int8 with one scale and zero point per tensor by default."""
    return quantize(x, bits=bits, scheme="zeropoint", group_size=group_size, scale_dtype=scale_dtype)


def quantize_groupwise(x: torch.Tensor, bits: int = 4, group_size: int = 32, scheme: str = "zeropoint",
                       scale_dtype: torch.dtype = torch.float16) -> QuantizedTensor:
    """Group-wise quantization (int4, groups of 32 weights along each row, by default)."""
    if group_size is None:
        raise CourseError("group-wise quantization needs a group size (e.g. 32, 64)")
    return quantize(x, bits=bits, scheme=scheme, group_size=group_size, scale_dtype=scale_dtype)


def round_trip(x: torch.Tensor, **kwargs) -> torch.Tensor:
    """quantize then dequantize: the values a quantized model really computes with."""
    return dequantize(quantize(x, **kwargs)).to(x.dtype)


@dataclass
class RoundTripError:
    """How far de-quantized values are from the originals, and what the storage costs."""

    max_abs: float
    mean_abs: float
    rmse: float
    relative_rmse: float        # rmse / rms(x)
    sqnr_db: float              # signal-to-quantization-noise ratio
    storage_bytes: int
    bits_per_weight: float
    errors: torch.Tensor = field(repr=False)  # de-quantized minus original, flattened

    def as_dict(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k != "errors"}


def round_trip_error(x: torch.Tensor, bits: int = 8, scheme: str = "absmax", group_size: int | str | None = None,
                     scale_dtype: torch.dtype = torch.float16) -> RoundTripError:
    """Quantize, de-quantize and measure the error against the original tensor."""
    qt = quantize(x, bits=bits, scheme=scheme, group_size=group_size, scale_dtype=scale_dtype)
    original = x.detach().float()
    errors = (dequantize(qt) - original).flatten()
    rmse = errors.pow(2).mean().sqrt().item()
    rms = original.pow(2).mean().sqrt().item()
    return RoundTripError(
        max_abs=errors.abs().max().item(), mean_abs=errors.abs().mean().item(), rmse=rmse,
        relative_rmse=rmse / rms if rms else 0.0,
        sqnr_db=20 * math.log10(rms / rmse) if rmse and rms else math.inf,
        storage_bytes=qt.storage_bytes, bits_per_weight=qt.bits_per_weight, errors=errors)


# ---------------------------------------------------------------------------------------------
# Models
# ---------------------------------------------------------------------------------------------
def _bytes_of(t: torch.Tensor) -> int:
    return t.numel() * t.element_size()


def _dynamic_linear_bytes(module: nn.Module) -> int | None:
    """Storage of a torch.ao dynamically quantized Linear (int8 weight + scales + float bias)."""
    weight_fn = getattr(module, "weight", None)
    if not callable(weight_fn) or not hasattr(module, "_packed_params"):
        return None
    weight = weight_fn()
    total = weight.numel() * weight.element_size()
    if weight.qscheme() in (torch.per_channel_affine, torch.per_channel_symmetric):
        total += weight.q_per_channel_scales().numel() * 8 + weight.q_per_channel_zero_points().numel() * 8
    else:
        total += 8 + 8  # one float64 scale and one int64 zero point
    bias = module.bias()
    return total + (_bytes_of(bias) if bias is not None else 0)


def model_size_bytes(model: nn.Module, include_buffers: bool = False) -> int:
    """Bytes of a model's weights as stored: each distinct parameter once (tied weights once).

    Also counts torch.ao dynamically quantized Linear layers (int8 weights), whose weights are not
    parameters. Non-persistent buffers (such as rotary-embedding tables) are left out unless asked.
    """
    if not isinstance(model, nn.Module):
        raise CourseError("model_size_bytes needs a torch.nn.Module")
    seen: set[int] = set()
    total = 0
    for p in model.parameters():
        if id(p) not in seen:
            seen.add(id(p))
            total += _bytes_of(p)
    for module in model.modules():
        extra = _dynamic_linear_bytes(module)
        if extra is not None:
            total += extra
    if include_buffers:
        total += sum(_bytes_of(b) for b in model.buffers())
    return total


def linear_layers(model: nn.Module, skip: Iterable[str] = ("lm_head",)) -> list[tuple[str, nn.Linear]]:
    """The model's nn.Linear layers, in order, except those whose name contains one of `skip`."""
    skip = tuple(skip or ())
    return [(name, m) for name, m in model.named_modules()
            if isinstance(m, nn.Linear) and not any(s in name for s in skip)]


def _check_groups_fit(layers: list[tuple[str, nn.Linear]], group_size: int | str | None) -> None:
    if group_size is None or group_size == "row":
        return
    if isinstance(group_size, bool) or not isinstance(group_size, int) or group_size < 1:
        raise CourseError(f"group_size must be a whole number >= 1, 'row' or None (one scale per matrix), "
                          f"got {group_size!r}")
    rows = sorted({m.in_features for _, m in layers})
    bad = [(name, m.in_features) for name, m in layers if m.in_features % group_size]
    if bad:
        common = [g for g in valid_group_sizes(math.gcd(*rows)) if g >= 8] if rows else []
        raise CourseError(
            f"group_size {group_size} does not divide the rows of {len(bad)} layer(s), e.g. {bad[0][0]} "
            f"(rows of {bad[0][1]} weights). Rows in this model have {rows} weights; group sizes that "
            f"fit every layer: {common[:10]}, or None (one scale per matrix).")


@dataclass
class ModelQuantReport:
    """What quantize_model did: which layers, how big the model is now, how big it was."""

    bits: int
    scheme: str
    group_size: int | None
    layers: list[dict]
    original_bytes: int         # the model as it was (float32 parameters)
    size_bytes: int             # the same model with the quantized layers stored as codes + scales
    quantized_weights: int      # number of weights quantized

    @property
    def compression(self) -> float:
        return self.original_bytes / self.size_bytes

    @property
    def bits_per_quantized_weight(self) -> float:
        return 8 * sum(l["storage_bytes"] for l in self.layers) / self.quantized_weights


def quantized_size_bytes(model: nn.Module, bits: int, scheme: str = "absmax", group_size: int | str | None = None,
                         skip: Iterable[str] = ("lm_head",), scale_dtype: torch.dtype = torch.float16) -> int:
    """The storage a model would need with its Linear weights quantized (arithmetic only, works on meta)."""
    layers = linear_layers(model, skip)
    _check_groups_fit(layers, group_size)
    total = model_size_bytes(model)
    seen: set[int] = set()
    for _, m in layers:
        if id(m.weight) in seen:
            continue
        seen.add(id(m.weight))
        group = m.in_features if group_size == "row" else group_size
        total += storage_bytes(m.weight.numel(), bits, scheme, group, scale_dtype) - _bytes_of(m.weight)
    return total


def quantize_model(model: nn.Module, bits: int = 8, scheme: str = "absmax", group_size: int | str | None = None,
                   skip: Iterable[str] = ("lm_head",), scale_dtype: torch.dtype = torch.float16) -> ModelQuantReport:
    """Quantize the weights of every nn.Linear layer IN PLACE (simulated) and report the real size.

    Each weight matrix is replaced by its de-quantized values, so the model computes exactly what
    the quantized model computes; `size_bytes` counts those layers at their packed storage size.
    `skip` leaves layers out by name: by default the LM head, which in many small models (SmolLM2,
    Gemma) is the same tensor as the token embedding.
    """
    _check_bits(bits)
    _check_scheme(scheme)
    layers = linear_layers(model, skip)
    if not layers:
        raise CourseError("this model has no nn.Linear layers to quantize (after `skip`)")
    _check_groups_fit(layers, group_size)
    original = model_size_bytes(model)
    report_layers, done = [], set()
    size = original
    with torch.no_grad():
        for name, module in layers:
            w = module.weight
            if id(w) in done:
                continue
            done.add(id(w))
            qt = quantize(w, bits=bits, scheme=scheme, group_size=group_size, scale_dtype=scale_dtype)
            w.copy_(dequantize(qt).to(w.dtype))
            size += qt.storage_bytes - _bytes_of(w)
            report_layers.append({"name": name, "shape": tuple(w.shape), "storage_bytes": qt.storage_bytes,
                                  "original_bytes": _bytes_of(w)})
    return ModelQuantReport(bits=bits, scheme=scheme, group_size=group_size, layers=report_layers,
                            original_bytes=original, size_bytes=size,
                            quantized_weights=sum(math.prod(l["shape"]) for l in report_layers))


def dynamic_int8(model: nn.Module, inplace: bool = True) -> nn.Module:
    """PyTorch's own dynamic int8 quantization of every Linear layer (CPU only).

    Weights become real int8 tensors (one scale per matrix) and, at run time, each layer's input is
    quantized to 8 bits too ("dynamic": its scale is computed on the fly), so the matrix products
    run in int8 kernels. `inplace=True` swaps the layers inside `model` (no second copy in memory).
    The API is deprecated (torch.ao.quantization moves to torchao) but still works in torch 2.x;
    its deprecation warning is silenced here.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from torch.ao.quantization import quantize_dynamic

        return quantize_dynamic(model, {nn.Linear}, dtype=torch.qint8, inplace=inplace)


# ---------------------------------------------------------------------------------------------
# Pruning
# ---------------------------------------------------------------------------------------------
def _check_amount(amount: float) -> float:
    if isinstance(amount, bool) or not isinstance(amount, (int, float)) or not 0 <= amount < 1:
        raise CourseError(f"amount is the fraction of weights to remove, from 0 up to (not including) 1; got {amount!r}")
    return float(amount)


@dataclass
class PruneReport:
    kind: str
    amount: float
    pruned: int                 # weights set to zero or removed
    total: int                  # weights in the layers considered (before pruning)
    original_bytes: int         # dense model before pruning
    dense_bytes: int            # model as it is now, stored densely
    sparse_bytes: int           # pruned layers stored sparsely: non-zeros + a 1-bit mask (unstructured)

    @property
    def sparsity(self) -> float:
        return self.pruned / self.total


def magnitude_prune(model: nn.Module, amount: float, skip: Iterable[str] = ("lm_head",),
                    input_norms: dict[str, torch.Tensor] | None = None) -> PruneReport:
    """Unstructured pruning IN PLACE: in each Linear weight, zero the `amount` least important weights.

    Without `input_norms`: plain magnitude pruning (Han et al. 2015), the smallest |w| of each matrix.
    With `input_norms` (from `calibrate_input_norms`): the Wanda score |w_ij| * ||x_j|| (Sun et al.
    2023), which also weighs how large the input that meets the weight is, compared within each
    output row. The matrices keep their shape (the zeros are still stored and multiplied), so the
    dense size and speed do not change; `sparse_bytes` is what a sparse format (non-zero values + a
    1-bit mask) would need.
    """
    _check_amount(amount)
    layers = linear_layers(model, skip)
    if not layers:
        raise CourseError("this model has no nn.Linear layers to prune (after `skip`)")
    if input_norms is not None:
        missing = [name for name, _ in layers if name not in input_norms]
        if missing:
            raise CourseError(f"input_norms has no entry for {missing[0]} (calibrate with the same `skip`)")
    original = model_size_bytes(model)
    pruned = total = 0
    sparse_delta = 0
    with torch.no_grad():
        for name, module in layers:
            w = module.weight
            if input_norms is None:
                k = int(round(amount * w.numel()))
                mask = _keep_largest(w.abs().flatten(), w.numel() - k).view_as(w)
            else:
                mask = wanda_mask(w, input_norms[name].to(w.device), amount)
            w.mul_(mask)
            zeros = int((w == 0).sum())
            pruned += zeros
            total += w.numel()
            nonzero = w.numel() - zeros
            sparse_delta += nonzero * w.element_size() + math.ceil(w.numel() / 8) - _bytes_of(w)
    dense = model_size_bytes(model)
    return PruneReport(kind="unstructured", amount=amount, pruned=pruned, total=total, original_bytes=original,
                       dense_bytes=dense, sparse_bytes=dense + sparse_delta)


def wanda_score(weight: torch.Tensor, input_norm: torch.Tensor) -> torch.Tensor:
    """Wanda's importance of every weight (Sun et al. 2023): ``|W_ij| * ||x_j||``.

    `weight` is a Linear layer's (out_features, in_features) matrix, `input_norm` the L2 norm of each
    of its input features over calibration tokens (`calibrate_input_norms`). A small weight that meets
    a large input can matter more than a large weight that meets a small one.
    """
    if not torch.is_tensor(weight) or weight.ndim != 2 or not weight.is_floating_point():
        raise CourseError("wanda_score needs a 2-D floating-point weight matrix (out_features, in_features)")
    if not torch.is_tensor(input_norm) or input_norm.shape != (weight.shape[1],):
        raise CourseError(f"input_norm must hold one norm per input feature: shape ({weight.shape[1]},), got "
                          f"{tuple(input_norm.shape) if torch.is_tensor(input_norm) else type(input_norm).__name__}")
    return weight.detach().abs() * input_norm.to(weight.device, weight.dtype)[None, :]


def wanda_mask(weight: torch.Tensor, input_norm: torch.Tensor, amount: float) -> torch.Tensor:
    """Boolean mask (True = keep) that drops the `amount` lowest-Wanda-score weights of EVERY output row."""
    _check_amount(amount)
    score = wanda_score(weight, input_norm)
    k = int(round(amount * weight.shape[1]))
    drop = torch.topk(score, k, dim=1, largest=False).indices
    return torch.ones_like(score, dtype=torch.bool).scatter_(1, drop, False)


def _keep_largest(scores: torch.Tensor, n_keep: int) -> torch.Tensor:
    """Boolean mask keeping exactly the `n_keep` largest entries of a 1-D tensor."""
    mask = torch.zeros_like(scores, dtype=torch.bool)
    if n_keep > 0:
        mask[torch.topk(scores, n_keep).indices] = True
    return mask


@torch.no_grad()
def calibrate_input_norms(model: nn.Module, tokenizer, texts: str | Sequence[str], skip: Iterable[str] = ("lm_head",),
                          max_length: int = 512) -> dict[str, torch.Tensor]:
    """Run calibration text through the model and record, for every Linear layer, the L2 norm of each
    input feature over all tokens (||x_j||): the activation statistics that Wanda-style pruning uses."""
    if isinstance(texts, str):
        texts = [texts]
    if not texts or not all(isinstance(t, str) and t.strip() for t in texts):
        raise CourseError("calibration needs one or more non-empty texts")
    layers = linear_layers(model, skip)
    sums: dict[str, torch.Tensor] = {}
    hooks = []
    for name, module in layers:
        def hook(_module, inputs, name=name):
            x = inputs[0].detach().float().reshape(-1, inputs[0].shape[-1])
            sums[name] = sums.get(name, 0) + x.pow(2).sum(0)
        hooks.append(module.register_forward_pre_hook(hook))
    device = next(model.parameters()).device
    try:
        for text in texts:
            ids = tokenizer(text, return_tensors="pt").input_ids[:, :max_length].to(device)
            model(input_ids=ids)
    finally:
        for h in hooks:
            h.remove()
    return {name: total.sqrt().cpu() for name, total in sums.items()}


def _mlps(model: nn.Module) -> list[tuple[str, nn.Module]]:
    return [(name, m) for name, m in model.named_modules()
            if all(isinstance(getattr(m, n, None), nn.Linear) for n in ("gate_proj", "up_proj", "down_proj"))]


def _shrink(linear: nn.Linear, keep: torch.Tensor, dim: int) -> nn.Linear:
    out_f, in_f = linear.out_features, linear.in_features
    if dim == 0:
        out_f = len(keep)
    else:
        in_f = len(keep)
    new = nn.Linear(in_f, out_f, bias=linear.bias is not None, device=linear.weight.device,
                    dtype=linear.weight.dtype)
    with torch.no_grad():
        new.weight.copy_(linear.weight.index_select(dim, keep))
        if linear.bias is not None:
            new.bias.copy_(linear.bias if dim == 1 else linear.bias[keep])
    return new


def mlp_channel_scores(mlp: nn.Module, activation_norm: torch.Tensor | None = None) -> torch.Tensor:
    """Importance of each hidden channel j of a gated MLP (gate_proj / up_proj / down_proj).

    Without `activation_norm`: weight magnitude only, ``||gate_j|| * ||up_j|| * ||down_:,j||`` (rows of
    gate and up, column of down). With it (the L2 norm of each input feature of down_proj over
    calibration tokens): what the channel really sends on, ``||a_j|| * ||down_:,j||`` (Wanda's idea per channel).
    """
    if not all(isinstance(getattr(mlp, n, None), nn.Linear) for n in ("gate_proj", "up_proj", "down_proj")):
        raise CourseError("mlp_channel_scores needs a gated MLP with gate_proj, up_proj and down_proj Linear layers")
    down = mlp.down_proj.weight.detach()
    if activation_norm is None:
        return mlp.gate_proj.weight.detach().norm(dim=1) * mlp.up_proj.weight.detach().norm(dim=1) * down.norm(dim=0)
    if not torch.is_tensor(activation_norm) or activation_norm.shape != (down.shape[1],):
        raise CourseError(f"activation_norm must hold one norm per hidden channel: shape ({down.shape[1]},)")
    return activation_norm.to(down.device, down.dtype) * down.norm(dim=0)


def channels_to_keep(scores: torch.Tensor, amount: float) -> torch.Tensor:
    """Indices (ascending) of the channels that survive when the `amount` lowest-scoring ones are cut."""
    _check_amount(amount)
    width = scores.shape[0]
    n_keep = width - int(round(amount * width))
    if n_keep < 1:
        raise CourseError(f"amount {amount} would remove every channel of a {width}-wide MLP")
    return torch.sort(torch.topk(scores, n_keep).indices).values


def cut_mlp_channels(mlp: nn.Module, keep: torch.Tensor) -> nn.Module:
    """MLP channel surgery IN PLACE: keep only hidden channels `keep` (rows of gate_proj and up_proj,
    columns of down_proj). The new layers are smaller, so the MLP really does less work; its output
    equals the original MLP's with the other channels' activations set to zero."""
    keep = torch.as_tensor(keep, dtype=torch.long)
    width = mlp.up_proj.out_features
    if keep.ndim != 1 or len(keep) == 0 or int(keep.min()) < 0 or int(keep.max()) >= width \
            or len(torch.unique(keep)) != len(keep):
        raise CourseError(f"keep must list distinct channel indices from 0 to {width - 1}")
    keep = keep.to(mlp.up_proj.weight.device)
    mlp.gate_proj = _shrink(mlp.gate_proj, keep, 0)
    mlp.up_proj = _shrink(mlp.up_proj, keep, 0)
    mlp.down_proj = _shrink(mlp.down_proj, keep, 1)
    if hasattr(mlp, "intermediate_size"):
        mlp.intermediate_size = len(keep)
    return mlp


def prune_mlp_channels(model: nn.Module, amount: float,
                       input_norms: dict[str, torch.Tensor] | None = None) -> PruneReport:
    """Structured pruning IN PLACE: remove the `amount` least important hidden channels of every MLP.

    Works on gated MLPs (gate_proj, up_proj, down_proj: Llama, SmolLM2, Gemma, Mistral ...). A hidden
    channel j owns row j of gate_proj and up_proj and column j of down_proj. Its importance is, without
    `input_norms`, its weight magnitude: the product of the L2 norms of those three vectors; with
    `input_norms` (from `calibrate_input_norms`), what it really sends on: the norm of its activation
    on calibration text times the norm of its down_proj column. The weakest channels are cut out, so the matrices really get
    smaller and faster (and `config.intermediate_size` is updated).
    """
    _check_amount(amount)
    mlps = _mlps(model)
    if not mlps:
        raise CourseError("structured pruning here needs gated MLPs (gate_proj / up_proj / down_proj), "
                          "as in Llama, SmolLM2 or Gemma; this model has none")
    original = model_size_bytes(model)
    pruned = total = 0
    new_size = None
    if input_norms is not None:
        missing = [f"{name}.down_proj" for name, _ in mlps if f"{name}.down_proj" not in input_norms]
        if missing:
            raise CourseError(f"input_norms has no entry for {missing[0]}: calibrate this same model first")
    with torch.no_grad():
        for name, mlp in mlps:
            activation = None if input_norms is None else input_norms[f"{name}.down_proj"]
            keep = channels_to_keep(mlp_channel_scores(mlp, activation), amount)
            n_keep = len(keep)
            before = sum(m.weight.numel() for m in (mlp.gate_proj, mlp.up_proj, mlp.down_proj))
            cut_mlp_channels(mlp, keep)
            after = sum(m.weight.numel() for m in (mlp.gate_proj, mlp.up_proj, mlp.down_proj))
            pruned += before - after
            total += before
            new_size = n_keep
    config = getattr(model, "config", None)
    if config is not None and hasattr(config, "intermediate_size") and new_size is not None:
        config.intermediate_size = new_size
    dense = model_size_bytes(model)
    return PruneReport(kind="structured", amount=amount, pruned=pruned, total=total,
                       original_bytes=original, dense_bytes=dense, sparse_bytes=dense)


# ---------------------------------------------------------------------------------------------
# Measurements: generation speed (perplexity lives in slmcourse.perplexity, the one protocol)
# ---------------------------------------------------------------------------------------------
@torch.no_grad()
def generation_speed(model: nn.Module, tokenizer, prompt: str, new_tokens: int = 32, repeats: int = 1,
                     warmup: bool = True) -> dict:
    """Greedy-generate exactly `new_tokens` tokens; returns {"text", "seconds", "tokens_per_s"} (best run).

    A short warm-up generation runs first (the first call pays one-off set-up costs)."""
    if new_tokens < 1 or repeats < 1:
        raise CourseError("new_tokens and repeats must be at least 1")
    device = next(model.parameters()).device
    inputs = tokenizer(prompt, return_tensors="pt").to(device)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    best, output = math.inf, None
    if warmup:
        model.generate(**inputs, max_new_tokens=2, do_sample=False, pad_token_id=pad)
    for _ in range(repeats):
        start = time.perf_counter()
        output = model.generate(**inputs, max_new_tokens=new_tokens, min_new_tokens=new_tokens, do_sample=False,
                                pad_token_id=pad)
        best = min(best, time.perf_counter() - start)
    generated = output[0, inputs.input_ids.shape[1]:]
    return {"text": tokenizer.decode(generated, skip_special_tokens=True), "seconds": best,
            "tokens_per_s": len(generated) / best}

from .checks import guard_public as _guard_public  # noqa: E402 - issue 20: typed arguments checked on entry

_guard_public(globals())
