import sys

from homelab.cli import main

sys.exit(main())
