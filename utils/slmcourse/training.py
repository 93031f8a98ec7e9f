"""A small shared training toolkit for lessons 8 and 11: corpora, blocks, a seeded loop, perplexity.

Everything here is deliberately plain PyTorch so a learner can read it in one sitting:
`token_blocks` cuts a text into fixed-length blocks of token ids, `train` runs AdamW over a
`step_loss(step)` function with a progress bar and keeps the loss of every step, `perplexity`
evaluates a causal LM on blocks, `plot_losses` draws the curves.
"""
from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from importlib import resources
from typing import Callable, Sequence

import torch
from torch import nn

from .errors import CourseError
from .perplexity import perplexity as _protocol_perplexity

DATA_FILES = ("distill_train.txt", "distill_heldout.txt", "heldout_general.txt", "domain_train.txt",
              "domain_heldout.txt", "similarity_pairs.tsv", "similarity_train.txt")


def read_data(name: str) -> str:
    """The text of a file shipped in slmcourse/data (see data/README.md for origin and licence)."""
    path = resources.files("slmcourse") / "data" / name
    if not path.is_file():
        available = sorted(p.name for p in (resources.files("slmcourse") / "data").iterdir() if p.is_file())
        raise CourseError(f"no data file {name!r}; available: {', '.join(available)}")
    return path.read_text(encoding="utf-8")


def documents(text: str) -> list[str]:
    """Split a corpus into documents at blank lines."""
    return [d.strip() for d in text.split("\n\n") if d.strip()]


def similarity_pairs(name: str = "similarity_pairs.tsv") -> list[tuple[str, str, float]]:
    """The shipped sentence-similarity task: (sentence 1, sentence 2, gold score 0-5)."""
    pairs = []
    for line in read_data(name).splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        a, b, score = line.split("\t")
        pairs.append((a.strip(), b.strip(), float(score)))
    return pairs


def seed_everything(seed: int = 0, threads: int | None = None) -> None:
    """Seed Python and PyTorch (and optionally fix the number of CPU threads: results then repeat exactly)."""
    random.seed(seed)
    torch.manual_seed(seed)
    if threads is not None:
        torch.set_num_threads(threads)


def token_blocks(tokenizer, texts: str | Sequence[str], block_size: int = 64) -> torch.Tensor:
    """Tokenise documents, join them with the end-of-text token, cut into (n, block_size) blocks.

    The incomplete last block is dropped, so every block is full and batches need no padding.
    """
    if isinstance(block_size, bool) or not isinstance(block_size, int) or block_size < 2:
        raise CourseError(f"block_size must be a whole number >= 2, got {block_size!r}")
    if isinstance(texts, str):
        texts = [texts]
    if not texts or not all(isinstance(t, str) and t.strip() for t in texts):
        raise CourseError("token_blocks needs one or more non-empty texts")
    sep = tokenizer.eos_token_id
    ids: list[int] = []
    for text in texts:
        ids.extend(tokenizer(text).input_ids)
        if sep is not None:
            ids.append(sep)
    n = len(ids) // block_size
    if n == 0:
        raise CourseError(f"the text has {len(ids)} tokens, fewer than one block of {block_size}")
    return torch.tensor(ids[:n * block_size], dtype=torch.long).view(n, block_size)


def batch_schedule(n_items: int, batch_size: int, steps: int, seed: int = 0) -> list[torch.Tensor]:
    """Index batches for `steps` steps: shuffled epochs (seeded), each item once per epoch."""
    if n_items < 1 or batch_size < 1 or steps < 1:
        raise CourseError("batch_schedule needs n_items, batch_size and steps >= 1")
    generator = torch.Generator().manual_seed(seed)
    order = torch.empty(0, dtype=torch.long)
    batches = []
    for _ in range(steps):
        while len(order) < batch_size:
            order = torch.cat([order, torch.randperm(n_items, generator=generator)])
        batches.append(order[:batch_size])
        order = order[batch_size:]
    return batches


@dataclass
class History:
    """What `train` returns: the loss of each step, and the wall-clock time of the run."""

    name: str
    losses: list[float] = field(default_factory=list)
    seconds: float = 0.0

    def smoothed(self, window: int = 10) -> list[float]:
        out, acc = [], []
        for value in self.losses:
            acc.append(value)
            if len(acc) > window:
                acc.pop(0)
            out.append(sum(acc) / len(acc))
        return out

    @property
    def final(self) -> float:
        """Mean loss over the last 10 % of the steps (at least one)."""
        tail = self.losses[-max(1, len(self.losses) // 10):]
        return sum(tail) / len(tail)


def train(model: nn.Module, step_loss: Callable[[int], torch.Tensor], steps: int, lr: float = 1e-3,
          weight_decay: float = 0.0, warmup: int = 0, name: str = "run", progress: bool = True,
          parameters: Sequence[nn.Parameter] | None = None, clip: float | None = 1.0) -> History:
    """A plain training loop: AdamW on the trainable parameters, linear warm-up then cosine decay.

    `step_loss(step)` computes the loss of one batch (it picks its own batch from the step number,
    so the data order is fixed by the caller's seed). Returns the History (loss of every step).
    """
    import time

    from tqdm.auto import tqdm

    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise CourseError(f"steps must be a whole number >= 1, got {steps!r}")
    if not lr > 0:
        raise CourseError(f"the learning rate must be > 0, got {lr!r}")
    params = [p for p in (parameters if parameters is not None else model.parameters()) if p.requires_grad]
    if not params:
        raise CourseError("this model has no trainable parameters (every requires_grad is False)")
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)

    def schedule(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress_ = (step - warmup) / max(1, steps - warmup)
        return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress_))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
    history = History(name)
    model.train()
    start = time.perf_counter()
    bar = tqdm(range(steps), desc=name, disable=not progress)
    for step in bar:
        loss = step_loss(step)
        if not torch.isfinite(loss):
            raise CourseError(f"the loss became {loss.item()} at step {step}: lower the learning rate")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if clip:
            torch.nn.utils.clip_grad_norm_(params, clip)
        optimizer.step()
        scheduler.step()
        history.losses.append(loss.item())
        if step % 10 == 0 or step == steps - 1:
            bar.set_postfix(loss=f"{loss.item():.3f}")
    history.seconds = time.perf_counter() - start
    model.eval()
    return history


def perplexity(model: nn.Module, blocks: torch.Tensor) -> float:
    """Perplexity of a causal LM over (n, L) blocks of token ids, each block scored on its own.

    The course's one protocol (`slmcourse.perplexity.perplexity`) with context = stride = L: every
    model compared on the same blocks sees exactly the same contexts, so the figures compare.
    """
    if not torch.is_tensor(blocks) or blocks.ndim != 2 or blocks.shape[1] < 2 or len(blocks) == 0:
        raise CourseError("perplexity needs a (number of blocks, block length >= 2) tensor of token ids")
    length = int(blocks.shape[1])
    return _protocol_perplexity(model, ids=blocks, context=length, stride=length)


def plot_losses(histories: Sequence[History], window: int = 10, ax=None, ylabel: str = "training loss"):
    """Loss curves (raw, faint; smoothed, bold) of several runs on one axis. Returns the figure."""
    import matplotlib.pyplot as plt

    if ax is not None and not hasattr(ax, "figure"):
        raise CourseError(f"ax must be None or a matplotlib Axes (e.g. from plt.subplots()), "
                          f"got {ax!r} ({type(ax).__name__})")
    histories = list(histories)
    if not histories:
        raise CourseError("histories is empty: pass one or more training histories "
                          "(what training.train(...) returns), e.g. plot_losses([history])")
    if ax is None:
        fig, ax = plt.subplots(figsize=(7, 3.4))
    else:
        fig = ax.figure
    for i, history in enumerate(histories):
        color = f"C{i}"
        ax.plot(history.losses, color=color, alpha=0.25, linewidth=0.8)
        ax.plot(history.smoothed(window), color=color, linewidth=2, label=history.name)
    ax.set_xlabel("step")
    ax.set_ylabel(ylabel)
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig

from .checks import guard_public as _guard_public  # noqa: E402 - issue 20: typed arguments checked on entry

_guard_public(globals())
