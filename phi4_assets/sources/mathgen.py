"""A seeded generator of short math problems with exact integer answers.

Five difficulty levels, from one-step sums a 135M model usually gets right to three-step
word problems it usually gets wrong, so that p(success) spreads over the PTS window.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from ..core.ids import row_id

NAMES = ["Ava", "Ben", "Chloe", "Diego", "Emma", "Farid", "Grace", "Hiro", "Isla", "Jonas",
         "Kira", "Liam", "Maya", "Nikhil", "Olga", "Pedro", "Rosa", "Sami", "Tara", "Yusuf"]
ITEMS = ["apples", "pencils", "stickers", "marbles", "books", "cookies", "stamps", "shells",
         "cards", "beads", "oranges", "coins"]
CONTAINERS = [("box", "boxes"), ("bag", "bags"), ("jar", "jars"), ("crate", "crates"),
              ("basket", "baskets"), ("tray", "trays")]

Problem = tuple[str, int]


def _sum(r: random.Random) -> Problem:
    a, b = r.randint(2, 40), r.randint(2, 40)
    return f"What is {a} + {b}?", a + b


def _difference(r: random.Random) -> Problem:
    a = r.randint(20, 99)
    b = r.randint(2, a - 1)
    return f"What is {a} - {b}?", a - b


def _small_product(r: random.Random) -> Problem:
    a, b = r.randint(2, 9), r.randint(2, 9)
    return f"What is {a} times {b}?", a * b


def _buy_more(r: random.Random) -> Problem:
    name, item = r.choice(NAMES), r.choice(ITEMS)
    a, b = r.randint(3, 30), r.randint(2, 20)
    return f"{name} has {a} {item} and gets {b} more. How many {item} does {name} have now?", a + b


def _groups(r: random.Random) -> Problem:
    item, (box, boxes) = r.choice(ITEMS), r.choice(CONTAINERS)
    per, n = r.randint(3, 12), r.randint(3, 12)
    return f"Each {box} holds {per} {item}. How many {item} are in {n} {boxes}?", per * n


def _two_digit_by_one(r: random.Random) -> Problem:
    a, b = r.randint(12, 99), r.randint(3, 9)
    return f"What is {a} * {b}?", a * b


def _give_and_buy(r: random.Random) -> Problem:
    name, item = r.choice(NAMES), r.choice(ITEMS)
    a = r.randint(15, 60)
    b = r.randint(2, a - 5)
    c = r.randint(2, 25)
    return (f"{name} had {a} {item}, gave {b} to a friend, and then bought {c} more. "
            f"How many {item} does {name} have now?", a - b + c)


def _share(r: random.Random) -> Problem:
    item = r.choice(ITEMS)
    people, each = r.randint(3, 9), r.randint(3, 15)
    return f"{people * each} {item} are shared equally among {people} children. How many {item} does each child get?", each


def _two_digit_product(r: random.Random) -> Problem:
    a, b = r.randint(12, 49), r.randint(12, 49)
    return f"What is {a} * {b}?", a * b


def _change(r: random.Random) -> Problem:
    name = r.choice(NAMES)
    price, n = r.randint(2, 9), r.randint(2, 8)
    bill = next(b for b in (10, 20, 50, 100) if b > price * n)
    return (f"Pens cost ${price} each. {name} buys {n} pens and pays with a ${bill} bill. "
            f"How many dollars of change does {name} get?", bill - price * n)


def _three_step(r: random.Random) -> Problem:
    a, b, c = r.randint(3, 20), r.randint(3, 20), r.randint(2, 9)
    d = r.randint(1, (a + b) * c - 1)
    return f"What is ({a} + {b}) * {c} - {d}?", (a + b) * c - d


def _average(r: random.Random) -> Problem:
    n = r.randint(3, 5)
    mean = r.randint(30, 80)
    values = [mean + r.randint(-6, 6) for _ in range(n - 1)]
    values.append(mean * n - sum(values))
    listed = ", ".join(map(str, values[:-1])) + f" and {values[-1]}"
    return f"What is the average of {listed}?", mean


def _weekly_savings(r: random.Random) -> Problem:
    name = r.choice(NAMES)
    start, per_week, weeks, spent = r.randint(5, 40), r.randint(3, 15), r.randint(3, 8), r.randint(5, 30)
    return (f"{name} has ${start}, saves ${per_week} every week for {weeks} weeks, and then spends ${spent}. "
            f"How many dollars does {name} have left?", start + per_week * weeks - spent)


LEVELS: dict[int, list[Callable[[random.Random], Problem]]] = {
    1: [_sum, _difference, _small_product],
    2: [_buy_more, _groups],
    3: [_two_digit_by_one, _give_and_buy, _share],
    4: [_two_digit_product, _change],
    5: [_three_step, _average, _weekly_savings],
}


def generate_math_problems(n: int, seed: int, exclude: set[str] | frozenset[str] = frozenset(),
                           id_prefix: str = "math") -> list[dict]:
    """``n`` distinct problems, difficulty levels in equal shares, none whose question is in
    ``exclude``. Deterministic in (n, seed, exclude)."""
    rng = random.Random(seed)
    seen = set(exclude)
    problems: list[dict] = []
    attempts = 0
    while len(problems) < n:
        attempts += 1
        if attempts > 100 * n + 1000:
            raise RuntimeError(f"could not generate {n} distinct math problems (got {len(problems)})")
        level = 1 + len(problems) % len(LEVELS)
        template = rng.choice(LEVELS[level])
        question, answer = template(rng)
        if question in seen:
            continue
        seen.add(question)
        problems.append({
            "id": row_id(id_prefix, question),
            "question": question,
            "answer": str(answer),
            "difficulty": level,
            "template": template.__name__.lstrip("_"),
        })
    return problems
