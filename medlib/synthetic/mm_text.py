"""Text of the 2D multi-modality benchmark (U-MRG-like): which candidate a qualifier picks
out, the implicit question, the chain-of-thought trace and the answer.

MedReasoner's questions are "deliberately vague", pointing to the target "only through
visual or functional clues" (App. B.2), and every answer is a step-by-step reasoning path
ending in a box and two key points (App. B.3). Here each question pairs an implicit intent
("Which region would a clinician biopsy to confirm the suspected malignancy?") with a
qualifier (size, side, depth, brightness, vertical position, proximity) that is needed
because the image holds same-class distractors.
"""

from __future__ import annotations

import json

import numpy as np

from .mm_common import Scene, where_words

#: minimum separations that make a qualifier unambiguous
SIZE_RATIO = 1.4
BRIGHTNESS_GAP = 0.06
POSITION_GAP = 0.1  # fraction of the image side


def choose_target(scene: Scene, rng: np.random.Generator):
    """``(target index, qualifier kind, direction)`` for a qualifier that singles out exactly
    one candidate with a clear margin, trying the scene's qualifiers in random order; None if
    none does. ``direction``: +1 / -1 (larger / smaller, deeper / shallower, brighter /
    darker, lower / upper, ...), or the patient side for ``side``."""
    h, w = scene.image.shape[:2]
    cands = scene.candidates
    kinds = list(scene.qualifiers)
    rng.shuffle(kinds)
    for kind in kinds:
        if kind == "side":
            sides = [c.side for c in cands]
            options = [s for s in ("left", "right") if sides.count(s) == 1]
            options = [s for s in options if abs(cands[sides.index(s)].centroid[0] - w / 2) > 0.06 * w]
            if options:
                s = options[int(rng.integers(len(options)))]
                return sides.index(s), kind, s
            continue
        if kind == "vertical":
            fy = scene.context.get("fovea", (w / 2, h / 2))[1]
            ups = [i for i, c in enumerate(cands) if c.centroid[1] < fy - 0.05 * h]
            downs = [i for i, c in enumerate(cands) if c.centroid[1] > fy + 0.05 * h]
            opts = []
            if len(ups) == 1 and len(downs) == len(cands) - 1:
                opts.append((ups[0], -1))
            if len(downs) == 1 and len(ups) == len(cands) - 1:
                opts.append((downs[0], 1))
            if opts:
                i, d = opts[int(rng.integers(len(opts)))]
                return i, kind, d
            continue
        if kind == "size":
            val, direction = np.array([c.area for c in cands], float), int(rng.choice([-1, 1]))
        elif kind == "depth":
            val, direction = np.array([c.centroid[1] for c in cands]), int(rng.choice([-1, 1]))
        elif kind == "brightness":
            val = np.array([c.intensity for c in cands])
            direction = -1 if scene.modality == "ultrasound" else int(rng.choice([-1, 1]))
        elif kind == "proximity":
            fx, fy = scene.context["fovea"]
            val, direction = np.array([np.hypot(c.centroid[0] - fx, c.centroid[1] - fy) for c in cands]), -1
        else:
            raise ValueError(f"unknown qualifier {kind!r}")
        order = np.argsort(val * direction)[::-1]  # best first
        best, second = val[order[0]], val[order[1]]
        if kind in ("size", "proximity"):
            ok = max(best, second) >= SIZE_RATIO * max(min(best, second), 1e-9)
        elif kind == "depth":
            ok = abs(best - second) >= POSITION_GAP * h
        else:
            ok = abs(best - second) >= BRIGHTNESS_GAP
        if ok:
            return int(order[0]), kind, direction
    return None


_WORDS = {
    ("size", 1): ("larger", "largest"), ("size", -1): ("smaller", "smallest"),
    ("depth", -1): ("more superficial", "most superficial"), ("depth", 1): ("deeper", "deepest"),
    ("brightness", 1): ("brighter", "brightest"), ("brightness", -1): ("darker", "darkest"),
    ("proximity", -1): ("closer to the centre of vision", "closest to the centre of vision"),
}


def qualifier_phrase(scene: Scene, kind: str, direction) -> str:
    """"the largest one", "the one on the patient's left side", "the one in the upper half of
    the retina", ..."""
    n = len(scene.candidates)
    if kind == "side":
        if scene.modality == "MRI":
            return f"the one in the patient's {direction} hemisphere"
        return f"on the patient's {direction} side"
    if kind == "vertical":
        return f"the one in the {'upper' if direction < 0 else 'lower'} half of the retina"
    if kind == "brightness" and scene.modality == "MRI" and direction < 0:
        word = ("fainter", "faintest")[n > 2]
    else:
        word = _WORDS[(kind, direction)][n > 2]
    return f"the one {word}" if kind == "proximity" else f"the {word} one"


_QUESTIONS = {
    "kidney": ["Which bean-shaped organ that filters the blood and makes urine lies {qp} in this scan?",
               "Which urine-producing organ is {qp} in this slice?"],
    "liver_lesion": ["Which low-density spot in the largest solid organ would a clinician biopsy to confirm the "
                     "suspected malignancy? Choose {qp}.",
                     "Inside the organ that makes bile, which focal dark spot, {qp}, would be sampled to confirm "
                     "metastatic spread?"],
    "MRI": ["Which abnormally bright area would a neurosurgeon target to confirm the suspected tumour? Choose {qp}.",
            "Which region of abnormal signal, {qp}, would a clinician biopsy to confirm the suspected malignancy?"],
    "ultrasound": ["Which region would a clinician biopsy to confirm the suspected malignancy? It is {qp} among the "
                   "dark rounded areas.",
                   "Which dark rounded area, {qp}, would a radiologist sample with a needle first?"],
    "fundus": ["Which bleeding spot, {qp}, would an ophthalmologist document first?",
               "Where is the dark red patch, {qp}, that points to a ruptured small vessel?"],
}
_INTENT = {
    "kidney": "Filtering blood and making urine is the work of the kidneys, the bean-shaped organs beside the spine",
    "liver_lesion": "The largest solid abdominal organ, which makes bile, is the liver; a biopsy to confirm malignancy "
                    "targets a focal low-density lesion in it",
    "MRI": "A biopsy to confirm a suspected tumour targets an area of abnormally high FLAIR signal in the brain tissue",
    "ultrasound": "A biopsy to confirm malignancy targets a hypoechoic nodule in the breast tissue",
    "fundus": "Bleeding in the retina shows as dark red blots, distinct from the thin branching vessels",
}


def task_key(scene: Scene) -> str:
    return scene.context.get("task", scene.modality)


def question(scene: Scene, kind: str, direction, rng: np.random.Generator) -> str:
    t = _QUESTIONS[task_key(scene)]
    return t[int(rng.integers(len(t)))].format(qp=qualifier_phrase(scene, kind, direction))


def _modality_text(scene: Scene) -> str:
    if scene.modality == "CT":
        return "This is an axial contrast-enhanced CT slice of the abdomen in radiological convention (the patient's right is on the image left)"
    if scene.modality == "MRI":
        return "This is an axial FLAIR MRI slice of the brain in radiological convention (the patient's left hemisphere is on the image right)"
    if scene.modality == "ultrasound":
        return "This is a breast ultrasound image from a curvilinear probe (skin at the top, depth increasing downward)"
    disc_side = "right" if scene.context["disc"][0] > scene.image.shape[1] / 2 else "left"
    return (f"This is a colour fundus photograph of the {scene.context['eye']} eye, with the optic disc on the image "
            f"{disc_side} and the macula near the centre")


def _reason(scene: Scene, kind: str, direction, t: int, boxes) -> str:
    c = scene.candidates
    others = [i for i in range(len(c)) if i != t]
    if kind == "size":
        return f"its area is about {c[t].area} pixels, against {', '.join(str(c[i].area) for i in others)} for the others"
    if kind == "side":
        img_side = "right" if direction == "left" else "left"
        return f"in radiological convention the patient's {direction} is on the image {img_side}, and only one {scene.noun} lies there"
    if kind == "depth":
        return (f"depth grows downward from the probe; its centre lies at row {c[t].centroid[1]:.0f}, the others at rows "
                f"{', '.join(f'{c[i].centroid[1]:.0f}' for i in others)}")
    if kind == "brightness":
        return (f"its mean brightness is {c[t].intensity:.2f}, against {', '.join(f'{c[i].intensity:.2f}' for i in others)} "
                "for the others")
    if kind == "vertical":
        half = "upper" if direction < 0 else "lower"
        return f"the horizontal line through the fovea separates the upper from the lower retina, and only this one lies in the {half} half"
    fx, fy = scene.context["fovea"]
    d = [np.hypot(c[i].centroid[0] - fx, c[i].centroid[1] - fy) for i in range(len(c))]
    return (f"the fovea, the centre of vision, is at ({fx:.0f}, {fy:.0f}); this one lies {d[t]:.0f} pixels from it, the "
            f"others {', '.join(f'{d[i]:.0f}' for i in others)}")


def _as_noun(qp: str) -> str:
    return qp if qp.startswith("the ") else f"the one {qp}"


def _box_text(b) -> str:
    return "[" + ", ".join(str(int(v)) for v in b) + "]"


def reasoning(scene: Scene, kind: str, direction, t: int, boxes, points) -> str:
    """Chain-of-thought trace: modality, the question's intent, every candidate with its box
    (Chain-of-Box style), the qualifier's evidence, the chosen box and key points."""
    h, w = scene.image.shape[:2]
    listing = "; ".join(
        f"one in the {where_words(*cand.centroid, w, h)} {_box_text(b)}" for cand, b in zip(scene.candidates, boxes)
    )
    (x1, y1), (x2, y2) = points
    n = len(scene.candidates)
    return (
        f"{_modality_text(scene)}. {_INTENT[task_key(scene)]}. I can see {n} {scene.noun}s: {listing}. "
        f"The question asks for {_as_noun(qualifier_phrase(scene, kind, direction))}: {_reason(scene, kind, direction, t, boxes)}. "
        f"So the target is the {scene.noun} in the {where_words(*scene.candidates[t].centroid, w, h)} {_box_text(boxes[t])}; "
        f"its deepest interior point is ({x1}, {y1}) and it extends to ({x2}, {y2})."
    )


def answer_json(box, points) -> str:
    """The ``<answer>`` content MedReasoner's prompt asks for."""
    (x1, y1), (x2, y2) = points
    return json.dumps({"bbox": [int(v) for v in box], "points_1": [int(x1), int(y1)], "points_2": [int(x2), int(y2)]})
