"""When the start-up hook under inv acts: invoke's program, rebuilt's tasks.py, a -D or -r that cannot be invoke's."""

from __future__ import annotations

from rebuilt.cli import invhook


def test_it_acts_for_invokes_program_only():
    assert invhook.is_invoke(["/v/bin/python", "/v/bin/inv", "--list"])
    assert invhook.is_invoke(["/v/bin/python", "/v/bin/invoke", "build.torch"])
    assert invhook.is_invoke(["python3", "-m", "invoke", "-D", "x"])
    assert not invhook.is_invoke(["python3", "-m", "pip", "install", "inv"])  # an argument named inv
    assert not invhook.is_invoke(["/v/bin/python", "/v/bin/rebuilt", "--list"])
    assert not invhook.is_invoke(["python3", "-c", "pass"]) and not invhook.is_invoke([])


def test_it_acts_where_the_tasks_invoke_finds_are_rebuilts(tmp_path):
    ours, deep = tmp_path / "ours", tmp_path / "ours" / "a" / "b"
    deep.mkdir(parents=True)
    (ours / "tasks.py").write_text("from rebuilt.cli.tasks._entry import checked_namespace\n")
    assert invhook.rebuilt_tasks_here(deep) == ours.resolve()  # invoke searches upward too
    (ours / "a" / "tasks.py").write_text("from invoke import task\n")  # the nearer one is what invoke loads
    assert invhook.rebuilt_tasks_here(deep) is None
    assert invhook.rebuilt_tasks_here(tmp_path) is None  # no tasks.py up to / (none in / on a test machine)


def test_only_a_d_that_is_no_number_or_an_r_that_is_no_folder_is_looked_at(tmp_path):
    assert invhook._suspect(["-D", "sgl-kernel.nvcc_threads=4", "build.sgl-kernel"])
    assert not invhook._suspect(["-D", "2", "--list"])
    assert invhook._suspect(["-r", "v1", "build.torch"])
    assert not invhook._suspect(["-r", str(tmp_path), "--list"])
    assert not invhook._suspect(["build.torch", "-n"]) and not invhook._suspect(["-D"])
    assert invhook.early_misplaced(["-D", "2", "--list"]) is None  # nothing loaded when nothing is suspect


def test_a_misplaced_d_names_the_task_flag_and_the_command_to_type():
    text = invhook.early_misplaced(["-D", "sgl-kernel.nvcc_threads=4", "build.sgl-kernel", "-n"])
    assert text.startswith("rebuilt: -D before the task name is ") and text.endswith(
        "  -> inv build.sgl-kernel -D sgl-kernel.nvcc_threads=4 -n")
    assert invhook.early_misplaced(["-r", "v1", "build.torch", "-n"]).endswith("  -> inv build.torch -r v1 -n")
    assert invhook.early_misplaced(["-r", "v1", "--list"]) is None  # no task named: invoke's own -r
