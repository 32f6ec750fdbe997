"""Root's wing: everything the project runs as uid 0, and nothing else.

* ``asroot.__main__`` — ``./lab`` run by root: the one-time system step, then the command as the
  lab's account; ``./lab grade autograde|all`` and ``./lab classroom ...`` stay root's.
* ``asroot.accounts`` — the one way root makes an account (no login shell) and its subordinate ids.
* ``asroot.system``, ``asroot.gradeaccounts`` — the lab's account and the grading pool, ``/dev/net/tun``, cgroups.
* ``asroot.classroom*`` — making and removing a classroom, root's gate into a member, the relay.
* ``asroot.grading`` — the grading sandboxes and root's helpers beside them (check service, relay).

Every file it opens that another account could have made goes through :mod:`labcore.safefs`
(``tests/test_layout.py`` fails otherwise).
"""
