"""The instructor's nbgrader settings on the hub: install as ~/.jupyter/nbgrader_config.py of the instructor's
account (see docs/jupyterhub.md, step 5), with the path of the instructor's copy of the repository.

The instructor's Jupyter server starts in their home, but nbgrader reads the course's nbgrader_config.py only
from the directory it runs in: this file tells the formgrader where the course is, loads the course's settings
(folders, timeout, grading rules) from there, and pins the gradebook to the course folder, so that the
formgrader, `nbgrader ...` in a terminal and `python utils/grade.py ...` all use the same gradebook.
The exchange (course id, `Exchange.root`) comes from the hub-wide docs/nbgrader_exchange_config.py.
tests/test_hub.py installs it for its instructor account.
"""
c = get_config()  # noqa: F821  (nbgrader provides get_config and load_subconfig when it loads this file)

c.CourseDirectory.root = "/home/instructor/small-language-models"
load_subconfig("nbgrader_config.py", path=c.CourseDirectory.root)  # noqa: F821
c.CourseDirectory.db_url = f"sqlite:///{c.CourseDirectory.root}/gradebook.db"
