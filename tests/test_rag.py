"""Lesson 11's retrieval step (slmcourse.rag): cosine top-k against a full sort, masked-mean embeddings on a
tiny random BERT (padding must not change a sentence's vector), prompt assembly, the bundled corpus, bad input."""
import pytest
import torch

from slmcourse import CourseError, rag


@pytest.mark.parametrize("seed,n,d,k", [(0, 10, 8, 1), (1, 32, 384, 3), (2, 5, 4, 5)])
def test_top_k_matches_a_full_sort_of_cosines(seed, n, d, k):
    g = torch.Generator().manual_seed(seed)
    passages, query = torch.randn(n, d, generator=g) * 3, torch.randn(d, generator=g)
    scores, idx = rag.top_k(query, passages, k)
    cos = torch.nn.functional.cosine_similarity(query[None], passages)
    assert idx.tolist() == cos.argsort(descending=True)[:k].tolist()
    torch.testing.assert_close(scores, cos[idx], atol=1e-5, rtol=1e-5)
    batch_scores, batch_idx = rag.top_k(torch.stack([query, -query]), passages, k)   # several queries at once
    assert batch_idx[0].tolist() == idx.tolist() and batch_idx.shape == (2, k)


def test_top_k_refuses_bad_input():
    with pytest.raises(CourseError, match="k must be"):
        rag.top_k(torch.randn(4), torch.randn(3, 4), 4)
    with pytest.raises(CourseError, match="shapes"):
        rag.top_k(torch.randn(5), torch.randn(3, 4), 1)
    with pytest.raises(CourseError, match="tensors"):
        rag.top_k([1.0, 2.0], torch.randn(3, 2), 1)


def make_tiny_encoder():
    """A 1-layer random BERT and a letters-only WordPiece tokenizer: seconds to build, no download."""
    from transformers import BertConfig, BertModel, BertTokenizerFast

    torch.manual_seed(0)
    model = BertModel(BertConfig(vocab_size=64, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                                 intermediate_size=32)).eval()
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + [chr(c) for c in range(ord("a"), ord("z") + 1)]
    import tempfile, os
    path = os.path.join(tempfile.mkdtemp(), "vocab.txt")
    with open(path, "w") as f:
        f.write("\n".join(vocab))
    return model, BertTokenizerFast(vocab_file=path)


@pytest.fixture(scope="module")
def tiny_encoder():
    return make_tiny_encoder()


def test_embed_is_unit_length_and_ignores_padding(tiny_encoder):
    model, tok = tiny_encoder
    alone = rag.embed(model, tok, "a b")
    with_longer = rag.embed(model, tok, ["a b", "c d e f g h"])       # "a b" padded in this batch
    torch.testing.assert_close(alone[0], with_longer[0], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(with_longer.norm(dim=-1), torch.ones(2))
    batch = tok(["a b"], return_tensors="pt")
    mean = model(**batch).last_hidden_state[0].mean(0)
    torch.testing.assert_close(alone[0], mean / mean.norm(), atol=1e-5, rtol=1e-5)
    with pytest.raises(CourseError, match="non-empty"):
        rag.embed(model, tok, ["", "a"])


def test_retriever_and_prompt(tiny_encoder):
    model, tok = tiny_encoder
    passages = ["a b c", "x y z", "a b d"]
    retriever = rag.Retriever(model, tok, passages)
    torch.testing.assert_close(retriever.vectors, rag.embed(model, tok, passages))
    cos = retriever.vectors @ rag.embed(model, tok, "x y")[0]
    assert retriever.search("x y", 2) == [passages[i] for i in cos.argsort(descending=True)[:2].tolist()]
    text = rag.rag_message("Why?", ["first.", "second."])
    assert text == "Use these notes to answer.\n- first.\n- second.\n\nQuestion: Why?"
    with pytest.raises(CourseError, match="question"):
        rag.rag_message(" ", ["p"])


def test_bundled_passages():
    passages = rag.read_passages()
    assert len(passages) == 32 and all(len(p) > 40 for p in passages)
