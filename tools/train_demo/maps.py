"""Procedural maps with questions whose answers are computed from the map's own geometry.

Each map (deterministic in its seed) has: a river crossing it west to east, a lake, 3-5 labelled cities of which
exactly one lies north of the river, roads between cities (one of them a coloured highway), a bridge wherever a
road crosses the river, a compass rose and a scale bar. Questions: which city is north of the river, how many
bridges, what colour the highway is, which city is nearest the lake, and the straight-line distance between two
cities read off the scale bar (`qa`, the original five); `questions` adds, as (kind, question, answer), how many
cities there are, what the scale bar says, which side of the river the lake is on, and a one-sentence description.
Sizes vary (square, wide, tall) so that any-resolution tiling is exercised; callers may pass their own `sizes` (the
demo model uses small ones to keep image token counts moderate) and a minimum label size.

The answers come from the same numbers that drew the map (never from the picture), and `check_map` re-derives them
independently, so a drawing bug cannot silently teach wrong answers.
"""
from __future__ import annotations

import math
import random
import re
from dataclasses import dataclass, field

from PIL import Image, ImageDraw, ImageFont

CITY_NAMES = [
    "Belmont", "Corvo", "Dunmere", "Ashby", "Eldon", "Farrow", "Garnet", "Halden", "Istra", "Jorvik",
    "Kestrel", "Lomond", "Marlow", "Norwood", "Oakham", "Pellin", "Quarry", "Redcliff", "Selby", "Tarrow",
    "Ulver", "Vance", "Wexley", "Yarrow", "Zenda", "Brisk", "Calder", "Dorne", "Emberly", "Fenwick",
]
HIGHWAY_COLOURS = {"red": (214, 39, 40), "orange": (255, 127, 14), "purple": (148, 103, 189), "black": (20, 20, 20)}
SIZES = [(672, 672), (1008, 672), (672, 1008), (672, 336), (336, 672), (1008, 1008)]  # (width, height)
LAND = (236, 230, 208)
WATER = (70, 130, 200)
ROAD = (150, 150, 150)
BRIDGE = (110, 70, 40)


@dataclass
class City:
    name: str
    x: float
    y: float


@dataclass
class MapSample:
    seed: int
    image: Image.Image
    qa: list[tuple[str, str]]
    cities: list[City]
    river: list[tuple[float, float]]
    lake: tuple[float, float, float, float]  # cx, cy, rx, ry
    roads: list[tuple[int, int]]             # city index pairs
    highway: tuple[int, int]
    highway_colour: str
    bridges: list[tuple[float, float]]
    km_per_px: float
    meta: dict = field(default_factory=dict)
    questions: list[tuple[str, str, str]] = field(default_factory=list)  # (kind, canonical question, answer)


def _font(size: int) -> ImageFont.ImageFont:
    return ImageFont.load_default(size=size)  # Pillow's bundled font: identical on every machine


def river_y(river: list[tuple[float, float]], x: float) -> float:
    """The river's centre line at x (piecewise linear)."""
    for (x0, y0), (x1, y1) in zip(river, river[1:]):
        if x0 <= x <= x1:
            t = (x - x0) / (x1 - x0) if x1 > x0 else 0.0
            return y0 + t * (y1 - y0)
    return river[-1][1]


def _segment_crossings(a: tuple[float, float], b: tuple[float, float], river) -> list[tuple[float, float]]:
    """Points where the straight road a-b crosses the river's centre line."""
    out = []
    steps = 400
    prev = None
    for i in range(steps + 1):
        t = i / steps
        x, y = a[0] + t * (b[0] - a[0]), a[1] + t * (b[1] - a[1])
        side = y < river_y(river, x)
        if prev is not None and side != prev[0]:
            out.append(((x + prev[1]) / 2, (y + prev[2]) / 2))
        prev = (side, x, y)
    return out


def make_map(seed: int, sizes: list[tuple[int, int]] | None = None, min_font: int = 14) -> MapSample:
    """The map of `seed` (deterministic). `sizes` (width, height) defaults to SIZES; labels are at least `min_font`
    pixels. The random draws do not depend on either, so only the picture's size and lettering change with them."""
    rng = random.Random(seed)
    w, h = rng.choice(sizes or SIZES)
    img = Image.new("RGB", (w, h), LAND)
    d = ImageDraw.Draw(img)

    # River: west to east, a gentle wave through the middle band.
    base = rng.uniform(0.42, 0.58) * h
    amp = rng.uniform(0.02, 0.06) * h
    phase = rng.uniform(0, 2 * math.pi)
    river = [(x, base + amp * math.sin(phase + x / w * 2 * math.pi)) for x in range(0, w + 1, 24)]
    river_w = max(8, int(min(w, h) * 0.022))

    # Cities: one north of the river, 2-4 south, kept apart and clear of the river and the borders.
    n_south = rng.randint(2, 4)
    names = rng.sample(CITY_NAMES, n_south + 1)
    cities: list[City] = []

    def place(north: bool) -> City:
        for _ in range(1000):
            x = rng.uniform(0.12, 0.78) * w
            ry = river_y(river, x)
            y = rng.uniform(0.1 * h, ry - 0.12 * h) if north else rng.uniform(ry + 0.12 * h, 0.86 * h)
            if all(math.hypot(x - c.x, y - c.y) > 0.2 * min(w, h) for c in cities):
                return City("", x, y)
        raise RuntimeError(f"seed {seed}: could not place a city")

    cities.append(place(True))
    for _ in range(n_south):
        cities.append(place(False))
    for c, n in zip(cities, names):
        c.name = n
    rng.shuffle(cities)
    north_idx = next(i for i, c in enumerate(cities) if c.y < river_y(river, c.x))

    # Lake: on the south side unless crowded; away from cities.
    for _ in range(1000):
        rx, ry = rng.uniform(0.05, 0.09) * w, rng.uniform(0.04, 0.07) * h
        cx = rng.uniform(rx + 10, w - rx - 10)
        cy = rng.uniform(river_y(river, cx) + ry + 0.06 * h, h - ry - 0.06 * h) if rng.random() < 0.5 else \
            rng.uniform(ry + 0.06 * h, river_y(river, cx) - ry - 0.06 * h)
        if all(math.hypot(cx - c.x, cy - c.y) > max(rx, ry) + 0.08 * min(w, h) for c in cities):
            break
    lake = (cx, cy, rx, ry)

    # Roads: the north city links to 1-3 southern cities (each crossing makes one bridge); southern cities chain.
    south = [i for i in range(len(cities)) if i != north_idx]
    k = rng.randint(1, min(3, len(south)))
    roads = [(north_idx, j) for j in rng.sample(south, k)]
    for a, b in zip(south, south[1:]):
        roads.append((a, b))
    highway = rng.choice(roads)
    colour = rng.choice(sorted(HIGHWAY_COLOURS))

    # Draw: water first, then roads, bridges, cities, labels, compass, scale bar.
    d.line(river, fill=WATER, width=river_w)
    d.ellipse([cx - rx, cy - ry, cx + rx, cy + ry], fill=WATER)
    bridges = []
    for (a, b) in roads:
        pa, pb = (cities[a].x, cities[a].y), (cities[b].x, cities[b].y)
        is_hw = (a, b) == highway
        d.line([pa, pb], fill=HIGHWAY_COLOURS[colour] if is_hw else ROAD, width=7 if is_hw else 4)
        bridges += _segment_crossings(pa, pb, river)
    for (bx, by) in bridges:
        s = river_w * 0.9
        d.rectangle([bx - s, by - s, bx + s, by + s], outline=BRIDGE, width=3)
    font = _font(max(min_font, min(w, h) // 30))
    labels = []
    for c in cities:
        r = 7
        d.ellipse([c.x - r, c.y - r, c.x + r, c.y + r], fill=(30, 30, 30))
        d.text((c.x + 10, c.y - 8), c.name, fill=(10, 10, 10), font=font)
        labels.append(d.textbbox((c.x + 10, c.y - 8), c.name, font=font))
    # Compass (north up), top right.
    ox, oy = w - 40, 50
    d.polygon([(ox, oy - 28), (ox - 9, oy), (ox + 9, oy)], fill=(10, 10, 10))
    d.text((ox - 6, oy + 2), "N", fill=(10, 10, 10), font=font)
    # Scale bar, bottom left: bar_px pixels stand for bar_km kilometres.
    bar_km = rng.choice([5, 10, 20, 25, 50])
    bar_px = rng.randint(int(0.12 * w), int(0.22 * w))
    sx, sy = 20, h - 30
    d.rectangle([sx, sy, sx + bar_px, sy + 6], fill=(10, 10, 10))
    d.text((sx, sy - 8 - font.size), f"{bar_km} km", fill=(10, 10, 10), font=font)
    furniture = [d.textbbox((ox - 6, oy + 2), "N", font=font), (ox - 9, oy - 28, ox + 9, oy),
                 d.textbbox((sx, sy - 8 - font.size), f"{bar_km} km", font=font), (sx, sy, sx + bar_px, sy + 6)]
    km_per_px = bar_km / bar_px

    # Questions and answers, from the geometry above.
    qa = [("Which city is north of the river?", cities[north_idx].name),
          ("How many bridges cross the river?", str(len(bridges))),
          ("What colour is the highway?", colour)]
    nearest = min(cities, key=lambda c: math.hypot(c.x - cx, c.y - cy))
    qa.append(("Which city is closest to the lake?", nearest.name))
    a, b = rng.sample(range(len(cities)), 2)
    km = math.hypot(cities[a].x - cities[b].x, cities[a].y - cities[b].y) * km_per_px
    qa.append((f"About how far is it from {cities[a].name} to {cities[b].name} in a straight line?",
               f"{int(round(km / 5.0) * 5)} km"))
    # Further questions, derived from the same numbers without further random draws (so `qa` and the picture stay
    # what they were for every seed).
    lake_side = "north" if cy < river_y(river, cx) else "south"
    n_bridges = len(bridges)
    describe = (f"A map with {len(cities)} cities, a river crossed by {n_bridges} "
                f"bridge{'s' if n_bridges != 1 else ''}, a lake and {'an' if colour == 'orange' else 'a'} "
                f"{colour} highway.")
    kinds = ["north", "bridges", "colour", "lake", "distance"]
    questions = [(k, q, ans) for k, (q, ans) in zip(kinds, qa)]
    questions += [("cities", "How many cities are on the map?", str(len(cities))),
                  ("scale", "What distance does the scale bar show?", f"{bar_km} km"),
                  ("lake_side", "Is the lake north or south of the river?", lake_side),
                  ("describe", "Describe the map.", describe)]
    return MapSample(seed, img, qa, cities, river, lake, roads, highway, colour, bridges, km_per_px,
                     {"size": (w, h), "bar_km": bar_km, "bar_px": bar_px, "distance_pair": (a, b),
                      "labels": labels, "furniture": furniture, "river_w": river_w}, questions)


def check_map(m: MapSample) -> None:
    """Re-derives every answer independently of make_map's bookkeeping; raises AssertionError on a mismatch."""
    answers = dict(m.qa)
    north = [c.name for c in m.cities if c.y < river_y(m.river, c.x)]
    assert north == [answers["Which city is north of the river?"]], (m.seed, north)
    crossings = sum(1 for a, b in m.roads
                    if (m.cities[a].y < river_y(m.river, m.cities[a].x)) != (m.cities[b].y < river_y(m.river, m.cities[b].x)))
    assert str(crossings) == answers["How many bridges cross the river?"] == str(len(m.bridges)), m.seed
    # Bridges are drawn on the river: the pixel under each bridge centre is water.
    for bx, by in m.bridges:
        assert abs(by - river_y(m.river, bx)) < 3, (m.seed, bx, by)
    # The highway's colour is on the picture: some pixel along it (away from its ends) has exactly that colour.
    assert answers["What colour is the highway?"] == m.highway_colour
    (ax, ay), (bx, by) = [(m.cities[i].x, m.cities[i].y) for i in m.highway]
    rgb = HIGHWAY_COLOURS[m.highway_colour]
    assert any(m.image.getpixel((int(ax + t / 20 * (bx - ax)), int(ay + t / 20 * (by - ay)))) == rgb
               for t in range(3, 18)), m.seed
    # The further questions, re-derived from the geometry.
    got = {k: ans for k, _, ans in m.questions}
    assert got["cities"] == str(len(m.cities)), m.seed
    assert got["scale"] == f"{m.meta['bar_km']} km", m.seed
    cx, cy, _, _ = m.lake
    assert got["lake_side"] == ("north" if cy < river_y(m.river, cx) else "south"), m.seed
    nums = [int(t) for t in re.findall(r"\d+", got["describe"])]
    assert nums == [len(m.cities), len(m.bridges)] and m.highway_colour in got["describe"], (m.seed, got["describe"])
    # Distance: recomputed from the pair's pixel distance and the scale bar's own numbers.
    a, b = m.meta["distance_pair"]
    km = math.hypot(m.cities[a].x - m.cities[b].x, m.cities[a].y - m.cities[b].y) * m.meta["bar_km"] / m.meta["bar_px"]
    assert got["distance"] == f"{int(round(km / 5.0) * 5)} km", m.seed


def legibility_problems(m: MapSample) -> list[str]:
    """Reasons a reader could not answer from the picture, although the answers are right by construction: city
    labels cut off by the border or overlapping each other, the compass or the scale bar; two bridges drawn on top
    of each other (a count a reader cannot see); a road running through a city it does not end at (it then looks
    like two roads, or hides the highway). Training data for a model that reads the picture skips such maps."""
    w, h = m.meta["size"]
    out = []

    def overlap(a, b, margin=2):
        return not (a[2] + margin <= b[0] or b[2] + margin <= a[0] or a[3] + margin <= b[1] or b[3] + margin <= a[1])

    labels = m.meta["labels"]
    for i, box in enumerate(labels):
        if box[0] < 0 or box[1] < 0 or box[2] > w - 2 or box[3] > h - 2:
            out.append(f"label {m.cities[i].name} leaves the picture")
        for j in range(i + 1, len(labels)):
            if overlap(box, labels[j]):
                out.append(f"labels {m.cities[i].name} and {m.cities[j].name} overlap")
        for f in m.meta["furniture"]:
            if overlap(box, f):
                out.append(f"label {m.cities[i].name} overlaps the compass or the scale bar")
        for j, c in enumerate(m.cities):
            if j != i and overlap(box, (c.x - 8, c.y - 8, c.x + 8, c.y + 8)):
                out.append(f"label {m.cities[i].name} covers city {c.name}")
    for i, (ax, ay) in enumerate(m.bridges):
        for bx, by in m.bridges[i + 1:]:
            if math.hypot(ax - bx, ay - by) < 2.5 * m.meta["river_w"] + 6:
                out.append("two bridges drawn on top of each other")
    for a, b in m.roads:
        (ax, ay), (bx, by) = (m.cities[a].x, m.cities[a].y), (m.cities[b].x, m.cities[b].y)
        length = math.hypot(bx - ax, by - ay)
        for j, c in enumerate(m.cities):
            if j in (a, b):
                continue
            t = ((c.x - ax) * (bx - ax) + (c.y - ay) * (by - ay)) / (length * length)
            if 0 < t < 1 and math.hypot(ax + t * (bx - ax) - c.x, ay + t * (by - ay) - c.y) < 14:
                out.append(f"road {m.cities[a].name}-{m.cities[b].name} runs through {c.name}")
    return out
