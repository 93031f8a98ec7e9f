"""The catalogue: complete, consistent with the real architectures, honest about the source table."""
import pytest

import slmcourse
from slmcourse import catalogue
from slmcourse.catalogue import attention_kind
from slmcourse.errors import CourseError

SOURCE_TABLE = ["Phi-2", "TinyLlama-1.1B", "Mistral-7B", "Zephyr-7B", "CodeLlama-7B", "StableLM-3B", "BERT-Tiny",
                "DistilBERT", "Phi-1.5", "FLAN-T5-Small", "OPT-125M", "ALBERT-Base", "Falcon-1B", "MPT-7B", "Gemma-2B"]
BUNDLED = ["SmolLM2-135M-Instruct", "Gemma-3-270M", "all-MiniLM-L6-v2"]


def test_every_model_of_the_source_table_and_the_bundled_ones_is_catalogued():
    assert [catalogue.get(k).name for k in catalogue.source_table_names()] == SOURCE_TABLE
    assert [catalogue.get(k).name for k in catalogue.names(bundled=True)] == BUNDLED


@pytest.mark.parametrize("key", catalogue.names())
def test_each_entry_is_complete(key):
    card = catalogue.get(key)
    assert card.hub_id.count("/") == 1
    assert card.organisation and card.licence and card.params_source
    assert card.family in catalogue.FAMILIES
    assert card.position in ("learned", "rope", "alibi", "relative", "none")
    assert card.context_length > 0 and card.params > 1_000_000
    assert card.attention in ("MHA", "MQA", "GQA", "MLA")
    assert "model_type" in card.config and card.scaled_down
    if card.era:
        assert card.era == catalogue.NEWEST_ERA and 2024 <= card.year <= 2026 and not card.source
    elif not card.bundled:
        assert set(card.source) >= {"licence", "type", "company", "applications", "excellence"}


@pytest.mark.parametrize("key", catalogue.names())
def test_full_size_matches_the_published_count_within_one_percent(key):
    card = catalogue.get(key)
    counted = slmcourse.count_parameters(slmcourse.full_size(key))
    assert abs(counted - card.params) / card.params < 0.01, (counted, card.params)


def test_known_errors_of_the_source_table_are_recorded_with_evidence():
    phi2 = catalogue.get("phi-2")
    assert phi2.attention == "MHA" and "GQA" in phi2.corrections[0]["claim"]
    assert catalogue.get("stablelm-3b").licence == "CC-BY-SA-4.0"
    assert catalogue.get("stablelm-3b").source["licence"] == "LLAMA 2"
    assert catalogue.get("opt-125m").source["licence"] == "MIT" and "non-commercial" in catalogue.get("opt-125m").licence
    tiny = catalogue.get("tinyllama-1.1b")
    assert tiny.source["company"] == "Lightning AI" and "Singapore" in tiny.organisation
    for card in catalogue.all_cards():
        for fix in card.corrections:
            assert fix["claim"] and fix["fact"] and fix["evidence"]


def test_lookup_by_name_hub_id_or_key_ignores_case_and_punctuation():
    assert catalogue.get("microsoft/phi-2").key == "phi-2"
    assert catalogue.get("smollm2 135m").key == "smollm2-135m"
    assert catalogue.get("FLAN-T5-Small").key == "flan-t5-small"
    with pytest.raises(CourseError, match="not in the course catalogue"):
        catalogue.get("gpt-5")
    with pytest.raises(CourseError):
        catalogue.get("")


def test_attention_kind():
    assert attention_kind(32, 32) == "MHA"
    assert attention_kind(8, 1) == "MQA"
    assert attention_kind(9, 3) == "GQA"
    with pytest.raises(CourseError, match="evenly"):
        attention_kind(9, 2)
    with pytest.raises(CourseError):
        attention_kind(0, 1)


# --- tuning (issue 12.5) and the seed corrections (issue 12.7) -----------------------------------
@pytest.mark.parametrize("key", catalogue.names())
def test_every_model_says_what_it_was_tuned_for_and_where_that_is_stated(key):
    card = catalogue.get(key)
    assert card.tuning in catalogue.TUNINGS
    assert "model card" in card.tuning_source or "arXiv:" in card.tuning_source
    assert card.is_tuned == (card.tuning != "base")
    hub = card.hub_id.lower()
    if "-chat" in hub:
        assert card.tuning == "chat"
    if "-instruct" in hub or hub.endswith("-it"):
        assert card.tuning == "instruct"


def test_tuning_matches_the_model_cards():
    tunings = {c.key: c.tuning for c in catalogue.all_cards()}          # without the 2024-26 block
    assert not set(tunings) & set(catalogue.newest_names())
    base = {"phi-2", "mistral-7b", "codellama-7b", "stablelm-3b", "phi-1.5", "opt-125m", "falcon-1b", "mpt-7b",
            "gemma-2b", "gemma-3-270m", "bert-tiny", "distilbert", "albert-base", "all-minilm-l6-v2"}
    assert {k for k, t in tunings.items() if t == "base"} == base
    assert {k for k, t in tunings.items() if t == "chat"} == {"tinyllama-1.1b", "zephyr-7b"}
    assert {k for k, t in tunings.items() if t == "instruct"} == {"smollm2-135m", "flan-t5-small"}


def test_a_tuning_outside_base_instruct_chat_is_refused(tmp_path, monkeypatch):
    text = catalogue.CATALOGUE_FILE.read_text().replace('tuning = "chat"', 'tuning = "assistant"', 1)
    bad = tmp_path / "catalogue.toml"
    bad.write_text(text)
    monkeypatch.setattr(catalogue, "CATALOGUE_FILE", bad)
    catalogue._cards.cache_clear()
    try:
        with pytest.raises(ValueError, match="tuning must be one of"):
            catalogue.all_cards()
    finally:
        monkeypatch.undo()
        catalogue._cards.cache_clear()
    assert catalogue.get("zephyr-7b").tuning == "chat"


def _fix(key, word):
    fixes = [f for f in catalogue.get(key).corrections if word.lower() in f["claim"].lower()]
    assert len(fixes) == 1, (key, word, catalogue.get(key).corrections)
    return fixes[0]


def test_seed_corrections_are_recorded_with_primary_sources():
    tiny = _fix("tinyllama-1.1b", "compression")
    assert "from scratch" in tiny["fact"] and "3 trillion" in tiny["fact"] and "arXiv:2401.02385" in tiny["evidence"]
    bert_tiny = _fix("bert-tiny", "compressed")
    assert "pre-trained" in bert_tiny["fact"] and "arXiv:1908.08962" in bert_tiny["evidence"]
    distil = _fix("distilbert", "pioneer")
    assert "arXiv:1903.12136" in distil["evidence"] and "arXiv:1908.09355" in distil["evidence"]
    mistral = _fix("mistral-7b", "sliding window")
    assert "v0.2" in mistral["fact"] and catalogue.get("mistral-7b").hub_id.endswith("v0.1")
    assert catalogue.get("mistral-7b").sliding_window == 4096             # v0.1, the catalogue's model, has it
    falcon = _fix("falcon-1b", "name")
    assert "Falcon-RW-1B" in falcon["fact"] and catalogue.get("falcon-1b").hub_id == "tiiuae/falcon-rw-1b"


def test_the_2024_26_block():
    newest = catalogue.newest_names()
    assert len(newest) >= 8
    cards = [catalogue.get(k) for k in newest]
    assert {c.family for c in cards} >= {"decoder-only", "encoder"}
    assert any(c.attention == "MLA" for c in cards) and any(c.is_moe for c in cards)
    assert sum(c.is_moe for c in cards) == sum(bool(c.active_params_source) for c in cards)
    assert all(0 < c.active_params < c.params for c in cards if c.is_moe)
    assert {c.tuning for c in cards} == {"base", "instruct"}
    assert {c.key for c in cards if c.tuning == "base"} == {"olmoe-1b-7b", "deepseek-v2-lite", "modernbert-base",
                                                            "embeddinggemma-300m"}
    # the source table keeps its fifteen; the chooser's default cards do not change
    assert len(catalogue.source_table_names()) == 15
    assert len(catalogue.all_cards()) == 18 and len(catalogue.all_cards(include_newest=True)) == 18 + len(newest)


def test_issue_17_additions_match_their_published_figures():
    """Qwen3.5, Falcon-H1, Gemma 3n and EmbeddingGemma: built full size on meta from their published configs."""
    newest = set(catalogue.newest_names())
    assert {"qwen3.5-0.8b", "falcon-h1-0.5b", "gemma-3n-e4b", "embeddinggemma-300m"} <= newest
    published = {  # key: (published figure, what the counted model leaves out of it)
        "qwen3.5-0.8b": (0.8e9, 0.06),          # "0.8B" with a vision encoder; the language model is 0.75B
        "falcon-h1-0.5b": (521e6, 0.001),       # 521M on the Hub
        "embeddinggemma-300m": (308e6, 0.02),   # 308M with the two dense layers (4.7M) of its pipeline
    }
    for key, (figure, slack) in published.items():
        counted = slmcourse.count_parameters(slmcourse.full_size(key))
        assert counted == catalogue.get(key).params
        assert abs(counted - figure) / figure <= slack, (key, counted)
    assert catalogue.get("embeddinggemma-300m").params + 768 * 3072 * 2 == 307_581_696      # -> 308M
    g3n = catalogue.get("gemma-3n-e4b")
    assert g3n.config["num_hidden_layers"] * 256 * 262_144 == 2_348_810_240                 # per-layer embeddings
    assert 4e9 < g3n.params - 2_348_810_240 < 8e9 < g3n.params + 1.2e9                      # 8B with audio + vision
    full = slmcourse.full_size("qwen3.5-0.8b")
    assert [t for t in full.config.layer_types[:4]] == ["linear_attention"] * 3 + ["full_attention"]
    assert catalogue.get("falcon-h1-0.5b").attention == "GQA" and catalogue.get("embeddinggemma-300m").attention == "MQA"
    assert slmcourse.full_size("embeddinggemma-300m").config.use_bidirectional_attention is True
