# nbgrader settings of the Docker Lab course. `./lab grade` writes a small nbgrader_config.py in
# its course directory that loads this file and sets CourseDirectory.root.
c = get_config()  # noqa: F821  (provided by traitlets when nbgrader loads this file)

c.CourseDirectory.course_id = "dockerlab"

# Student versions: what a learner sees in place of a solution.
c.ClearSolutions.code_stub = {"python": "# 在这里写你的代码\nraise NotImplementedError()"}
c.ClearSolutions.text_stub = "在这里写你的回答"

# Autograde: a hanging cell is interrupted after this many seconds (the task's test then fails
# with CellTimeoutError) and the notebook goes on; `./lab grade --cell-timeout` overrides it.
c.Execute.timeout = 60
c.Execute.interrupt_on_timeout = True
# A test cell the learner deleted is put back (and run), so deleting a test wins nothing.
c.OverwriteCells.add_missing_cells = True
# Keep feedback readable when a cell prints a flood.
c.LimitOutput.max_lines = 200
