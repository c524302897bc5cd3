"""Site-wide fixes for the book's website (a local Sphinx extension, see ``_config.yml``).

1. **Author–year labels in the bibliography.**  The chapters cite author–year
   (``bibtex_reference_style: author_year``: "Haber and Ruthotto, 2017"), but pybtex's
   default labels are alphabetic ("[ACarinenaI83]").  The pybtex style ``authoryear``
   registered here labels every entry the way the text cites it ("[Haber and Ruthotto, 2017]",
   "[Benning et al., 2019]") and sorts the list by author, year and title.

2. **Each inline script once.**  Sphinx 7.4 gives an inline script (``add_js_file(None,
   body=...)``) added after the builder was set up to the builder at once (file name ``None``)
   and, again, from the registry when writing starts (file name ``""``); the two do not compare
   equal, so the page gets the script twice.  sphinx-thebe's ``const THEBE_JS_URL = ...`` then
   throws "Identifier 'THEBE_JS_URL' has already been declared" on every page (and
   sphinx-togglebutton's selector is set twice).  Dropping the builder's copies before writing
   leaves the registry's, one of each.
"""
from __future__ import annotations

import codecs
import json
import re

import latexcodec  # noqa: F401  (registers the "ulatex" codec)
from pybtex.plugin import register_plugin
from pybtex.style.formatting.unsrt import Style as UnsrtStyle
from pybtex.style.labels import BaseLabelStyle


def _last_name(person) -> str:
    """A person's family name as printed ("Cariñena", "Schönlieb"), from BibTeX's LaTeX."""
    text = " ".join(person.prelast_names + person.last_names)
    text = codecs.decode(text, "ulatex")
    return re.sub(r"[{}]", "", text).strip()


def author_year(entry) -> str:
    """``Surname, year``; ``A and B, year``; ``A et al., year`` for three or more authors
    (editors when there are no authors): the form of sphinxcontrib-bibtex's author_year
    citations."""
    people = entry.persons.get("author") or entry.persons.get("editor") or []
    names = [_last_name(p) for p in people]
    if not names:
        who = entry.fields.get("key") or entry.key
    elif len(names) == 1:
        who = names[0]
    elif len(names) == 2:
        who = f"{names[0]} and {names[1]}"
    else:
        who = f"{names[0]} et al."
    return f"{who}, {entry.fields.get('year', 'n.d.')}"


class AuthorYearLabelStyle(BaseLabelStyle):
    """Labels ``Author, year``; equal labels get ``a``, ``b``, ... after the year."""

    def format_labels(self, sorted_entries):
        labels = [author_year(entry) for entry in sorted_entries]
        repeated = {label for label in labels if labels.count(label) > 1}
        seen: dict[str, int] = {}
        for label in labels:
            if label in repeated:
                seen[label] = seen.get(label, 0) + 1
                yield label + "abcdefghijklmnopqrstuvwxyz"[seen[label] - 1]
            else:
                yield label


class AuthorYearStyle(UnsrtStyle):
    """pybtex's ``unsrt`` entries with :class:`AuthorYearLabelStyle` labels, sorted by author,
    year and title."""

    default_label_style = "authoryear"
    default_sorting_style = "author_year_title"


register_plugin("pybtex.style.labels", "authoryear", AuthorYearLabelStyle)
register_plugin("pybtex.style.formatting", "authoryear", AuthorYearStyle)


def _one_copy_of_each_inline_script(app, env) -> None:
    """Drop the builder's copy (file name ``None``) of every inline script that the registry
    holds too: ``prepare_writing`` adds the registry's copy (file name ``""``)."""
    scripts = getattr(app.builder, "_js_files", None)
    if scripts is None:
        return
    registered = {json.dumps(attrs, sort_keys=True)
                  for filename, attrs in app.registry.js_files if not filename}
    scripts[:] = [s for s in scripts if not (
        s.filename is None
        and json.dumps({"priority": s.priority, **s.attributes}, sort_keys=True) in registered)]


def setup(app):
    app.connect("env-updated", _one_copy_of_each_inline_script)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
