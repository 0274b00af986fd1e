"""`python -m appliance` runs the otwatch command."""

import sys

from appliance.cli import main

sys.exit(main())
