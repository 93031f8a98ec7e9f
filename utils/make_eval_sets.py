"""Generate the course's bundled evaluation sets (lesson 10): three small tasks of different kinds.

    .venv/bin/python utils/make_eval_sets.py          # writes utils/slmcourse/data/eval/*.jsonl

Every item is generated from the word lists below with a fixed seed, so the files are reproducible
byte for byte (their SHA-256 are checked by tests/test_evaluate.py). Written for the course: CC0 1.0.

- facts      closed-book commonsense multiple choice, 4 options ("Which of these is a fruit?")
- sentiment  two-way sentiment classification of a one-sentence review (negative / positive)
- arithmetic two-number addition and subtraction, answered by generation (exact match on the number)

Splits: `dev` (50 items: the few-shot pool and for trying things), `test` (200 items: the reported
scores) and `train` (2,000 items of the same kinds, never overlapping test or dev questions: the size
ladder's task-format training text, utils/train_size_ladder.py).
"""
from __future__ import annotations

import json
import random
from pathlib import Path

OUT = Path(__file__).resolve().parent / "slmcourse" / "data" / "eval"
SIZES = {"dev": 50, "test": 200, "train": 2000}

CATEGORIES = {
    "an animal": ["a dog", "a cat", "a horse", "a rabbit", "a lion", "a sheep", "a goat", "a mouse", "a tiger",
                  "a bear", "a fox", "a cow", "a duck", "a frog", "a whale", "a monkey"],
    "a fruit": ["an apple", "a banana", "a pear", "a plum", "a grape", "a lemon", "a mango", "a peach", "a cherry",
                "an orange", "a melon", "a kiwi"],
    "a tool": ["a hammer", "a saw", "a drill", "a wrench", "a screwdriver", "a shovel", "a rake", "an axe",
               "a chisel", "a pair of pliers"],
    "a vehicle": ["a car", "a bus", "a truck", "a bicycle", "a train", "a boat", "a plane", "a tractor", "a scooter",
                  "a van"],
    "a colour": ["red", "blue", "green", "yellow", "purple", "orange", "pink", "brown", "grey", "black"],
    "a piece of furniture": ["a chair", "a table", "a sofa", "a bed", "a desk", "a shelf", "a wardrobe", "a stool",
                             "a bench", "a cupboard"],
    "a musical instrument": ["a piano", "a guitar", "a violin", "a drum", "a flute", "a trumpet", "a harp",
                             "a cello", "a clarinet"],
    "a part of the body": ["a hand", "a foot", "an elbow", "a knee", "a nose", "an ear", "a shoulder", "a finger",
                           "a toe", "a chin"],
    "a drink": ["water", "milk", "tea", "coffee", "juice", "lemonade", "cocoa", "soup"],
}
# "soup" and "orange" are deliberately kept out of distractor slots where they would be ambiguous
AMBIGUOUS = {"orange", "soup"}
QUESTION_FORMS = ["Which of these is {cat}?", "Which one is {cat}?", "Which of the following is {cat}?"]

THINGS = ["soup", "pizza", "film", "hotel room", "book", "phone", "concert", "bus ride", "coffee", "game",
          "jacket", "lesson", "garden", "cake", "laptop", "service", "museum", "show", "salad", "chair"]
POSITIVE = ["wonderful", "delicious", "excellent", "lovely", "great", "fantastic", "pleasant", "superb",
            "brilliant", "charming", "perfect", "delightful", "amazing", "friendly", "comfortable"]
NEGATIVE = ["awful", "terrible", "bland", "dreadful", "boring", "disappointing", "horrible", "rude", "dirty",
            "broken", "cold", "noisy", "poor", "useless", "unpleasant"]
POS_ENDS = ["and I would go again", "and I loved it", "so I recommend it", "and it made my day",
            "and worth every penny"]
NEG_ENDS = ["and I will not go back", "and I hated it", "so avoid it", "and it ruined my day",
            "and a waste of money"]
FRAMES = ["The {thing} was {adj} {end}.", "This {thing} is {adj}, {end}.", "Honestly, the {thing} was {adj} {end}.",
          "What a {adj} {thing}, {end}."]


def facts_item(rng: random.Random) -> dict:
    cat = rng.choice(sorted(CATEGORIES))
    right = rng.choice(CATEGORIES[cat])
    others = [c for c in sorted(CATEGORIES) if c != cat]
    wrong = []
    for c in rng.sample(others, 3):
        options = [w for w in CATEGORIES[c] if w not in AMBIGUOUS]
        wrong.append(rng.choice(options))
    choices = wrong + [right]
    rng.shuffle(choices)
    question = rng.choice(QUESTION_FORMS).format(cat=cat)
    return {"question": question, "choices": choices, "answer": choices.index(right)}


def sentiment_item(rng: random.Random) -> dict:
    label = rng.randrange(2)  # 0 negative, 1 positive
    adj = rng.choice(POSITIVE if label else NEGATIVE)
    end = rng.choice(POS_ENDS if label else NEG_ENDS)
    frame = rng.choice(FRAMES)
    text = frame.format(thing=rng.choice(THINGS), adj=adj, end=end)
    text = text[0].upper() + text[1:]
    if frame.startswith("What a") and adj[0] in "aeiou":
        text = text.replace("What a ", "What an ", 1)
    return {"question": text, "choices": ["negative", "positive"], "answer": label}


def arithmetic_item(rng: random.Random) -> dict:
    a, b = rng.randint(1, 50), rng.randint(1, 50)
    if rng.random() < 0.5:
        return {"question": f"What is {a} plus {b}?", "answer": str(a + b)}
    a, b = max(a, b), min(a, b)
    return {"question": f"What is {a} minus {b}?", "answer": str(a - b)}


MAKERS = {"facts": facts_item, "sentiment": sentiment_item, "arithmetic": arithmetic_item}


def key(item: dict) -> str:
    return item["question"] + "|" + "|".join(item.get("choices", []))


def make(task: str) -> dict[str, list[dict]]:
    rng = random.Random(f"slmcourse-eval-{task}")
    seen: set[str] = set()
    out: dict[str, list[dict]] = {}
    for split in ("test", "dev", "train"):  # test first: it gets the first draws
        items = []
        while len(items) < SIZES[split]:
            item = MAKERS[task](rng)
            # test and dev questions are unique and never reused; train may repeat itself but never them
            if key(item) in seen:
                continue
            if split != "train":
                seen.add(key(item))
            items.append({"id": f"{task}-{split}-{len(items):04d}", **item})
        out[split] = items
    return out


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for task in MAKERS:
        for split, items in make(task).items():
            path = OUT / f"{task}_{split}.jsonl"
            path.write_text("".join(json.dumps(i, ensure_ascii=True) + "\n" for i in items), encoding="utf-8")
            print(f"{path.relative_to(OUT.parent.parent.parent.parent)}: {len(items)} items")


if __name__ == "__main__":
    main()
