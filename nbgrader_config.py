"""nbgrader's configuration for this course (nbgrader 0.9).

nbgrader reads this file ONLY from the directory it is started in: run every `nbgrader ...` command
from the repository root (or use `python utils/grade.py`, which does). With `--CourseDirectory.root`
pointing here from elsewhere this file - the timeout included - is silently ignored.

    solutions/<assignment>/<assignment>.ipynb    nbgrader's source: solutions and hidden tests
    assignments/<assignment>/<assignment>.ipynb  the student release, made by `python utils/grade.py release`
    submitted/, autograded/, feedback/, gradebook.db   the grading state: never committed (.gitignore)
"""
from nbconvert.preprocessors import CSSHTMLHeaderPreprocessor
from nbgrader.preprocessors import ClearHiddenTests, GetGrades

c = get_config()  # noqa: F821  (provided by nbgrader when it loads this file)

c.CourseDirectory.course_id = "slm-course"
c.CourseDirectory.source_directory = "solutions"
c.CourseDirectory.release_directory = "assignments"
c.CourseDirectory.submitted_directory = "submitted"
c.CourseDirectory.autograded_directory = "autograded"
c.CourseDirectory.feedback_directory = "feedback"
c.CourseDirectory.db_url = "sqlite:///gradebook.db"

# Every cell of a submission gets at most this long when autograded: an infinite loop is interrupted
# and the rest of the notebook is still graded. The slowest graded cell needs a few seconds.
c.Execute.timeout = 120
c.Execute.kernel_name = "python3"

# A student who deletes (or renames) a test cell gets it back, with its points, when grading.
c.OverwriteCells.add_missing_cells = True

# Students may be graded without being registered first (LMS exports give the id in the file name).
c.Autograde.create_student = True
c.Autograde.exclude_overwriting = {}

# Feedback pages show the student's notebook with scores, but not the hidden tests (reusable next year).
c.GenerateFeedback.preprocessors = [GetGrades, ClearHiddenTests, CSSHTMLHeaderPreprocessor]

# Keep the release free of outputs and solutions; lock the test cells against editing.
c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
c.ClearSolutions.text_stub = "YOUR ANSWER HERE"
c.LockCells.lock_grade_cells = True
c.LockCells.lock_readonly_cells = True
