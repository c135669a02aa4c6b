"""Building the bundled vocabulary subset in vocab/ (see vocab/README.md)."""
