"""nbgrader's configuration for this course (nbgrader 0.9).

nbgrader reads this file ONLY from the directory it is started in: run every `nbgrader ...` command
from the repository root (or use `python utils/grade.py`, which does). With `--CourseDirectory.root`
pointing here from elsewhere this file - the timeout included - is silently ignored.

    solutions/<assignment>/<assignment>.ipynb    nbgrader's source: solutions and hidden tests
    assignments/<assignment>/<assignment>.ipynb  the student release, made by `python utils/grade.py release`
    submitted/, autograded/, feedback/, gradebook.db   the grading state: never committed (.gitignore)
    reports/<assignment>/                               utils/grade.py's reports and exports: never committed
"""
from nbconvert.preprocessors import CSSHTMLHeaderPreprocessor, Preprocessor
from nbgrader.preprocessors import ClearHiddenTests, GetGrades
from traitlets import Bool

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



class HideTestTracebacks(Preprocessor):
    """Feedback pages never show a test cell's source through its outputs.

    ClearHiddenTests removes the hidden tests from a test cell's *source*, but the traceback of a failed
    test prints the source lines around the failing line - the hidden tests included - and a warning
    prints its source line on stderr. In every graded test cell this reduces an error to its last line
    (`AssertionError: ...`) and drops stderr lines that repeat a hidden line. Runs before ClearHiddenTests
    (it needs the hidden lines); defined here so that `nbgrader generate_feedback` run by hand and the
    Formgrader's feedback button use it too.
    """

    enabled = Bool(True).tag(config=True)     # nbconvert's preprocessors are off unless enabled

    def preprocess_cell(self, cell, resources, index):
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if cell.cell_type != "code" or not meta.get("grade"):
            return cell, resources
        hidden, inside = set(), False
        for line in cell.source.splitlines():
            if "BEGIN HIDDEN TESTS" in line:
                inside = True
            elif "END HIDDEN TESTS" in line:
                inside = False
            elif inside and line.strip():
                hidden.add(line.strip())
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                output["traceback"] = [f"{output.get('ename', 'Error')}: {output.get('evalue', '')}",
                                       "(the test cell's traceback is not shown)"]
            elif output.get("output_type") == "stream" and output.get("name") == "stderr":
                lines = str(output.get("text", "")).splitlines(keepends=True)
                output["text"] = "".join(l for l in lines if "HIDDEN TESTS" not in l
                                         and not any(len(h) > 6 and h in l for h in hidden))
        return cell, resources


# Feedback pages show the student's notebook with scores, but not the hidden tests (reusable next year):
# neither their source nor the tracebacks and warnings that would quote it.
c.GenerateFeedback.preprocessors = [GetGrades, HideTestTracebacks, ClearHiddenTests, CSSHTMLHeaderPreprocessor]

# Keep the release free of outputs and solutions; lock the test cells against editing.
c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
c.ClearSolutions.text_stub = "YOUR ANSWER HERE"
c.LockCells.lock_grade_cells = True
c.LockCells.lock_readonly_cells = True


# A local exchange folder (git-ignored), so that the Formgrader shows no "exchange" warning banner and the
# server log no "Unwritable directory" lines when the course is graded from LMS exports on one machine.
# A hub's system-wide nbgrader config that sets Exchange.root (docs/nbgrader_exchange_config.py) wins.
def _exchange_set_elsewhere():
    import os
    from jupyter_core.paths import jupyter_config_path
    here = os.path.dirname(os.path.abspath(__file__))
    for folder in jupyter_config_path():
        path = os.path.join(folder, "nbgrader_config.py")
        if os.path.abspath(folder) != here and os.path.isfile(path):
            with open(path, encoding="utf-8") as fh:
                if "Exchange.root" in fh.read():
                    return True
    return False


if not _exchange_set_elsewhere():
    import os as _os
    c.Exchange.root = _os.path.join(_os.path.dirname(_os.path.abspath(__file__)), "nbgrader_exchange")
    _os.makedirs(c.Exchange.root, exist_ok=True)
