"""Lesson 8's helpers: soft targets, the Hinton loss (checked against a direct computation), sparse
teacher targets, the DistilBERT student initialisation, Spearman, the training toolkit, the explorer."""
import math

import pytest
import torch
import torch.nn.functional as F

from slmcourse import CourseError, load, scaled_down
from slmcourse import distill, training
from slmcourse.distill import (distillation_loss, every_other_layer, mean_pool, soft_targets,
                               spearman, student_from_teacher, teacher_topk)


def test_soft_targets_temperature():
    logits = torch.tensor([2.0, 1.0, 0.0])
    assert torch.allclose(soft_targets(logits, 1.0), torch.softmax(logits, -1))
    p1, p4 = soft_targets(logits, 1.0), soft_targets(logits, 4.0)
    assert p4.max() < p1.max() and p4.min() > p1.min()            # softer
    assert distill.entropy_bits(p4) > distill.entropy_bits(p1)
    assert torch.allclose(distill.entropy_bits(torch.full((8,), 1 / 8)), torch.tensor(3.0))
    with pytest.raises(CourseError, match="greater than 0"):
        soft_targets(logits, 0)
    with pytest.raises(CourseError):
        soft_targets(logits, float("nan"))


def _direct_hinton(s, t, y, T, alpha):
    """The loss written out by hand, position by position, with plain math."""
    total_kl, total_ce = 0.0, 0.0
    s2, t2, y2 = s.reshape(-1, s.shape[-1]).double(), t.reshape(-1, t.shape[-1]).double(), y.reshape(-1)
    for i in range(len(s2)):
        p = [math.exp(v / T) for v in t2[i].tolist()]
        q = [math.exp(v / T) for v in s2[i].tolist()]
        zp, zq = sum(p), sum(q)
        total_kl += sum(pi / zp * math.log((pi / zp) / (qi / zq)) for pi, qi in zip(p, q))
        e = [math.exp(v) for v in s2[i].tolist()]
        total_ce += -math.log(e[int(y2[i])] / sum(e))
    n = len(s2)
    return alpha * T * T * total_kl / n + (1 - alpha) * total_ce / n


@pytest.mark.parametrize("T,alpha", [(1.0, 0.5), (2.0, 0.5), (4.0, 0.9), (3.0, 1.0), (2.0, 0.0)])
def test_hinton_loss_matches_direct_computation(T, alpha):
    g = torch.Generator().manual_seed(0)
    s, t = torch.randn(2, 3, 7, generator=g), torch.randn(2, 3, 7, generator=g) * 2
    y = torch.randint(0, 7, (2, 3), generator=g)
    got = distillation_loss(s, t, y, temperature=T, alpha=alpha)
    assert got.item() == pytest.approx(_direct_hinton(s, t, y, T, alpha), rel=1e-5, abs=1e-6)
    # and against PyTorch's own KL divergence
    kl = F.kl_div(F.log_softmax(s / T, -1).reshape(-1, 7), F.log_softmax(t / T, -1).reshape(-1, 7),
                  log_target=True, reduction="batchmean")
    expected = alpha * T * T * kl + (1 - alpha) * F.cross_entropy(s.reshape(-1, 7), y.reshape(-1))
    assert got.item() == pytest.approx(expected.item(), rel=1e-5, abs=1e-6)


def test_loss_is_zero_when_student_equals_teacher_and_parts():
    t = torch.randn(4, 10)
    parts = distillation_loss(t.clone(), t, torch.zeros(4, dtype=torch.long), alpha=0.7, return_parts=True)
    assert parts.soft.item() == pytest.approx(0.0, abs=1e-6)
    assert parts.loss.item() == pytest.approx(0.3 * parts.hard.item(), rel=1e-6)


def test_t_squared_keeps_gradient_scale():
    """Without T^2 the soft-target gradients shrink like 1/T^2; with it they stay of the same size."""
    g = torch.Generator().manual_seed(1)
    t = torch.randn(64, 50, generator=g)
    s0 = torch.randn(64, 50, generator=g) * 0.1
    norms = []
    for T in (2.0, 8.0):
        s = s0.clone().requires_grad_(True)
        distillation_loss(s, t, None, temperature=T, alpha=1.0).backward()
        norms.append(s.grad.norm().item())
    assert 0.5 < norms[1] / norms[0] < 2.0


def test_sparse_teacher_equals_dense_when_k_is_the_vocabulary():
    g = torch.Generator().manual_seed(2)
    s, t = torch.randn(3, 5, 11, generator=g), torch.randn(3, 5, 11, generator=g)
    y = torch.randint(0, 11, (3, 5), generator=g)
    dense = distillation_loss(s, t, y, temperature=2.0, alpha=0.5)
    sparse = distillation_loss(s, teacher_topk(t, 11, 2.0), y, alpha=0.5)
    assert sparse.item() == pytest.approx(dense.item(), rel=1e-5)
    # with k < V it is the KL of a coarser distribution: never larger than the full KL (data processing)
    coarse = distillation_loss(s, teacher_topk(t, 3, 2.0), None, alpha=1.0)
    full = distillation_loss(s, t, None, temperature=2.0, alpha=1.0)
    assert 0 <= coarse.item() <= full.item() + 1e-6
    top = teacher_topk(t, 3, 2.0)
    assert top.k == 3 and top[0].indices.shape == (5, 3)
    assert torch.all(top.tail > 0) and torch.all(top.tail < 1)


def test_topk_rest_kl_and_buckets():
    g = torch.Generator().manual_seed(5)
    s, t = torch.randn(2, 4, 9, generator=g), torch.randn(2, 4, 9, generator=g) * 2
    top = teacher_topk(t, 3, 2.0)
    buckets = top.buckets()
    assert buckets.shape == (2, 4, 4)
    assert torch.allclose(buckets.sum(-1), torch.ones(2, 4), atol=1e-6)
    assert torch.allclose(buckets[..., -1], top.tail)
    # the KL of the lumped distributions, written out with F.kl_div
    q = torch.softmax(s / 2.0, -1)
    q_top = q.gather(-1, top.indices)
    q_buckets = torch.cat([q_top, 1 - q_top.sum(-1, keepdim=True)], -1)
    expected = F.kl_div(q_buckets.log().reshape(-1, 4), buckets.reshape(-1, 4), reduction="batchmean")
    assert distill.topk_rest_kl(s, top).item() == pytest.approx(expected.item(), rel=1e-5, abs=1e-7)
    # the sparse Hinton loss is T^2 times it
    assert distillation_loss(s, top, None, alpha=1.0).item() == pytest.approx(4 * expected.item(), rel=1e-5)
    with pytest.raises(CourseError, match="SparseTeacher"):
        distill.topk_rest_kl(s, t)
    with pytest.raises(CourseError, match="positions"):
        distill.topk_rest_kl(s[:1], top)
    with pytest.raises(CourseError, match="same tokenizer"):
        distill.topk_rest_kl(s[..., :2], top)


def test_loss_errors():
    s = torch.randn(2, 5)
    with pytest.raises(CourseError, match="between 0 and 1"):
        distillation_loss(s, s, torch.zeros(2, dtype=torch.long), alpha=1.5)
    with pytest.raises(CourseError, match="same shape"):
        distillation_loss(s, torch.randn(2, 6), torch.zeros(2, dtype=torch.long))
    with pytest.raises(CourseError, match="needs labels"):
        distillation_loss(s, s, None, alpha=0.5)
    with pytest.raises(CourseError, match="teacher"):
        distillation_loss(s, None, torch.zeros(2, dtype=torch.long), alpha=0.5)
    with pytest.raises(CourseError, match="k must be"):
        teacher_topk(s, 0, 2.0)


def test_spearman_against_pandas():
    pd = pytest.importorskip("pandas")
    a = [0.1, 0.4, 0.4, 0.9, 0.2, 0.7]
    b = [1.0, 3.0, 2.0, 5.0, 1.0, 4.0]
    expected = pd.Series(a).rank().corr(pd.Series(b).rank())  # Spearman = Pearson of the (average) ranks
    assert spearman(a, b) == pytest.approx(expected, abs=1e-12)
    assert spearman([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    with pytest.raises(CourseError):
        spearman([1, 1, 1], [1, 2, 3])


def test_mean_pool_ignores_padding():
    hidden = torch.tensor([[[1.0, 0.0], [3.0, 0.0], [100.0, 100.0]]])
    mask = torch.tensor([[1, 1, 0]])
    assert torch.allclose(mean_pool(hidden, mask, normalize=False), torch.tensor([[2.0, 0.0]]))
    assert torch.allclose(mean_pool(hidden, mask), torch.tensor([[1.0, 0.0]]))


@pytest.fixture(scope="module")
def minilm():
    return load("all-minilm-l6-v2", device="cpu")


def test_student_from_teacher_copies_every_other_layer(minilm):
    teacher, tok = minilm
    assert every_other_layer(6) == [0, 2, 4]
    student = student_from_teacher(teacher)
    assert student.config.num_hidden_layers == 3 and teacher.config.num_hidden_layers == 6
    for mine, theirs in zip(student.encoder.layer, [0, 2, 4]):
        for (n1, p1), (n2, p2) in zip(mine.named_parameters(), teacher.encoder.layer[theirs].named_parameters()):
            assert n1 == n2 and torch.equal(p1, p2)
    assert torch.equal(student.embeddings.word_embeddings.weight, teacher.embeddings.word_embeddings.weight)
    random_student = student_from_teacher(teacher, copy_weights=False)
    assert not torch.equal(random_student.encoder.layer[0].attention.self.query.weight,
                           teacher.encoder.layer[0].attention.self.query.weight)
    # a student made of ALL the teacher's layers is the teacher: same embeddings
    clone = student_from_teacher(teacher, layers=list(range(6)))
    pairs = [("A man plays the guitar.", "A man is playing a guitar.", 5.0)]
    assert torch.allclose(distill.encode(clone, tok, [pairs[0][0]]), distill.encode(teacher, tok, [pairs[0][0]]),
                          atol=1e-5)
    with pytest.raises(CourseError, match="between 0 and 5"):
        student_from_teacher(teacher, layers=[0, 6])
    with pytest.raises(CourseError, match="once"):
        student_from_teacher(teacher, layers=[0, 0])


def test_teacher_scores_well_on_shipped_similarity_task(minilm):
    teacher, tok = minilm
    pairs = training.similarity_pairs()
    assert len(pairs) >= 40 and all(0 <= p[2] <= 5 for p in pairs)
    assert distill.similarity_score(teacher, tok, pairs) > 0.75


def test_encode_matches_sentence_transformers_recipe(minilm):
    teacher, tok = minilm
    sentences = ["The cat sleeps.", "A much longer sentence about bees and their hives."]
    batch = tok(sentences, padding=True, return_tensors="pt")
    with torch.no_grad():
        hidden = teacher(**batch).last_hidden_state
    m = batch["attention_mask"].unsqueeze(-1).float()
    expected = F.normalize((hidden * m).sum(1) / m.sum(1), dim=-1)
    assert torch.allclose(distill.encode(teacher, tok, sentences), expected, atol=1e-6)


# --- the training toolkit ----------------------------------------------------------------------
class _CharTok:
    eos_token_id = 0

    def __call__(self, text):
        class R:
            pass

        r = R()
        r.input_ids = [1 + (ord(c) % 50) for c in text]
        return r


def test_token_blocks_and_schedule():
    blocks = training.token_blocks(_CharTok(), ["abcdefgh", "ijk"], block_size=4)
    assert blocks.shape == (3, 4) and blocks[2, 0].item() == 0   # the separator between documents
    with pytest.raises(CourseError, match="fewer than one block"):
        training.token_blocks(_CharTok(), "ab", block_size=8)
    batches = training.batch_schedule(5, 2, 5, seed=0)
    seen = torch.cat(batches)[:5]
    assert sorted(seen.tolist()) == [0, 1, 2, 3, 4]                # one full epoch before any repeat
    assert all(torch.equal(a, b) for a, b in zip(batches, training.batch_schedule(5, 2, 5, seed=0)))


def test_train_distills_a_tiny_student_deterministically():
    torch.set_num_threads(1)
    teacher = scaled_down("smollm2-135m", seed=1, vocab_size=64)
    blocks = torch.randint(0, 64, (16, 12), generator=torch.Generator().manual_seed(0))
    targets = distill.precompute_teacher(teacher, blocks, k=8, temperature=2.0, progress=False)
    assert targets.indices.shape == (16, 11, 8) and targets.logprobs.dtype == torch.float16

    def run():
        student = scaled_down("smollm2-135m", seed=2, vocab_size=64, num_hidden_layers=1)
        schedule = training.batch_schedule(len(blocks), 4, 30, seed=0)

        def step_loss(step):
            idx = schedule[step]
            return distill.causal_lm_distill_step(student, blocks[idx], targets[idx], alpha=0.5)

        return student, training.train(student, step_loss, 30, lr=3e-3, progress=False)

    (s1, h1), (s2, h2) = run(), run()
    assert h1.losses == h2.losses                                   # seeded: exactly repeatable
    assert h1.final < h1.losses[0]
    ppl = training.perplexity(s1, blocks)
    assert 1 < ppl < 64 * 4
    assert ppl == training.perplexity(s2, blocks)
    # perplexity agrees with the model's own loss
    with torch.no_grad():
        loss = s1(input_ids=blocks, labels=blocks).loss.item()
    assert math.log(ppl) == pytest.approx(loss, rel=1e-4)


def test_read_data_and_errors():
    assert "Hive journal" in training.read_data("domain_train.txt")
    with pytest.raises(CourseError, match="available"):
        training.read_data("nope.txt")
    with pytest.raises(CourseError, match="no trainable"):
        m = torch.nn.Linear(2, 2).requires_grad_(False)
        training.train(m, lambda s: m(torch.ones(2)).sum(), 1)


# --- the temperature explorer --------------------------------------------------------------------
def test_temperature_explorer_headless():
    from slmcourse.explorers.temperature import explore_temperature, temperature_explorer

    class Tok:
        def decode(self, ids):
            return f"t{ids[0]}"

    logits = torch.tensor([4.0, 2.0, 1.0, 0.0, -1.0])
    r1, r4 = explore_temperature(logits, Tok(), 1.0, 3), explore_temperature(logits, Tok(), 4.0, 3)
    assert r1["tokens"] == ["t0", "t1", "t2"]
    assert r4["entropy_bits"] > r1["entropy_bits"] and r4["top_prob"] < r1["top_prob"]
    with pytest.raises(CourseError):
        explore_temperature(logits, Tok(), -1.0, 3)
    box = temperature_explorer(logits=logits, tokenizer=Tok(), prompt="x", top_k=3)
    assert "t0" in box.result.value and len(box.figure.value) > 0
    box.controls["temperature"].value = 3.0
    assert "3.00" in box.result.value
    box.controls["top_k"].value = 0
    assert "Cannot compute" in box.result.value
