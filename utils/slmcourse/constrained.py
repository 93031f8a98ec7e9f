"""Constrained decoding: a small JSON grammar enforced as a mask on the logits, inside the generation loop.

A schema such as {"name": string, "age": integer, "city": string} with a fixed key order is a sequence
of **parts**: literal text (`{"name": "`) and typed fields (a string of 1 to 40 characters without
quotes, a positive integer of 1 to 3 digits). `advance(state, text)` reads text character by character and
returns the new state, or None as soon as the text can no longer be the start of a valid object.

At each step of the generation loop a token is **allowed** when its text keeps the output a valid
prefix; every other token's logit is set to -inf, so greedy decoding or sampling can only pick an
allowed token. The end-of-sequence token is allowed only once the object is complete. Because every
field has a maximum length and the vocabulary holds every single character, a valid continuation
always exists: the output is valid JSON of the schema whatever the logits say.

`allowed_mask` is the mask over the whole vocabulary (what llama.cpp's GBNF grammars, outlines and
xgrammar compute, with precompiled automata instead of a Python loop); `constrained_choice` finds the
same greedy token lazily, checking tokens from the most likely down until one fits.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Sequence

import torch

from .errors import CourseError


@dataclass(frozen=True)
class Field:
    """A typed hole in the template: 'string' (no quote, backslash or newline) or 'integer' (a positive whole
    number: digits, the first one not 0, since JSON forbids leading zeros)."""
    kind: str
    max_len: int = 40

    def accepts(self, ch: str, n: int = 1) -> bool:
        """May `ch` be the field's character number n + 1?"""
        if self.kind == "integer":
            return ch in "0123456789" and not (n == 0 and ch == "0")
        return ch not in '"\\\n\r\t' and ch.isprintable()


def json_schema_parts(schema: dict[str, str], max_string: int = 40, max_digits: int = 3) -> list:
    """The parts of `{"key": value, ...}` for a flat schema {key: 'string' | 'integer'}, keys in order."""
    if not isinstance(schema, dict) or not schema:
        raise CourseError("schema must be a non-empty dict {key: 'string' or 'integer'}")
    parts, opening = [], "{"
    for key, kind in schema.items():
        if kind not in ("string", "integer") or not isinstance(key, str) or not key or '"' in key:
            raise CourseError(f"schema entry {key!r}: {kind!r} - keys are plain strings, types 'string' or 'integer'")
        quote = '"' if kind == "string" else ""
        parts.append(f'{opening}"{key}": {quote}')
        parts.append(Field(kind, max_string if kind == "string" else max_digits))
        opening = f'{quote}, '
    parts.append(opening.replace(", ", "") + "}")
    return parts


def advance(parts: Sequence, state: tuple[int, int] | None, text: str) -> tuple[int, int] | None:
    """Read `text` from `state` (part index, characters read in it); None if it breaks the template."""
    if state is None:
        return None
    i, n = _state(state)
    for ch in text:
        if i == len(parts):
            return None                                    # nothing may follow the closing brace
        part = parts[i]
        if isinstance(part, Field):
            if part.accepts(ch, n) and n < part.max_len:
                n += 1
                continue
            if n == 0 or i + 1 == len(parts):              # a field holds at least one character
                return None
            i, n, part = i + 1, 0, parts[i + 1]           # the field is over: ch must start the next literal
        if ch != part[n]:
            return None
        n += 1
        if n == len(part):
            i, n = i + 1, 0
    return i, n


def _state(state) -> tuple[int, int]:
    """Issue 20: a state is None or (part index, characters read), two whole numbers >= 0."""
    if (not isinstance(state, (tuple, list)) or len(state) != 2
            or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in state)):
        raise CourseError(f"state must be None or (part index, characters read) - two whole numbers >= 0, "
                          f"as advance returns - got {state!r}")
    return state[0], state[1]


def is_complete(parts: Sequence, state: tuple[int, int] | None) -> bool:
    """True once every part has been read."""
    return state is not None and _state(state)[0] == len(parts)


def allowed_mask(parts: Sequence, state, token_texts: Sequence[str], eos_id: int | None = None) -> torch.Tensor:
    """Boolean mask over the vocabulary: True where the token keeps the output a valid prefix."""
    if isinstance(token_texts, str) or not len(token_texts):
        raise CourseError(f"token_texts must be the text of every token of the vocabulary (token_texts(tokenizer)), "
                          f"got {token_texts!r}"[:200])
    if eos_id is not None and not 0 <= eos_id < len(token_texts):
        raise CourseError(f"eos_id must be a token id from 0 to {len(token_texts) - 1}, got {eos_id!r}")
    mask = torch.tensor([bool(t) and advance(parts, state, t) is not None for t in token_texts])
    if eos_id is not None:
        mask[eos_id] = is_complete(parts, state)
    return mask


def constrained_choice(logits: torch.Tensor, parts: Sequence, state, token_texts: Sequence[str],
                       eos_id: int | None = None) -> int:
    """The greedy token under the mask, found lazily: the most likely token that keeps the output valid."""
    if not torch.is_tensor(logits) or logits.ndim != 1 or logits.numel() != len(token_texts):
        raise CourseError("logits must be a 1-D tensor with one score per entry of token_texts")
    if is_complete(parts, state):
        if eos_id is None:
            raise CourseError("the object is complete: only the end-of-sequence token may follow (give eos_id)")
        return eos_id
    for token in torch.argsort(logits, descending=True).tolist():
        text = token_texts[token]
        if token != eos_id and text and advance(parts, state, text) is not None:
            return token
    raise CourseError("no token of the vocabulary continues the template: the vocabulary lacks single characters")


def token_texts(tokenizer) -> list[str]:
    """Each token id's text; '' for special tokens and for tokens that are not whole UTF-8 characters."""
    special = set(tokenizer.all_special_ids)
    texts = []
    for i in range(len(tokenizer)):
        text = "" if i in special else tokenizer.decode([i])
        texts.append("" if "\ufffd" in text else text)
    return texts


@torch.no_grad()
def constrained_generate(model, input_ids: torch.Tensor, parts: Sequence | None, texts: Sequence[str],
                         eos_id: int, max_new_tokens: int = 48) -> list[int]:
    """Lesson 3's greedy loop with a KV cache; with `parts`, each step picks the best token the grammar allows.

    `parts=None` decodes without a constraint (plain greedy), for comparison. Returns the new token ids.
    """
    state, new = (0, 0), []
    ids, cache = input_ids, None
    for _ in range(max_new_tokens):
        out = model(input_ids=ids, past_key_values=cache, use_cache=True)
        cache, logits = out.past_key_values, out.logits[0, -1]
        if parts is None:
            token = int(logits.argmax())
        else:
            token = constrained_choice(logits[:len(texts)], parts, state, texts, eos_id)
            state = advance(parts, state, texts[token]) if token != eos_id else state
        if token == eos_id:
            break
        new.append(token)
        ids = torch.tensor([[token]], device=input_ids.device)
    return new


def parse_object(text: str, schema: dict[str, str]) -> dict | None:
    """The first {...} in text parsed as JSON with exactly the schema's keys and types, or None."""
    start = text.find("{")
    if start < 0:
        return None
    try:
        obj, _ = json.JSONDecoder().raw_decode(text[start:])
    except ValueError:
        return None
    if not isinstance(obj, dict) or set(obj) != set(schema):
        return None
    types = {"string": str, "integer": int}
    if not all(isinstance(obj[k], types[v]) and not isinstance(obj[k], bool) for k, v in schema.items()):
        return None
    return obj

from .checks import guard_public as _guard_public  # noqa: E402 - issue 20: typed arguments checked on entry

_guard_public(globals())
