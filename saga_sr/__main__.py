import sys

from saga_sr.cli import main

sys.exit(main())
