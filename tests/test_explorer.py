"""The explorer widget executes headless without stalling.

`jupyter nbconvert --execute` (nbclient) stalled for the whole cell timeout in about one run in
three after chapter 1's explorer cell: output captured by an ``ipywidgets.Output`` widget
while a cell runs makes nbclient send the widget's state back to the kernel on the shell socket
while it waits for the cell's reply on that socket, and that wait is now and then not woken
(nbclient issue #312).  The explorer therefore shows its figure in an ``Image`` widget and
never prints or displays while a cell runs.  These tests check that property, in-process and
through nbclient itself (which must never have to mirror an Output widget)."""
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

widgets = pytest.importorskip("ipywidgets")

SMALL = dict(iterations=5, n=40)


def walk(widget):
    yield widget
    for child in getattr(widget, "children", ()):
        yield from walk(child)


def test_explorer_has_no_output_widget_and_shows_a_png(monkeypatch):
    import IPython.display
    from lib.interactive import explorer

    def refuse(*args, **kwargs):
        raise AssertionError("the explorer must not display while a cell runs")

    monkeypatch.setattr(IPython.display, "display", refuse)
    monkeypatch.setattr(IPython.display, "clear_output", refuse)
    plt.close("all")
    box = explorer("spiral", **SMALL)
    tree = list(walk(box))
    assert not [w for w in tree if isinstance(w, widgets.Output)]
    image = next(w for w in tree if isinstance(w, widgets.Image))
    assert bytes(image.value[:8]) == b"\x89PNG\r\n\x1a\n"
    assert plt.get_fignums() == [], "figures left open would be shown again by the backend"
    status = next(w for w in tree if isinstance(w, widgets.Label))
    assert status.value.startswith("spiral: K = 10")
    before = bytes(image.value)
    box.children[0].value = 3  # a new depth retrains and redraws
    assert "K = 3" in status.value and bytes(image.value) != before


def test_explorer_reports_errors_in_its_status_line():
    from lib.interactive import explorer
    box = explorer("spiral", **SMALL)
    box.children[1].value = 2.0
    box = explorer("no-such-dataset", **SMALL)
    status = next(w for w in walk(box) if isinstance(w, widgets.Label))
    assert status.value.startswith("ValueError:") and "no-such-dataset" in status.value


def test_nbclient_never_mirrors_an_output_widget(tmp_path):
    """Execute the explorer cell as `jupyter nbconvert --execute` does: nbclient registers an
    output hook (and so sends on the shell socket) only for an Output widget; none may appear."""
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    nb.cells = [nbformat.v4.new_code_cell(
        "import lib\nlib.setup_notebook(0)\nfrom lib.interactive import explorer\n"
        f"explorer('spiral', iterations={SMALL['iterations']}, n={SMALL['n']})")]
    hooks = []

    class Client(nbclient.NotebookClient):
        def register_output_hook(self, msg_id, hook):
            hooks.append(msg_id)
            super().register_output_hook(msg_id, hook)

    Client(nb, timeout=120, kernel_name="python3",
           resources={"metadata": {"path": str(tmp_path)}}).execute()
    assert hooks == [], "an Output widget captured output while the cell ran"
    outputs = nb.cells[0].outputs
    assert [o.output_type for o in outputs] == ["execute_result"]
    assert "application/vnd.jupyter.widget-view+json" in outputs[0].data
    models = {s["model_name"] for s in nb.metadata.widgets[
        "application/vnd.jupyter.widget-state+json"]["state"].values()}
    assert "ImageModel" in models and "OutputModel" not in models
