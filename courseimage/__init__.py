"""The course as one container image (issue 20): built offline from Debian packages and PyPI
(``courseimage.build``), started by ``courseimage.entrypoint``; ``./lab image build|save`` (``courseimage.cli``)."""

__all__: list[str] = []
