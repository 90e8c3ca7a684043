"""Keras layers of kerasvq; import each from its own module (one public layer per file)."""
