"""How a command learns the processes it runs as (lase_e2v.processes); two real processes are tested in
tests/training/test_scale_out.py."""

from __future__ import annotations

import pytest

from lase_e2v.errors import ConfigError, EventDataError
from lase_e2v.processes import Processes, accelerate_cpu_flag, check_launch, launched_world_size

#: what `accelerate launch --cpu --num_processes 2` hands its one process (accelerate 1.x simple launcher)
ACCELERATE_CPU_LAUNCH = {"ACCELERATE_USE_CPU": "True", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "29500",
                         "ACCELERATE_MIXED_PRECISION": "no"}
TORCHRUN = {"RANK": "1", "LOCAL_RANK": "1", "WORLD_SIZE": "2", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "29500"}


def test_the_world_size_comes_from_the_launcher():
    assert launched_world_size({}) == 1
    assert launched_world_size(TORCHRUN) == 2
    assert launched_world_size({"OMPI_COMM_WORLD_SIZE": "4"}) == 4


def test_accelerates_one_process_cpu_launch_is_refused_naming_what_works():
    with pytest.raises(ConfigError, match=r"accelerate launch --cpu starts one process .* `torchrun --nproc_per_node N"):
        check_launch(ACCELERATE_CPU_LAUNCH)
    check_launch({**ACCELERATE_CPU_LAUNCH, **TORCHRUN})  # ACCELERATE_USE_CPU=true torchrun: fine
    check_launch({"ACCELERATE_USE_CPU": "True"})  # accelerate launch --cpu, one process: fine
    check_launch({})


def test_several_processes_without_a_gpu_are_joined_on_the_cpu():
    assert accelerate_cpu_flag(TORCHRUN)  # this machine has no CUDA device
    assert not accelerate_cpu_flag({})


def test_one_process_does_everything():
    processes = Processes.current()
    assert (processes.index, processes.count, processes.is_main) == (0, 1, True)
    assert processes.share(["a", "b", "c"]) == ["a", "b", "c"]
    assert processes.device("cuda") == "cuda" and Processes(1, 2, 1).device("cuda") == "cuda:1"
    assert Processes(1, 2, 1).device("cpu") == "cpu"
    assert processes.run_everywhere(lambda: 3) == [3]
    assert processes.gather_to_main({"a": b"1"}) == [{"a": b"1"}]

    def fails():
        raise EventDataError("seq_1: timestamps decrease")

    with pytest.raises(EventDataError, match="seq_1: timestamps decrease"):
        processes.run_everywhere(fails)


def test_the_cli_refuses_the_one_process_cpu_launch(cli_error, monkeypatch, tmp_path):
    for name, value in ACCELERATE_CPU_LAUNCH.items():
        monkeypatch.setenv(name, value)
    for variable in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MV2_COMM_WORLD_SIZE"):
        monkeypatch.delenv(variable, raising=False)
    line = cli_error("benchmark", "--data", tmp_path, "--methods", "integrate", "-o", tmp_path / "out")
    assert "accelerate launch --cpu starts one process" in line
