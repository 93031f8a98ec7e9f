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
    "typed", "guard_public",
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


def record(name: str, value: Any, keys: Iterable[str], what: str = "a dict") -> dict:
    """A dict that holds every key in `keys` (an item, a result file, a preference pair): refused with the
    keys it lacks otherwise - not a KeyError from deep inside the function."""
    keys = list(keys)
    if not isinstance(value, dict):
        raise CourseError(f"{name} must be {what} with the keys {', '.join(map(repr, keys))}, got {_given(value)}")
    missing = [key for key in keys if key not in value]
    if missing:
        raise CourseError(f"{name} must be {what} with the keys {', '.join(map(repr, keys))}; "
                          f"{_given(value)} lacks {', '.join(map(repr, missing))}")
    return value


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

    if not isinstance(overrides, dict) or not all(isinstance(key, str) for key in overrides):
        raise CourseError(f"config overrides must be keyword arguments (a dict of setting names to values), "
                          f"got {_given(overrides)}")
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


# ---- the typed gate: every public function of a module checks its simply-typed arguments on entry ----------
_INT, _FLOAT, _STR, _BOOL = {"int"}, {"float"}, {"str"}, {"bool"}
_TENSOR = {"torch.Tensor", "Tensor"}
_MODULE = {"nn.Module", "torch.nn.Module"}
_PATH = {"Path", "pathlib.Path", "os.PathLike"}
_CARD = {"ModelCard", "catalogue.ModelCard"}
_DEVICE = {"torch.device"}
_SIMPLE = _INT | _FLOAT | _STR | _BOOL | _TENSOR | _MODULE | _PATH | _CARD | _DEVICE

# Real-number arguments that must be > 0 (at most the value given): a negative byte count or timeout is nonsense.
POSITIVE_FLOATS = {"bytes_per_element": 64.0, "timeout_s": 86_400.0, "timeout": 86_400.0, "lifetime_s": 86_400.0 * 7,
                   "base": 1e12, "rope_base": 1e12,  # a RoPE base <= 0 turns every angle into NaN
                   "lr": 10.0,  # a learning rate <= 0 is refused by torch; a huge one trains to NaN
                   "scale": 1e6,  # an attention scale <= 0 flattens or inverts the softmax
                   "eps": 1.0}  # a norm's epsilon
# Real-number arguments that must be >= 0 (a negative tolerance makes no sense).
NONNEGATIVE_FLOATS = {"rtol": 1e6, "atol": 1e12, "weight_decay": 1e3,
                      "clip": 1e6}  # a gradient-clipping norm (0: no clipping)

# Text arguments that the model must read at least one token of (an empty prompt has no token to run).
NONEMPTY_TEXTS = {"prompt", "choice_logprobs.context"}
# List-of-strings arguments for which a single string is a mistake (it would be scored letter by letter).
NOT_ONE_STRING = {"choices", "continuations"}

# Whole-number arguments whose name says what they count: the range a learner's value must lie in (a huge
# repeat count or token count otherwise runs for hours or allocates terabytes; a negative one makes no sense).
SIZE_RANGES = {
    "repeats": (1, 10_000), "warmup": (0, 10_000), "new_tokens": (1, 100_000), "max_new_tokens": (1, 100_000),
    "steps": (1, 10_000_000), "chunk": (1, 1 << 31), "batch": (1, 1_000_000), "batch_size": (1, 1_000_000),
    "n_boot": (1, 1_000_000), "seq_len": (0, 1_000_000_000), "context": (0, 1_000_000_000),
    "kv_len": (0, 1_000_000_000), "layers": (1, 100_000), "n_layers": (1, 100_000), "heads": (1, 100_000),
    "n_heads": (1, 100_000), "kv_heads": (1, 100_000), "head_dim": (1, 1_000_000), "window": (1, 1_000_000_000),
    "block_size": (1, 10_000_000), "mib": (1, 1_000_000), "threads": (1, 4096), "shots": (0, 1000),
    "rank": (1, 100_000), "experts": (1, 1_000_000), "vocab": (1, 100_000_000), "d_model": (1, 1_000_000),
    "train_len": (1, 1_000_000), "length": (1, 10_000_000), "n_items": (1, 1_000_000_000), "bits": (1, 64),
    "seed": (0, 2 ** 32 - 1), "max_length": (1, 10_000_000), "max_prompt_tokens": (1, 10_000_000),
    "max_body_bytes": (1, 1 << 31), "n_tokens": (0, 1_000_000_000), "top_k": (0, 100_000_000), "ngram": (1, 1000),
    "n_rep": (1, 100_000), "max_depth": (0, 100), "opset": (7, 30), "row_length": (1, 1_000_000_000),
    "max_string": (1, 100_000), "max_digits": (1, 100), "eos_id": (0, 100_000_000), "limit": (1, 1_000_000_000),
    "n_kv_heads": (1, 100_000), "rope_dim": (1, 1_000_000), "nope_dim": (1, 1_000_000), "v_dim": (1, 1_000_000),
    "kv_bytes.tokens": (1, 1_000_000_000), "ngrams.n": (1, 1000), "contamination.n": (1, 1000),
}


def _kinds(annotation: Any) -> tuple[set, bool] | None:
    """({simple type names}, optional) for an annotation such as 'int | None'; None when not simple."""
    if isinstance(annotation, type):
        annotation = annotation.__name__
    if not isinstance(annotation, str) or not annotation:
        return None
    parts = {p.strip().strip("'\"") for p in annotation.split("|")}
    optional = "None" in parts
    parts.discard("None")
    if not parts or not parts <= _SIMPLE:
        return None
    return parts, optional


def _expected(kinds: set) -> str:
    words = []
    if kinds & _INT:
        words.append("a whole number")
    if kinds & _FLOAT:
        words.append("a number")
    if kinds & _STR:
        words.append("a string")
    if kinds & _PATH:
        words.append("a file path")
    if kinds & _BOOL:
        words.append("True or False")
    if kinds & _TENSOR:
        words.append("a tensor (or a list of numbers)")
    if kinds & _MODULE:
        words.append("a model (a torch.nn.Module)")
    if kinds & _CARD:
        words.append("a catalogue name or ModelCard")
    if kinds & _DEVICE:
        words.append("a device name such as 'cpu'")
    return " or ".join(dict.fromkeys(words))


# Values of these types are judged by the gate; any other object (a ModelCard, a numpy array, a tokenizer)
# passes to the function, whose annotation may under-state what it accepts.
_BUILTIN = (str, bytes, numbers.Number, list, tuple, dict, set, frozenset, type(None))


def _gate(fn_name: str, name: str, value: Any, kinds: set, optional: bool) -> Any:
    """`value` if it has one of `kinds` (an integral float becomes an int, a list a tensor, a (model, tokenizer)
    pair its model); else a CourseError naming the function, the argument, what was given and what is expected."""
    if value is None:
        if optional:
            return value
        raise CourseError(f"{fn_name}: {name} must be {_expected(kinds)}, got None")
    if isinstance(value, bool):
        if kinds & _BOOL:
            return value
        raise CourseError(f"{fn_name}: {name} must be {_expected(kinds)}, got {value!r} (a bool)")
    if kinds & _BOOL and not (kinds - _BOOL):
        if isinstance(value, numbers.Integral) and value in (0, 1):
            return bool(value)
        raise CourseError(f"{fn_name}: {name} must be True or False, got {_given(value)}")
    if isinstance(value, str) and kinds & _DEVICE:
        return device(f"{fn_name}: {name}", value)
    if isinstance(value, str) and kinds & _CARD:
        from . import catalogue

        return catalogue.get(value)  # an unknown name: a CourseError with the closest names
    if isinstance(value, numbers.Real) and kinds & (_INT | _FLOAT):
        key = name
        if f"{fn_name}.{name}" in SIZE_RANGES or f"{fn_name}.{name}" in POSITIVE_FLOATS:
            key = f"{fn_name}.{name}"  # a range that holds for this function's argument only
        if isinstance(value, numbers.Integral):
            if kinds & _INT and key in SIZE_RANGES:
                low, high = SIZE_RANGES[key]
                whole_number(f"{fn_name}: {name}", value, minimum=low, maximum=high)
            elif kinds & _FLOAT and key in POSITIVE_FLOATS:
                positive_number(f"{fn_name}: {name}", value, maximum=POSITIVE_FLOATS[key])
            elif kinds & _FLOAT and key in NONNEGATIVE_FLOATS:
                positive_number(f"{fn_name}: {name}", value, allow_zero=True, maximum=NONNEGATIVE_FLOATS[key])
            return value
        if not math.isfinite(float(value)):
            raise CourseError(f"{fn_name}: {name} must be a finite number, got {value}")
        if kinds & _FLOAT:
            if key in POSITIVE_FLOATS:
                positive_number(f"{fn_name}: {name}", value, maximum=POSITIVE_FLOATS[key])
            elif key in NONNEGATIVE_FLOATS:
                positive_number(f"{fn_name}: {name}", value, allow_zero=True, maximum=NONNEGATIVE_FLOATS[key])
            return value
        if float(value).is_integer():
            return _gate(fn_name, name, int(value), kinds, optional)
        raise CourseError(f"{fn_name}: {name} must be a whole number, got {value}")
    if isinstance(value, str) and kinds & (_STR | _PATH):
        if kinds & _PATH and not value.strip():
            raise CourseError(f"{fn_name}: {name} must be a file path, got an empty string")
        if (name in NONEMPTY_TEXTS or f"{fn_name}.{name}" in NONEMPTY_TEXTS) and not value.strip():
            raise CourseError(f"{fn_name}: {name} must be a non-empty text (the model needs at least one token), "
                              f"got {value!r}")
        if kinds & _PATH and not kinds & _STR:
            from pathlib import Path

            return Path(value)  # a path typed as a string where a Path is expected: accepted
        return value
    if not isinstance(value, _BUILTIN):
        return value  # an object of the package's or a library's own type: the function's own checks decide
    if kinds & (_TENSOR | _MODULE):
        import torch

        if kinds & _TENSOR:
            if isinstance(value, torch.Tensor):
                return value
            if isinstance(value, (list, tuple)):
                return tensor(f"{fn_name}: {name}", value)  # a (rectangular) list of numbers is accepted
        if kinds & _MODULE:
            if isinstance(value, torch.nn.Module):
                return value
            if isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], torch.nn.Module):
                return value[0]
            if isinstance(value, str):
                from . import catalogue

                catalogue.get(value)  # an unknown name: a CourseError with the closest names
                return value  # some functions accept a catalogue name; the others refuse it themselves
    raise CourseError(f"{fn_name}: {name} must be {_expected(kinds)}, got {_given(value)}")


_MODEL_NAMES = {"model", "teacher", "student", "target", "draft", "encoder"}
_CALLBACK_NAMES = {"on_token", "step_loss", "fn", "retrieve", "handler", "callback"}
_TENSOR_NAMES = {"input_ids", "ids", "attention_mask", "logits", "blocks"}


_LOOSE = {"Any", "Callable", "Sequence", "Iterable", "Mapping", "Path", "Union", "Optional"}


def _by_name(param) -> tuple[set, bool] | None:
    """Kinds for an argument whose annotation says nothing simple, judged by its name (issue 20's pattern 2:
    a model, tokenizer, tensor or function expected but not checked)."""
    optional = param.default is None
    annotation = param.annotation if isinstance(param.annotation, str) else ""
    if "Callable" in annotation or (param.name in _CALLBACK_NAMES and not annotation):
        return {"callable"}, optional or "None" in annotation
    if param.name == "tokenizer" and not annotation:
        return {"tokenizer"}, optional
    if param.name in _MODEL_NAMES and not annotation:
        return _MODULE, optional
    if param.name in _TENSOR_NAMES and not annotation:
        return _TENSOR, optional
    for marker in ("Sequence[str]", "Iterable[str]", "list[str]", "tuple[str, ...]"):
        if marker in annotation and "Sequence[tuple" not in annotation:
            return {"strings"}, optional or "None" in annotation
    if annotation.startswith(("Sequence", "Iterable", "list[", "tuple[")) and "str |" not in annotation:
        return {"sequence"}, optional or "None" in annotation
    if annotation.startswith(("dict[", "Mapping[", "dict |", "dict")) and "str |" not in annotation:
        return {"mapping"}, optional or "None" in annotation
    if annotation.replace(" ", "") in ("torch.dtype", "torch.dtype|None", "torch.Generator", "torch.Generator|None"):
        return {"object"}, optional or "None" in annotation
    parts = {part.strip().strip("'\"") for part in annotation.split("|")} - {"None"} if annotation else set()
    if parts and all(part[:1].isupper() and part.isidentifier() for part in parts) and not parts & _LOOSE:
        return {"object"}, optional or "None" in annotation  # a package type such as Constraints or Measured
    return None


def param_type_hint(name: str) -> str:
    return {"constraints": "Constraints(...) (from slmcourse.choose)", "measured": "Measured(...) record",
            "language": "MarkovLanguage(...)", "teacher": "SparseTeacher or a tensor",
            "scale_dtype": "torch dtype such as torch.float16", "dtype": "torch dtype such as torch.float32",
            "generator": "torch.Generator (e.g. torch.Generator().manual_seed(0))"}.get(name, "value of the documented type")


def _gate_other(fn_name: str, name: str, value: Any, kinds: set, optional: bool) -> Any:
    if value is None and optional:
        return value
    if "callable" in kinds:
        if not callable(value):
            raise CourseError(f"{fn_name}: {name} must be a function, got {_given(value)}")
        return value
    if "tokenizer" in kinds:
        if isinstance(value, _BUILTIN):
            raise CourseError(f"{fn_name}: {name} must be the model's tokenizer (e.g. from "
                              f"model, tokenizer = load(...)), got {_given(value)}")
        return value
    if "mapping" in kinds:
        if isinstance(value, dict) or not isinstance(value, _BUILTIN):
            return value
        raise CourseError(f"{fn_name}: {name} must be a dict, got {_given(value)}")
    if "object" in kinds:
        if isinstance(value, _BUILTIN):
            raise CourseError(f"{fn_name}: {name} must be a {param_type_hint(name)}, got {_given(value)}")
        return value
    if "sequence" in kinds:
        if isinstance(value, (list, tuple, range)) or not isinstance(value, _BUILTIN):
            return value
        raise CourseError(f"{fn_name}: {name} must be a list, got {_given(value)}")
    if "strings" in kinds:
        if isinstance(value, str) and name in NOT_ONE_STRING:
            raise CourseError(f"{fn_name}: {name} must be a list of strings, got the single string {value!r} "
                              f"(it would be read letter by letter; write [{value!r}])")
        if name in NOT_ONE_STRING and isinstance(value, (list, tuple)) and not value:
            raise CourseError(f"{fn_name}: {name} must be a non-empty list of strings, got {_given(value)}")
        if isinstance(value, str):
            return value  # the function decides: a single string, or refused by its own check
        if not isinstance(value, (list, tuple, set, frozenset)):
            if isinstance(value, _BUILTIN):
                raise CourseError(f"{fn_name}: {name} must be a list of strings, got {_given(value)}")
            return value  # a generator or a library's sequence type
        for item in value:
            if not isinstance(item, str):
                raise CourseError(f"{fn_name}: {name} must contain only strings, got {_given(item)} in it")
        return value
    return value


def typed(fn, label: str | None = None):
    """Wrap a public function so that each argument annotated with a simple type (int, float, str, bool,
    torch.Tensor, nn.Module, optionally `| None`) is checked on entry with `_gate`. Arguments with any other
    annotation pass untouched; the function's own checks (ranges, names) still run after."""
    import functools
    import inspect

    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):
        return fn
    gates = {}
    for param in signature.parameters.values():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            continue
        kinds = _kinds(param.annotation)
        if param.name == "device" and param.annotation is param.empty:  # an unannotated torch device
            kinds = (_DEVICE, True)
        if not kinds:
            kinds = _by_name(param)
        if kinds:
            gates[param.name] = (kinds[0], kinds[1] or param.default is None)
    if not gates or getattr(fn, "__wrapped_by_checks__", False):
        return fn

    label = label or fn.__name__

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            bound = signature.bind(*args, **kwargs)
        except TypeError as err:
            raise CourseError(f"{label}: {err} (see help({label}))") from None
        changed = False
        for name, (kinds, optional) in gates.items():
            if name in bound.arguments:
                value = bound.arguments[name]
                if kinds & _SIMPLE:
                    checked = _gate(label, name, value, kinds, optional)
                else:
                    checked = _gate_other(label, name, value, kinds, optional)
                if checked is not value:
                    bound.arguments[name], changed = checked, True
        if changed:
            return fn(*bound.args, **bound.kwargs)
        return fn(*args, **kwargs)

    wrapper.__wrapped_by_checks__ = True
    return wrapper


def guard_public(namespace: dict) -> None:
    """Put `typed` on every public function defined in a module (call at its bottom: `guard_public(globals())`).
    Classes, imported names and leading-underscore helpers are left alone."""
    import inspect

    import dataclasses

    module = namespace.get("__name__")
    for key, value in list(namespace.items()):
        if key.startswith("_") or getattr(value, "__module__", None) != module:
            continue
        if inspect.isfunction(value):
            namespace[key] = typed(value)
        elif (inspect.isclass(value) and not dataclasses.is_dataclass(value) and not issubclass(value, BaseException)
              and not hasattr(value, "_fields") and "__init__" in vars(value)):
            value.__init__ = typed(value.__init__, label=key)  # a class a learner builds: its arguments too
