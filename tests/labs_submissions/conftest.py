# The sample submissions here are data for tests/test_labs_grading.py, not tests: some of them
# are hostile (a fork bomb, a disk filler) and must only ever run on a grader's throwaway engine,
# never through nbval on the lab engine.
collect_ignore_glob = ["*"]
