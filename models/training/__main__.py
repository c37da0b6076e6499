"""``python -m models.training``: train the tiny model (``layerscope train`` runs the same)."""

import sys

from models.training import main

sys.exit(main())
