"""The documentation: a short README, docs/ pages whose links resolve, a generated settings page."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from streamer.settings import Settings, env_name
from streamer.settings_docs import REGENERATE, settings_markdown

REPO = Path(__file__).resolve().parents[2]
README = REPO / "README.md"
DOCS = REPO / "docs"
CONFIGURATION = DOCS / "configuration.md"
README_MAX_LINES = 260

#: ``[text](target)`` or ``![alt](target "title")``; group 1 is the target
LINK = re.compile(r"!?\[[^\]\n]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
FENCE = re.compile(r"^(```|~~~).*?^\1[^\n]*$", re.S | re.M)
CODE_SPAN = re.compile(r"`[^`\n]*`")
EXTERNAL = ("http://", "https://", "mailto:")


def markdown_files() -> list[Path]:
    return [README, *sorted(DOCS.glob("*.md"))]


def link_targets(text: str) -> list[str]:
    """The targets of the Markdown links in ``text``, outside code blocks and code spans."""
    prose = CODE_SPAN.sub("", FENCE.sub("", text))
    return LINK.findall(prose)


def broken_links(path: Path) -> list[str]:
    """Relative link targets of ``path`` that name no file or directory (fragments ignored)."""
    broken = []
    for target in link_targets(path.read_text(encoding="utf-8")):
        if target.startswith(EXTERNAL) or target.startswith("#"):
            continue
        relative = target.split("#", 1)[0]
        if not (path.parent / relative).exists():
            broken.append(target)
    return broken


def test_configuration_page_is_what_settings_docs_writes() -> None:
    assert CONFIGURATION.is_file(), f"docs/configuration.md is missing; run: {REGENERATE}"
    committed = CONFIGURATION.read_text(encoding="utf-8")
    assert committed == settings_markdown(), (
        f"docs/configuration.md is out of date with streamer/settings.py; run: {REGENERATE}"
    )


def test_configuration_page_names_every_setting() -> None:
    page = CONFIGURATION.read_text(encoding="utf-8")
    missing = [
        env_name(name) for name in Settings.model_fields if f"`{env_name(name)}`" not in page
    ]
    assert not missing, f"docs/configuration.md misses {missing}; run: {REGENERATE}"


def test_settings_markdown_has_one_row_per_setting() -> None:
    rows = [line for line in settings_markdown().splitlines() if line.startswith("| `STREAMER_")]
    assert len(rows) == len(Settings.model_fields)
    assert REGENERATE in settings_markdown()


def test_link_pattern_finds_links_and_skips_code() -> None:
    text = (
        'See [the contract](docs/contract.md#keys), ![a chart](img/c.png "title"),\n'
        "[web](https://example.com) and [here](#top). Not `[code](x.md)`:\n"
        "```\n[block](y.md)\n```\n"
    )
    assert link_targets(text) == [
        "docs/contract.md#keys",
        "img/c.png",
        "https://example.com",
        "#top",
    ]


def test_a_broken_link_is_reported(tmp_path: Path) -> None:
    (tmp_path / "there.md").write_text("x")
    page = tmp_path / "page.md"
    page.write_text(
        "[ok](there.md#part) [dir](.) [gone](missing.md) [web](http://x.invalid) [a](#b)\n"
    )
    assert broken_links(page) == ["missing.md"]


def test_readme_and_docs_link_to_existing_files() -> None:
    assert DOCS.is_dir()
    readme_links = link_targets(README.read_text(encoding="utf-8"))
    assert len(readme_links) >= 10, "the README should link to the docs/ pages"
    problems = {
        str(path.relative_to(REPO)): broken
        for path in markdown_files()
        if (broken := broken_links(path))
    }
    assert not problems, f"links to files that do not exist: {problems}"


@pytest.mark.parametrize(
    "page", sorted(path.name for path in DOCS.glob("*.md") if path.name != "index.md")
)
def test_every_docs_page_is_linked_from_readme_and_index(page: str) -> None:
    readme = {target.split("#", 1)[0] for target in link_targets(README.read_text("utf-8"))}
    index = {
        target.split("#", 1)[0] for target in link_targets((DOCS / "index.md").read_text("utf-8"))
    }
    assert f"docs/{page}" in readme, f"README.md does not link to docs/{page}"
    assert page in index, f"docs/index.md does not link to {page}"


def test_readme_is_short() -> None:
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= README_MAX_LINES, (
        f"README.md has {len(lines)} lines (at most {README_MAX_LINES}): move detail to docs/"
    )


def test_readme_keeps_the_two_commands() -> None:
    readme = README.read_text(encoding="utf-8").splitlines()
    for command in (
        "./scripts/demo.sh     # the live demo: local Kafka, simulator, worker, live summary "
        "(Ctrl-C stops)",
        "./scripts/test.sh     # the whole test suite: ruff, mypy --strict, unit + integration "
        "+ e2e on real Kafka",
    ):
        assert command in readme, f"README.md lost the command line {command!r}"
