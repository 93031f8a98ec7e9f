"""Shared input checkers for the package's public entry points (the bottom layer: pure, no torch at import).

Every checker either returns the (possibly normalised) value or raises a CourseError whose message names
the argument, what was given and what is expected - and, for a name, the closest valid names. Types are
checked before any comparison, so a string where a number belongs never ends in "'<' not supported".
"""
from __future__ import annotations

import difflib
import math
import numbers
from typing import Any, Iterable

from .errors import CourseError

__all__ = [
    "whole_number", "positive_number", "fraction", "one_of", "closest", "string_list", "tensor",
    "finite_tensor", "device", "model_or_name", "module", "config_overrides", "text", "texts", "callback",
]


def _given(value: Any) -> str:
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{text} ({type(value).__name__})"


def whole_number(name: str, value: Any, minimum: int | None = None, maximum: int | None = None) -> int:
    """`value` as an int within [minimum, maximum]; bool, float, str and None refused."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        expected = "a whole number" + (f" >= {minimum}" if minimum is not None else "")
        raise CourseError(f"{name} must be {expected}, got {_given(value)}")
    value = int(value)
    if minimum is not None and value < minimum:
        raise CourseError(f"{name} must be at least {minimum:,}, got {value:,}")
    if maximum is not None and value > maximum:
        raise CourseError(f"{name} must be at most {maximum:,}, got {value:,}")
    return value


def _real(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise CourseError(f"{name} must be a number, got {_given(value)}")
    value = float(value)
    if not math.isfinite(value):
        raise CourseError(f"{name} must be a finite number, got {value}")
    return value


def positive_number(name: str, value: Any, allow_zero: bool = False, maximum: float | None = None) -> float:
    """A finite real number > 0 (>= 0 with allow_zero); NaN and inf refused."""
    value = _real(name, value)
    if value < 0 or (value == 0 and not allow_zero):
        raise CourseError(f"{name} must be {'>= 0' if allow_zero else '> 0'}, got {value}")
    if maximum is not None and value > maximum:
        raise CourseError(f"{name} must be at most {maximum}, got {value}")
    return value


def fraction(name: str, value: Any, low: float = 0.0, high: float = 1.0,
             include_low: bool = True, include_high: bool = True) -> float:
    """A finite real number in the interval [low, high] (ends open or closed)."""
    value = _real(name, value)
    if value < low or value > high or (value == low and not include_low) or (value == high and not include_high):
        left, right = "[" if include_low else "(", "]" if include_high else ")"
        raise CourseError(f"{name} must lie in {left}{low}, {high}{right}, got {value}")
    return value


def closest(value: Any, choices: Iterable[str], n: int = 3) -> list[str]:
    """The closest valid names to `value` (case-insensitive), best first."""
    choices = [str(c) for c in choices]
    lowered = {c.lower(): c for c in choices}
    hits = difflib.get_close_matches(str(value).lower(), list(lowered), n=n, cutoff=0.5)
    return [lowered[h] for h in hits]


def one_of(name: str, value: Any, choices: Iterable[Any], label: str | None = None):
    """`value` if it is one of `choices` (a string also matched case-insensitively), else a CourseError
    that lists the closest valid names."""
    choices = list(choices)
    try:
        if value in choices:
            return value
    except TypeError:  # an unhashable value against a dict's keys
        pass
    if isinstance(value, str):
        for choice in choices:
            if isinstance(choice, str) and choice.lower() == value.strip().lower():
                return choice
    near = closest(value, choices) if isinstance(value, str) else []
    hint = f" (did you mean {' or '.join(repr(c) for c in near)}?)" if near else ""
    listing = ", ".join(str(c) for c in choices[:12]) + (", ..." if len(choices) > 12 else "")
    raise CourseError(f"unknown {label or name} {value!r}{hint}; {name} must be one of: {listing}")


def string_list(name: str, value: Any, allow_empty: bool = True) -> list[str]:
    """A list of strings; a bare string is wrapped into a one-element list (never iterated letter by
    letter); None gives an empty list."""
    if value is None:
        value = []
    elif isinstance(value, str):
        value = [value]
    elif not isinstance(value, (list, tuple, set, frozenset)):
        raise CourseError(f"{name} must be a list of strings, got {_given(value)}")
    items = list(value)
    for item in items:
        if not isinstance(item, str) or not item.strip():
            raise CourseError(f"{name} must contain only non-empty strings, got {_given(item)} in it")
    if not items and not allow_empty:
        raise CourseError(f"{name} must not be empty")
    return items


def tensor(name: str, value: Any, ndim: int | Iterable[int] | None = None, dtype: str | None = None,
           allow_empty: bool = False):
    """A torch tensor; a (nested) list or numpy array of numbers is converted. `dtype` may be "float"
    (converted to float32 if integer), "int" (must be integer) or None. `ndim` an int or a set of ints."""
    import torch

    if not isinstance(value, torch.Tensor):
        if isinstance(value, (str, bytes, dict)) or value is None or isinstance(value, (bool, numbers.Number)):
            raise CourseError(f"{name} must be a tensor (or a list of numbers), got {_given(value)}")
        try:
            value = torch.as_tensor(value)
        except (TypeError, ValueError, RuntimeError) as err:
            raise CourseError(f"{name} must be a tensor (or a rectangular list of numbers), got "
                              f"{_given(value)}: {err}") from None
    if value.dtype == torch.bool and dtype is not None:
        raise CourseError(f"{name} must hold numbers, not booleans")
    if dtype == "float" and not value.is_floating_point():
        value = value.float()
    if dtype == "int" and (value.is_floating_point() or value.is_complex()):
        raise CourseError(f"{name} must hold whole numbers (token ids), got dtype {value.dtype}")
    if ndim is not None:
        allowed = {ndim} if isinstance(ndim, int) else set(ndim)
        if value.dim() not in allowed:
            raise CourseError(f"{name} must have {' or '.join(str(a) for a in sorted(allowed))} dimensions, "
                              f"got shape {tuple(value.shape)}")
    if not allow_empty and value.numel() == 0:
        raise CourseError(f"{name} is empty (shape {tuple(value.shape)})")
    return value


def finite_tensor(name: str, value: Any, **kwargs):
    """As `tensor`, and refuse NaN or infinite entries (NaN in, NaN out, without a word, is a bug)."""
    import torch

    value = tensor(name, value, **kwargs)
    if value.is_floating_point() and not bool(torch.isfinite(value).all()):
        raise CourseError(f"{name} contains NaN or infinite values")
    return value


_DEVICE_ALIASES = {"gpu": "cuda", "nvidia": "cuda", "cuda0": "cuda:0", "apple": "mps", "metal": "mps", "m1": "mps"}


def device(name: str, value: Any):
    """A torch.device from a learner's string: stripped and lower-cased; 'gpu' is answered with a
    suggestion; CUDA/MPS refused on a machine without them (before anything is loaded)."""
    import torch

    if isinstance(value, torch.device):
        text = str(value)
    elif isinstance(value, str):
        text = value.strip().lower()
    else:
        raise CourseError(f"{name} must be a device name such as 'cpu' or 'cuda', got {_given(value)}")
    if text in _DEVICE_ALIASES:
        raise CourseError(f"{name}={value!r} is not a torch device name; did you mean {_DEVICE_ALIASES[text]!r}?")
    try:
        dev = torch.device(text)
    except (RuntimeError, ValueError, TypeError):
        near = closest(text, ["cpu", "cuda", "mps"])
        hint = f"; did you mean {' or '.join(repr(n) for n in near)}?" if near else ""
        raise CourseError(f"{name}={value!r} is not a device{hint} Use 'cpu', 'cuda' or 'mps'.") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise CourseError(f"{name}={value!r}: CUDA was asked for but torch.cuda.is_available() is False "
                              "here (no GPU, or a CPU-only build of torch); use 'cpu'")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise CourseError(f"{name}={value!r}: this machine has {torch.cuda.device_count()} GPU(s)")
    elif dev.type == "mps":
        if not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
            raise CourseError(f"{name}={value!r}: Apple MPS is not available on this machine; use 'cpu'")
    elif dev.type not in ("cpu", "meta"):
        raise CourseError(f"{name}={value!r}: the course runs on 'cpu', 'cuda' or 'mps'")
    return dev


def model_or_name(name: str, value: Any, build: str = "full_size"):
    """A torch module; a catalogue name (or ModelCard) is resolved with `full_size` (shapes only, on meta)
    or `scaled_down`; a `load(...)` result (model, tokenizer) gives its model; anything else refused."""
    import torch

    from . import catalogue

    if isinstance(value, torch.nn.Module):
        return value
    if isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], torch.nn.Module):
        return value[0]
    if isinstance(value, (str, catalogue.ModelCard)):
        from . import models

        card = catalogue.get(value)  # a CourseError with the closest names for an unknown one
        return getattr(models, build)(card)
    raise CourseError(f"{name} must be a model (a torch.nn.Module) or a catalogue name such as "
                      f"'smollm2-135m', got {_given(value)}")


def module(name: str, value: Any):
    """A loaded torch module (or a `load(...)` result, whose model is taken); a name is refused with a hint
    to load it first (a function that runs a model never builds one with random weights behind your back)."""
    import torch

    if isinstance(value, torch.nn.Module):
        return value
    if isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], torch.nn.Module):
        return value[0]
    if isinstance(value, str):
        raise CourseError(f"{name} must be a loaded model, got the name {value!r}: load it first, "
                          f"e.g. model, tokenizer = load({value!r})")
    raise CourseError(f"{name} must be a model (a torch.nn.Module, e.g. from load(...)), got {_given(value)}")


def text(name: str, value: Any, allow_empty: bool = False) -> str:
    """A string (not bytes, not a list); an empty or blank one refused unless allow_empty."""
    if not isinstance(value, str):
        raise CourseError(f"{name} must be a string, got {_given(value)}")
    if not allow_empty and not value.strip():
        raise CourseError(f"{name} must not be empty")
    return value


def texts(name: str, value: Any, allow_empty: bool = False) -> list[str]:
    """A list of strings; a bare string becomes a one-element list (never split letter by letter)."""
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, (list, tuple)):
        raise CourseError(f"{name} must be a list of strings, got {_given(value)}")
    for item in value:
        if not isinstance(item, str):
            raise CourseError(f"{name} must contain only strings, got {_given(item)} in it")
    if not value and not allow_empty:
        raise CourseError(f"{name} must not be empty")
    return list(value)


def callback(name: str, value: Any, allow_none: bool = True):
    """A callable (or None where allowed)."""
    if value is None and allow_none:
        return None
    if not callable(value):
        raise CourseError(f"{name} must be a function (or None), got {_given(value)}")
    return value


# Keys every transformers config accepts even though they are not in a model's own defaults.
_GENERIC_CONFIG_KEYS = {
    "torch_dtype", "dtype", "tie_word_embeddings", "attn_implementation", "use_cache", "pad_token_id",
    "bos_token_id", "eos_token_id", "architectures", "output_hidden_states", "output_attentions",
    "return_dict", "is_decoder", "is_encoder_decoder", "layer_types", "rope_scaling", "rope_parameters",
    "head_dim", "sliding_window", "initializer_range", "vocab_size", "max_position_embeddings",
}


def config_overrides(model_type: str, overrides: dict[str, Any], base: dict[str, Any] | None = None) -> dict:
    """Check `**overrides` against the keys the model type's config class knows.

    A misspelt key is refused with the closest known key (transformers would silently store it); a size
    that must be a positive whole number is checked here, and `sliding_window=0` (which builds a model whose
    first forward pass crashes) is refused.
    """
    from transformers import AutoConfig

    try:
        known = set(AutoConfig.for_model(model_type).to_dict())
    except (TypeError, ValueError, KeyError):
        known = set()
    known |= _GENERIC_CONFIG_KEYS | set(base or {})
    for key, value in overrides.items():
        if known and key not in known:
            near = closest(key, sorted(known))
            hint = f"; did you mean {' or '.join(repr(n) for n in near)}?" if near else ""
            raise CourseError(f"{key!r} is not a setting of a {model_type} config{hint}")
        if key.startswith(("num_", "n_")) or key in ("hidden_size", "intermediate_size", "vocab_size", "d_model",
                                                     "d_ff", "d_kv", "head_dim", "max_position_embeddings",
                                                     "n_positions", "dim", "hidden_dim", "ffn_dim"):
            if value is not None and not (isinstance(value, list)):
                whole_number(key, value, minimum=1, maximum=1_000_000_000)
        if key == "sliding_window" and value is not None:
            whole_number(key, value, minimum=1)
    return overrides
