import sys

from restcomm.cli import main

sys.exit(main())
