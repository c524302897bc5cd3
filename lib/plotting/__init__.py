"""The book's recurring figures, one module per kind of figure."""
