import sys

from pcnnseg.cli import main

sys.exit(main())
