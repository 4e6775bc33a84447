"""Generate jaxrank's built-in demo collection ``jaxrank/data/hobbies`` (BEIR format).

The text is written for jaxrank: hand-written vocabulary, sentence templates and
queries below, combined with a fixed seed. Every document is written for one (topic,
facet) pair from the topic's and the facet's word lists; every query is hand-written
for one (topic, facet) pair, mostly in other words than its documents use (paraphrases,
synonyms that occur in only a few documents), so exact word overlap finds only part of
the answer and a latent-semantic (LSA) stage ranks differently from BM25.

Judgments (the stated rule, also in ``jaxrank/data/hobbies/README.md``):

* 2: the document was written for the query's topic and facet;
* 1: the document was written for the query's topic, another facet;
* 0: every other document (not listed in the qrels file, as BEIR does).

Run ``python -m jaxrank.data.hobbies.make_collection`` to regenerate (output is deterministic).
"""

from __future__ import annotations

import json
import random
from pathlib import Path

OUT = Path(__file__).resolve().parent
SEED = 20261126
DOCS_PER_PAIR = 2

# topic key -> (display title, words used in documents, extra synonyms used mostly in queries)
TOPICS: dict[str, tuple[str, list[str], list[str]]] = {
    "cycling": (
        "Cycling",
        ["bicycle", "chain", "gears", "saddle", "pedals", "spokes", "frame", "tyres", "helmet"],
        ["bike", "cyclist"],
    ),
    "coffee": (
        "Coffee at home",
        ["coffee", "beans", "grinder", "espresso", "roast", "brewing", "filter", "crema"],
        ["caffeine", "barista"],
    ),
    "houseplants": (
        "Houseplants",
        ["houseplant", "pot", "soil", "leaves", "watering", "sunlight", "fern", "succulent"],
        ["greenery", "foliage"],
    ),
    "sourdough": (
        "Sourdough baking",
        ["sourdough", "starter", "dough", "flour", "oven", "loaf", "crust", "fermentation"],
        ["bread", "baker"],
    ),
    "beekeeping": (
        "Beekeeping",
        ["beehive", "bees", "honey", "queen", "colony", "smoker", "frames", "pollen"],
        ["apiary", "apiarist"],
    ),
    "camping": (
        "Camping",
        ["tent", "campsite", "sleeping", "stove", "backpack", "tarp", "lantern", "trail"],
        ["outdoors", "wilderness"],
    ),
    "aquarium": (
        "Aquarium keeping",
        ["aquarium", "fish", "tank", "gravel", "heater", "algae", "pump", "guppies"],
        ["fishkeeping", "aquarist"],
    ),
    "guitar": (
        "Guitar",
        ["guitar", "strings", "frets", "chords", "amplifier", "pick", "tuning", "fretboard"],
        ["guitarist", "strumming"],
    ),
    "running": (
        "Running",
        ["running", "shoes", "marathon", "pace", "sneakers", "stride", "jogging", "laces"],
        ["runner", "sprint"],
    ),
    "solar": (
        "Solar power",
        ["solar", "panels", "inverter", "roof", "battery", "sunshine", "wiring", "watts"],
        ["photovoltaic", "renewable"],
    ),
    "chess": (
        "Chess",
        ["chess", "board", "pieces", "openings", "pawn", "bishop", "checkmate", "tournament"],
        ["grandmaster", "gambit"],
    ),
    "knitting": (
        "Knitting",
        ["knitting", "yarn", "needles", "stitches", "wool", "scarf", "sweater", "pattern"],
        ["knitter", "crochet"],
    ),
    "kayaking": (
        "Kayaking",
        ["kayak", "paddle", "river", "rapids", "lifejacket", "hull", "canoe", "current"],
        ["paddler", "whitewater"],
    ),
    "composting": (
        "Composting",
        ["compost", "bin", "scraps", "worms", "mulch", "peelings", "heap", "humus"],
        ["vermicomposting", "decomposition"],
    ),
    "dogs": (
        "Dog training",
        ["dog", "puppy", "leash", "treats", "obedience", "collar", "kennel", "commands"],
        ["canine", "pet"],
    ),
    "photography": (
        "Photography",
        ["camera", "lens", "shutter", "tripod", "aperture", "exposure", "sensor", "flash"],
        ["photographer", "snapshots"],
    ),
    "pottery": (
        "Pottery",
        ["pottery", "clay", "kiln", "wheel", "glaze", "bowls", "ceramics", "firing"],
        ["potter", "stoneware"],
    ),
    "climbing": (
        "Rock climbing",
        ["climbing", "rope", "harness", "carabiner", "belay", "boulder", "chalk", "crag"],
        ["climber", "mountaineering"],
    ),
    "tea": (
        "Tea",
        ["tea", "teapot", "leaves", "kettle", "infusion", "oolong", "matcha", "steeping"],
        ["chai", "herbal"],
    ),
    "birdwatching": (
        "Birdwatching",
        ["birds", "binoculars", "feeder", "songbirds", "nest", "migration", "hide", "plumage"],
        ["birder", "ornithology"],
    ),
}

# facet key -> words used in documents (nouns that read well without an article)
FACETS: dict[str, list[str]] = {
    "cost": ["price", "cost", "budget", "expense", "money", "savings", "dollars", "bargains"],
    "safety": ["safety", "danger", "risk", "injury", "hazards", "accidents", "precautions", "harm"],
    "beginners": ["beginners", "novices", "basics", "lessons", "practice", "mistakes", "patience"],
    "maintenance": ["maintenance", "cleaning", "repair", "upkeep", "storage", "inspection", "wear"],
    "history": [
        *("history", "origins", "centuries", "tradition", "ancestors", "invention", "heritage")
    ],
}

# Document sentences: {f0}.. are facet words, {t0}.. topic words.
FACET_SENTENCES: dict[str, list[str]] = {
    "cost": [
        "On {f0} and {f1}: the {t0} and the {t1} take most of it, so compare offers first.",
        "Questions of {f0} come up early; a used {t0} and a plain {t1} cut the {f1} a lot.",
        "A note on {f0}: spend on the {t0}, save on the {t1}, and keep an eye on {f1}.",
    ],
    "safety": [
        "On {f0} and {f1}: check the {t0} and the {t1} every time to keep {f2} away.",
        "Most {f0} around the {t0} comes from the {t1}; {f1} is easy to prevent.",
        "A word on {f0}: a worn {t0} or a loose {t1} invites {f1}.",
    ],
    "beginners": [
        "For {f0}: begin with the {t0} and the {t1}, and expect {f1} in the first weeks.",
        "{F0} meet the {t0} first; the {t1} can wait until {f1} pay off.",
        "A short guide to {f0}: the {t0}, the {t1}, and the usual {f1} explained.",
    ],
    "maintenance": [
        "On {f0} and {f1}: look after the {t0} and check the {t1} once a month.",
        "Simple {f0} keeps the {t0} going; {f1} of the {t1} prevents {f2}.",
        "A note on {f0}: keep the {t0} dry and watch for {f1} on the {t1}.",
    ],
    "history": [
        "On {f0} and {f1}: the {t0} is older than most people think; the {t1} came later.",
        "The {f0} of the {t0} spans {f1}; the {t1} is a later addition.",
        "A look at {f0}: how the {t0} and the {t1} grew out of local {f1}.",
    ],
}
TOPIC_SENTENCES = [
    "Many people pair the {t2} with the {t3}.",
    "The {t2} and the {t3} matter as much as anything else here.",
    "Ask around about the {t2} and the {t3} too.",
    "Notes on the {t2} and the {t3} follow below.",
]

# Hand-written queries, one per (topic, facet): mostly other words than the documents use.
QUERIES: dict[tuple[str, str], str] = {
    ("cycling", "cost"): "how much should I spend on a bike",
    ("cycling", "beginners"): "getting started riding a bike as an adult",
    ("coffee", "safety"): "can a barista get hurt by the espresso machine",
    ("coffee", "maintenance"): "how do I clean my coffee grinder",
    ("houseplants", "beginners"): "easy greenery for someone who has never kept plants",
    ("houseplants", "history"): "where did keeping foliage indoors come from",
    ("sourdough", "maintenance"): "looking after a bread starter between bakes",
    ("sourdough", "cost"): "is baking your own bread cheaper",
    ("beekeeping", "history"): "how old is the craft of the apiarist",
    ("beekeeping", "safety"): "avoiding stings when opening an apiary",
    ("camping", "cost"): "cheap gear for a weekend in the wilderness",
    ("camping", "beginners"): "first night sleeping outdoors, what should I know",
    ("aquarium", "safety"): "keeping electrics safe around a fish tank",
    ("aquarium", "maintenance"): "how often should the aquarist clean the glass",
    ("guitar", "beginners"): "learning your first chords",
    ("guitar", "history"): "origins of the electric guitar",
    ("running", "maintenance"): "when to replace worn out sneakers",
    ("running", "cost"): "are expensive trainers worth it for a runner",
    ("solar", "history"): "when were photovoltaic cells invented",
    ("solar", "safety"): "is it dangerous to put panels on my roof myself",
    ("chess", "cost"): "inexpensive set for a chess club",
    ("chess", "beginners"): "how should a newcomer learn openings",
    ("knitting", "safety"): "can knitting needles hurt your wrists",
    ("knitting", "maintenance"): "washing and storing a wool sweater",
    ("kayaking", "beginners"): "first time paddling a kayak",
    ("kayaking", "history"): "where did the canoe originate",
    ("composting", "maintenance"): "fixing a smelly compost heap",
    ("composting", "cost"): "saving money with vermicomposting",
    ("dogs", "history"): "how were dogs first domesticated",
    ("dogs", "safety"): "protecting a pet from harm on walks",
    ("photography", "cost"): "affordable lens for a new photographer",
    ("photography", "beginners"): "camera basics for absolute beginners",
    ("pottery", "safety"): "is kiln firing hazardous at home",
    ("pottery", "maintenance"): "caring for a potter's wheel",
    ("climbing", "beginners"): "learning to belay at an indoor wall",
    ("climbing", "history"): "the origins of mountaineering",
    ("tea", "maintenance"): "descaling a kettle and cleaning a teapot",
    ("tea", "cost"): "why is matcha so expensive",
    ("birdwatching", "history"): "the story of ornithology and bird feeders",
    ("birdwatching", "safety"): "staying safe while out birding",
}


def _pick(rng: random.Random, words: list[str], n: int) -> list[str]:
    return rng.sample(words, n)


def generate() -> tuple[list[dict], list[dict], list[tuple[str, str, int]]]:
    rng = random.Random(SEED)
    corpus: list[dict] = []
    by_pair: dict[tuple[str, str], list[str]] = {}
    for topic, (title, words, synonyms) in TOPICS.items():
        for facet, fwords in FACETS.items():
            for n in range(DOCS_PER_PAIR):
                t = _pick(rng, words, 4)
                if rng.random() < 0.25:  # a few documents use a topic synonym
                    t[rng.randrange(4)] = rng.choice(synonyms)
                f = _pick(rng, fwords, 3)
                slots = {f"t{i}": w for i, w in enumerate(t)} | {
                    f"f{i}": w for i, w in enumerate(f)
                }
                slots["F0"] = f[0].capitalize()
                first = rng.choice(FACET_SENTENCES[facet]).format(**slots)
                second = rng.choice(TOPIC_SENTENCES).format(**slots)
                doc_id = f"{topic}-{facet}-{n + 1}"
                corpus.append({"_id": doc_id, "title": title, "text": f"{first} {second}"})
                by_pair.setdefault((topic, facet), []).append(doc_id)
    queries: list[dict] = []
    qrels: list[tuple[str, str, int]] = []
    for (topic, facet), text in QUERIES.items():
        qid = f"q{len(queries) + 1:02d}"
        queries.append({"_id": qid, "text": text})
        for f2 in FACETS:
            for doc_id in by_pair[(topic, f2)]:
                qrels.append((qid, doc_id, 2 if f2 == facet else 1))
    return corpus, queries, qrels


def main() -> None:
    corpus, queries, qrels = generate()
    (OUT / "qrels").mkdir(parents=True, exist_ok=True)
    with open(OUT / "corpus.jsonl", "w", encoding="utf-8") as f:
        for d in corpus:
            f.write(json.dumps(d) + "\n")
    with open(OUT / "queries.jsonl", "w", encoding="utf-8") as f:
        for q in queries:
            f.write(json.dumps(q) + "\n")
    with open(OUT / "qrels" / "test.tsv", "w", encoding="utf-8") as f:
        f.write("query-id\tcorpus-id\tscore\n")
        for qid, doc_id, rel in qrels:
            f.write(f"{qid}\t{doc_id}\t{rel}\n")
    print(f"{len(corpus)} documents, {len(queries)} queries, {len(qrels)} judgments -> {OUT}")


if __name__ == "__main__":
    main()
