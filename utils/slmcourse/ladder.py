"""The course's size ladder (lesson 10): four Llama-architecture models that differ only in size.

Same byte-level tokenizer (256 bytes + one end-of-text token), same training text, same recipe, same
compute budget in tokens; trained by the course with utils/train_size_ladder.py on a CPU, shipped as
bfloat16 safetensors files in data/ladder/ with their SHA-256 (checked when loaded). These are
**trained by the course**: tiny, trained for minutes, on the eval tasks' `train` split plus the course's
own distillation text, so they show how accuracy moves with size when nothing else changes. The budget:
RECIPE's 1,000 steps x 16 sequences x 96 bytes = 1,536,000 training tokens per size (about four passes
over the 385,120-byte text; five times the first release's 200 steps, whose curve was mostly noise).
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import torch
from transformers import BatchEncoding, LlamaConfig, LlamaForCausalLM

from .errors import CourseError

LADDER_DIR = Path(__file__).resolve().parent / "data" / "ladder"
VOCAB = 257  # bytes 0..255 and <eot> = 256
EOT = 256
# name: (hidden size, layers, heads, MLP width)
SIZES = {
    "ladder-xs": (32, 2, 2, 96),
    "ladder-s": (64, 2, 4, 192),
    "ladder-m": (96, 3, 4, 288),
    "ladder-l": (128, 4, 4, 384),
}
CONTEXT = 96
# training recipe (the same for every size): see utils/train_size_ladder.py
RECIPE = {"steps": 1000, "batch": 16, "context": CONTEXT, "lr": 3e-3, "warmup": 20, "weight_decay": 0.1, "seed": 0}
TOKENS_SEEN = RECIPE["steps"] * RECIPE["batch"] * RECIPE["context"]


class ByteTokenizer:
    """UTF-8 bytes as tokens: no vocabulary to learn, every text encodable, the same for every ladder size."""
    pad_token_id = EOT
    eos_token_id = EOT
    chat_template = None
    vocab_size = VOCAB

    def __call__(self, text: str, return_tensors: str | None = None, **_) -> BatchEncoding:
        ids = list(text.encode("utf-8"))
        return BatchEncoding({"input_ids": [ids] if return_tensors else ids}, tensor_type=return_tensors)

    def decode(self, ids, skip_special_tokens: bool = True) -> str:
        ids = [int(i) for i in ids if int(i) < 256 or not skip_special_tokens]
        return bytes(i for i in ids if i < 256).decode("utf-8", errors="replace")


def config(name: str) -> LlamaConfig:
    if name not in SIZES:
        raise CourseError(f"unknown ladder size {name!r}: choose one of {', '.join(SIZES)}")
    hidden, layers, heads, ffn = SIZES[name]
    return LlamaConfig(vocab_size=VOCAB, hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
                       num_key_value_heads=heads, intermediate_size=ffn, max_position_embeddings=512,
                       tie_word_embeddings=True, bos_token_id=None, eos_token_id=EOT, pad_token_id=EOT,
                       rope_theta=10000.0)


def build(name: str, seed: int = 0) -> LlamaForCausalLM:
    torch.manual_seed(seed)
    return LlamaForCausalLM(config(name))


def weights_file(name: str) -> Path:
    return LADDER_DIR / f"{name}.safetensors"


def checksums() -> dict[str, str]:
    """name -> SHA-256 of its shipped file, from data/ladder/SHA256SUMS."""
    path = LADDER_DIR / "SHA256SUMS"
    if not path.is_file():
        raise CourseError("the ladder's weights are missing: run utils/train_size_ladder.py")
    out = {}
    for line in path.read_text().splitlines():
        digest, filename = line.split()
        out[filename.removesuffix(".safetensors")] = digest
    return out


def load_ladder(name: str) -> tuple[LlamaForCausalLM, ByteTokenizer]:
    """One ladder model (float32, eval mode) and the byte tokenizer; the file's SHA-256 is checked first."""
    from safetensors.torch import load_file

    path = weights_file(name)
    expected = checksums().get(name)
    if expected is None or not path.is_file():
        raise CourseError(f"no shipped weights for {name!r}: run utils/train_size_ladder.py")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != expected:
        raise CourseError(f"{path.name} does not match its SHA-256 (got {digest[:12]}..., expected "
                          f"{expected[:12]}...): re-run utils/train_size_ladder.py or restore the file")
    model = build(name)
    state = {k: v.float() for k, v in load_file(str(path)).items()}
    model.load_state_dict(state, strict=False)  # the tied head is the embedding
    model.tie_weights()
    return model.eval(), ByteTokenizer()


def parameters(name: str) -> int:
    """Parameter count (tied head counted once)."""
    return sum(p.numel() for p in build(name).parameters())


from .checks import guard_public as _guard_public  # noqa: E402 - issue 20: typed arguments checked on entry

_guard_public(globals())
