"""Data: corpora (reading, splitting, the default pt-BR corpus) and their preprocessing."""
