"""The model catalogue: read from catalogue.toml (data, not code) and looked up by any of its names."""
from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from .errors import CourseError

CATALOGUE_FILE = Path(__file__).with_name("catalogue.toml")
FAMILIES = ("decoder-only", "encoder", "encoder-decoder")
# What the published weights were tuned for: a base model continues text; an instruct model follows
# one instruction; a chat model holds a conversation through its chat template.
TUNINGS = ("base", "instruct", "chat")
NEWEST_ERA = "2024-26"


@dataclass(frozen=True)
class ModelCard:
    """One catalogue entry. `config` holds the full-size hyperparameters (transformers names)."""

    key: str
    name: str
    hub_id: str
    organisation: str
    licence: str
    family: str
    params: int
    params_source: str
    context_length: int
    position: str
    sliding_window: int
    config: dict[str, Any]
    scaled_down: dict[str, Any]
    bundled: bool = False
    package: dict[str, Any] = field(default_factory=dict)
    source: dict[str, str] = field(default_factory=dict)
    corrections: tuple[dict[str, str], ...] = ()
    tuning: str = "base"
    tuning_source: str = ""
    # The 2024-26 block (lesson 7): era = "2024-26", the release year, and for a mixture of experts the
    # parameters one token uses (published figure and where it is published).
    era: str = ""
    year: int = 0
    active_params: int = 0
    active_params_source: str = ""

    @property
    def is_tuned(self) -> bool:
        """True for instruct and chat models (tuned to follow instructions), False for a base model."""
        return self.tuning != "base"

    @property
    def heads(self) -> int:
        c = self.config
        return int(c.get("num_attention_heads") or c.get("n_heads") or c.get("num_heads"))

    @property
    def kv_heads(self) -> int:
        c = self.config
        if c.get("multi_query"):
            return 1
        return int(c.get("num_key_value_heads") or self.heads)

    @property
    def layers(self) -> int:
        c = self.config
        return int(c.get("num_hidden_layers") or c.get("n_layers") or c.get("num_layers"))

    @property
    def hidden_size(self) -> int:
        c = self.config
        return int(c.get("hidden_size") or c.get("d_model") or c.get("dim"))

    @property
    def head_dim(self) -> int:
        c = self.config
        return int(c.get("head_dim") or c.get("d_kv") or self.hidden_size // self.heads)

    @property
    def attention(self) -> str:
        """'MHA', 'MQA' or 'GQA', computed from the heads in the config ('MLA' for latent attention)."""
        if self.config.get("kv_lora_rank"):
            return "MLA"
        return attention_kind(self.heads, self.kv_heads)

    @property
    def is_moe(self) -> bool:
        """True for a mixture of experts (the catalogue records its active parameters)."""
        return self.active_params > 0

    @property
    def decoder_layers(self) -> int:
        """Layers that keep a KV cache when generating (the decoder stack; 0 for an encoder)."""
        if self.family == "encoder":
            return 0
        return int(self.config.get("num_decoder_layers") or self.layers)


def attention_kind(heads: int, kv_heads: int) -> str:
    """Name the attention variant from the number of query heads and key/value heads."""
    from .checks import whole_number

    whole_number("heads", heads, minimum=1, maximum=1_000_000)
    whole_number("kv_heads", kv_heads, minimum=1, maximum=1_000_000)
    if heads <= 0 or kv_heads <= 0:
        raise CourseError(f"head counts must be positive, got {heads} query heads and {kv_heads} KV heads")
    if heads % kv_heads:
        raise CourseError(f"{heads} query heads cannot be shared evenly among {kv_heads} KV heads")
    if kv_heads == heads:
        return "MHA"
    if kv_heads == 1:
        return "MQA"
    return "GQA"


@lru_cache(maxsize=1)
def _cards() -> dict[str, ModelCard]:
    raw = tomllib.loads(CATALOGUE_FILE.read_text())["models"]
    cards = {}
    for key, entry in raw.items():
        entry = dict(entry)
        entry["corrections"] = tuple(entry.get("corrections", ()))
        for table in ("config", "scaled_down"):  # TOML has no null: "none" stands for a config field set to None
            if table in entry:
                entry[table] = {k: (None if v == "none" else v) for k, v in entry[table].items()}
        cards[key] = ModelCard(key=key, **entry)
        if cards[key].family not in FAMILIES:
            raise ValueError(f"catalogue entry {key}: unknown family {cards[key].family!r}")
        if cards[key].tuning not in TUNINGS or not cards[key].tuning_source:
            raise ValueError(f"catalogue entry {key}: tuning must be one of {TUNINGS} with a tuning_source, "
                             f"got {cards[key].tuning!r}")
    return cards


def _norm(text: str) -> str:
    return "".join(ch for ch in text.lower() if ch.isalnum())


def names(bundled: bool | None = None, era: str | None = None) -> list[str]:
    """Catalogue keys in file order; `bundled=True` for the offline models only, False for the others;
    `era="2024-26"` for lesson 7's block of newer models only, `era=""` for the original catalogue."""
    if bundled is not None and not isinstance(bundled, bool):
        raise CourseError(f"bundled must be True, False or None, got {bundled!r}")
    if era is not None and not isinstance(era, str):
        raise CourseError(f"era must be a string such as '2024-26' (or '' or None), got {era!r}")
    return [k for k, c in _cards().items()
            if (bundled is None or c.bundled == bundled) and (era is None or c.era == era)]


def source_table_names() -> list[str]:
    """The fifteen models of the source table (not bundled, not in the 2024-26 block)."""
    return names(bundled=False, era="")


def newest_names() -> list[str]:
    """Lesson 7's 2024-26 block: newer small models with MoE, latent attention and hybrid layers."""
    return names(era=NEWEST_ERA)


def get(name: str) -> ModelCard:
    """Find a model by key, display name or Hub id, ignoring case and punctuation."""
    if isinstance(name, ModelCard):
        return name
    if not isinstance(name, str) or not name.strip():
        raise CourseError(f"a model name must be a non-empty string, got {name!r}")
    wanted = _norm(name)
    for card in _cards().values():
        if wanted in (_norm(card.key), _norm(card.name), _norm(card.hub_id)):
            return card
    from .checks import closest

    near = closest(name, [c.key for c in _cards().values()] + [c.name for c in _cards().values()])
    hint = f" Did you mean {' or '.join(repr(n) for n in dict.fromkeys(near))}?" if near else ""
    raise CourseError(f"{name!r} is not in the course catalogue.{hint} Known models: {', '.join(names())}")


def find(name: str) -> ModelCard | None:
    """Like get(), but None for an unknown name."""
    try:
        return get(name)
    except CourseError:
        return None


def all_cards(include_newest: bool = False) -> list[ModelCard]:
    """The catalogue's cards: the source table and the bundled models; with `include_newest=True` also
    lesson 7's 2024-26 block (kept out by default so the chooser's and planner's rankings stay those of
    the lessons that use them)."""
    return [c for c in _cards().values() if include_newest or c.era != NEWEST_ERA]

from .checks import guard_public as _guard_public  # noqa: E402 - issue 20: typed arguments checked on entry

_guard_public(globals())
