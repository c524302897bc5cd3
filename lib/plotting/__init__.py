"""The book's recurring figures, one module per kind of figure, all drawn in the column-wide
style of :mod:`lib.plotting.style`."""
