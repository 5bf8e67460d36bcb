"""``python -m medlib.semantic_train``: train the embedded small CLIP and write its held-out numbers
to ``results/semantic_clip.json``. The command keeps its name; the code is in :mod:`medlib.semantic`
(:mod:`.training`, :mod:`.evaluation`, :mod:`.cli`)."""

from .semantic.cli import main

if __name__ == "__main__":
    main()
