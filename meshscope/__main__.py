import sys

from meshscope.cli import main

sys.exit(main())
