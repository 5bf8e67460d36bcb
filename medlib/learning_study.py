"""``python -m medlib.learning_study``: the learning study's command under its earlier name; the
code is :mod:`medlib.study.learning`."""

import runpy

if __name__ == "__main__":
    runpy.run_module("medlib.study.learning", run_name="__main__")
