"""The Kubernetes configuration (docs/zero-to-jupyterhub/config.yaml), checked as far as can be offline.

It parses; every key is one the Zero to JupyterHub chart's schema knows for the chart version the file names
(docs/zero-to-jupyterhub/chart-<version>-keys.txt, taken from the chart's values.schema.yaml); its memory, CPU,
start page, environment, exchange and site configuration agree with the one-machine hub of docs/jupyterhub.md
(docs/jupyterhub_config.py, docs/nbgrader_exchange_config.py, the learners' files, all exercised by
tests/test_hub.py); and the sizing table of the guide follows from those figures.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from test_jupyterhub import _bytes, hub  # noqa: F401  (the hub fragment, loaded with a stand-in `c`)

ROOT = Path(__file__).resolve().parent.parent
Z2JH = ROOT / "docs" / "zero-to-jupyterhub"
CONFIG = Z2JH / "config.yaml"
GUIDE = ROOT / "docs" / "jupyterhub.md"


@pytest.fixture(scope="module")
def values() -> dict:
    return yaml.safe_load(CONFIG.read_text())


def _chart_version() -> str:
    return re.search(r"Zero to JupyterHub Helm chart, version (\d+\.\d+\.\d+)", CONFIG.read_text()).group(1)


def _known_keys() -> list[str]:
    path = Z2JH / f"chart-{_chart_version()}-keys.txt"
    assert path.is_file(), f"no key list for chart {_chart_version()}: {path.name}"
    return [line for line in path.read_text().splitlines() if line and not line.startswith("#")]


def _key_paths(node, prefix=()):
    """Every dotted key path of the values, stopping at lists and scalars."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield (*prefix, str(key))
            yield from _key_paths(value, (*prefix, str(key)))


def _allowed(path: tuple[str, ...], known: list[str]) -> bool:
    for entry in known:
        parts = re.findall(r"<[^>]*>|[^.]+", entry)
        free = parts[-1] == "*"
        if free:
            parts = parts[:-1]
        if len(path) < len(parts) or (len(path) > len(parts) and not free):
            continue
        if all(re.fullmatch(p[1:-1], s) if p.startswith("<") else p == s for p, s in zip(parts, path)):
            return True
    return False


def test_config_parses_and_names_a_chart_version_with_its_key_list(values):
    assert set(values) == {"singleuser", "hub", "cull"}
    assert len(_known_keys()) > 400


def test_every_key_is_in_the_charts_schema(values):
    known = _known_keys()
    unknown = [".".join(p) for p in _key_paths(values) if not _allowed(p, known)]
    assert not unknown, f"keys the chart {_chart_version()} does not know: {unknown}"
    # the check itself rejects what the chart rejects
    assert not _allowed(("singleuser", "memmory"), known) and not _allowed(("hub", "loadGroups"), known)
    assert _allowed(("hub", "config", "JupyterHub", "load_groups"), known)


def test_memory_cpu_and_start_page_match_the_one_machine_hub(values, hub):  # noqa: F811
    single, spawner = values["singleuser"], hub["Spawner"]
    assert _bytes(single["memory"]["guarantee"]) == _bytes(spawner["mem_guarantee"])
    assert _bytes(single["memory"]["limit"]) == _bytes(spawner["mem_limit"])
    assert single["cpu"] == {"guarantee": spawner["cpu_guarantee"], "limit": spawner["cpu_limit"]}
    assert single["defaultUrl"] == spawner["default_url"]
    env = {k: v for k, v in spawner["environment"].items() if isinstance(v, str)}
    assert single["extraEnv"] == env


def test_model_cache_read_only_and_exchange_on_shared_volumes(values):
    storage = values["singleuser"]["storage"]
    mounts = {m["name"]: m for m in storage["extraVolumeMounts"]}
    volumes = {v["name"]: v for v in storage["extraVolumes"]}
    cache = mounts["slmcourse-models"]
    assert cache["readOnly"] is True and volumes["slmcourse-models"]["persistentVolumeClaim"]["readOnly"] is True
    assert cache["mountPath"] == values["singleuser"]["extraEnv"]["SLMCOURSE_CACHE"]
    exchange_cfg = (ROOT / "docs" / "nbgrader_exchange_config.py").read_text()
    exchange_root = re.search(r'c\.Exchange\.root = "([^"]+)"', exchange_cfg).group(1)
    assert mounts["nbgrader-exchange"]["mountPath"] == exchange_root
    assert "ReadWriteMany" in CONFIG.read_text()
    assert values["cull"]["enabled"] is True and values["cull"]["timeout"] == 3600


def test_site_configuration_is_the_guides(values):
    files = values["singleuser"]["extraFiles"]
    fragment = (ROOT / "docs" / "nbgrader_exchange_config.py").read_text()
    settings = [line for line in fragment.splitlines() if line.startswith("c.")]
    assert [line for line in files["nbgrader-exchange-config"]["stringData"].splitlines()
            if line.startswith("c.")] == settings
    guide = GUIDE.read_text()
    shown = dict(re.findall(r"<!-- file: learners/(\S+) -->\n```json\n(.*?)```", guide, re.S))
    assert files["learners-server-config"]["data"] == json.loads(shown["jupyter_server_config.json"])
    assert files["learners-page-config"]["data"] == json.loads(shown["labconfig/page_config.json"])
    code = values["hub"]["extraConfig"]["slmcourse-site-config"]
    assert '"/srv/slmcourse/jupyter"' in code and "instructors" in code
    assert values["hub"]["config"]["JupyterHub"]["load_groups"]["instructors"]["users"]


def test_the_guides_sizing_table_follows_from_the_limits(hub):  # noqa: F811
    guarantee = _bytes(hub["Spawner"]["mem_guarantee"]) / 1024**3
    limit = _bytes(hub["Spawner"]["mem_limit"]) / 1024**3
    rows = re.findall(r"^\| (\d+) \| ([\d.]+) GB \(([\d.]+) GB\)", GUIDE.read_text(), re.M)
    assert len(rows) >= 3
    for learners, guaranteed, limited in rows:
        assert float(guaranteed) == pytest.approx(int(learners) * guarantee)
        assert float(limited) == pytest.approx(int(learners) * limit)
