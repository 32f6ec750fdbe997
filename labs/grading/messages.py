"""Messages of the lab checks (learners) and of the grading report (instructors): the gettext
domain ``labs`` (``labs/locale/<zh_CN|en>/LC_MESSAGES/labs.po``, compiled to ``.mo`` with
``.venv/bin/pybabel compile -d labs/locale -D labs``), looked up through kernel_ext's one
catalogue, so :func:`t` and the course language are the same as the chapters'.

>>> t("lab2.cleanup.left", refs="practice/app:tmp", lang="en")
'still to remove: practice/app:tmp'
"""

from __future__ import annotations

from pathlib import Path

from kernel_ext.messages import add_catalogue, t

__all__ = ["DOMAIN", "LOCALE_DIR", "t"]

DOMAIN = "labs"
LOCALE_DIR = Path(__file__).resolve().parents[1] / "locale"

add_catalogue(DOMAIN, LOCALE_DIR)
