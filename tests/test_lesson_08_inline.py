"""Lesson 8 builds the distillation loss and the top-k + "rest" soft targets inline; they must stay equal to
slmcourse.distill (and to PyTorch), so editing either side alone fails here."""
import pytest
import torch
import torch.nn.functional as F

from slmcourse import distill
from notebook_defs import notebook_definitions

NB = "course/08_distillation.ipynb"


@pytest.fixture(scope="module")
def defs():
    return notebook_definitions(NB, ["hinton_loss", "topk_rest", "topk_rest_kl"])


def _logits(seed, shape, scale=1.0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=g) * scale


@pytest.mark.parametrize("seed,shape,T,alpha", [(0, (4, 6, 50), 2.0, 0.5), (1, (3, 17), 1.0, 0.3),
                                                (2, (2, 5, 101), 4.0, 0.9), (3, (1, 1, 7), 0.5, 1.0),
                                                (4, (8, 33), 3.0, 0.0)])
def test_hinton_loss_matches_package_and_torch(defs, seed, shape, T, alpha):
    s, t = _logits(seed, shape), _logits(seed + 100, shape, 3.0)
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, shape[-1], shape[:-1], generator=g)
    ours = defs["hinton_loss"](s, t, labels, T, alpha)
    package = distill.distillation_loss(s, t, labels, temperature=T, alpha=alpha)
    kl = F.kl_div(F.log_softmax(s / T, -1).reshape(-1, shape[-1]), F.log_softmax(t / T, -1).reshape(-1, shape[-1]),
                  log_target=True, reduction="batchmean")
    torch_ref = alpha * T * T * kl + (1 - alpha) * F.cross_entropy(s.reshape(-1, shape[-1]), labels.reshape(-1))
    torch.testing.assert_close(ours, package, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(ours, torch_ref, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("seed,shape,k,T", [(0, (4, 6, 50), 8, 2.0), (1, (3, 40), 1, 1.0), (2, (2, 3, 200), 32, 2.0),
                                            (3, (5, 12), 11, 0.7), (4, (2, 2, 64), 64, 3.0)])
def test_topk_rest_matches_package(defs, seed, shape, k, T):
    t = _logits(seed, shape, 4.0)
    buckets, ids = defs["topk_rest"](t, k, T)
    sparse = distill.teacher_topk(t, k, T)
    assert buckets.shape == (*shape[:-1], k + 1)
    assert torch.equal(ids, sparse.indices)
    torch.testing.assert_close(buckets, sparse.buckets(), rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(buckets.sum(-1), torch.ones(shape[:-1]), rtol=0, atol=1e-5)


@pytest.mark.parametrize("seed,shape,k,T", [(0, (4, 6, 50), 8, 2.0), (1, (3, 40), 1, 1.0), (2, (2, 3, 200), 32, 2.0),
                                            (3, (5, 12), 11, 0.7)])
def test_topk_rest_kl_matches_package_and_lumped_torch_kl(defs, seed, shape, k, T):
    s, t = _logits(seed, shape), _logits(seed + 50, shape, 3.0)
    buckets, ids = defs["topk_rest"](t, k, T)
    ours = defs["topk_rest_kl"](s, buckets, ids, T)
    package = distill.topk_rest_kl(s, distill.teacher_topk(t, k, T))
    torch.testing.assert_close(ours, package, rtol=1e-4, atol=1e-6)
    outside = torch.ones_like(t, dtype=torch.bool).scatter(-1, ids, False)
    p, q = torch.softmax(t / T, -1), torch.softmax(s / T, -1)
    lump = lambda x: torch.cat([x.gather(-1, ids), (x * outside).sum(-1, keepdim=True)], -1).reshape(-1, k + 1)
    ref = F.kl_div(lump(q).log(), lump(p), reduction="batchmean")
    torch.testing.assert_close(ours, ref, rtol=1e-4, atol=1e-6)


def test_topk_rest_kl_with_the_whole_vocabulary_is_the_full_kl(defs):
    s, t = _logits(7, (3, 4, 30)), _logits(8, (3, 4, 30), 2.0)
    buckets, ids = defs["topk_rest"](t, 30, 2.0)
    full = F.kl_div(F.log_softmax(s / 2, -1).reshape(-1, 30), F.log_softmax(t / 2, -1).reshape(-1, 30),
                    log_target=True, reduction="batchmean")
    torch.testing.assert_close(defs["topk_rest_kl"](s, buckets, ids, 2.0), full, rtol=1e-4, atol=1e-5)


def test_package_sparse_loss_is_t_squared_times_topk_rest_kl():
    s, t = _logits(9, (2, 5, 40)), _logits(10, (2, 5, 40), 3.0)
    sparse = distill.teacher_topk(t, 6, 2.0)
    loss = distill.distillation_loss(s, sparse, None, alpha=1.0)
    torch.testing.assert_close(loss, 4.0 * distill.topk_rest_kl(s, sparse))
