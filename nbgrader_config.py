"""nbgrader configuration of the course.

nbgrader's usual layout (`solutions/<assignment>/`, `notebooks/<assignment>/`,
`submitted/<student>/<assignment>/`) is used inside a temporary course root: `tools/build_notebooks.py`
copies `solutions/*.ipynb` there as the assignment `ASSIGNMENT`, runs `nbgrader generate_assignment` and
copies the release back into `notebooks/`. Only the notebooks are copied: nbgrader ships every other file of
an assignment folder, and the jupytext sources in `solutions/src/` hold the solutions.
The tests (tests/test_notebooks.py) autograde the same way. The root is the folder holding this file, so a
copy of it configures a temporary course root.
"""

from pathlib import Path

c = get_config()  # type: ignore[name-defined]  # noqa: F821 - injected by traitlets

#: The one assignment: every notebook of the week.
ASSIGNMENT = "deployment"

c.CourseDirectory.root = str(Path(__file__).resolve().parent)
c.CourseDirectory.course_id = "deployment-ml-lifecycle"
c.CourseDirectory.source_directory = "solutions"
c.CourseDirectory.release_directory = "notebooks"
c.CourseDirectory.submitted_directory = "submitted"
c.CourseDirectory.autograded_directory = "autograded"
c.CourseDirectory.feedback_directory = "feedback"

# What a student sees in place of a solution region.
c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
c.ClearSolutions.text_stub = "YOUR ANSWER HERE"

# Autograding runs every notebook in a fresh kernel: cells may load a model or build an image (cached),
# so the per-cell limit is generous; a cell that still runs after it is interrupted, never left hanging.
c.Execute.timeout = 300
c.Execute.interrupt_on_timeout = True
