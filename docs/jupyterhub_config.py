"""JupyterHub settings for a class taking the course - a fragment to merge into the hub's
jupyterhub_config.py (see docs/jupyterhub.md). tests/test_jupyterhub.py loads it with a stand-in `c`
and checks every value below against the course: the memory against the measured budget
(course/BUDGET.md, written by `make bench`), the start page against the repository.

It assumes what docs/jupyterhub.md sets up:
- the course's environment (requirements.txt, `python utils/install_env.py`) is the single-user
  environment, with its kernel registered as `python3`;
- each learner's home holds a copy of the repository in ~/small-language-models;
- the bundled models were prepared ONCE by the admin into /srv/slmcourse/cache and made readable by
  everyone; learners only read it (a valid cache is verified, never rewritten), which saves 2.6 GB of disk and
  about a minute of conversion (up to 3.3 GB of memory) per learner.
"""
c = get_config()  # noqa: F821  (JupyterHub provides get_config when it loads its config file)

# ---- Memory and CPU per learner ------------------------------------------------------------------
# The heaviest lesson's kernel peaks at about 1.8 GiB (course/BUDGET.md; every lesson is kept under
# mybinder.org's 2 GB). On top of it come the learner's Jupyter server (~0.15 GiB) and, often, a
# second kernel left open (an assignment next to a lesson). Guarantee one lesson (up to 2 GiB) plus
# the server; allow a light second notebook beside it. Above mem_limit the kernel is killed
# ("kernel restarting"), not the hub.
c.Spawner.mem_guarantee = "2.5G"
c.Spawner.mem_limit = "3G"
# torch uses every core it sees; two are enough for every lesson (they were timed on two cores).
c.Spawner.cpu_guarantee = 1.0
c.Spawner.cpu_limit = 2.0

# ---- Where learners land -------------------------------------------------------------------------
# The server's root is the home (nbgrader fetches into <home>/<course id>/<assignment>/, which must be
# visible in JupyterLab); it opens the first lesson of the learner's copy of the repository.
c.Spawner.notebook_dir = "~"
c.Spawner.default_url = "/lab/tree/small-language-models/course/00_setup.ipynb"

# ---- nbgrader: the exchange for everyone, the instructor's tools for instructors only ---------------
# /srv/slmcourse/jupyter/nbgrader_config.py holds the course id and the exchange (docs/nbgrader_exchange_config.py);
# /srv/slmcourse/jupyter/learners/ switches the formgrader, create-assignment and course-list tools off.
# JUPYTER_CONFIG_PATH comes before every other configuration folder, so learners cannot turn them back on.
SITE_CONFIG = "/srv/slmcourse/jupyter"
c.JupyterHub.load_groups = {"instructors": {"users": ["instructor"]}}   # the instructors' account names


def jupyter_config_path(spawner):
    """The site configuration folders of one user's server: learners also get the one without the instructor's tools."""
    if any(group.name == "instructors" for group in spawner.user.groups):
        return SITE_CONFIG
    return f"{SITE_CONFIG}/learners:{SITE_CONFIG}"


# ---- Idle servers --------------------------------------------------------------------------------
# A learner who walks away holds up to mem_limit of the machine: stop idle servers after an hour
# (needs `pip install jupyterhub-idle-culler` in the hub's environment).
c.JupyterHub.services = [
    {"name": "idle-culler", "command": ["python3", "-m", "jupyterhub_idle_culler", "--timeout=3600"]},
]
c.JupyterHub.load_roles = [
    {"name": "idle-culler", "services": ["idle-culler"],
     "scopes": ["list:users", "read:users:activity", "read:servers", "delete:servers"]},
]

# ---- The course's environment variables ----------------------------------------------------------
c.Spawner.environment = {
    # the course runs offline; its models come from the bundled packages, never from a hub
    "HF_HUB_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "TOKENIZERS_PARALLELISM": "false",
    # the models prepared once by the admin (see docs/jupyterhub.md), shared read-only
    "SLMCOURSE_CACHE": "/srv/slmcourse/cache",
    # as many threads as the CPU limit gives cores
    "OMP_NUM_THREADS": "2",
    # the site configuration folders (nbgrader's exchange; the learners' tools), per user
    "JUPYTER_CONFIG_PATH": jupyter_config_path,
}
