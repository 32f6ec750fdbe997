"""The shared core every other package stands on, imported by learners' kernels, the launcher, the
grader, the classroom and root's wing alike: the lab's state and paths (``state``), the one registry
client (``distribution``), ``/proc`` readers and background processes (``proc``), errors
(``errors``), file operations that follow no link (``safefs``) and listeners inside another network
namespace with the one byte pump (``netns``).

It imports nothing of the project above it (stdlib only), so it runs as anyone: as a learner in a
kernel, as the lab's account in the launcher, and as root in ``asroot``.
"""
