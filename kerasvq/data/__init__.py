"""Data: corpora (reading, splitting, the default pt-BR corpus) and their preprocessing; embedding
and feature-table files (HDF5), column groups, the synthetic feature demo."""
