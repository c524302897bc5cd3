"""What a lecturer adopting the book relies on: the licences, the citation metadata, the
changelog, and the printed edition's arrangement (book/_ext/edition.py) of a small book through
Sphinx's LaTeX builder (no TeX needed; scripts/build_edition.py typesets and checks the real
one in CI)."""
import json
import pathlib
import re
import subprocess
import sys
import textwrap

import jsonschema
import pytest
import yaml

import lib

ROOT = pathlib.Path(__file__).resolve().parents[1]
CFF_SCHEMA = json.loads((pathlib.Path(__file__).with_name("cff-schema-1.2.0.json")).read_text())
"""The Citation File Format 1.2.0 schema, committed (from citation-file-format/
citation-file-format, tag 1.2.0, CC BY 4.0) so that nothing is downloaded at test time."""


def cff_errors(data) -> list[str]:
    # the schema wants dates as strings; YAML reads them as dates
    data = json.loads(json.dumps(data, default=str))
    validator = jsonschema.Draft7Validator(CFF_SCHEMA,
                                           format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER)
    return [f"{'/'.join(map(str, e.path))}: {e.message}" for e in validator.iter_errors(data)]


def citation():
    return yaml.safe_load((ROOT / "CITATION.cff").read_text())


def test_citation_file_is_valid_cff_1_2():
    assert cff_errors(citation()) == []


def test_the_schema_check_can_fail():
    """Negative control: the same check rejects a file without authors or with a bad DOI."""
    broken = citation()
    del broken["authors"]
    assert any("authors" in e for e in cff_errors(broken))
    broken = citation()
    broken["references"][1]["doi"] = "https://doi.org/10.3934/jcd.2019009"
    assert cff_errors(broken)


def test_citation_names_the_book_its_version_and_its_own_authors():
    cff = citation()
    assert cff["version"] == lib.__version__
    assert cff["title"].startswith("Structure-preserving deep learning")
    assert [a.get("name") for a in cff["authors"]] == [
        "The Structure-preserving deep learning contributors"]
    assert set(cff["license"]) == {"MIT", "CC-BY-4.0"}
    talk = cff["references"][0]
    assert talk["authors"][0]["family-names"] == "Owren" and talk["year"] == 2020


def test_licences_are_stated_everywhere():
    assert (ROOT / "LICENSE").read_text().startswith("MIT License")
    text = (ROOT / "LICENSE-text").read_text()
    assert "Creative Commons Attribution 4.0 International Public License" in text
    project = (ROOT / "pyproject.toml").read_text()
    assert 'license = "MIT AND CC-BY-4.0"' in project
    assert 'license-files = ["LICENSE", "LICENSE-text"]' in project
    footer = yaml.safe_load((ROOT / "_config.yml").read_text())["html"]["extra_footer"]
    assert "CC BY 4.0" in footer and "MIT" in footer and "edition/index.html" in footer
    readme = (ROOT / "README.md").read_text()
    assert "## Licence" in readme and "## How to cite" in readme


def test_changelog_has_this_version_and_an_unreleased_section():
    changelog = (ROOT / "CHANGELOG.md").read_text()
    versions = re.findall(r"^## (\S+)", changelog, re.M)
    assert versions[0] == "Unreleased" and lib.__version__ in versions


MINI_BOOK = {
    "_toc.yml": """\
        format: jb-book
        root: intro
        parts:
          - caption: Using this book
            chapters:
              - file: front
          - caption: The chapters
            numbered: true
            chapters:
              - file: one
              - file: two
          - caption: Appendices
            chapters:
              - file: extra
          - caption: Back matter
            chapters:
              - file: back
        """,
    "intro.md": "# A small book\n\nThe root page.\n",
    "front.md": "# Front matter\n\nSee {numref}`ex-one` and {numref}`ex-two`.\n",
    "back.md": "# Back matter\n\nThe end.\n",
}


def chapter(name: str, label: str, text: str) -> str:
    return textwrap.dedent(f"""\
        # {name}

        Some prose of {name}.

        ```{{exercise}} {name}'s question
        :label: {label}
        {text}
        ```

        ````{{solution-start}} {label}
        :class: dropdown
        ````
        The answer of {name}.
        ````{{solution-end}}
        ````

        More prose after the exercise of {name}.
        """)


@pytest.fixture(scope="module")
def mini_latex(tmp_path_factory):
    """The LaTeX sources of a five-page book with the edition extension."""
    book = tmp_path_factory.mktemp("mini")
    pages = {**MINI_BOOK,
             "one.md": chapter("Chapter one", "ex-one", "Prove it, using the text before."),
             "two.md": chapter("Chapter two", "ex-two", "Compute it."),
             "extra.md": chapter("An appendix", "ex-extra", "Try this too.")}
    for name, text in pages.items():
        (book / name).write_text(textwrap.dedent(text))
    (book / "_config.yml").write_text(textwrap.dedent(f"""\
        title: A small book
        author: Its contributors
        only_build_toc_files: true
        execute:
          execute_notebooks: "off"
        latex:
          latex_documents:
            targetname: book.tex
        sphinx:
          local_extensions:
            edition: {ROOT / "book" / "_ext"}
          extra_extensions:
            - sphinx_exercise
          config:
            latex_use_xindy: false
        """))
    jupyter_book = pathlib.Path(sys.executable).with_name("jupyter-book")
    done = subprocess.run([str(jupyter_book), "build", str(book), "--builder", "latex", "-W",
                           "-n"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return {p.name: p.read_text() for p in (book / "_build" / "latex").glob("*.tex")}


def test_book_has_unnumbered_front_and_back_matter_and_lettered_appendices(mini_latex):
    tex = mini_latex["book.tex"]
    unnumbered, numbered = r"\setcounter{secnumdepth}{-2}", r"\setcounter{secnumdepth}{\boo"
    marks = [r"\chapter*{About this book}", unnumbered, r"\part{Using this book}", numbered,
             r"\part{The chapters}", unnumbered, r"\part{Appendices}", r"\appendix" + numbered,
             r"\chapter{An appendix}", r"\chapter{Solutions to the exercises}", unnumbered,
             r"\part{Back matter}"]
    at, order = 0, []
    for mark in marks:
        at = tex.index(mark, at)
        order.append(at)
    assert order == sorted(order)
    assert tex.count(unnumbered) == 3  # front matter, appendices (the part), back matter


def test_book_gathers_the_solutions_in_the_last_appendix(mini_latex):
    tex = mini_latex["book.tex"]
    appendix = tex.index(r"\chapter{Solutions to the exercises}")
    for name in ("Chapter one", "Chapter two", "An appendix"):
        assert tex.index(f"The answer of {name}.") > appendix
        assert tex.index(f"More prose after the exercise of {name}.") < appendix
    assert tex.count("Solution on page") == 3
    sections = re.findall(r"\\section\{([^}]*)\}", tex[appendix:])
    assert sections == ["Chapter 1: Chapter one", "Chapter 2: Chapter two",
                        "Appendix A: An appendix"]
    # numref to an exercise points at sphinx-exercise's label, with the website's number
    assert r"\hyperref[exercise:ex-one]{Exercise 1.1}" in tex


def test_sheets_hold_the_exercises_without_or_with_solutions(mini_latex):
    assert {n for n in mini_latex if n != "book.tex"} == {
        f"{kind}-{page}.tex" for kind in ("exercises", "solutions")
        for page in ("one", "two", "extra")}
    handout, lecturer = mini_latex["exercises-one.tex"], mini_latex["solutions-one.tex"]
    for sheet in (handout, lecturer):
        assert "Prove it, using the text before." in sheet
        assert "Some prose of Chapter one" not in sheet and "Chapter two" not in sheet
        assert r"\title{A small book. Exercises" in sheet
    assert "The answer of Chapter one." not in handout
    assert "The answer of Chapter one." in lecturer
    assert lecturer.index("Prove it") < lecturer.index("The answer of Chapter one.")
    assert "Appendix A: An appendix" in mini_latex["exercises-extra.tex"]
