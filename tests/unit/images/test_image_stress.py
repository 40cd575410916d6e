"""netlab/stress burns the CPU share it is asked for and holds the memory."""

from __future__ import annotations

import time

import psutil
import pytest

MiB = 2**20


def cpu_seconds(process: psutil.Process) -> float:
    """CPU time of the process and its workers."""
    total = 0.0
    for each in (process, *process.children()):
        try:
            times = each.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system
    return total


def wait_for_log(program, text: str, deadline: float = 15.0) -> None:
    end = time.monotonic() + deadline
    while text not in program.logs():
        program.check_alive()
        assert time.monotonic() < end, program.logs()
        time.sleep(0.05)  # polling the log file, bounded by the deadline


def measured_cores(program, window: float = 1.0) -> float:
    process = psutil.Process(program.process.pid)
    before, started = cpu_seconds(process), time.monotonic()
    time.sleep(window)  # the measurement window itself
    return (cpu_seconds(process) - before) / (time.monotonic() - started)


def test_half_a_core_is_burnt_at_about_half_a_core(spawn):
    program = spawn("stress", "--cpu", "500m")
    try:
        wait_for_log(program, "stress: burning 500m CPU in 1 worker(s)")
        cores = measured_cores(program)
        # Generous: the host has two shared cores; 0.5 requested must not look like 0 or 1.
        assert 0.2 <= cores <= 0.8, cores
    finally:
        assert program.stop() == 0


def test_cpu_from_the_environment_in_cores(spawn):
    program = spawn("stress", env={"CPU": "0.3"})
    try:
        wait_for_log(program, "stress: burning 300m CPU")
        assert 0.08 <= measured_cores(program) <= 0.55
    finally:
        program.stop()


def test_memory_is_allocated_resident_and_held_without_burning_cpu(spawn):
    program = spawn("stress", "--memory", "64Mi")
    try:
        wait_for_log(program, f"holding {64 * MiB} bytes")
        process = psutil.Process(program.process.pid)
        assert process.memory_info().rss >= 64 * MiB
        assert measured_cores(program, 0.5) < 0.2  # memory only: no CPU asked for
    finally:
        assert program.stop() == 0


def test_workers_split_the_burn_and_leave_with_the_main_process(spawn):
    program = spawn("stress", "--cpu", "400m", "--workers", "2")
    try:
        wait_for_log(program, "in 2 worker(s)")
        process = psutil.Process(program.process.pid)
        workers = process.children()
        assert len(workers) == 1  # the main process is the other worker
        assert program.stop() == 0
        _, alive = psutil.wait_procs(workers, timeout=5)
        assert not alive
    finally:
        program.stop()


def test_duration_ends_the_run_with_exit_0(spawn):
    program = spawn("stress", "--cpu", "100m", "--duration", "300ms")
    try:
        assert program.process.wait(15) == 0
    finally:
        program.stop()


@pytest.mark.parametrize(("args", "message"), [
    (["--cpu", "lots"], "'lots' is not a quantity"),
    (["--memory", "12Q"], "'12Q' is not a quantity"),
    (["--cpu", "1", "--duration", "soon"], "invalid duration"),
])
def test_bad_arguments_exit_2_with_the_reason(spawn, args, message):
    program = spawn("stress", *args)
    try:
        assert program.process.wait(15) == 2
        assert message in program.logs()
    finally:
        program.stop()
