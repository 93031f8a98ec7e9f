"""Anatomy of a model: its config in brief, its block structure, where its parameters live, what memory it needs.

The logic of lesson 2's architecture explorer, as plain functions. Everything works on full-size
architectures built on the `meta` device (`models.full_size`): exact shapes and counts, no weights,
no memory. A Hub id that is not in the catalogue is built the same way from its config, online only.
"""
from __future__ import annotations

import re
from collections import OrderedDict
from dataclasses import dataclass

import torch
from transformers import AutoConfig, AutoModel, AutoModelForCausalLM, AutoModelForSeq2SeqLM

from . import catalogue
from .catalogue import ModelCard
from .errors import CourseError, OfflineError
from .memory import DEVICES, FORMATS, GiB, fit, weights_bytes
from .models import _build, count_parameters, make_config, parameter_breakdown

# BERT-base (Devlin et al. 2019, arXiv:1810.04805, Table/section 3: L=12, H=768, A=12, 110M parameters)
# - the teacher DistilBERT was distilled from (Sanh et al. 2019, arXiv:1910.01108).
BERT_BASE = dict(model_type="bert", vocab_size=30522, hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                 intermediate_size=3072, max_position_embeddings=512, type_vocab_size=2)


# ---------------------------------------------------------------------------------------------
# Building on meta
# ---------------------------------------------------------------------------------------------

def meta_model(name: str | ModelCard, **overrides) -> torch.nn.Module:
    """A catalogued architecture at full size on `meta`, with optional config overrides
    (e.g. `meta_model("albert-base", num_hidden_groups=12)` builds ALBERT without layer sharing)."""
    card = catalogue.get(name)
    config = make_config(card, **overrides)
    with torch.device("meta"):
        return _build(card, config)


def meta_from_config(fields: dict) -> torch.nn.Module:
    """Any architecture on `meta` from a dict of config fields (with `model_type`), e.g. BERT_BASE."""
    fields = dict(fields)
    try:
        model_type = fields.pop("model_type")
        config = AutoConfig.for_model(model_type, **fields)
    except (KeyError, TypeError, ValueError) as err:
        raise CourseError(f"not a valid config: {err}") from None
    with torch.device("meta"):
        return _auto_for(config).from_config(config)


def _auto_for(config):
    if getattr(config, "is_encoder_decoder", False):
        return AutoModelForSeq2SeqLM
    if any(a.endswith("ForCausalLM") for a in (getattr(config, "architectures", None) or [])):
        return AutoModelForCausalLM
    if config.model_type in ("bert", "distilbert", "albert", "roberta", "electra", "deberta", "deberta-v2", "xlm-roberta"):
        return AutoModel
    return AutoModelForCausalLM


def build(name_or_hub_id: str) -> tuple[torch.nn.Module, ModelCard | None]:
    """(model on meta, its catalogue card or None) for a catalogued name, or for a Hub id when online.

    Raises CourseError for a malformed name and OfflineError for an uncatalogued Hub id offline.
    Only the config is downloaded, never weights; remote code is never trusted.
    """
    if not isinstance(name_or_hub_id, str) or not name_or_hub_id.strip():
        raise CourseError("type a catalogued model name or a Hub id like 'owner/name'")
    card = catalogue.find(name_or_hub_id.strip())
    if card is not None:
        return meta_model(card), card
    hub_id = name_or_hub_id.strip()
    if not re.fullmatch(r"[\w.\-]+/[\w.\-]+", hub_id):
        raise CourseError(f"{hub_id!r} is neither a catalogued model nor a Hub id like 'owner/name'. "
                          f"Catalogued: {', '.join(catalogue.names())}")
    from .env import is_online
    if not is_online():
        raise OfflineError(f"{hub_id!r} is not in the catalogue and the Hugging Face Hub is not reachable "
                           f"(offline): pick a catalogued model instead")
    try:
        config = AutoConfig.from_pretrained(hub_id, trust_remote_code=False)
    except Exception as err:  # noqa: BLE001 - any Hub failure becomes a readable message
        raise CourseError(f"cannot read the config of {hub_id!r} from the Hub: {err}") from None
    try:
        with torch.device("meta"):
            return _auto_for(config).from_config(config), None
    except Exception as err:  # noqa: BLE001
        raise CourseError(f"transformers cannot build {hub_id!r} from its config: {err}") from None


# ---------------------------------------------------------------------------------------------
# Config summary
# ---------------------------------------------------------------------------------------------

def _get(config, *names):
    for n in names:
        try:
            value = getattr(config, n)
        except AttributeError:
            continue
        if value is not None:
            return value
    return None


def family_of(model: torch.nn.Module) -> str:
    config = model.config
    if getattr(config, "is_encoder_decoder", False):
        return "encoder-decoder"
    if type(model).__name__.endswith("ForCausalLM"):
        return "decoder-only"
    return "encoder"


def tied_embeddings(model: torch.nn.Module) -> bool | None:
    """True if the LM head reuses the input embedding matrix, False if it has its own, None if no LM head."""
    head = model.get_output_embeddings()
    if head is None:
        return None
    return head.weight is model.get_input_embeddings().weight


def config_summary(model: torch.nn.Module, card: ModelCard | None = None) -> "OrderedDict[str, object]":
    """The hyperparameters that define the architecture, read from the model's config."""
    c = model.config
    heads = _get(c, "num_attention_heads", "n_heads", "num_heads")
    kv = 1 if _get(c, "multi_query") else (_get(c, "num_key_value_heads") or heads)
    hidden = _get(c, "hidden_size", "d_model", "dim")
    inter = _get(c, "intermediate_size", "ffn_dim", "d_ff", "hidden_dim")
    if inter is None and _get(c, "expansion_ratio"):
        inter = hidden * c.expansion_ratio
    if inter is None and c.model_type == "falcon":
        inter = _get(c, "ffn_hidden_size") or 4 * hidden
    head_dim = _get(c, "head_dim", "d_kv") or (hidden // heads if hidden and heads else None)
    summary = OrderedDict()
    summary["family"] = family_of(model)
    summary["model class"] = type(model).__name__
    summary["model_type"] = c.model_type
    summary["layers"] = _get(c, "num_hidden_layers", "n_layers", "num_layers")
    if summary["family"] == "encoder-decoder":
        summary["decoder layers"] = _get(c, "num_decoder_layers")
    summary["hidden size"] = hidden
    summary["MLP size"] = inter
    summary["query heads"] = heads
    summary["key/value heads"] = kv
    if heads and kv:
        summary["attention"] = catalogue.attention_kind(int(heads), int(kv))
    summary["head dim"] = head_dim
    summary["vocabulary"] = _get(c, "vocab_size")
    if _get(c, "embedding_size") and _get(c, "embedding_size") != hidden:
        summary["embedding size"] = c.embedding_size
    tied = tied_embeddings(model)
    summary["tied embeddings"] = "no LM head" if tied is None else ("yes" if tied else "no")
    if card is not None:
        summary["context"] = card.context_length
        summary["positions"] = card.position
        summary["sliding window"] = card.sliding_window or "none"
    summary["parameters"] = count_parameters(model)
    return summary


# ---------------------------------------------------------------------------------------------
# Block structure
# ---------------------------------------------------------------------------------------------

def _fmt(n: int) -> str:
    if n >= 1e9:
        return f"{n / 1e9:.2f}B"
    if n >= 1e6:
        return f"{n / 1e6:.2f}M"
    if n >= 1e3:
        return f"{n / 1e3:.1f}k"
    return str(n)


def _own_shape(module: torch.nn.Module) -> str:
    if isinstance(module, torch.nn.Linear):
        return f" {module.in_features} -> {module.out_features}" + ("" if module.bias is not None else ", no bias")
    if isinstance(module, torch.nn.Embedding):
        return f" {module.num_embeddings} x {module.embedding_dim}"
    return ""


def block_structure(model: torch.nn.Module, max_depth: int = 4) -> str:
    """The module tree as indented text, with parameter counts; a stack of identical layers is shown once
    as "N x Layer" (that repetition IS the transformer), and a weight shared with an earlier module says so."""
    if not isinstance(max_depth, int) or max_depth < 1:
        raise CourseError(f"max_depth must be a whole number >= 1, got {max_depth!r}")
    seen: dict[int, str] = {}
    for name, p in model.named_parameters(remove_duplicate=False):
        seen.setdefault(id(p), name)
    lines = [f"{type(model).__name__}  ({_fmt(count_parameters(model))} parameters)"]

    def params_of(module):
        return sum(p.numel() for p in module.parameters())

    def walk(module, prefix, depth, indent):
        if depth > max_depth:
            return
        children = list(module.named_children())
        for name, child in children:
            path = f"{prefix}.{name}" if prefix else name
            shared = ""
            own = list(child.named_parameters(recurse=False))
            if own and all(seen[id(p)] != f"{path}.{pn}" for pn, p in own):
                shared = f"  [shares its weight with {seen[id(own[0][1])].rsplit('.', 1)[0]}]"
            if isinstance(child, torch.nn.ModuleList) and len(child) > 0:
                kinds = {type(m).__name__ for m in child}
                sizes = {params_of(m) for m in child}
                if len(kinds) == 1:
                    first = child[0]
                    each = (f"{_fmt(params_of(first))} each" if len(sizes) == 1 else
                            f"{min(sizes):,} to {max(sizes):,} each; the first shown")
                    lines.append(f"{'  ' * indent}{name}: {len(child)} x {type(first).__name__}  ({each})")
                    walk(first, f"{path}.0", depth + 1, indent + 1)
                    continue
            count = "" if shared else f"  ({_fmt(params_of(child))})" if params_of(child) else ""
            lines.append(f"{'  ' * indent}{name}: {type(child).__name__}{_own_shape(child)}{count}{shared}")
            walk(child, path, depth + 1, indent + 1)

    walk(model, "", 1, 1)
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# Parameter breakdown, counts against the published figures, memory
# ---------------------------------------------------------------------------------------------

def breakdown_rows(model: torch.nn.Module) -> list[dict]:
    """One row per part (embeddings, attention, mlp, norms, head, other): parameters and share in %."""
    parts = parameter_breakdown(model)
    total = sum(parts.values())
    if total == 0:
        raise CourseError("this model has no parameters")
    return [{"part": part, "parameters": n, "share %": round(100 * n / total, 1)} for part, n in parts.items()]


def count_check(names: list[str] | None = None) -> list[dict]:
    """For each catalogued model: parameters counted on the full-size `meta` build vs the published figure."""
    rows = []
    for key in names if names is not None else catalogue.source_table_names():
        card = catalogue.get(key)
        model = meta_model(card)
        computed = count_parameters(model)
        rows.append({"model": card.name, "family": card.family, "class": type(model).__name__,
                     "computed": computed, "published": card.params, "difference": computed - card.params,
                     "source of the published figure": card.params_source.split(";")[0]})
    return rows


# The formats the memory table shows: real formats at their real bits per weight first, then the bare
# 4-bit width as a labelled ideal lower bound (no real 4-bit file reaches it: each block stores a scale).
MEMORY_FORMATS = ("fp32", "bf16", "Q8_0", "Q5_K_M", "Q4_K_M", "Q4_0", "int4")


def format_label(precision: str) -> str:
    """A format's name as tables print it: ideal lower bounds say so ("int4 (ideal bound)")."""
    from .checks import one_of

    precision = one_of("precision", precision, FORMATS)
    return f"{precision} (ideal bound)" if FORMATS[precision].ideal else precision


def memory_rows(name_or_params: str | ModelCard | int, context: int = 2048,
                device: str = "Laptop (16 GB RAM)", formats: tuple[str, ...] = MEMORY_FORMATS) -> list[dict]:
    """Memory in each of `formats` (real bits per weight, memory.FORMATS). For a catalogued model: weights +
    KV cache + activations for `context` tokens and whether it fits `device` (memory.fit); for a bare
    parameter count: the weights only. An ideal format's row is labelled "(ideal bound)"."""
    for precision in formats:
        format_label(precision)                   # refuses an unknown format with a message
    rows = []
    if isinstance(name_or_params, int) and not isinstance(name_or_params, bool):
        for precision in formats:
            rows.append({"precision": format_label(precision), "bits/weight": FORMATS[precision].bits_per_weight,
                         "weights GiB": round(weights_bytes(name_or_params, precision) / GiB, 3)})
        return rows
    card = catalogue.get(name_or_params)
    if device not in DEVICES:
        raise CourseError(f"unknown device {device!r}; choose one of: {', '.join(DEVICES)}")
    context = min(context, card.context_length) if isinstance(context, int) and not isinstance(context, bool) else context
    for precision in formats:
        report = fit(card, precision, context, 1, device)
        rows.append({"precision": format_label(precision), "bits/weight": FORMATS[precision].bits_per_weight,
                     "weights GiB": round(report.weights / GiB, 3),
                     "KV cache GiB": round(report.kv_cache / GiB, 3),
                     "activations GiB": round(report.activations / GiB, 3),
                     "total GiB": round(report.total / GiB, 3), f"fits {device}": "yes" if report.fits else "no"})
    return rows


# ---------------------------------------------------------------------------------------------
# Parameter counting by hand (lessons 1 and 2 build these inline first)
# ---------------------------------------------------------------------------------------------

def _field(config, name: str):
    value = config.get(name) if isinstance(config, dict) else getattr(config, name, None)
    return value


def _whole_fields(config, names: tuple[str, ...], what: str) -> dict:
    out = {}
    for name in names:
        value = _field(config, name)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise CourseError(f"{what}: config field {name!r} must be a whole number >= 1, got {value!r}")
        out[name] = value
    return out


def llama_parameter_count(config) -> int:
    """Parameters of a Llama-family decoder (Llama, Mistral, SmolLM2, TinyLlama, CodeLlama, Gemma) from its config.

    embedding V*d; per layer: W_q d*H*h, W_k and W_v d*G*h each, W_o H*h*d (no biases), a gated MLP of three
    d*I matrices, two RMSNorm vectors of d; a final norm d; an LM head V*d unless tie_word_embeddings.
    `config` is a transformers config or a dict of its fields.
    """
    f = _whole_fields(config, ("vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers",
                               "num_attention_heads"), "llama_parameter_count")
    d, V, I, L, H = (f["hidden_size"], f["vocab_size"], f["intermediate_size"], f["num_hidden_layers"],
                     f["num_attention_heads"])
    G = _field(config, "num_key_value_heads") or H
    h = _field(config, "head_dim") or d // H
    if H % G:
        raise CourseError(f"{H} query heads cannot be shared evenly among {G} key/value heads")
    tied = _field(config, "tie_word_embeddings")
    attention = d * H * h + 2 * d * G * h + H * h * d
    per_layer = attention + 3 * d * I + 2 * d
    return V * d + L * per_layer + d + (0 if tied else V * d)


def albert_parameter_count(config) -> int:
    """Parameters of transformers' AlbertModel (with its pooler) from its config (an AlbertConfig or a dict).

    Factorised embeddings: word V*E, positions P*E, token types T*E, a LayerNorm (2E), then a projection
    E*H + H up to the hidden size. Cross-layer sharing: only `num_hidden_groups` distinct layers exist
    (1 in ALBERT-base), each a BERT layer: attention 4(H*H + H) + LayerNorm 2H, MLP H*I + I + I*H + H +
    LayerNorm 2H. The pooler is H*H + H.
    """
    f = _whole_fields(config, ("vocab_size", "embedding_size", "hidden_size", "intermediate_size",
                               "max_position_embeddings", "num_hidden_groups"), "albert_parameter_count")
    V, E, H, I, P, groups = (f["vocab_size"], f["embedding_size"], f["hidden_size"], f["intermediate_size"],
                             f["max_position_embeddings"], f["num_hidden_groups"])
    T = _field(config, "type_vocab_size") or 2
    inner = _field(config, "inner_group_num") or 1
    embeddings = V * E + P * E + T * E + 2 * E
    projection = E * H + H
    layer = 4 * (H * H + H) + 2 * H + (H * I + I) + (I * H + H) + 2 * H
    return embeddings + projection + groups * inner * layer + H * H + H


# ---------------------------------------------------------------------------------------------
# Two lessons in parameter thrift: ALBERT's sharing, DistilBERT's halved depth
# ---------------------------------------------------------------------------------------------

def albert_sharing() -> "OrderedDict[str, int]":
    """ALBERT-base's two savings (Lan et al. 2020), computed on `meta` builds.

    cross-layer sharing: one set of layer weights reused by all 12 layers (num_hidden_groups=1) vs 12 sets;
    factorised embeddings: V x E + E x H (E=128) instead of V x H.
    """
    card = catalogue.get("albert-base")
    shared = meta_model(card)
    unshared = meta_model(card, num_hidden_groups=card.layers)
    c = card.config
    vocab, emb, hidden = c["vocab_size"], c["embedding_size"], c["hidden_size"]
    out = OrderedDict()
    out["ALBERT-base as published (1 shared layer, E=128)"] = count_parameters(shared)
    out["without cross-layer sharing (12 layers)"] = count_parameters(unshared)
    out["word embeddings factorised: V x E + E x H"] = vocab * emb + emb * hidden
    out["word embeddings unfactorised: V x H"] = vocab * hidden
    return out


def distilbert_vs_bert() -> "OrderedDict[str, int]":
    """Parameters of BERT-base (built from its published config) and DistilBERT, and where they differ."""
    bert = meta_from_config(BERT_BASE)
    distil = meta_model("distilbert")
    layer_bert = sum(p.numel() for p in bert.encoder.layer[0].parameters())
    out = OrderedDict()
    out["BERT-base"] = count_parameters(bert)
    out["DistilBERT"] = count_parameters(distil)
    out["one transformer layer"] = layer_bert
    out["6 layers removed"] = 6 * layer_bert
    out["pooler removed"] = sum(p.numel() for p in bert.pooler.parameters())
    out["token-type embeddings removed"] = bert.embeddings.token_type_embeddings.weight.numel()
    return out


# ---------------------------------------------------------------------------------------------
# All of it at once (the explorer's function)
# ---------------------------------------------------------------------------------------------

@dataclass
class Anatomy:
    name: str
    summary: "OrderedDict[str, object]"
    structure: str
    breakdown: list[dict]
    memory: list[dict]
    card: ModelCard | None = None


def anatomy(name_or_hub_id: str, context: int = 2048, device: str = "Laptop (16 GB RAM)",
            max_depth: int = 4) -> Anatomy:
    """Config summary, block structure, parameter breakdown and memory needs of one model."""
    from .checks import whole_number

    whole_number("max_depth", max_depth, minimum=0, maximum=64)
    whole_number("context", context, minimum=1)
    model, card = build(name_or_hub_id)
    memory = memory_rows(card, context, device) if card is not None else memory_rows(count_parameters(model))
    return Anatomy(name=card.name if card else name_or_hub_id.strip(), summary=config_summary(model, card),
                   structure=block_structure(model, max_depth), breakdown=breakdown_rows(model),
                   memory=memory, card=card)

from .checks import guard_public as _guard_public  # noqa: E402 - issue 20: typed arguments checked on entry

_guard_public(globals())
