"""The grader's library: nbgrader's course directory (``course``), reading a submissions folder
(``collect``), the report (``report``), ``./lab grade``'s account-side commands (``cli``) and the
worker that runs inside a sandbox as the grading account (``worker``). Root's side is
``asroot.grading``."""
