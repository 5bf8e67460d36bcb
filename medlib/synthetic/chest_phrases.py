"""MS-CXR-style referring phrases for synthetic findings, worded from where the finding
really is: laterality is the *patient's* side (the image's opposite), zone and lobe come
from the box centre's position in its lung (t: apex 0 .. base 1; s: medial 0 .. lateral 1).
"""

from __future__ import annotations

import re

import numpy as np

from .chest_anatomy import SIDES


def zone_of(t: float) -> str:
    """Craniocaudal lung zone of a level t (0 = apex, 1 = costophrenic angle)."""
    if t < 0.2:
        return "apical"
    if t < 0.42:
        return "upper"
    if t < 0.64:
        return "mid"
    return "lower"


def lobe_of(side: int, t: float, s: float) -> str:
    """Approximate lobe on a frontal film (right: upper / middle / lower; left: upper /
    lingula / lower)."""
    z = zone_of(t)
    if z in ("apical", "upper"):
        return "upper lobe"
    if z == "mid":
        if s < 0.5:
            return "middle lobe" if side == 0 else "lingula"
        return "upper lobe" if t < 0.5 else "lower lobe"
    return "lower lobe"


def _zone_phrase(z: str) -> str:
    return {"apical": "apical", "upper": "upper", "mid": "mid", "lower": "lower"}[z]


def _lung_region(side_word: str, z: str, rng) -> str:
    """'right upper lung', 'left lung base', 'right apex', ..."""
    if z == "apical":
        return str(rng.choice([f"{side_word} apex", f"{side_word} lung apex", f"{side_word} apical region"]))
    if z == "lower":
        return str(rng.choice([f"{side_word} lung base", f"{side_word} lower lung", f"{side_word} base"]))
    return str(rng.choice([f"{side_word} {z} lung", f"{side_word} {z} lung zone"]))


def _lobe_name(side_word: str, lobe: str) -> str:
    return "lingula" if lobe == "lingula" else f"{side_word} {lobe}"


def referring_phrase(kind: str, attrs: dict, side: int | None, rng: np.random.Generator) -> str:
    """One phrase for a single finding, chosen among several paraphrase templates."""
    if kind == "cardiomegaly":
        sev = attrs["severity"]
        sev_word = {"mild": "mildly", "moderate": "moderately", "severe": "markedly"}[sev]
        options = [
            "enlarged cardiac silhouette",
            "cardiomegaly",
            f"{sev} cardiomegaly",
            "the heart is enlarged",
            "cardiac silhouette is enlarged",
            f"{sev_word} enlarged cardiac silhouette",
            f"{sev} enlargement of the cardiac silhouette",
        ]
        return _finish(str(rng.choice(options)), rng)
    assert side is not None
    sw = SIDES[side]
    t, s = attrs["t"], attrs["s"]
    z = zone_of(t)
    lobe = _lobe_name(sw, lobe_of(side, t, s))
    region = _lung_region(sw, z, rng)
    if kind == "nodule":
        size = "small " if attrs["radius"] < 0.018 else ""
        options = [
            f"{size}nodule in the {region}",
            f"{sw} {_zone_phrase(z)} lung nodule",
            f"{size}nodular opacity in the {region}",
            f"{size}rounded opacity projecting over the {lobe}"
            if lobe != "lingula"
            else f"{size}{sw} lingular nodule",
            f"there is a {size}nodule in the {lobe}"
            if lobe != "lingula"
            else f"there is a {size}nodule in the {sw} lung",
        ]
    elif kind == "mass":
        options = [
            f"{lobe} mass" if lobe != "lingula" else "left lingular mass",
            f"large mass in the {region}",
            f"{sw} {_zone_phrase(z)} lung mass-like opacity",
            f"rounded {sw} {_zone_phrase(z)} lung mass",
        ]
    elif kind == "consolidation":
        options = [
            f"{lobe} consolidation",
            f"consolidation in the {lobe}",
            f"focal consolidation in the {region}",
            f"dense {sw} {_zone_phrase(z)} lung consolidation",
        ]
        if z == "lower":
            options += [f"{sw} basilar consolidation", f"airspace consolidation at the {sw} lung base"]
    elif kind == "infiltrate":
        options = [
            f"patchy opacity in the {region}",
            f"ill-defined opacities in the {lobe}",
            f"hazy {sw} {_zone_phrase(z)} lung opacity",
            f"{sw} {_zone_phrase(z)} lung opacity",
        ]
        if z == "lower":
            options += [f"{sw} basilar opacity", f"{sw} basal opacities"]
        if z == "mid" and s < 0.4:
            options += [f"{sw} perihilar opacity"]
    elif kind == "atelectasis":
        options = [
            f"{sw} basilar atelectasis",
            f"plate-like atelectasis at the {sw} lung base",
            f"{sw} lower lobe atelectasis",
            f"linear atelectasis in the {region}",
            f"subsegmental atelectasis in the {sw} lower lung",
        ]
    elif kind == "effusion":
        sev = attrs["severity"]
        options = [
            f"{sev} {sw} pleural effusion",
            f"{sw} pleural effusion",
            f"{sev} {sw}-sided pleural effusion",
            f"layering {sw} pleural effusion",
            f"{sev} {sw} effusion",
        ]
        if sev == "small":
            options += [f"blunting of the {sw} costophrenic angle", f"small {sw} pleural effusion"]
    elif kind == "pneumothorax":
        sev = attrs["severity"]
        options = [
            f"{sw}-sided pneumothorax",
            f"{sev} {sw} pneumothorax",
            f"there is a {sev} {sw} pneumothorax",
        ]
        if attrs.get("apical"):
            options += [f"{sev} {sw} apical pneumothorax", f"{sw} apical pneumothorax"]
    else:
        raise ValueError(f"unknown finding kind {kind!r}")
    return _finish(str(rng.choice(options)), rng)


def bilateral_phrase(kind: str, rng: np.random.Generator) -> str:
    """A phrase naming the same finding in both lungs (two boxes)."""
    options = {
        "effusion": [
            "bilateral pleural effusions",
            "small bilateral pleural effusions",
            "bilateral effusions",
        ],
        "consolidation": ["bilateral consolidations", "bilateral airspace consolidation"],
        "infiltrate": ["bilateral patchy opacities", "bilateral airspace opacities"],
        "atelectasis": ["bibasilar atelectasis", "bilateral basilar atelectasis"],
    }[kind]
    return _finish(str(rng.choice(options)), rng)


def _finish(phrase: str, rng) -> str:
    phrase = re.sub(r"\s+", " ", phrase).strip()
    if rng.random() < 0.3:
        phrase = phrase[0].upper() + phrase[1:]
    return phrase


def laterality(phrase: str) -> str | None:
    """'right', 'left' or None (both or neither named) - for checks."""
    p = phrase.lower()
    r, left = bool(re.search(r"\bright\b", p)), bool(re.search(r"\bleft\b|\blingula", p))
    if r == left:
        return None
    return "right" if r else "left"
