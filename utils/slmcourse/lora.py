"""LoRA from scratch (lesson 11): Hu et al. 2021, "LoRA: Low-Rank Adaptation of Large Language Models",
arXiv:2106.09685.

A frozen weight W (out x in) gets a trainable low-rank update: y = W x + (alpha / r) * B A x, with
A (r x in) random and B (out x r) zero at the start, so training begins from the unchanged model.
Only A and B are trained: r * (in + out) numbers instead of in * out. After training the update can
be merged into W (no extra cost at inference) and unmerged again.

`lora_budget` is the LoRA explorer's logic: rank + target modules -> trainable parameters and
fine-tuning memory for any catalogued model, counted on its full-size architecture on `meta`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Iterable, Sequence

import torch
from torch import nn

from .errors import CourseError


class LoRALinear(nn.Module):
    """A frozen nn.Linear plus a trainable low-rank update (alpha / r) * B @ A."""

    def __init__(self, base: nn.Linear, r: int = 8, alpha: float = 16.0, dropout: float = 0.0):
        super().__init__()
        if not isinstance(base, nn.Linear):
            raise CourseError(f"LoRALinear wraps an nn.Linear, got {type(base).__name__}")
        _check_rank(r, base.in_features, base.out_features)
        if not alpha > 0:
            raise CourseError(f"alpha must be > 0, got {alpha!r}")
        if not 0.0 <= dropout < 1.0:
            raise CourseError(f"dropout must be in [0, 1), got {dropout!r}")
        self.base = base
        for p in self.base.parameters():
            p.requires_grad_(False)
        self.r, self.alpha = int(r), float(alpha)
        self.scaling = self.alpha / self.r
        factory = {"device": base.weight.device, "dtype": base.weight.dtype}
        self.lora_A = nn.Parameter(torch.empty(r, base.in_features, **factory))
        self.lora_B = nn.Parameter(torch.zeros(base.out_features, r, **factory))
        if base.weight.device.type != "meta":
            # As Microsoft's reference code (loralib) and peft: A ~ Kaiming-uniform, B = 0 (the paper's text says
            # "random Gaussian" for A; any random A works, B = 0 is what makes step 0 the unchanged model).
            nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.merged = False

    @property
    def in_features(self) -> int:
        return self.base.in_features

    @property
    def out_features(self) -> int:
        return self.base.out_features

    @property
    def weight(self) -> torch.Tensor:  # some code reads .weight of a Linear (e.g. its dtype)
        return self.base.weight

    def delta_weight(self) -> torch.Tensor:
        """The update the adapter adds to W: (alpha / r) * B @ A, shape (out, in)."""
        return (self.lora_B @ self.lora_A) * self.scaling

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.base(x)
        if self.merged:
            return out
        return out + (self.dropout(x) @ self.lora_A.T @ self.lora_B.T) * self.scaling

    @torch.no_grad()
    def merge(self) -> None:
        """Fold the update into W: the layer becomes a plain Linear again (as fast), same outputs."""
        if not self.merged:
            self.base.weight += self.delta_weight().to(self.base.weight.dtype)
            self.merged = True

    @torch.no_grad()
    def unmerge(self) -> None:
        """Take the update out of W again (to keep training, or to swap adapters)."""
        if self.merged:
            self.base.weight -= self.delta_weight().to(self.base.weight.dtype)
            self.merged = False

    def extra_repr(self) -> str:
        return f"r={self.r}, alpha={self.alpha:g}, merged={self.merged}"


def _check_rank(r, in_features: int, out_features: int) -> None:
    if isinstance(r, bool) or not isinstance(r, int) or r < 1:
        raise CourseError(f"the rank r must be a whole number >= 1, got {r!r}")
    if r > min(in_features, out_features):
        raise CourseError(f"rank {r} is larger than the layer itself ({out_features} x {in_features}): "
                          f"a rank above {min(in_features, out_features)} adds parameters without adding anything")


def linear_module_names(model: nn.Module) -> list[str]:
    """The distinct short names (last part of the path) of the model's nn.Linear layers: LoRA's possible targets."""
    names = {name.rsplit(".", 1)[-1] for name, module in model.named_modules()
             if isinstance(module, nn.Linear) and name}
    return sorted(names)


def _matching(model: nn.Module, target_modules: Iterable[str]) -> list[tuple[str, nn.Linear]]:
    targets = _check_targets(target_modules)
    available = linear_module_names(model)
    unknown = [t for t in targets if t not in available]
    if unknown:
        raise CourseError(f"no Linear layer called {', '.join(map(repr, unknown))} in this model; "
                          f"its Linear layers are: {', '.join(available)}")
    return [(name, module) for name, module in model.named_modules()
            if isinstance(module, nn.Linear) and name.rsplit(".", 1)[-1] in targets]


def _check_targets(target_modules) -> list[str]:
    if isinstance(target_modules, str):
        target_modules = [target_modules]
    targets = list(dict.fromkeys(target_modules or []))
    if not targets or not all(isinstance(t, str) and t for t in targets):
        raise CourseError("choose at least one target module (e.g. 'q_proj', 'v_proj')")
    return targets


def inject_lora(model: nn.Module, target_modules: Sequence[str] = ("q_proj", "v_proj"), r: int = 8,
                alpha: float = 16.0, dropout: float = 0.0, seed: int = 0) -> list[str]:
    """Freeze every parameter of `model` and wrap each Linear named in `target_modules` in a LoRALinear.

    Returns the full names of the wrapped layers. The model is changed in place.
    """
    if not isinstance(model, nn.Module):
        raise CourseError(f"inject_lora needs a model (a torch.nn.Module), got {type(model).__name__}")
    found = _matching(model, target_modules)
    # Check everything BEFORE changing the model: a refused call leaves it exactly as it was (issue 20).
    for _name, module in found:
        _check_rank(r, module.in_features, module.out_features)
    from .checks import fraction, positive_number, whole_number

    positive_number("alpha", alpha)
    fraction("dropout", dropout, include_high=False)
    whole_number("seed", seed, minimum=0)
    for p in model.parameters():
        p.requires_grad_(False)
    torch.manual_seed(seed)
    wrapped = []
    for name, module in found:
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, child, LoRALinear(module, r=r, alpha=alpha, dropout=dropout))
        wrapped.append(name)
    return wrapped


def lora_layers(model: nn.Module) -> list[LoRALinear]:
    return [m for m in model.modules() if isinstance(m, LoRALinear)]


def merge_lora(model: nn.Module) -> int:
    """Merge every adapter into its weight; returns how many were merged."""
    layers = lora_layers(model)
    for layer in layers:
        layer.merge()
    return len(layers)


def unmerge_lora(model: nn.Module) -> int:
    layers = lora_layers(model)
    for layer in layers:
        layer.unmerge()
    return len(layers)


def remove_lora(model: nn.Module) -> dict[str, torch.Tensor]:
    """Put the plain (unmerged) Linear layers back and return the adapters' weights, keyed by layer name.

    The model is then exactly the base model again (merged adapters are unmerged first) - ready for
    another adapter, or for the same adapter through a library such as peft.
    """
    adapters = {}
    for name, module in list(model.named_modules()):
        if isinstance(module, LoRALinear):
            module.unmerge()
            adapters[name] = {"lora_A": module.lora_A.detach().clone(), "lora_B": module.lora_B.detach().clone()}
            parent_name, _, child = name.rpartition(".")
            parent = model.get_submodule(parent_name) if parent_name else model
            setattr(parent, child, module.base)
    if not adapters:
        raise CourseError("this model has no LoRA layers to remove")
    return adapters


def lora_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """Only the adapter weights (what you save and share: a few MB instead of the whole model)."""
    return {k: v.detach().clone() for k, v in model.state_dict().items() if "lora_A" in k or "lora_B" in k}


def trainable_summary(model: nn.Module) -> dict:
    """Trainable and total parameters (tied weights once) and the trainable share in percent."""
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return {"trainable": trainable, "total": total, "percent": 100.0 * trainable / total if total else 0.0}


# ---------------------------------------------------------------------------------------------
# The explorer's logic: rank + targets -> trainable parameters and memory, any catalogued model
# ---------------------------------------------------------------------------------------------
@lru_cache(maxsize=32)
def _meta_model(name: str) -> nn.Module:
    from .models import full_size

    return full_size(name)


@lru_cache(maxsize=32)
def _linear_shapes(name: str) -> tuple[tuple[str, int, int], ...]:
    model = _meta_model(name)
    return tuple((n.rsplit(".", 1)[-1], m.in_features, m.out_features)
                 for n, m in model.named_modules() if isinstance(m, nn.Linear) and n)


def target_choices(name: str) -> list[str]:
    """The Linear layer names a LoRA adapter can target in a catalogued model (built full size on meta)."""
    from .catalogue import get

    return linear_module_names(_meta_model(get(name).key))


@dataclass(frozen=True)
class LoRABudget:
    model: str
    rank: int
    targets: tuple[str, ...]
    total_params: int          # the base model's parameters
    lora_params: int           # what LoRA trains
    adapted_layers: int        # how many Linear layers get an adapter
    full_ft_bytes: int         # full fine-tuning, fp32 Adam: weights + gradients + 2 optimizer states (16 B/param)
    lora_bytes: int            # frozen fp32 weights (4 B/param) + adapters with their gradients and Adam states
    lora_bf16_base_bytes: int  # the same with the frozen base in bfloat16 (2 B/param)
    adapter_file_bytes: int    # the adapter saved in float32

    @property
    def percent(self) -> float:
        return 100.0 * self.lora_params / self.total_params


def lora_budget(name: str, rank: int = 8, targets: Sequence[str] = ("q_proj", "v_proj")) -> LoRABudget:
    """Trainable parameters and fine-tuning memory with LoRA vs full fine-tuning, for a catalogued model.

    Counted on the full-size architecture on `meta` (exact shapes, no weights). Memory covers the
    weights, gradients and AdamW's two states; activations are left out (they depend on batch and
    sequence length and are the same order of size for both methods).
    """
    from .catalogue import get

    card = get(name)
    targets = _check_targets(targets)
    shapes = _linear_shapes(card.key)
    available = sorted({s[0] for s in shapes})
    unknown = [t for t in targets if t not in available]
    if unknown:
        raise CourseError(f"{card.name} has no Linear layer called {', '.join(map(repr, unknown))}; "
                          f"its Linear layers are: {', '.join(available)}")
    chosen = [s for s in shapes if s[0] in targets]
    for short, fan_in, fan_out in chosen:
        if isinstance(rank, bool) or not isinstance(rank, int) or rank < 1:
            raise CourseError(f"the rank r must be a whole number >= 1, got {rank!r}")
        if rank > min(fan_in, fan_out):
            raise CourseError(f"rank {rank} is larger than {short} itself ({fan_out} x {fan_in}) in {card.name}: "
                              f"choose a rank up to {min(fan_in, fan_out)}")
    total = sum(p.numel() for p in _meta_model(card.key).parameters())
    lora = sum(rank * (fan_in + fan_out) for _, fan_in, fan_out in chosen)
    return LoRABudget(model=card.name, rank=rank, targets=tuple(targets), total_params=total, lora_params=lora,
                      adapted_layers=len(chosen), full_ft_bytes=16 * total, lora_bytes=4 * total + 16 * lora,
                      lora_bf16_base_bytes=2 * total + 16 * lora, adapter_file_bytes=4 * lora)

from .checks import guard_public as _guard_public  # noqa: E402 - issue 20: typed arguments checked on entry

_guard_public(globals())
