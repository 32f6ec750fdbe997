"""Root's side of ``./lab grade``: a sandbox per submission, the helpers beside it (the check service,
the mirror's relay) and the batch runner that always finishes with a report."""
