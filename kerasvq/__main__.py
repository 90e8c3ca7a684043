import sys

from kerasvq.cli import main

sys.exit(main())
