"""The allocator setting every command makes (:mod:`lase_e2v.heap`): freed tensors stay in the heap,
unless the user chose otherwise."""

from __future__ import annotations

import os
import platform
import subprocess
import sys

import pytest

from lase_e2v.errors import ConfigError
from lase_e2v.heap import heap_choice, retain_freed_memory

GLIBC = sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"
#: in a fresh process: change the allocator (or not), free a 256 MB tensor, print what RSS gave back
RELEASED_BY_FREE = """
import os, torch
from lase_e2v.heap import retain_freed_memory
def rss():
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
applied = retain_freed_memory()
tensor = torch.ones(64 * 2**20)
before = rss()
del tensor
print(applied, (before - rss()) / 2**20)
"""


#: in a fresh process: change the allocator (or not), run CISTA-TC (its sparse code 10 MB a tensor)
#: for three windows, print a digest of its frames
CISTA_DIGEST = """
import hashlib, torch
from lase_e2v.heap import retain_freed_memory
from lase_e2v.pipelines.baselines import load_reconstructor
applied = retain_freed_memory()
torch.manual_seed(0)
model, state, digest = load_reconstructor("cista_tc").model.eval(), None, hashlib.sha256()
with torch.no_grad():
    for _ in range(3):
        image, state = model(torch.randn(1, 5, 192, 256), state)
        digest.update(image.numpy().tobytes())
print(applied, digest.hexdigest())
"""


def run_fresh(script: str, environment: dict[str, str]) -> list[str]:
    """``python -c script`` without the allocator variables of this process, plus ``environment``:
    its printed words."""
    env = {key: value for key, value in os.environ.items()
           if key not in ("LASE_MALLOC", "MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_")}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          env={**env, **environment, "OMP_NUM_THREADS": "1"}, timeout=300, check=True)
    return done.stdout.split()


def released_mb(environment: dict[str, str]) -> tuple[bool, float]:
    """Whether the allocator was changed, and the MB freeing a 256 MB tensor gave back to the kernel."""
    applied, released = run_fresh(RELEASED_BY_FREE, environment)
    return applied == "True", float(released)


@pytest.mark.skipif(not GLIBC, reason="the setting applies to glibc's malloc only")
def test_freed_tensors_stay_in_the_heap_unless_the_user_says_otherwise():
    applied, released = released_mb({})
    assert applied and released < 16  # kept for the next tensor
    applied, released = released_mb({"LASE_MALLOC": "system"})
    assert not applied and released > 200  # glibc's own: unmapped at once
    applied, released = released_mb({"MALLOC_MMAP_THRESHOLD_": "131072"})
    assert not applied and released > 200  # the user's own glibc setting wins


@pytest.mark.skipif(not GLIBC, reason="the setting applies to glibc's malloc only")
def test_the_heap_changes_no_result():
    retained, system = run_fresh(CISTA_DIGEST, {}), run_fresh(CISTA_DIGEST, {"LASE_MALLOC": "system"})
    assert retained[0] == "True" and system[0] == "False"
    assert retained[1] == system[1]


def test_the_switch_is_checked(monkeypatch):
    monkeypatch.setenv("LASE_MALLOC", " System ")
    assert heap_choice() == "system" and retain_freed_memory() is False
    monkeypatch.setenv("LASE_MALLOC", "jemalloc")
    with pytest.raises(ConfigError, match="LASE_MALLOC must be one of retain, system, not 'jemalloc'"):
        retain_freed_memory()


def test_a_bad_switch_is_one_error_line_before_any_command(monkeypatch, run_cli):
    monkeypatch.setenv("LASE_MALLOC", "jemalloc")
    code, out, err = run_cli("methods")
    assert code == 2 and out == ""
    assert err == "error: LASE_MALLOC must be one of retain, system, not 'jemalloc'\n"
