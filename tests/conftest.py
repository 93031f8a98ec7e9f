"""Shared test set-up: offline by default, quiet transformers, a temporary cache for tests that convert.

`grading_jobs`: the slow grading runs (nbgrader autograde round-trips) of every selected test, started
together in a few worker processes the first time one of them is needed, so that one run's waits (kernel
start-up, a cell's timeout, a hung submission) overlap another run's work on the second core. A test
module offers its runs through a module-level `background_jobs(item)` that yields
(priority, key, function) for a selected test item; `function(folder, env)` is a module-level function
that does the run in the empty folder `folder` and returns (picklable) what the test then checks; lower
priority starts first. A test reads its run with `grading_jobs.result(key, function)`: it waits for it,
re-raises what the run raised, and runs it on the spot if it was not started. Nothing depends on the
test order. The workers are separate processes started with a copy of os.environ (`env`), so no
monkeypatching by a test running meanwhile reaches a run, and a run's output goes to `folder/job.log`.
"""
import multiprocessing
import os
import re
import sys
import threading
from concurrent.futures import ProcessPoolExecutor

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

GRADING_WORKERS = 3     # each runs nbgrader + one kernel at a time; the runs mostly wait on start-up and timeouts


def _run_job(function, folder, env):
    """In a worker process: one run, its output (prints, nbgrader's messages) in folder/job.log."""
    sys.stdout.flush()
    sys.stderr.flush()
    with open(os.path.join(folder, "job.log"), "a") as log:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
    return function(folder, env)


class GradingJobs:
    def __init__(self, session, tmp_path_factory):
        self.tmp_path_factory = tmp_path_factory
        self.env = dict(os.environ)
        self.futures = {}
        self.lock = threading.Lock()
        wanted = {}
        for item in session.items:
            hook = getattr(getattr(item, "module", None), "background_jobs", None)
            for priority, key, function in (hook(item) if hook else ()):
                wanted.setdefault(key, (priority, len(wanted), function))
        self.pool = None
        if wanted:
            self.pool = ProcessPoolExecutor(min(GRADING_WORKERS, len(wanted)),
                                            mp_context=multiprocessing.get_context("spawn"))
            for key, (_, _, function) in sorted(wanted.items(), key=lambda kv: kv[1][:2]):
                self.futures[key] = self.pool.submit(_run_job, function, self._folder(key), self.env)

    def _folder(self, key):
        return self.tmp_path_factory.mktemp(re.sub(r"\W", "_", key))

    def result(self, key, function):
        with self.lock:
            future = self.futures.get(key)
            if future is None:                   # not started with the others: run it here, once
                future = self.futures[key] = _Done(function(self._folder(key), self.env))
        return future.result()

    def close(self):
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)


class _Done:
    def __init__(self, value):
        self.value = value

    def result(self):
        return self.value


@pytest.fixture(scope="session")
def grading_jobs(request, tmp_path_factory):
    jobs = GradingJobs(request.session, tmp_path_factory)
    yield jobs
    jobs.close()
