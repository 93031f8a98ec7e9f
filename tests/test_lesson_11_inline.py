"""Lesson 11 builds LoRALinear, the chat-format loss mask, retrieval (embed, top_k, rag_message) and the DPO loss
inline; they must stay the same as slmcourse.lora.LoRALinear, slmcourse.sft.chat_example, slmcourse.rag and
slmcourse.dpo (tests/notebook_defs.py pulls them out of the notebook)."""
import copy

import pytest
import torch
from torch import nn

from notebook_defs import notebook_definitions
from slmcourse import dpo, lora, rag, sft

NOTEBOOK = "course/11_fine_tuning.ipynb"


@pytest.fixture(scope="module")
def defs():
    return notebook_definitions(NOTEBOOK, ["LoRALinear", "chat_example", "embed", "top_k", "rag_message",
                                           "sequence_logprob", "dpo_loss"])


@pytest.mark.parametrize("shape,r,alpha,seed", [((576, 576), 8, 16, 0), ((64, 32), 4, 8, 1), ((12, 20), 1, 3, 2),
                                                ((48, 48), 16, 16, 3)])
def test_inline_lora_linear_matches_package(defs, shape, r, alpha, seed):
    torch.manual_seed(seed)
    base = nn.Linear(*shape)
    torch.manual_seed(seed + 100)
    ours = defs["LoRALinear"](copy.deepcopy(base), r=r, alpha=alpha)
    torch.manual_seed(seed + 100)
    theirs = lora.LoRALinear(copy.deepcopy(base), r=r, alpha=alpha)
    assert torch.equal(ours.lora_A, theirs.lora_A) and torch.equal(ours.lora_B, theirs.lora_B)   # same init
    assert [n for n, p in ours.named_parameters() if p.requires_grad] == ["lora_A", "lora_B"]
    x = torch.randn(3, 5, shape[0], generator=torch.Generator().manual_seed(seed))
    assert torch.equal(ours(x), base(x))                                   # B = 0: the base layer at step 0
    B = torch.randn_like(theirs.lora_B) * 0.1
    ours.lora_B.data.copy_(B)
    theirs.lora_B.data.copy_(B)
    with torch.no_grad():
        y = ours(x)
        torch.testing.assert_close(y, theirs(x), atol=1e-5, rtol=1e-5)
        ours.merge()
        theirs.merge()
        ours.merge()                                                       # merging twice changes nothing
        torch.testing.assert_close(ours.base.weight, theirs.base.weight, atol=1e-6, rtol=1e-6)
        torch.testing.assert_close(ours(x), y, atol=1e-5, rtol=1e-5)


@pytest.fixture(scope="module")
def tok():
    from transformers import AutoTokenizer

    from slmcourse import bundled
    from slmcourse.catalogue import get

    bundled.prepare("smollm2-135m", progress=False)
    return AutoTokenizer.from_pretrained(bundled.model_dir(get("smollm2-135m")))


def test_inline_chat_example_matches_package(defs, tok):
    pairs = sft.read_qa("domain_qa_train.txt")[::7] + sft.read_qa("domain_qa_heldout.txt")[:2]
    pairs.append(("Short?", "Yes. Next: nothing."))
    for question, answer in pairs:
        ids, labels = defs["chat_example"](tok, question, answer)
        ref_ids, ref_labels = sft.chat_example(tok, question, answer)
        assert torch.equal(ids, ref_ids) and torch.equal(labels, ref_labels)
        assert tok.decode(labels[labels != -100], skip_special_tokens=True) == answer


@pytest.mark.parametrize("seed,n,d,k", [(0, 12, 8, 1), (1, 32, 384, 2), (2, 6, 5, 6)])
def test_inline_top_k_matches_package(defs, seed, n, d, k):
    g = torch.Generator().manual_seed(seed)
    passages = nn.functional.normalize(torch.randn(n, d, generator=g), dim=-1)
    query = nn.functional.normalize(torch.randn(d, generator=g), dim=-1)
    ours, theirs = defs["top_k"](query, passages, k), rag.top_k(query, passages, k)
    assert torch.equal(ours.indices, theirs.indices)
    torch.testing.assert_close(ours.values, theirs.values)


def test_inline_rag_message_matches_package(defs):
    for question, passages in [("Why?", ["one.", "two."]), ("How large are the holes?", rag.read_passages()[:3])]:
        assert defs["rag_message"](question, passages) == rag.rag_message(question, passages)


def test_inline_embed_matches_package(defs):
    from test_rag import make_tiny_encoder      # the same tiny random BERT as the rag unit tests

    model, tok = make_tiny_encoder()
    texts = ["a b", "c d e f g", "z"]
    torch.testing.assert_close(defs["embed"](model, tok, texts), rag.embed(model, tok, texts), atol=1e-6, rtol=1e-6)


@pytest.mark.parametrize("seed,batch,beta", [(0, 1, 0.1), (1, 5, 0.5), (2, 3, 2.0)])
def test_inline_dpo_matches_package(defs, seed, batch, beta):
    g = torch.Generator().manual_seed(seed)
    logps = [-30 * torch.rand(batch, generator=g) for _ in range(4)]
    for ours, theirs in zip(defs["dpo_loss"](*logps, beta=beta), dpo.dpo_loss(*logps, beta=beta)):
        torch.testing.assert_close(ours, theirs)
    logits = torch.randn(batch, 7, 13, generator=g)
    labels = torch.randint(0, 13, (batch, 7), generator=g)
    labels[:, :3] = -100
    torch.testing.assert_close(defs["sequence_logprob"](logits, labels), dpo.sequence_logprob(logits, labels))


@pytest.mark.parametrize("seed,width,start", [(0, 9, 4), (1, 12, 2), (2, 6, 1)])
def test_answer_logprobs_equals_full_logits(seed, width, start):
    """The DPO run's answer_logprobs (logits only from the last prompt position on) = sequence_logprob on all logits."""
    from transformers import LlamaConfig, LlamaForCausalLM

    fn = notebook_definitions(NOTEBOOK, ["answer_logprobs"])["answer_logprobs"]
    torch.manual_seed(seed)
    model = LlamaForCausalLM(LlamaConfig(vocab_size=23, hidden_size=16, intermediate_size=32, num_hidden_layers=2,
                                         num_attention_heads=2, num_key_value_heads=1)).eval()
    ids = torch.randint(0, 23, (2, width))
    labels = ids.clone()
    labels[:, :start] = -100
    labels[0, start + 1:start + 2] = -100                     # a row whose answer starts later (and a masked gap)
    with torch.no_grad():
        torch.testing.assert_close(fn(model, ids, labels), dpo.sequence_logprob(model(input_ids=ids).logits, labels))
