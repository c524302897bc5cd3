"""The printed edition: the book as one PDF and an exercise sheet per chapter, from the same
sources as the website (a local Sphinx extension; it changes nothing but the LaTeX builder).

``jupyter-book build . --builder pdflatex`` (or ``scripts/build_edition.py``, which also checks
the result) writes into ``_build/latex``:

- ``book.pdf``, the whole book. The parts captioned in ``_toc.yml`` become ``\\part``\\ s; the
  chapters of the numbered parts keep the website's numbers (the numbers Sphinx wrote into
  theorem and exercise titles, "Exercise 3.8.1"); the parts before them (the course page) and
  after the appendix part (the bibliography) are unnumbered, and the chapters of the part
  captioned ``edition_appendix_part`` are lettered appendices. The root page opens the book
  under the heading ``edition_preface``. The gated solutions leave their
  chapters for a last appendix, *Solutions to the exercises*, one section per chapter; each
  exercise points to its solution's page.
- ``exercises-<chapter>.pdf`` for every page with exercises: the exercises alone, to hand out;
  ``solutions-<chapter>.pdf``: the same exercises each followed by its solution, for the
  lecturer. A reference from an exercise to the rest of its chapter (a theorem, a figure, a
  citation) is printed as the number or label the book gives it, without a link.

Sphinx's LaTeX builder assembles one document tree per entry of ``latex_documents`` and calls
``assemble_doctree`` once per entry, in order; the wrapper installed here knows from that order
which file it is assembling and rearranges the resolved tree before it is written.
"""
from __future__ import annotations

import pathlib
import re

from docutils import nodes
from sphinx import addnodes
from sphinx.builders.latex import LaTeXBuilder
from sphinx_proof.nodes import proof_node
from sphinx_exercise.nodes import (
    exercise_enumerable_node,
    exercise_latex_number_reference,
    exercise_node,
    solution_node,
)

LATEX = pathlib.Path(__file__).parent / "latex"
SHEET = "exercises-{stem}.tex"
LECTURER = "solutions-{stem}.tex"
SOLUTIONS_TITLE = "Solutions to the exercises"
EXERCISES = (exercise_node, exercise_enumerable_node)


def _is_exercise(node) -> bool:
    return isinstance(node, EXERCISES)


def _raw(tex: str) -> nodes.raw:
    return nodes.raw("", tex + "\n", format="latex")


def _stem(docname: str) -> str:
    return docname.rsplit("/", 1)[-1]


def book_parts(env) -> list[tuple[str, bool, list[str]]]:
    """``(caption, numbered, chapters)`` for each captioned toctree of the root page, in order."""
    parts = []
    for toctree in env.get_doctree(env.config.root_doc).findall(addnodes.toctree):
        chapters = [doc for _, doc in toctree["entries"] if doc in env.all_docs]
        parts.append((toctree.get("caption") or "", bool(toctree.get("numbered")), chapters))
    return parts


def chapter_names(env) -> dict[str, str]:
    """What the printed book calls each chapter: "Chapter 3", "Appendix A", or its title."""
    names, letters = {}, iter("ABCDEFGHIJKLMNOPQRSTUVWXYZ")
    for caption, numbered, chapters in book_parts(env):
        for doc in chapters:
            number = env.toc_secnumbers.get(doc, {}).get("")
            if numbered and number:
                names[doc] = f"Chapter {'.'.join(map(str, number))}"
            elif caption == env.config.edition_appendix_part:
                names[doc] = f"Appendix {next(letters)}"
            else:
                names[doc] = env.titles[doc].astext()
    return names


def pages_with_exercises(env) -> list[str]:
    """The pages that pose exercises, in the order of the book."""
    posed = {entry["docname"] for entry in env.sphinx_exercise_registry.values()
             if entry.get("type", "").startswith("exercise")}
    return [doc for _, _, chapters in book_parts(env) for doc in chapters if doc in posed]


def sheet_documents(app) -> list[tuple[str, str, str, str, str, bool]]:
    """Two ``latex_documents`` entries for every page with exercises: the handout and the
    lecturer's sheet, by the book's author, titled with the page's name in the book."""
    env = app.env
    book_title, author = app.builder.document_data[0][2:4]
    names = chapter_names(env)
    entries = []
    for doc in pages_with_exercises(env):
        title = env.titles[doc].astext()
        name = title if names[doc] == title else f"{names[doc]}: {title}"
        entries += [
            (doc, SHEET.format(stem=_stem(doc)), f"{book_title}. Exercises, {name}", author,
             "howto", False),
            (doc, LECTURER.format(stem=_stem(doc)),
             f"{book_title}. Exercises with solutions, {name}", author, "howto", False),
        ]
    return entries


def _unlink(tree: nodes.Node) -> None:
    """References to what a sheet leaves out become their text (the book's numbers)."""
    for ref in list(tree.findall(exercise_latex_number_reference)):
        ref.replace_self(nodes.inline("", ref.astext()))
    for ref in list(tree.findall(nodes.reference)):
        if ref.get("refid") or (ref.get("internal") and not ref.get("refuri", "").startswith(
                ("http:", "https:", "mailto:"))):
            ref.replace_self(nodes.inline("", "", *ref.children))
    for target in list(tree.findall(nodes.target)):
        if not target.get("refuri"):
            target.parent.remove(target)


def _solution_label(env, solution: solution_node) -> str:
    """The LaTeX label sphinx-exercise writes for a solution (see its ``visit_solution_node``)."""
    docname = env.sphinx_exercise_registry[solution["label"]]["docname"]
    return f"{docname}:{solution['label']}"


def unboxed(env, solution: solution_node) -> list[nodes.Node]:
    """A solution as a heading and its content, without the admonition's frame: a code block
    inside a frame cannot break across pages, so a long solution would run off the page."""
    label = _raw(r"\phantomsection\label{" + _solution_label(env, solution) + "}")
    heading = nodes.rubric("", "", *solution.children[0].children)
    content = []
    for child in solution.children[1:]:
        content += child.children if isinstance(child, nodes.section) else [child]
    return [label, heading, *content]


def arrange_book(app, tree: nodes.document) -> None:
    """Unnumbered front and back matter, lettered appendices, the solutions in the last one."""
    env = app.env
    parts = {caption: numbered for caption, numbered, _ in book_parts(env)}
    names = chapter_names(env)
    appendix_part = None
    for start in list(tree.findall(addnodes.start_of_file)):
        caption = start["docname"]
        if caption not in parts or caption in env.all_docs:
            continue
        # parts are numbered like chapters: only the numbered parts carry a number
        depth = r"\booksecnumdepth" if parts[caption] else "-2"
        start.insert(0, _raw(r"\setcounter{secnumdepth}{" + depth + "}"))
        if caption == app.config.edition_appendix_part:
            part = start.next_node(nodes.section)
            part.insert(1, _raw(r"\appendix\setcounter{secnumdepth}{\booksecnumdepth}"))
            appendix_part = start
    # a proof has no title of its own ("Proof." opens its text): printed as text, not a box
    # whose empty heading bar would take the first paragraph's place
    for proof in list(tree.findall(proof_node)):
        boxes = [c for c in proof.children if "proof" in c.get("classes", [])]
        proof.replace_self([part for box in boxes for part in box.children] or proof.children)
    # the root page (the website's landing page) opens the book under a heading of its own
    root = tree.next_node(nodes.section)
    if root is not None:
        root.insert(1, _raw(r"\chapter*{" + app.config.edition_preface + "}"
                            r"\addcontentsline{toc}{chapter}{" + app.config.edition_preface
                            + r"}\markboth{" + app.config.edition_preface + "}{}"))

    # numref to an exercise: Sphinx's \ref would name a label sphinx-exercise never writes
    registry = env.sphinx_exercise_registry
    for ref in list(tree.findall(addnodes.number_reference)):
        target = ref.get("refid") or ref.get("refuri", "").rpartition("#")[2]
        if registry.get(target, {}).get("type", "").startswith("exercise"):
            ref.replace_self(exercise_latex_number_reference("", "", *ref.children,
                                                             refid=target))

    solutions = list(tree.findall(solution_node))
    if not solutions:
        return
    chapter = nodes.section("", nodes.title("", SOLUTIONS_TITLE), ids=["edition-solutions"])
    chapter += nodes.paragraph("", "The solutions of every chapter's exercises, in the order "
                                   "of the book. Each was executed when the book was built.")
    by_page: dict[str, list[solution_node]] = {}
    for solution in solutions:
        by_page.setdefault(solution["docname"], []).append(solution)
    for page, group in by_page.items():
        # a start_of_file keeps the labels inside the solutions those of their own page
        holder = addnodes.start_of_file(docname=page)
        section = nodes.section("", nodes.title("", f"{names.get(page, page)}: "
                                                    f"{env.titles[page].astext()}"),
                                ids=[f"edition-solutions-{_stem(page)}"])
        holder += section
        for solution in group:
            pointer = _raw(r"\par\hfill{\small\itshape Solution on page~\pageref{"
                           + _solution_label(env, solution) + "}.}\\par")
            for posed in tree.findall(_is_exercise):
                if posed.get("label") == solution["target_label"]:
                    posed += pointer
            solution.parent.remove(solution)
            section += unboxed(env, solution)
        chapter += holder
    # the new chapter closes the appendix part (or the book, when there is none)
    if appendix_part is not None:
        appendix_part.findall(nodes.section).__next__().append(chapter)
    else:
        tree.append(chapter)


def arrange_sheet(app, tree: nodes.document, docname: str, with_solutions: bool) -> None:
    """The page's exercises only (each followed by its solution for the lecturer)."""
    env = app.env
    solutions = {s["target_label"]: s for s in tree.findall(solution_node)}
    exercises = list(tree.findall(_is_exercise))
    book = app.builder.document_data[0][2]
    name = chapter_names(env)[docname]
    if name == env.titles[docname].astext():
        name = "the page"
    title, version = env.titles[docname].astext(), app.builder.context["release"]
    intro = (f"The exercises of {name[0].lower() + name[1:]} \u201c{title}\u201d of the book "
             f"{book}, version {version}. Each can be solved with the book's library lib in a "
             "few lines; the numbers of theorems, figures and equations are the book's.")
    if not with_solutions:
        intro += " The solutions are in the lecturer's sheet and in the book's last appendix."
    body = [_raw(r"\setcounter{secnumdepth}{-2}"), nodes.paragraph("", intro)]
    for exercise in exercises:
        exercise.parent.remove(exercise)
        body.append(exercise)
        solution = solutions.get(exercise.get("label"))
        if with_solutions and solution is not None:
            solution.parent.remove(solution)
            body += unboxed(env, solution)
    tree.children = []
    tree.extend(body)
    _unlink(tree)


def install(app) -> None:
    """Wrap the LaTeX builder's ``assemble_doctree`` (``builder-inited``)."""
    builder = app.builder
    if not isinstance(builder, LaTeXBuilder):
        return
    # sphinx-jupyterbook-latex sets numfig_secnum_depth to 2 for LaTeX, so that Sphinx would
    # number "Theorem 1.2.1" where the website says "Theorem 1.1"; the website's numbers are
    # kept (bookedition.sty numbers figures, tables and equations within chapters instead)
    app.config.numfig_secnum_depth = app.edition_numfig_secnum_depth
    book_version(app)
    init_document_data = builder.init_document_data

    def with_sheets():
        init_document_data()
        builder.document_data += sheet_documents(app)

    builder.init_document_data = with_sheets
    assemble = builder.assemble_doctree
    calls = iter(range(1 << 30))

    def assemble_and_arrange(indexfile, toctree_only, appendices):
        targetname = builder.document_data[next(calls)][1]
        tree = assemble(indexfile, toctree_only, appendices)
        stem = _stem(indexfile)
        if targetname == SHEET.format(stem=stem):
            arrange_sheet(app, tree, indexfile, with_solutions=False)
        elif targetname == LECTURER.format(stem=stem):
            arrange_sheet(app, tree, indexfile, with_solutions=True)
        else:
            arrange_book(app, tree)
        return tree

    builder.assemble_doctree = assemble_and_arrange


def preamble(app, config) -> None:
    """Load ``latex/bookedition.sty`` (the numbering depth the parts restore, breakable inline
    code) and the stand-in ``bbm.sty`` (see the file) beside the LaTeX sources."""
    config.latex_additional_files = [*config.latex_additional_files,
                                     *(str(LATEX / f) for f in ("bbm.sty", "bookedition.sty"))]
    app.edition_numfig_secnum_depth = config.numfig_secnum_depth
    elements = config.latex_elements
    elements["preamble"] = elements.get("preamble", "") + "\n\\usepackage{bookedition}\n"


def book_version(app) -> None:
    """The title page's version is the library's (``lib.__version__``), read from its source."""
    source = (pathlib.Path(__file__).resolve().parents[2] / "lib" / "__init__.py").read_text()
    version = re.search(r'^__version__ = "([^"]+)"', source, re.M).group(1)
    # the title page's release; not app.config.release, whose change would make the next
    # build of the website read every page again
    app.builder.context["release"] = version


def footer_links(app, pagename, templatename, context, doctree) -> None:
    """The website's footer links ``edition/...`` (the PDFs) relative to each page."""
    footer = context.get("theme_extra_footer") or ""
    if 'href="edition/' in footer:
        here = context["pathto"]("edition/", 1)
        context["theme_extra_footer"] = footer.replace('href="edition/', f'href="{here}')


def setup(app):
    app.connect("html-page-context", footer_links)
    app.add_config_value("edition_appendix_part", "Appendices", "env")
    app.add_config_value("edition_preface", "About this book", "env")
    app.connect("config-inited", preamble)
    app.connect("builder-inited", install, priority=900)  # after sphinx-jupyterbook-latex
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
