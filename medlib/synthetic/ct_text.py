"""Text of the synthetic CT benchmark: M3D-RefSeg-style region descriptions (``text.json``)
and question/answer pairs, explicit ("the liver") and implicit ("the organ that secretes
bile", "the kidney that contains the cyst"), as MedVol-R1 (Sec. 3.1.1) and M3D-RefSeg's
description- and reasoning-based questions (``Question_Type`` 0 / 1) use them.
"""

from __future__ import annotations

import numpy as np

from .ct_anatomy import LESIONS, ORGANS

#: implicit phrases that need anatomy or physiology knowledge
IMPLICIT = {
    1: ["the organ that secretes bile", "the largest solid organ of the abdomen",
        "the organ that stores glycogen and makes most clotting factors"],
    2: ["the organ that removes old red blood cells from the circulation",
        "the solid organ tucked under the left hemidiaphragm behind the stomach"],
    3: ["the kidney on the same side as the liver"],
    4: ["the kidney on the same side as the spleen"],
    5: ["the fluid-filled lesion", "the lesion with water-like density"],
    6: ["the lesion a clinician would biopsy to confirm the suspected malignancy", "the enhancing solid mass"],
}
LESION_WORD = {5: "cyst", 6: "enhancing mass"}
_EXPLICIT_Q = ["Please segment {p} in this CT scan.", "Where is {p}? Please output the segmentation mask."]
_IMPLICIT_Q = ["Can you segment {p}?", "Which region is {p}? Please output the segmentation mask."]


def structure_name(sid: int, owner: int | None = None) -> str:
    """Name of a structure id; lesions are named with their organ ("left kidney cyst")."""
    if sid in ORGANS:
        return ORGANS[sid]
    return f"{ORGANS[owner]} {LESIONS[sid]}" if owner else LESIONS[sid]


def lesion_position(owner: int, lesion_w: float, organ_w: tuple[float, float]) -> str:
    """Where in its organ a lesion sits (poles of a kidney; thirds of liver and spleen)."""
    lo, hi = organ_w
    t = (lesion_w - lo) / max(hi - lo, 1e-6)
    if owner in (3, 4):
        return "upper pole" if t > 0.62 else "lower pole" if t < 0.38 else "interpolar region"
    return "upper part" if t > 0.62 else "lower part" if t < 0.38 else "middle part"


def _a(noun: str) -> str:
    return ("an " if noun[0] in "aeiou" else "a ") + noun


def describe(sid: int, facts: dict) -> str:
    """One ``text.json`` description. ``facts``: ``owner`` (lesions), ``diameter_mm``,
    ``position`` (lesions), ``contains`` (organs: list of lesion ids inside)."""
    if sid in LESIONS:
        organ = ORGANS[facts["owner"]]
        d = facts["diameter_mm"]
        if sid == 5:
            return f"A well-defined round water-density cyst, about {d} mm, in the {facts['position']} of the {organ}."
        return (f"An avidly enhancing solid mass, about {d} mm, with a low-density necrotic centre, in the "
                f"{facts['position']} of the {organ}.")
    base = {
        1: "The liver: a large homogeneous solid organ in the right upper abdomen beneath the right hemidiaphragm",
        2: "The spleen: a homogeneous solid organ in the left upper quadrant against the posterolateral ribs",
        3: "The right kidney: a bean-shaped retroperitoneal organ beside the spine, below the liver",
        4: "The left kidney: a bean-shaped retroperitoneal organ beside the spine, medial to the spleen",
    }[sid]
    inside = [LESION_WORD[k] for k in facts.get("contains", [])]
    return base + (f", containing {' and '.join(_a(x) for x in inside)}." if inside else ".")


def questions(sid: int, present: dict[int, dict], rng: np.random.Generator) -> list[dict]:
    """An explicit and an implicit question about structure ``sid``; ``present`` maps every
    structure in the case to its facts. Rows carry ``Question_Type``, ``Question``, ``Answer``."""
    name = structure_name(sid, present[sid].get("owner"))
    if sid in LESIONS:
        explicit = f"the {LESIONS[sid]} in the {ORGANS[present[sid]['owner']]}"
    else:
        explicit = f"the {name}"
    contains = present[sid].get("contains", [])
    implicit_opts = list(IMPLICIT[sid])
    if contains and sid in (3, 4):
        # the kidney is picked out by its lesion, the other kidney has none of that kind
        implicit_opts = [f"the kidney that contains the {LESION_WORD[k]}" for k in contains]
    elif contains and sid in (1, 2):
        implicit_opts += [f"the organ that contains the {LESION_WORD[k]}" for k in contains]
    implicit = implicit_opts[int(rng.integers(len(implicit_opts)))]
    return [
        {"Question_Type": "0", "Question": _EXPLICIT_Q[int(rng.integers(2))].format(p=explicit),
         "Answer": "Sure, it is [SEG]."},
        {"Question_Type": "1", "Question": _IMPLICIT_Q[int(rng.integers(2))].format(p=implicit),
         "Answer": f"Sure, it is [SEG]. {implicit[0].upper() + implicit[1:]} is the {name}."},
    ]
