"""nbgrader's settings for everyone on the hub (learners and instructor): install as
/etc/jupyter/nbgrader_config.py (see docs/jupyterhub.md). tests/test_jupyterhub.py loads it with
nbgrader's own configuration classes.

The instructor grades from the repository root, where the course's nbgrader_config.py adds the
folders, the timeout and the grading rules; this file only says which course this is and where the
exchange lives, so that "release", "fetch", "submit", "collect" and "feedback" meet in one place.
"""
c = get_config()  # noqa: F821  (nbgrader provides get_config when it loads its config file)

# the same course id as the repository's nbgrader_config.py
c.CourseDirectory.course_id = "slm-course"
# one folder shared by everyone: `mkdir -p /srv/nbgrader/exchange && chmod 777 /srv/nbgrader/exchange`
c.Exchange.root = "/srv/nbgrader/exchange"
# learners may be in several nbgrader courses on the same hub: keep each course's files apart
c.Exchange.path_includes_course = True
