"""slmcourse.anatomy (architecture-explorer logic) and the architecture explorer, driven headless."""

import pytest

import slmcourse
from slmcourse import anatomy as a
from slmcourse import catalogue
from slmcourse.errors import CourseError, OfflineError
from slmcourse.memory import GiB, weights_bytes


def test_count_check_reproduces_every_published_count():
    rows = a.count_check()
    assert [r["model"] for r in rows] == [catalogue.get(k).name for k in catalogue.source_table_names()]
    assert len(rows) == 15
    for row in rows:
        assert row["computed"] == row["published"], row["model"]
        assert row["difference"] == 0


def test_config_summary_reads_the_real_hyperparameters():
    model, card = a.build("SmolLM2-135M-Instruct")
    s = a.config_summary(model, card)
    assert (s["family"], s["layers"], s["hidden size"], s["query heads"], s["key/value heads"]) == \
           ("decoder-only", 30, 576, 9, 3)
    assert s["attention"] == "GQA" and s["head dim"] == 64 and s["tied embeddings"] == "yes"
    assert s["parameters"] == 134_515_008
    t5 = a.config_summary(*a.build("flan-t5-small"))
    assert t5["family"] == "encoder-decoder" and t5["decoder layers"] == 8 and t5["tied embeddings"] == "no"
    albert = a.config_summary(*a.build("albert-base"))
    assert albert["embedding size"] == 128 and albert["tied embeddings"] == "no LM head"
    assert a.config_summary(*a.build("mpt-7b"))["MLP size"] == 4 * 4096
    assert a.config_summary(*a.build("gemma-2b"))["attention"] == "MQA"


def test_tied_embeddings_from_the_module_tree():
    assert a.tied_embeddings(slmcourse.full_size("smollm2-135m")) is True
    assert a.tied_embeddings(slmcourse.full_size("tinyllama-1.1b")) is False
    assert a.tied_embeddings(slmcourse.full_size("flan-t5-small")) is False   # own LM head, see models._build
    assert a.tied_embeddings(slmcourse.full_size("distilbert")) is None       # AutoModel: no LM head


def test_block_structure_collapses_the_layer_stack_and_marks_sharing():
    text = a.block_structure(slmcourse.full_size("smollm2-135m"))
    assert "layers: 30 x LlamaDecoderLayer" in text
    assert "embed_tokens: Embedding 49152 x 576" in text
    assert "lm_head: Linear 576 -> 49152, no bias  [shares its weight with model.embed_tokens]" in text
    t5 = a.block_structure(slmcourse.full_size("flan-t5-small"))
    assert "block: 8 x T5Block" in t5 and "T5LayerCrossAttention" in t5
    assert t5.count("[shares its weight with shared]") == 2
    shallow = a.block_structure(slmcourse.full_size("smollm2-135m"), max_depth=1)
    assert "LlamaDecoderLayer" not in shallow
    with pytest.raises(CourseError):
        a.block_structure(slmcourse.full_size("smollm2-135m"), max_depth=0)


def test_breakdown_rows_sum_to_the_count():
    model = slmcourse.full_size("gemma-3-270m")
    rows = a.breakdown_rows(model)
    assert sum(r["parameters"] for r in rows) == slmcourse.count_parameters(model)
    embeddings = next(r for r in rows if r["part"] == "embeddings")
    assert embeddings["parameters"] == 262_144 * 640
    assert abs(sum(r["share %"] for r in rows) - 100) < 0.5


def test_memory_rows_build_on_memory_fit():
    rows = a.memory_rows("smollm2-135m", context=2048, device="Raspberry Pi 5 (8 GB)")
    # real formats at their real bits per weight first, the bare int4 last and labelled as an ideal bound
    assert [r["precision"] for r in rows] == ["fp32", "bf16", "Q8_0", "Q5_K_M", "Q4_K_M", "Q4_0", "int4 (ideal bound)"]
    assert [r["bits/weight"] for r in rows] == [32.0, 16.0, 8.5, 5.5, 5.43, 4.5, 4.0]
    assert rows[0]["weights GiB"] == round(weights_bytes(134_515_008, "fp32") / GiB, 3)
    assert rows[4]["weights GiB"] == round(weights_bytes(134_515_008, "Q4_K_M") / GiB, 3)
    assert all(r["fits Raspberry Pi 5 (8 GB)"] == "yes" for r in rows)
    assert a.memory_rows("mistral-7b", device="mybinder.org session")[0]["fits mybinder.org session"] == "no"
    # Mistral-7B on an 8 GB Raspberry Pi with 4k tokens: Q8_0 (8.5 bits) does not fit, the 4-bit formats do
    pi = {r["precision"]: r["fits Raspberry Pi 5 (8 GB)"] for r in a.memory_rows("mistral-7b", 4096, "Raspberry Pi 5 (8 GB)")}
    assert pi["Q8_0"] == "no" and pi["Q4_K_M"] == "yes"
    # a context longer than the model's is clipped to its maximum for the table
    assert a.memory_rows("bert-tiny", context=100_000)[0]["KV cache GiB"] == 0
    bare = a.memory_rows(1_000_000_000)
    assert bare[-1] == {"precision": "int4 (ideal bound)", "bits/weight": 4.0, "weights GiB": round(0.5e9 / GiB, 3)}
    assert a.memory_rows(1_000_000_000, formats=("Q4_0",)) == [
        {"precision": "Q4_0", "bits/weight": 4.5, "weights GiB": round(0.5625e9 / GiB, 3)}]
    with pytest.raises(CourseError, match="device"):
        a.memory_rows("smollm2-135m", device="toaster")
    with pytest.raises(CourseError, match="unknown precision"):
        a.memory_rows(1000, formats=("int3",))
    assert a.format_label("Q4_K_M") == "Q4_K_M" and a.format_label("int8") == "int8 (ideal bound)"


@pytest.mark.parametrize("key", ["smollm2-135m", "tinyllama-1.1b", "mistral-7b", "zephyr-7b", "codellama-7b", "gemma-2b"])
def test_llama_parameter_count_by_hand_equals_the_meta_build(key):
    model = slmcourse.full_size(key)
    assert a.llama_parameter_count(model.config) == slmcourse.count_parameters(model) == catalogue.get(key).params
    assert a.llama_parameter_count(catalogue.get(key).config) == catalogue.get(key).params   # a dict works too


def test_llama_parameter_count_tied_and_refusals():
    untied = a.llama_parameter_count(catalogue.get("tinyllama-1.1b").config)
    tied = a.llama_parameter_count({**catalogue.get("tinyllama-1.1b").config, "tie_word_embeddings": True})
    assert untied - tied == 32_000 * 2048
    with pytest.raises(CourseError, match="hidden_size"):
        a.llama_parameter_count({"vocab_size": 10})
    with pytest.raises(CourseError, match="evenly"):
        a.llama_parameter_count({"vocab_size": 10, "hidden_size": 12, "intermediate_size": 8, "num_hidden_layers": 1,
                                 "num_attention_heads": 3, "num_key_value_heads": 2})


def test_albert_parameter_count_by_hand_equals_albert_model_on_meta():
    card = catalogue.get("albert-base")
    assert a.albert_parameter_count(card.config) == card.params == 11_683_584
    unshared = a.meta_model(card, num_hidden_groups=12)
    assert a.albert_parameter_count(unshared.config) == slmcourse.count_parameters(unshared) == 89_650_176
    unfactorised = a.meta_model(card, embedding_size=768)
    assert a.albert_parameter_count(unfactorised.config) == slmcourse.count_parameters(unfactorised)
    with pytest.raises(CourseError, match="embedding_size"):
        a.albert_parameter_count({"vocab_size": 10})


def test_albert_sharing_numbers():
    s = a.albert_sharing()
    assert s["ALBERT-base as published (1 shared layer, E=128)"] == 11_683_584
    layer = 7_087_872   # one BERT-style layer at H=768: 12 of them without sharing, 1 with
    assert s["without cross-layer sharing (12 layers)"] - s["ALBERT-base as published (1 shared layer, E=128)"] == 11 * layer
    assert s["word embeddings unfactorised: V x H"] == 30_000 * 768
    assert s["word embeddings factorised: V x E + E x H"] == 30_000 * 128 + 128 * 768


def test_distilbert_is_about_40_percent_smaller_than_bert_base():
    d = a.distilbert_vs_bert()
    assert d["BERT-base"] == 109_482_240          # Devlin et al. 2019: "110M"
    assert d["DistilBERT"] == 66_362_880          # Sanh et al. 2019: "66M"
    assert d["BERT-base"] - d["DistilBERT"] == (d["6 layers removed"] + d["pooler removed"]
                                                + d["token-type embeddings removed"])
    assert 0.39 < 1 - d["DistilBERT"] / d["BERT-base"] < 0.41


def test_meta_from_config_and_build_errors(monkeypatch):
    bert = a.meta_from_config(a.BERT_BASE)
    assert {p.device.type for p in bert.parameters()} == {"meta"}
    with pytest.raises(CourseError):
        a.meta_from_config({"vocab_size": 3})
    with pytest.raises(CourseError):
        a.build("  ")
    with pytest.raises(CourseError, match="neither"):
        a.build("not a model!")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(OfflineError, match="offline"):
        a.build("someone/some-model")


def test_anatomy_bundles_everything():
    info = a.anatomy("opt-125m", context=1024)
    assert info.name == "OPT-125M" and info.card.key == "opt-125m"
    assert info.summary["positions"] == "learned"
    assert "12 x OPTDecoderLayer" in info.structure
    assert len(info.memory) == len(a.MEMORY_FORMATS) and len(info.breakdown) == 6


# ---- the explorer, headless --------------------------------------------------------------------------

def test_architecture_explorer_updates_and_refuses_nonsense(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    from slmcourse.explorers.architecture import architecture_explorer

    box = architecture_explorer()
    assert "SmolLM2-135M-Instruct" in box.result.value and "30 x LlamaDecoderLayer" in box.result.value
    assert bytes(box.figure.value).startswith(b"\x89PNG")               # the breakdown plot, as a PNG image
    box.controls["model"].value = "albert-base"
    assert "AlbertModel" in box.result.value and "embedding size" in box.result.value
    box.controls["device"].value = "mybinder.org session"
    assert "fits mybinder.org session" in box.result.value
    box.controls["hub_id"].value = "someone/some-model"
    box.button.click()
    assert "Cannot compute this" in box.result.value and "offline" in box.result.value
    box.controls["hub_id"].value = "not a model!"
    box.button.click()
    assert "Cannot compute this" in box.result.value and "neither" in box.result.value
    box.controls["model"].value = "flan-t5-small"      # picking from the list clears the Hub id
    assert box.controls["hub_id"].value == "" and "T5ForConditionalGeneration" in box.result.value
    box.controls["context"].value = 0
    assert "Cannot compute this" in box.result.value and "context" in box.result.value
    assert bytes(box.figure.value) == b""
