"""Grading of the labs: checks the notebooks call, and ``./lab grade`` (nbgrader, one throwaway
engine per submission). See ``labs/README.md`` for the workflow and the trust model."""

from labs.grading.checks import CheckResult, independently, must, published_url, registry_address, self_check

__all__ = ["CheckResult", "independently", "must", "published_url", "registry_address", "self_check"]
