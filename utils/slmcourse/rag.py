"""Retrieval-augmented generation in miniature (lesson 11): embed passages with a sentence encoder
(all-MiniLM-L6-v2), find the top-k by cosine similarity, and put them in the chat prompt.

MiniLM's sentence embedding is the mean of its last hidden states over the real (non-padding) tokens,
L2-normalised (as sentence-transformers' all-MiniLM-L6-v2 card describes); on unit vectors the cosine
similarity is a dot product.
"""
from __future__ import annotations

from typing import Sequence

import torch

from .errors import CourseError


def read_passages(name: str = "domain_passages.txt") -> list[str]:
    """The bundled domain corpus: one passage per paragraph (blank-line separated)."""
    from .training import read_data

    passages = [p.strip() for p in read_data(name).split("\n\n") if p.strip()]
    if not passages:
        raise CourseError(f"{name} holds no passages")
    return passages


def _texts(texts) -> list[str]:
    if isinstance(texts, str):
        texts = [texts]
    if texts is None or isinstance(texts, (int, float, dict, bytes)):
        raise CourseError(f"give one or more non-empty strings (a list of texts), got {texts!r} ({type(texts).__name__})")
    texts = list(texts)
    if not texts or not all(isinstance(t, str) and t.strip() for t in texts):
        raise CourseError("give one or more non-empty strings to embed")
    return texts


@torch.no_grad()
def embed(encoder, tokenizer, texts: str | Sequence[str], batch_size: int = 32) -> torch.Tensor:
    """Unit-length sentence embeddings (texts x hidden): masked mean of the last hidden states, L2-normalised."""
    texts = _texts(texts)
    out = []
    for start in range(0, len(texts), batch_size):
        batch = tokenizer(texts[start:start + batch_size], padding=True, truncation=True, return_tensors="pt")
        batch = batch.to(next(encoder.parameters()).device)
        hidden = encoder(**batch).last_hidden_state.float()
        mask = batch["attention_mask"].unsqueeze(-1).float()
        mean = (hidden * mask).sum(1) / mask.sum(1)
        out.append(torch.nn.functional.normalize(mean, dim=-1).cpu())
    return torch.cat(out)


def top_k(query: torch.Tensor, passages: torch.Tensor, k: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
    """(scores, indices) of the k passages most cosine-similar to each query, best first.

    query: (hidden,) or (queries, hidden); passages: (n, hidden). Vectors need not be unit length."""
    if not isinstance(query, torch.Tensor) or not isinstance(passages, torch.Tensor):
        raise CourseError("top_k needs tensors: the query embedding(s) and the passage embeddings")
    if passages.ndim != 2 or query.ndim not in (1, 2) or query.shape[-1] != passages.shape[-1]:
        raise CourseError(f"shapes do not fit: query {tuple(query.shape)}, passages {tuple(passages.shape)} "
                          f"(expected (hidden,) or (q, hidden) and (n, hidden))")
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= passages.shape[0]:
        raise CourseError(f"k must be a whole number from 1 to {passages.shape[0]} (the passages), got {k!r}")
    q = torch.nn.functional.normalize(query.float(), dim=-1)
    p = torch.nn.functional.normalize(passages.float(), dim=-1)
    return torch.topk(q @ p.T, k, dim=-1)


def rag_message(question: str, passages: Sequence[str]) -> str:
    """The user turn with the retrieved passages in front of the question."""
    if not isinstance(question, str) or not question.strip():
        raise CourseError(f"the question must be a non-empty string, got {question!r}")
    notes = "\n".join(f"- {p}" for p in _texts(passages))
    return f"Use these notes to answer.\n{notes}\n\nQuestion: {question}"


class Retriever:
    """A passage index: embed the corpus once, then `search(question, k)` returns the k best passages."""

    def __init__(self, encoder, tokenizer, passages: Sequence[str]):
        self.encoder, self.tokenizer = encoder, tokenizer
        self.passages = _texts(passages)
        self.vectors = embed(encoder, tokenizer, self.passages)

    def search(self, question: str, k: int = 2) -> list[str]:
        _, idx = top_k(embed(self.encoder, self.tokenizer, question)[0], self.vectors, k)
        return [self.passages[i] for i in idx.tolist()]


from .checks import typed as _typed  # noqa: E402 - issue 20: the encoder, tokenizer and sizes checked on entry

embed = _typed(embed)  # (top_k keeps its own checks: it refuses lists where tensors belong)
Retriever.__init__ = _typed(Retriever.__init__, label="Retriever")
