"""``python -m courseimage build|save`` (``./lab image ...`` runs this as the lab's account)."""

from __future__ import annotations

import sys

from courseimage.cli import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
