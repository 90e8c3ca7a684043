"""What every layer of the package uses: the one-line user error and the folders kerasvq reads and writes."""
