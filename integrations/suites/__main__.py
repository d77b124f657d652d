import sys

from integrations.suites.cli import main

sys.exit(main())
