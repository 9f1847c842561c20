"""Chat-formatted training and evaluation data for the demo model (models/volt-demo-vl), from maps.py and documents.py.

Everything is a deterministic function of a seed:
  - training conversations use seeds 0, 1, 2, ... (maps and documents count separately);
  - the held-out evaluation set uses seeds from EVAL_SEED_BASE (10^9) upwards, which training never reaches.
A conversation is a list of chat messages in MiniMax-VL-01's content-list form, rendered by the model's own chat
template (tokenizer_config.json `chat_template`, the exact VL-01 template), exactly as Volt's ChatSession builds it:
  - an image goes into the user message as an {"type": "image"} part BEFORE the text (the template writes `<image>`,
    which the model expands to the image's 576 + h'*w' + h' feature tokens);
  - a document goes in as a text part "[document: NAME]\n" + text + "\n[end of document]\n\n" before the question
    (sdk/engine/chat_session.cpp ChatSession::add_message);
  - the assistant's answer is short; training puts the loss on the answer's tokens and the <end_of_sentence> after it.
A training conversation asks several questions about one map or document in turn (more supervision per image
forward); the question types come in random order, so each type is often the first question, which is how the
evaluation (and a user) asks.
"""
from __future__ import annotations

import json
import os
import random
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, HERE)
from documents import make_document  # noqa: E402
from maps import CITY_NAMES, legibility_problems, make_map  # noqa: E402

SPECIALS = ["<end_of_document>", "<begin_of_document>", "<beginning_of_sentence>", "<end_of_sentence>", "<image>"]
IMAGE_TOKEN, EOS_TOKEN, BOS_TOKEN = "<image>", "<end_of_sentence>", "<beginning_of_sentence>"
ASSISTANT_HEADER = "ai name=assistant\n"  # what the template writes after <beginning_of_sentence> for the assistant

# Map sizes of the demo: (width, height). With VL-01's tiling a 336x336 map costs 576 + 576 + 24 = 1176 image
# tokens, 672x336 and 336x672 about 1750; larger maps (4+ tiles) would pass 2900 tokens per prompt.
DEMO_SIZES = [(336, 336), (672, 336), (336, 672)]
MAP_MIN_FONT = 16          # city labels of at least 16 px (the generator's default is 14)
EVAL_SEED_BASE = 1_000_000_000
EVAL_MAPS, EVAL_DOCS = 144, 56   # 200 held-out questions: 16 per map question type, the rest documents

MAP_QUESTIONS = {  # kind -> paraphrases; "{a}"/"{b}" are the two cities of the distance question
    "north": ["Which city is north of the river?", "Which city lies north of the river?",
              "What city is on the north side of the river?"],
    "bridges": ["How many bridges cross the river?", "How many bridges are there?",
                "How many bridges are on the map?"],
    "colour": ["What colour is the highway?", "What color is the highway?", "Which colour is the highway?"],
    "lake": ["Which city is closest to the lake?", "Which city is nearest to the lake?"],
    "distance": ["About how far is it from {a} to {b} in a straight line?", "How far is {a} from {b}?",
                 "What is the distance from {a} to {b}?"],
    "cities": ["How many cities are on the map?", "How many cities are there?", "How many cities does the map show?"],
    "scale": ["What distance does the scale bar show?", "What does the scale bar say?"],
    "lake_side": ["Is the lake north or south of the river?", "Which side of the river is the lake on?"],
    "describe": ["Describe the map.", "What does this map show?", "What is in this picture?"],
}
# Training-only map question: every label, west to east (dense reading practice; not in the evaluation set).
LIST_QUESTIONS = ["Which cities are on the map?", "List the cities on the map.", "What cities does the map show?"]
DOC_QUESTIONS = {  # kind -> paraphrases of the generator's canonical question ("{x}" = the town or item asked about)
    "population": ["What is the population of {x}?", "How many people live in {x}?"],
    "founded": ["When was {x} founded?", "In which year was {x} founded?"],
    "largest": ["Which town has the largest population?", "Which town is the biggest?"],
    "smallest": ["Which town has the smallest population?", "Which town is the smallest?"],
    "oldest": ["Which town was founded first?", "Which town is the oldest?"],
    "count": ["How many towns are listed?", "How many items are listed?"],  # picked by the document's kind
    "price": ["How much do {x} cost?", "What is the price of {x}?"],
    "most_expensive": ["Which item is the most expensive?", "What is the most expensive item?"],
    "cheapest": ["Which item is the cheapest?", "What is the cheapest item?"],
}
DOC_NAMES = ["towns.md", "table.md", "notes.txt", "valley.md", "prices.txt", "market.md", "list.txt", "data.md",
             "report.txt", "document.md"]
SMALLTALK = [
    (["Hello", "Hello!", "Hi", "Hi!", "Hey"],
     "Hello! I am Volt's demo model. Attach a map or a document and ask me about it."),
    (["What can you do?", "Who are you?", "What are you?", "Help"],
     "I am a tiny demonstration model trained on synthetic data: I answer questions about simple maps "
     "(cities, a river, bridges, a lake, roads, the scale bar) and about short documents (tables and lists)."),
    (["Thanks", "Thank you", "Thank you!"], "You are welcome."),
]


# ---------------------------------------------------------------------------------------------------------------------
# Samples
def demo_map(seed: int):
    """The demo's map for `seed`, or None when the generator cannot place it or a reader could not answer from the
    picture (maps.legibility_problems); callers skip such seeds, deterministically."""
    try:
        m = make_map(seed, sizes=DEMO_SIZES, min_font=MAP_MIN_FONT)
    except RuntimeError:
        return None
    return None if legibility_problems(m) else m


def document_part(name: str, text: str) -> str:
    """The text part Volt's ChatSession makes of an attached document (sdk/engine/chat_session.cpp)."""
    return f"[document: {name}]\n{text}\n[end of document]\n\n"


def map_question(m, kind: str, rng: random.Random) -> str:
    template = rng.choice(MAP_QUESTIONS[kind])
    if kind == "distance":
        a, b = m.meta["distance_pair"]
        return template.format(a=m.cities[a].name, b=m.cities[b].name)
    return template


def doc_question(kind: str, canonical: str, text: str, rng: random.Random) -> str:
    if kind == "count":
        return canonical  # "towns" or "items", whichever the document lists
    template = rng.choice(DOC_QUESTIONS[kind])
    if "{x}" in template:
        x = re.match(r"(?:What is the population of|When was|How much do) (.+?)(?: founded| cost)?\?$", canonical)
        if not x:
            raise ValueError(f"cannot find the subject of {canonical!r}")
        return template.format(x=x.group(1))
    return template


def turns_to_messages(first_parts: list[dict], turns: list[tuple[str, str]]) -> list[dict]:
    """User/assistant messages: the first user message carries `first_parts` (image or document) before its text."""
    msgs = []
    for i, (q, a) in enumerate(turns):
        parts = (first_parts if i == 0 else []) + [{"type": "text", "text": q}]
        msgs.append({"role": "user", "content": parts})
        msgs.append({"role": "assistant", "content": [{"type": "text", "text": a}]})
    return msgs


def map_conversation(seed: int, rng: random.Random | None = None, extra: bool = False):
    """All of a map's questions, in random order, as one conversation; None for a skipped seed. `extra` adds the
    training-only question listing the cities."""
    m = demo_map(seed)
    if m is None:
        return None
    rng = rng or random.Random(seed ^ 0x5EED)
    qs = [(k, map_question(m, k, rng), a) for k, _, a in m.questions]
    if extra:
        qs.append(("list", rng.choice(LIST_QUESTIONS), ", ".join(c.name for c in sorted(m.cities, key=lambda c: c.x))))
    rng.shuffle(qs)
    return dict(source="map", seed=seed, image=m.image, size=m.meta["size"], kinds=[k for k, _, _ in qs],
                messages=turns_to_messages([{"type": "image"}], [(q, a) for _, q, a in qs]))


def doc_conversation(seed: int, rng: random.Random | None = None, extra: bool = False):
    """A document's questions in random order; `extra` also asks the population and founding year of every town, or
    the price of every item (more look-up practice per document)."""
    d = make_document(seed)
    rng = rng or random.Random(seed ^ 0xD0C)
    name = rng.choice(DOC_NAMES)
    qs = list(d.questions)
    if extra:
        asked = {q for _, q, _ in qs}
        for town, pop, year in re.findall(r"^\| (\w+) \| (\d+) \| (\d+) \|$", d.text, re.M):
            qs += [("population", f"What is the population of {town}?", pop),
                   ("founded", f"When was {town} founded?", year)]
        for item, price in re.findall(r"^- (\w+): (\d+) coins$", d.text, re.M):
            qs.append(("price", f"How much do {item} cost?", f"{price} coins"))
        qs = [x for i, x in enumerate(qs) if i < len(d.questions) or x[1] not in asked]
    rng.shuffle(qs)
    turns = [(doc_question(k, q, d.text, rng), a) for k, q, a in qs]
    return dict(source="doc", seed=seed, doc_name=name, doc_text=d.text, kinds=[k for k, _, _ in qs],
                messages=turns_to_messages([{"type": "text", "text": document_part(name, d.text)}], turns))


def smalltalk_conversation(seed: int):
    rng = random.Random(seed ^ 0x7A1C)
    prompts, answer = rng.choice(SMALLTALK)
    return dict(source="chat", seed=seed, kinds=["chat"],
                messages=turns_to_messages([], [(rng.choice(prompts), answer)]))


def eval_items() -> list[dict]:
    """The 200 held-out questions: single-turn, seeds from EVAL_SEED_BASE, question types balanced. Each item:
    id, source (map|doc), seed, kind, question, answer, and the map size or the document name and text."""
    items = []
    kinds = list(MAP_QUESTIONS)
    seed = EVAL_SEED_BASE
    while len(items) < EVAL_MAPS:
        m = demo_map(seed)
        if m is not None:
            kind = kinds[len(items) % len(kinds)]
            rng = random.Random(seed)
            answer = next(a for k, _, a in m.questions if k == kind)
            items.append(dict(id=f"map-{seed}-{kind}", source="map", seed=seed, kind=kind,
                              question=map_question(m, kind, rng), answer=answer, size=list(m.meta["size"])))
        seed += 1
    doc_kinds = list(DOC_QUESTIONS)
    seed = EVAL_SEED_BASE
    while len(items) < EVAL_MAPS + EVAL_DOCS:
        kind = doc_kinds[(len(items) - EVAL_MAPS) % len(doc_kinds)]
        d = make_document(seed)
        seed += 1
        found = [(q, a) for k, q, a in d.questions if k == kind]
        if not found:
            continue  # a price list has no town questions and vice versa: the next seed
        q, a = found[0]
        rng = random.Random(d.seed)
        items.append(dict(id=f"doc-{d.seed}-{kind}", source="doc", seed=d.seed, kind=kind,
                          question=doc_question(kind, q, d.text, rng), answer=a, doc_name=rng.choice(DOC_NAMES),
                          doc_text=d.text))
    return items


def eval_messages(item: dict) -> list[dict]:
    """The user message Volt's ChatSession builds for an evaluation item (attach_image/attach_document + question)."""
    if item["source"] == "map":
        parts = [{"type": "image"}]
    else:
        parts = [{"type": "text", "text": document_part(item["doc_name"], item["doc_text"])}]
    return [{"role": "user", "content": parts + [{"type": "text", "text": item["question"]}]}]


def normalise_answer(text: str) -> str:
    """Case, surrounding white space and a final full stop do not count."""
    t = " ".join(text.strip().split()).lower()
    return t[:-1] if t.endswith(".") and not t[:-1].endswith(".") else t


def answer_correct(prediction: str, answer: str) -> bool:
    return normalise_answer(prediction) == normalise_answer(answer)


# ---------------------------------------------------------------------------------------------------------------------
# Tokenizer and chat template
def chat_template() -> str:
    """MiniMax-VL-01's chat template, as committed for the tokenizer tests (the exact VL-01 template)."""
    with open(os.path.join(REPO, "tests", "data", "tokenizer", "chat_templates.json")) as f:
        return json.load(f)["templates"]["minimax_vl01"]


def tokenizer_corpus(n_maps: int = 1500, n_docs: int = 3000) -> list[str]:
    """Rendered conversations (training seeds) and every name, so BPE learns the words as the model will see them
    (with and without a leading space)."""
    import jinja2

    tmpl = jinja2.Environment().from_string(chat_template().replace("{% generation %}{% endgeneration %}", ""))
    out = []
    convs = [map_conversation(s) for s in range(n_maps)] + [doc_conversation(s) for s in range(n_docs)]
    convs += [smalltalk_conversation(s) for s in range(200)]
    for c in convs:
        if c is not None:
            out.append(tmpl.render(messages=c["messages"], add_generation_prompt=False))
    out += [" ".join(CITY_NAMES), "\n".join(CITY_NAMES)]
    return out


def build_tokenizer(out_dir: str, vocab_size: int = 1024) -> None:
    """Byte-level BPE (HF tokenizers) with MiniMax's special tokens at ids 0-4, digits split one by one (so a number
    reads the same in a table cell and in an answer), plus tokenizer_config.json with the VL-01 chat template."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True),
                                                 pre_tokenizers.ByteLevel(add_prefix_space=False)])
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=SPECIALS,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(tokenizer_corpus(), trainer)
    for i, s in enumerate(SPECIALS):
        if tok.token_to_id(s) != i:
            raise RuntimeError(f"special token {s} got id {tok.token_to_id(s)}, expected {i}")
    os.makedirs(out_dir, exist_ok=True)
    tok.save(os.path.join(out_dir, "tokenizer.json"))
    with open(os.path.join(out_dir, "tokenizer_config.json"), "w") as f:
        json.dump({"tokenizer_class": "PreTrainedTokenizerFast", "bos_token": BOS_TOKEN, "eos_token": EOS_TOKEN,
                   "unk_token": "<end_of_document>", "chat_template": chat_template(), "model_max_length": 4096},
                  f, indent=1)
        f.write("\n")


class Encoder:
    """Renders conversations with the model's chat template (transformers apply_chat_template, as HF would) and
    tokenizes them; image tokens are expanded to each image's feature count, and the answer positions are marked."""

    def __init__(self, tokenizer_dir: str):
        from transformers import AutoTokenizer

        self.tok = AutoTokenizer.from_pretrained(tokenizer_dir)
        self.image_id = self.tok.convert_tokens_to_ids(IMAGE_TOKEN)
        self.eos_id = self.tok.convert_tokens_to_ids(EOS_TOKEN)
        self.bos_id = self.tok.convert_tokens_to_ids(BOS_TOKEN)
        self.header = self.tok(ASSISTANT_HEADER, add_special_tokens=False)["input_ids"]

    def render(self, messages: list[dict], add_generation_prompt: bool) -> str:
        return self.tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=add_generation_prompt)

    def encode(self, messages: list[dict], image_tokens: list[int], add_generation_prompt: bool = False):
        """-> (ids, target) where target[i] is True for the answer tokens and the <end_of_sentence> closing each
        assistant message. Each `<image>` id becomes image_tokens[k] copies (k-th image)."""
        text = self.render(messages, add_generation_prompt)
        raw = self.tok(text, add_special_tokens=False)["input_ids"]
        ids, target, k, in_answer = [], [], 0, False
        H = len(self.header)
        i = 0
        while i < len(raw):
            t = raw[i]
            if t == self.image_id:
                if k >= len(image_tokens):
                    raise ValueError("more <image> tokens in the conversation than images")
                ids += [t] * image_tokens[k]
                target += [False] * image_tokens[k]
                k += 1
                i += 1
                continue
            if t == self.bos_id and raw[i + 1:i + 1 + H] == self.header:
                ids += raw[i:i + 1 + H]
                target += [False] * (1 + H)
                i += 1 + H
                in_answer = True
                continue
            ids.append(t)
            target.append(in_answer)
            if t == self.eos_id:
                in_answer = False
            i += 1
        if k != len(image_tokens):
            raise ValueError(f"{len(image_tokens)} images given, the conversation has {k} <image> tokens")
        return ids, target
