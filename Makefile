# Small Language Models - a hands-on course.
#   make lab    set everything up (once) and open JupyterLab on the first notebook
#   make test   set everything up (once) and run the whole test suite
#   make bench  run time and peak memory of every lesson, load times of the bundled models
#   make outputs  re-execute lessons and solutions on an idle machine and stamp them (committed outputs)
#   make student-dist  the course without solutions/ and the grading tools, for students (build/student-dist)
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
export PATH := $(abspath $(VENV))/bin:$(PATH)
export HF_HUB_DISABLE_TELEMETRY := 1
export TOKENIZERS_PARALLELISM := false
# The course runs offline by default (and its committed outputs were made offline).
export HF_HUB_OFFLINE ?= 1

.PHONY: lab test bench outputs setup models clean-cache student-dist

setup: $(VENV)/.installed models

$(PY):
	@$(PYTHON) -c 'import sys; assert sys.version_info[:2] >= (3, 10), "Python 3.10+ needed (3.11 recommended)"'
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check --upgrade "pip>=24" "setuptools>=68" wheel

$(VENV)/.installed: requirements.txt pyproject.toml utils/install_env.py | $(PY)
	$(PY) utils/install_env.py
	$(PY) -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (slmcourse)" >/dev/null
	touch $@

# Convert the bundled GGUF models once into the safetensors cache (fast when already there).
models: $(VENV)/.installed
	$(PY) -m slmcourse.prepare

lab: setup
	$(VENV)/bin/jupyter lab course/00_setup.ipynb

test: setup
	$(PY) -m pytest -v --durations=25 --nbval --nbval-current-env --nbval-sanitize-with tests/nbval_sanitize.cfg -p no:randomly

bench: setup
	$(PY) tests/benchmark.py

# The committed outputs: every lesson and solution executed in order on an idle machine, stamped.
outputs: setup
	$(PY) utils/make_outputs.py $(NOTEBOOKS)

clean-cache:
	$(PY) -c 'import slmcourse.models as m, shutil; shutil.rmtree(m.cache_dir(), ignore_errors=True)'

# The student distribution: every committed file except the instructor's (solutions/, grading tools and docs);
# push it to the public repository the students' links point to (docs/private_solutions.md).
student-dist:
	$(or $(wildcard $(PY)),python3) utils/student_dist.py --force $(if $(OUT),--out $(OUT))
