"""``python -m models.card``: write the tiny model's card from the numbers beside the weights."""

import sys

from models.card.build import main

sys.exit(main())
