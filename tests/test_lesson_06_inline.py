"""Lesson 6's inline definitions (RoPE in two forms, ALiBi slopes and bias) agree with slmcourse.attention.

The notebook builds each idea in a short cell; these tests pull those definitions out of the notebook
(`notebook_definitions`) and compare them with the package's validated copies on random inputs, so a
change to either side alone fails.
"""
import pytest
import torch

from notebook_defs import notebook_definitions
from slmcourse import attention

NB = "course/06_attention_positions.ipynb"
NAMES = ["rope_angles", "rope_complex", "rotate_half", "rope_rotate_half", "alibi_slopes_for", "alibi_matrix"]


@pytest.fixture(scope="module")
def nb():
    return notebook_definitions(NB, NAMES)


@pytest.mark.parametrize("head_dim, base", [(2, 10000.0), (8, 10000.0), (64, 100000.0), (128, 500000.0)])
def test_rope_angles_are_the_package_frequencies_times_position(nb, head_dim, base):
    positions = torch.arange(50)
    expected = positions[:, None].float() * attention.rope_frequencies(head_dim, base)[None]
    torch.testing.assert_close(nb["rope_angles"](positions, head_dim, base), expected)


@pytest.mark.parametrize("form", ["rope_complex", "rope_rotate_half"])
@pytest.mark.parametrize("seed, shape, base, offset", [(0, (1, 2, 9, 8), 10000.0, 0), (1, (2, 9, 20, 64), 100000.0, 0),
                                                       (2, (1, 1, 5, 128), 10000.0, 1000), (3, (3, 4, 7, 2), 500.0, 3)])
def test_both_rope_forms_equal_the_package(nb, form, seed, shape, base, offset):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(*shape, generator=g)
    positions = torch.arange(offset, offset + shape[2])
    torch.testing.assert_close(nb[form](x, positions, base), attention.rope(x, positions, base), atol=1e-4, rtol=1e-4)


def test_rotate_half_equals_the_package(nb):
    x = torch.randn(2, 3, 5, 16, generator=torch.Generator().manual_seed(4))
    assert torch.equal(nb["rotate_half"](x), attention.rotate_half(x))


@pytest.mark.parametrize("heads", [1, 2, 3, 5, 6, 8, 12, 16, 24, 32, 40, 71, 96])
def test_alibi_slopes_and_bias_equal_the_package(nb, heads):
    torch.testing.assert_close(nb["alibi_slopes_for"](heads), attention.alibi_slopes(heads))
    torch.testing.assert_close(nb["alibi_matrix"](heads, 11), attention.alibi_bias(heads, 11))
