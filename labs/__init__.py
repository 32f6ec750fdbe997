"""The course's graded labs: nbgrader source assignments (``labs/source``) and the grader
(``labs.grading``) that runs each submission against its own throwaway Docker Engine."""
