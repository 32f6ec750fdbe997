"""Grading of the labs: checks the notebooks call, and ``./lab grade`` (nbgrader, one throwaway
engine per submission). See ``labs/README.md`` for the workflow and the trust model."""

from .checks import Verdict, independently, must, published_url, registry_address, self_check

__all__ = ["Verdict", "independently", "must", "published_url", "registry_address", "self_check"]
