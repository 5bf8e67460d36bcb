"""The repository stands alone: what it cites exists inside it. Every ``docs/<page>.md#<anchor>``
named in code, configs, notebooks, tests or READMEs is a page with that section, and nothing
cites notes a user of the repository does not have."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CITE = re.compile(r"docs/([a-z0-9_]+\.md)(?:#([a-z0-9-]+))?")
OUTSIDE = re.compile(r"REFERENCE_NOTES|STYLE\.md|\.\./shared/|\bissue \d+|\(issue: |\bissue \"")


def _sources() -> list[Path]:
    files = [ROOT / "README.md", *ROOT.glob("results/**/README.md"), *ROOT.glob("docs/*.md")]
    for folder, pattern in (("medlib", "*.py"), ("configs", "*.yaml"), ("notebooks", "*.py"),
                            ("tests", "*.py"), ("benchmarks", "*.py")):
        files += (ROOT / folder).rglob(pattern)
    return [f for f in files if f.name != "test_docs.py"]


def anchors(page: Path) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces as hyphens."""
    out = set()
    for line in page.read_text(encoding="utf-8").splitlines():
        m = re.match(r"^#{1,6}\s+(.*)$", line)
        if m:
            out.add(re.sub(r"\s", "-", re.sub(r"[^\w\s-]", "", m.group(1).strip().lower())))
    return out


def test_anchor_rule():
    assert "trls-defaults-differ" in anchors(ROOT / "docs" / "grpo.md")


def test_every_docs_citation_resolves():
    bad = []
    for f in _sources():
        for page, anchor in CITE.findall(f.read_text(encoding="utf-8")):
            target = ROOT / "docs" / page
            if not target.is_file():
                bad.append(f"{f.relative_to(ROOT)}: docs/{page} does not exist")
            elif anchor and anchor not in anchors(target):
                bad.append(f"{f.relative_to(ROOT)}: docs/{page} has no section #{anchor}")
    assert not bad, "\n".join(bad)


def test_nothing_cites_files_outside_the_repository():
    hits = [f"{f.relative_to(ROOT)}:{i}" for f in _sources()
            for i, line in enumerate(f.read_text(encoding="utf-8").splitlines(), 1) if OUTSIDE.search(line)]
    assert not hits, f"citations of files a user does not have, or of internal work items: {hits}"
