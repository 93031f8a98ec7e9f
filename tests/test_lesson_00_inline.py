"""Lesson 0's inline definitions (mean pooling, cosine similarity) against PyTorch and the package: no drift."""
import pytest
import torch

from notebook_defs import notebook_definitions
from slmcourse.distill import mean_pool as package_mean_pool

LESSON = "course/00_setup.ipynb"


@pytest.fixture(scope="module")
def defs():
    return notebook_definitions(LESSON, ["mean_pool", "cosine_similarity"])


@pytest.mark.parametrize("seed,shape", [(0, (2, 5, 8)), (1, (4, 7, 384)), (2, (1, 3, 16))])
def test_mean_pool_matches_the_package(defs, seed, shape):
    g = torch.Generator().manual_seed(seed)
    hidden = torch.randn(*shape, generator=g)
    lengths = torch.randint(1, shape[1] + 1, (shape[0],), generator=g)
    mask = (torch.arange(shape[1])[None, :] < lengths[:, None]).long()     # right padding, as a tokenizer makes
    mine = defs["mean_pool"](hidden, mask)
    torch.testing.assert_close(mine, package_mean_pool(hidden, mask))
    torch.testing.assert_close(mine.norm(dim=-1), torch.ones(shape[0]))
    # padding positions must not count: changing them changes nothing
    noisy = hidden + 100 * (1 - mask).unsqueeze(-1) * torch.randn(*shape, generator=g)
    torch.testing.assert_close(defs["mean_pool"](noisy, mask), mine)


@pytest.mark.parametrize("seed,size", [(0, 3), (1, 384), (2, 17)])
def test_cosine_similarity_matches_torch(defs, seed, size):
    g = torch.Generator().manual_seed(seed)
    a, b = torch.randn(size, generator=g), torch.randn(size, generator=g)
    torch.testing.assert_close(defs["cosine_similarity"](a, b), torch.nn.functional.cosine_similarity(a, b, dim=0))
    torch.testing.assert_close(defs["cosine_similarity"](a, 3 * a), torch.tensor(1.0))   # length does not matter
