"""The JupyterHub guide's config fragments load, and their values fit the course.

JupyterHub itself is not part of the course's environment: docs/jupyterhub_config.py is executed with
a stand-in `c` that records every setting. docs/nbgrader_exchange_config.py is loaded by traitlets the
way nbgrader loads it, and each setting is checked against nbgrader's own configurable classes.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
GUIDE = DOCS / "jupyterhub.md"
BUDGET = ROOT / "course" / "BUDGET.md"
MIB = 2**20
# an allowance for the learner's Jupyter server beside the kernel (tests/test_browser.py prints it: ~142 MiB)
SERVER_MIB = 256
# every lesson is held under mybinder.org's 2 GB (CONTRIBUTING.md) when no measurement is there yet
LESSON_TARGET_MIB = 2048


class Section:
    """Stand-in for a traitlets config section: remembers what the fragment sets."""

    def __init__(self):
        object.__setattr__(self, "values", {})

    def __setattr__(self, name, value):
        self.values[name] = value


class Config:
    def __init__(self):
        self.sections: dict[str, Section] = {}

    def __getattr__(self, name):
        return self.sections.setdefault(name, Section())


def _bytes(spec: str) -> int:
    """JupyterHub's ByteSpecification: '3G' = 3 * 1024**3."""
    number, unit = re.fullmatch(r"([\d.]+)([KMGT]?)", spec).groups()
    return int(float(number) * 1024 ** "_KMGT".index(unit or "_"))


@pytest.fixture(scope="module")
def hub() -> dict[str, dict]:
    c = Config()
    exec(compile((DOCS / "jupyterhub_config.py").read_text(), "jupyterhub_config.py", "exec"),
         {"get_config": lambda: c})
    return {name: section.values for name, section in c.sections.items()}


def measured_peak_mib() -> float:
    """The heaviest notebook's measured peak, lessons and assignments (course/BUDGET.md from `make bench`),
    else the 2 GB target."""
    if not BUDGET.exists():
        return LESSON_TARGET_MIB
    peaks = [float(m.group(1)) for m in re.finditer(r"^\|\s*[\w/.-]+\.ipynb\s*\|\s*[\d.]+\s*\|\s*([\d.]+)\s*\|",
                                                    BUDGET.read_text(), re.M)]
    return max(peaks, default=LESSON_TARGET_MIB)


def test_only_known_jupyterhub_sections_are_set(hub):
    assert set(hub) == {"Spawner", "JupyterHub"}


def test_memory_per_learner_covers_the_heaviest_lesson(hub):
    spawner = hub["Spawner"]
    guarantee, limit = _bytes(spawner["mem_guarantee"]), _bytes(spawner["mem_limit"])
    need = (measured_peak_mib() + SERVER_MIB) * MIB
    assert guarantee >= need, f"guarantee {guarantee / MIB:.0f} MiB < one lesson + server {need / MIB:.0f} MiB"
    assert limit >= need + 512 * MIB and limit >= guarantee  # room for a second, light notebook
    assert spawner["cpu_limit"] >= spawner["cpu_guarantee"] >= 1
    assert spawner["environment"]["OMP_NUM_THREADS"] == str(int(spawner["cpu_limit"]))


def test_learners_land_on_the_first_lesson_offline_with_the_shared_cache(hub):
    spawner = hub["Spawner"]
    start = spawner["default_url"].removeprefix("/lab/tree/").removeprefix("small-language-models/")
    assert (ROOT / start).is_file(), start
    env = spawner["environment"]
    assert env["HF_HUB_OFFLINE"] == "1"
    assert env["SLMCOURSE_CACHE"].startswith("/")


def test_instructors_get_the_site_configuration_without_the_learners_folder(hub):
    from types import SimpleNamespace as NS

    assign = hub["Spawner"]["environment"]["JUPYTER_CONFIG_PATH"]
    instructors = hub["JupyterHub"]["load_groups"]["instructors"]["users"]

    def spawner(name, groups):
        return NS(user=NS(name=name, groups=[NS(name=g) for g in groups]))
    site = assign(spawner(instructors[0], ["instructors"]))
    assert site.startswith("/") and ":" not in site
    assert assign(spawner("ada", [])).split(":") == [f"{site}/learners", site]
    guide = GUIDE.read_text()
    assert f"{site}/nbgrader_config.py" in guide and f"{site}/learners" in guide


def test_idle_culler_service_has_its_role(hub):
    [service] = hub["JupyterHub"]["services"]
    [role] = hub["JupyterHub"]["load_roles"]
    assert role["services"] == [service["name"]] and "delete:servers" in role["scopes"]


def test_the_guide_states_the_configured_values(hub):
    guide = GUIDE.read_text()
    spawner = hub["Spawner"]
    for key in ("mem_guarantee", "mem_limit"):
        assert f'{key} = "{spawner[key]}"' in guide
    assert spawner["environment"]["SLMCOURSE_CACHE"] in guide
    nbgrader_fragment = (DOCS / "nbgrader_exchange_config.py").read_text()
    exchange = re.search(r'c\.Exchange\.root = "([^"]+)"', nbgrader_fragment).group(1)
    assert f"chmod 777 {exchange}" in guide


def test_the_nbgrader_fragment_is_valid_nbgrader_configuration():
    from nbgrader.coursedir import CourseDirectory
    from nbgrader.exchange.default.exchange import Exchange
    from traitlets.config.loader import PyFileConfigLoader

    config = PyFileConfigLoader("nbgrader_exchange_config.py", path=str(DOCS)).load_config()
    classes = {"CourseDirectory": CourseDirectory, "Exchange": Exchange}
    assert set(config) == set(classes)
    for section, values in config.items():
        for name, value in values.items():
            assert classes[section].class_traits(config=True).get(name) is not None, f"{section}.{name}"
            classes[section].class_traits()[name].validate(None, value)
    # the same course as the instructor's nbgrader_config.py at the repository root
    course = PyFileConfigLoader("nbgrader_config.py", path=str(ROOT)).load_config()
    assert config.CourseDirectory.course_id == course.CourseDirectory.course_id
