"""Short procedural documents (tables and lists) with questions whose answers are in them.

A document is Markdown text that goes into the prompt (like an attached .txt/.md/.pdf after extraction): a table of
cities with population and founding year, or a price list. Questions ask for a cell, the largest value, or a count
(`qa`, the original ones); `questions` holds them as (kind, question, answer) plus the smallest value / the oldest
town, derived from the same numbers without further random draws (so `qa` and `text` stay what they were per seed).
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field

from maps import CITY_NAMES

ITEMS = ["apples", "bread", "cheese", "coffee", "eggs", "flour", "honey", "lamps", "maps", "nails", "oil", "pens",
         "rope", "salt", "tea", "wool"]


@dataclass
class DocSample:
    seed: int
    text: str
    qa: list[tuple[str, str]]
    questions: list[tuple[str, str, str]] = field(default_factory=list)  # (kind, question, answer)


def make_document(seed: int) -> DocSample:
    rng = random.Random(seed)
    if rng.random() < 0.5:
        names = rng.sample(CITY_NAMES, rng.randint(3, 6))
        pops = [rng.randint(1000, 99999) for _ in names]
        years = [rng.randint(1100, 1950) for _ in names]
        rows = "\n".join(f"| {n} | {p} | {y} |" for n, p, y in zip(names, pops, years))
        text = "# Towns of the valley\n\n| Town | Population | Founded |\n|---|---|---|\n" + rows + "\n"
        i = rng.randrange(len(names))
        qa = [(f"What is the population of {names[i]}?", str(pops[i])),
              (f"When was {names[i]} founded?", str(years[i])),
              ("Which town has the largest population?", names[max(range(len(names)), key=pops.__getitem__)]),
              ("How many towns are listed?", str(len(names)))]
        questions = [(k, q, a) for k, (q, a) in zip(["population", "founded", "largest", "count"], qa)]
        questions += [("smallest", "Which town has the smallest population?",
                       names[min(range(len(names)), key=pops.__getitem__)]),
                      ("oldest", "Which town was founded first?", names[min(range(len(names)), key=years.__getitem__)])]
        values = dict(largest=pops, smallest=pops, oldest=years)
    else:
        items = rng.sample(ITEMS, rng.randint(3, 6))
        prices = [rng.randint(1, 99) for _ in items]
        lines = "\n".join(f"- {it}: {p} coins" for it, p in zip(items, prices))
        text = "# Market prices\n\n" + lines + "\n"
        i = rng.randrange(len(items))
        qa = [(f"How much do {items[i]} cost?", f"{prices[i]} coins"),
              ("Which item is the most expensive?", items[max(range(len(items)), key=prices.__getitem__)]),
              ("How many items are listed?", str(len(items)))]
        questions = [(k, q, a) for k, (q, a) in zip(["price", "most_expensive", "count"], qa)]
        questions.append(("cheapest", "Which item is the cheapest?",
                          items[min(range(len(items)), key=prices.__getitem__)]))
        values = dict(most_expensive=prices, cheapest=prices)
    # A largest/smallest question with a tie has two right answers: leave it out of `questions`.
    questions = [(k, q, ans) for k, q, ans in questions if k not in values or _unique_extreme(values[k], k)]
    return DocSample(seed, text, qa, questions)


def _unique_extreme(values: list[int], kind: str) -> bool:
    best = min(values) if kind in ("smallest", "oldest", "cheapest") else max(values)
    return values.count(best) == 1
