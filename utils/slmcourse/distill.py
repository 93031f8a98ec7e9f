"""Knowledge distillation from scratch (lesson 8).

* Soft targets (Hinton, Vinyals & Dean 2015, "Distilling the Knowledge in a Neural Network",
  arXiv:1503.02531): the teacher's probabilities at a temperature T > 1, softmax(z / T).
* The distillation loss: alpha * T^2 * KL(teacher_T || student_T) + (1 - alpha) * CE(student, labels).
  The T^2 keeps the soft term's gradients the same size whatever the temperature (they shrink as 1/T^2).
* Sparse teacher targets: a big teacher's full distribution over a 49,152-token vocabulary is too
  large to keep for every position of a corpus, so `teacher_topk` keeps its top-k probabilities plus
  one "everything else" bucket; the KL over those k + 1 buckets is exact for that coarser distribution.
  `topk_rest_kl` is that KL (lesson 8 writes it inline and checks it against this copy).
* The DistilBERT recipe (Sanh et al. 2019, arXiv:1910.01108): a student with half the layers,
  initialised from one teacher layer out of two (`student_from_teacher`), and sentence embeddings
  (mean pooling), Spearman correlation for a similarity task.
"""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .errors import CourseError


# ---------------------------------------------------------------------------------------------
# Soft targets and the Hinton loss
# ---------------------------------------------------------------------------------------------
def _check_temperature(temperature: float) -> float:
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or not math.isfinite(temperature):
        raise CourseError(f"the temperature must be a number, got {temperature!r}")
    if temperature <= 0:
        raise CourseError(f"the temperature must be greater than 0, got {temperature}")
    return float(temperature)


def _check_alpha(alpha: float) -> float:
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0.0 <= alpha <= 1.0:
        raise CourseError(f"alpha (the weight of the soft-target loss) must be between 0 and 1, got {alpha!r}")
    return float(alpha)


def soft_targets(logits: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """softmax(logits / T) over the last dimension: T = 1 is the model's own distribution, T > 1 softens it."""
    temperature = _check_temperature(temperature)
    if not torch.is_tensor(logits) or logits.ndim == 0 or logits.shape[-1] < 2:
        raise CourseError("logits must be a tensor whose last dimension has at least 2 classes")
    return torch.softmax(logits.float() / temperature, dim=-1)


def entropy_bits(probs: torch.Tensor) -> torch.Tensor:
    """Shannon entropy (bits) of distributions over the last dimension; 2**H is the 'effective number of choices'."""
    p = probs.float().clamp_min(1e-30)
    return -(probs.float() * torch.log2(p)).sum(-1)


@dataclass
class SparseTeacher:
    """A teacher's soft targets kept sparsely: the top-k log-probabilities at `temperature` and their token ids.

    The probability mass outside the top k (the tail) is 1 - sum(exp(logprobs)), treated as one bucket.
    Shapes: (..., k) for both tensors.
    """

    logprobs: torch.Tensor
    indices: torch.Tensor
    temperature: float

    @property
    def k(self) -> int:
        return int(self.indices.shape[-1])

    @property
    def tail(self) -> torch.Tensor:
        return (1.0 - self.logprobs.float().exp().sum(-1)).clamp_min(0.0)

    def __getitem__(self, index) -> "SparseTeacher":
        return SparseTeacher(self.logprobs[index], self.indices[index], self.temperature)

    def nbytes(self) -> int:
        return self.logprobs.numel() * self.logprobs.element_size() + self.indices.numel() * self.indices.element_size()

    def buckets(self) -> torch.Tensor:
        """The k + 1 bucket probabilities (..., k + 1): the top k, then the 'rest of the vocabulary' bucket."""
        return torch.cat([self.logprobs.float().exp(), self.tail.unsqueeze(-1)], dim=-1)


def teacher_topk(teacher_logits: torch.Tensor, k: int, temperature: float) -> SparseTeacher:
    """Keep the top-k soft targets (log-probabilities at `temperature`) of full teacher logits."""
    temperature = _check_temperature(temperature)
    vocab = teacher_logits.shape[-1]
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= vocab:
        raise CourseError(f"k must be a whole number between 1 and the vocabulary size {vocab}, got {k!r}")
    logprobs = torch.log_softmax(teacher_logits.float() / temperature, dim=-1)
    values, indices = logprobs.topk(k, dim=-1)
    return SparseTeacher(values, indices, temperature)


def _kl_dense(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """Mean over positions of KL(softmax(t/T) || softmax(s/T))."""
    log_q = torch.log_softmax(student_logits.float() / temperature, dim=-1)
    log_p = torch.log_softmax(teacher_logits.float() / temperature, dim=-1)
    kl = (log_p.exp() * (log_p - log_q)).sum(-1)
    return kl.mean()


def topk_rest_kl(student_logits: torch.Tensor, teacher: SparseTeacher) -> torch.Tensor:
    """KL(teacher || student) over the teacher's top-k tokens plus one 'rest' bucket, averaged over positions.

    The student's probabilities at the teacher's temperature are gathered into the same k + 1 buckets
    (its probabilities of the teacher's top-k tokens, and everything else summed), so the result is the
    exact KL divergence between those two coarser distributions; with k = the vocabulary it is the full
    KL. No T^2 factor here: `distillation_loss` applies it.
    """
    if not isinstance(teacher, SparseTeacher):
        raise CourseError("topk_rest_kl needs the teacher's targets as a SparseTeacher (see teacher_topk)")
    if not torch.is_tensor(student_logits) or student_logits.ndim < 2 or \
            teacher.indices.shape[:-1] != student_logits.shape[:-1]:
        raise CourseError(f"teacher targets cover positions {tuple(teacher.indices.shape[:-1])} but the student's "
                          f"logits have shape {tuple(getattr(student_logits, 'shape', ()))}")
    if int(teacher.indices.max()) >= student_logits.shape[-1]:
        raise CourseError(f"the teacher's token ids go up to {int(teacher.indices.max())}, beyond the student's "
                          f"vocabulary of {student_logits.shape[-1]}: teacher and student need the same tokenizer")
    return _kl_sparse(student_logits, teacher)


def _kl_sparse(student_logits: torch.Tensor, teacher: SparseTeacher) -> torch.Tensor:
    """Mean over positions of the KL over the teacher's top-k tokens plus one 'rest of the vocabulary' bucket."""
    log_q_all = torch.log_softmax(student_logits.float() / teacher.temperature, dim=-1)
    log_q = log_q_all.gather(-1, teacher.indices.long())
    log_p = teacher.logprobs.float()
    kl = (log_p.exp() * (log_p - log_q)).sum(-1)
    p_tail = teacher.tail
    q_tail = (1.0 - log_q.exp().sum(-1)).clamp_min(1e-12)
    kl = kl + torch.where(p_tail > 0, p_tail * (torch.log(p_tail.clamp_min(1e-12)) - torch.log(q_tail)),
                          torch.zeros_like(p_tail))
    return kl.mean()


@dataclass
class LossParts:
    loss: torch.Tensor   # what to call .backward() on
    soft: torch.Tensor   # T^2 * KL(teacher_T || student_T)
    hard: torch.Tensor   # cross-entropy with the true next tokens / labels


def distillation_loss(student_logits: torch.Tensor, teacher: torch.Tensor | SparseTeacher | None,
                      labels: torch.Tensor | None = None, temperature: float = 2.0, alpha: float = 0.5,
                      ignore_index: int = -100, return_parts: bool = False):
    """Hinton et al.'s loss: alpha * T^2 * KL(teacher_T || student_T) + (1 - alpha) * CE(student, labels).

    `student_logits` (..., V); `teacher` full logits of the same shape, or a `SparseTeacher` (its own
    temperature is used), or None for hard labels only (alpha must then be 0). `labels` (...) holds
    the class ids (ignore_index positions are skipped by the hard loss); needed unless alpha = 1.
    Returns the loss, or `LossParts(loss, soft, hard)` with `return_parts=True`.
    """
    alpha = _check_alpha(alpha)
    if not torch.is_tensor(student_logits) or student_logits.ndim < 2:
        raise CourseError("student_logits must be a tensor of shape (..., vocabulary)")
    zero = student_logits.new_zeros((), dtype=torch.float32)
    soft = zero
    if alpha > 0:
        if teacher is None:
            raise CourseError("alpha > 0 needs the teacher's logits (or pass alpha=0 for hard labels only)")
        if isinstance(teacher, SparseTeacher):
            if teacher.indices.shape[:-1] != student_logits.shape[:-1]:
                raise CourseError(f"teacher targets cover positions {tuple(teacher.indices.shape[:-1])} but the "
                                  f"student's logits cover {tuple(student_logits.shape[:-1])}")
            temperature = teacher.temperature
            soft = _kl_sparse(student_logits, teacher) * temperature ** 2
        else:
            temperature = _check_temperature(temperature)
            if isinstance(teacher, (list, tuple)):
                from .checks import tensor

                teacher = tensor("teacher", teacher)  # a (rectangular) list of logits is accepted
            elif not isinstance(teacher, torch.Tensor):
                raise CourseError(f"teacher must be the teacher's logits (a tensor shaped like student_logits), a "
                                  f"SparseTeacher (see teacher_topk) or None, got {teacher!r} ({type(teacher).__name__})")
            if teacher.shape != student_logits.shape:
                raise CourseError(f"teacher logits {tuple(teacher.shape)} and student logits "
                                  f"{tuple(student_logits.shape)} must have the same shape (same tokenizer)")
            soft = _kl_dense(student_logits, teacher, temperature) * temperature ** 2
    hard = zero
    if alpha < 1:
        if labels is None:
            raise CourseError("alpha < 1 needs labels for the hard-label (cross-entropy) loss")
        if labels.shape != student_logits.shape[:-1]:
            raise CourseError(f"labels {tuple(labels.shape)} must match the logits' positions "
                              f"{tuple(student_logits.shape[:-1])}")
        hard = F.cross_entropy(student_logits.float().reshape(-1, student_logits.shape[-1]), labels.reshape(-1),
                               ignore_index=ignore_index)
    loss = alpha * soft + (1 - alpha) * hard
    return LossParts(loss, soft, hard) if return_parts else loss


# ---------------------------------------------------------------------------------------------
# Logit distillation of a causal LM on a corpus cut into blocks
# ---------------------------------------------------------------------------------------------
@torch.no_grad()
def precompute_teacher(teacher: nn.Module, blocks: torch.Tensor, k: int = 64, temperature: float = 2.0,
                       batch_size: int = 8, progress: bool = True) -> SparseTeacher:
    """Run the teacher ONCE over every block; keep its top-k soft targets for each next-token position.

    `blocks` (n, L) token ids -> SparseTeacher of shape (n, L - 1, k), position i predicting token i + 1.
    Values are stored in float16 and ids in int32: (L - 1) * k * 6 bytes per block instead of the
    full distribution's (L - 1) * V * 4.
    """
    from tqdm.auto import tqdm

    from . import checks  # issue 20: every argument checked BEFORE the teacher reads the corpus

    teacher = checks.module("teacher", teacher)
    blocks = checks.tensor("blocks", blocks, ndim=2, dtype="int")
    if blocks.ndim != 2 or blocks.shape[1] < 2:
        raise CourseError("blocks must be a (number of blocks, block length >= 2) tensor of token ids")
    vocab = getattr(getattr(teacher, "config", None), "vocab_size", None)
    checks.whole_number("k", k, minimum=1, maximum=vocab)
    temperature = _check_temperature(temperature)
    checks.whole_number("batch_size", batch_size, minimum=1)
    if int(blocks.min()) < 0 or (vocab and int(blocks.max()) >= vocab):
        raise CourseError(f"blocks hold token ids outside the teacher's vocabulary [0, {vocab})")
    was_training = teacher.training
    teacher.eval()
    device = next(teacher.parameters()).device
    values, indices = [], []
    for start in tqdm(range(0, len(blocks), batch_size), desc="teacher reads the corpus", disable=not progress):
        batch = blocks[start:start + batch_size].to(device)
        logits = teacher(input_ids=batch).logits[:, :-1]
        sparse = teacher_topk(logits, k, temperature)
        values.append(sparse.logprobs.to(torch.float16).cpu())
        indices.append(sparse.indices.to(torch.int32).cpu())
    teacher.train(was_training)
    return SparseTeacher(torch.cat(values), torch.cat(indices), float(temperature))


def causal_lm_distill_step(student: nn.Module, blocks: torch.Tensor, teacher: SparseTeacher | None,
                           alpha: float) -> torch.Tensor:
    """The loss of one batch of blocks for a causal-LM student: next-token labels + the teacher's soft targets."""
    logits = student(input_ids=blocks).logits[:, :-1]
    return distillation_loss(logits, teacher, labels=blocks[:, 1:], alpha=alpha)


# ---------------------------------------------------------------------------------------------
# The DistilBERT recipe on a BERT-family encoder
# ---------------------------------------------------------------------------------------------
def every_other_layer(n_layers: int) -> list[int]:
    """DistilBERT's choice: keep one teacher layer out of two (0, 2, 4, ...)."""
    if isinstance(n_layers, bool) or not isinstance(n_layers, int) or n_layers < 2:
        raise CourseError(f"the teacher needs at least 2 layers, got {n_layers!r}")
    return list(range(0, n_layers, 2))


def _encoder_layers(model: nn.Module) -> nn.ModuleList:
    encoder = getattr(model, "encoder", None)
    layers = getattr(encoder, "layer", None)
    if not isinstance(layers, nn.ModuleList):
        raise CourseError(f"{type(model).__name__} is not a BERT-family encoder (no encoder.layer list)")
    return layers


def student_from_teacher(teacher: nn.Module, layers: Sequence[int] | None = None, copy_weights: bool = True,
                         seed: int = 0) -> nn.Module:
    """A BERT-family student with fewer layers, built like the teacher.

    With `copy_weights=True` (the DistilBERT recipe) it starts as a copy of the teacher's embeddings
    and of the chosen teacher `layers` (default: every other one); with False it has the same
    architecture but random weights (seeded) - the baseline that shows what the initialisation buys.
    """
    teacher_layers = _encoder_layers(teacher)
    n = len(teacher_layers)
    layers = every_other_layer(n) if layers is None else list(layers)
    if not layers or any(isinstance(i, bool) or not isinstance(i, int) or not 0 <= i < n for i in layers):
        raise CourseError(f"layers must be a non-empty list of teacher layer numbers between 0 and {n - 1}, got {layers!r}")
    if len(set(layers)) != len(layers):
        raise CourseError(f"each teacher layer can be copied once, got {layers!r}")
    config = copy.deepcopy(teacher.config)
    config.num_hidden_layers = len(layers)
    torch.manual_seed(seed)
    student = type(teacher)(config)
    if copy_weights:
        student.embeddings.load_state_dict(teacher.embeddings.state_dict())
        for mine, theirs in zip(_encoder_layers(student), layers):
            mine.load_state_dict(teacher_layers[theirs].state_dict())
        if getattr(teacher, "pooler", None) is not None and getattr(student, "pooler", None) is not None:
            student.pooler.load_state_dict(teacher.pooler.state_dict())
    return student.to(next(teacher.parameters()).device).eval()


def mean_pool(last_hidden: torch.Tensor, attention_mask: torch.Tensor, normalize: bool = True) -> torch.Tensor:
    """Sentence embedding the sentence-transformers way: average the token vectors (padding excluded), L2-normalise."""
    mask = attention_mask.unsqueeze(-1).to(last_hidden.dtype)
    pooled = (last_hidden * mask).sum(1) / mask.sum(1).clamp_min(1e-9)
    return F.normalize(pooled, dim=-1) if normalize else pooled


def encode(model: nn.Module, tokenizer, sentences: Sequence[str], batch_size: int = 64, max_length: int = 64,
           grad: bool = False) -> torch.Tensor:
    """Normalised mean-pooled embeddings of `sentences` (n, hidden)."""
    if isinstance(sentences, str) or not sentences:
        raise CourseError("encode needs a non-empty list of sentences")
    device = next(model.parameters()).device
    out = []
    with torch.set_grad_enabled(grad):
        for start in range(0, len(sentences), batch_size):
            batch = tokenizer(list(sentences[start:start + batch_size]), padding=True, truncation=True,
                              max_length=max_length, return_tensors="pt").to(device)
            hidden = model(**batch).last_hidden_state
            out.append(mean_pool(hidden, batch["attention_mask"]))
    return torch.cat(out)


def embedding_distill_loss(student_emb: torch.Tensor, teacher_emb: torch.Tensor) -> torch.Tensor:
    """1 - cosine similarity between student and teacher sentence embeddings, averaged."""
    return (1 - F.cosine_similarity(student_emb, teacher_emb, dim=-1)).mean()


def _ranks(x: torch.Tensor) -> torch.Tensor:
    """Ranks 1..n, ties sharing their average rank (as in Spearman's definition)."""
    x = x.double().flatten()
    order = torch.argsort(x, stable=True)
    ranks = torch.empty_like(x)
    sorted_x = x[order]
    i = 0
    n = len(x)
    while i < n:
        j = i
        while j + 1 < n and sorted_x[j + 1] == sorted_x[i]:
            j += 1
        ranks[order[i:j + 1]] = (i + j) / 2 + 1
        i = j + 1
    return ranks


def spearman(a: Sequence[float] | torch.Tensor, b: Sequence[float] | torch.Tensor) -> float:
    """Spearman's rank correlation: Pearson's correlation of the ranks (ties averaged)."""
    a, b = torch.as_tensor(a, dtype=torch.float64).flatten(), torch.as_tensor(b, dtype=torch.float64).flatten()
    if a.shape != b.shape or len(a) < 3:
        raise CourseError("spearman needs two sequences of the same length, at least 3 values")
    ra, rb = _ranks(a), _ranks(b)
    ra, rb = ra - ra.mean(), rb - rb.mean()
    denom = ra.norm() * rb.norm()
    if denom == 0:
        raise CourseError("spearman is undefined when one sequence is constant")
    return float((ra * rb).sum() / denom)


def similarity_score(model: nn.Module, tokenizer, pairs: Sequence[tuple[str, str, float]]) -> float:
    """Spearman correlation between the cosine similarity of each sentence pair and its gold score."""
    if len(pairs) < 3:
        raise CourseError("the similarity task needs at least 3 scored sentence pairs")
    left = encode(model, tokenizer, [p[0] for p in pairs])
    right = encode(model, tokenizer, [p[1] for p in pairs])
    cosines = (left * right).sum(-1)
    return spearman(cosines, [float(p[2]) for p in pairs])

from .checks import guard_public as _guard_public  # noqa: E402 - issue 20: typed arguments checked on entry

_guard_public(globals())
