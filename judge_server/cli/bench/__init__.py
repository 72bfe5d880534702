"""``judge-server bench``: measured figures, printed as a table and written as JSON."""
