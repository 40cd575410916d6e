"""How a container of a stored image runs: Kubernetes' combination of the image's
Entrypoint, Cmd, Env and WorkingDir with the pod's command, args, env and workingDir."""

from __future__ import annotations

import pytest

from netlab.images.config import ImageConfig, container_argv, container_env, working_dir

IMAGE = ImageConfig(entrypoint=("/entry", "-v"), cmd=("serve", "--port", "80"),
                    env=("PATH=/usr/bin:/bin", "MODE=image", "EMPTY="), working_dir="/srv")


@pytest.mark.parametrize(("command", "args", "want"), [
    (None, None, ["/entry", "-v", "serve", "--port", "80"]),  # the image's own
    (None, ["check"], ["/entry", "-v", "check"]),  # args replace Cmd only
    (["sh", "-c"], None, ["sh", "-c"]),  # command replaces Entrypoint, and Cmd goes too
    (["sh", "-c"], ["echo hi"], ["sh", "-c", "echo hi"]),
    ([], [], ["/entry", "-v", "serve", "--port", "80"]),  # empty lists are unset
])
def test_command_and_args_combine_as_in_kubernetes(command, args, want):
    assert container_argv(IMAGE, command, args) == want


def test_an_image_with_only_cmd_and_no_entrypoint():
    only_cmd = ImageConfig(cmd=("sh",))
    assert container_argv(only_cmd, None, None) == ["sh"]
    assert container_argv(only_cmd, None, ["sleep", "3600"]) == ["sleep", "3600"]
    assert container_argv(ImageConfig(), None, None) == []  # nothing to run: the caller says so


def test_pod_env_overrides_the_image_env_by_name():
    env = container_env(IMAGE, {"MODE": "pod", "EXTRA": "1"})
    assert env == {"PATH": "/usr/bin:/bin", "MODE": "pod", "EMPTY": "", "EXTRA": "1"}
    assert list(env)[:3] == ["PATH", "MODE", "EMPTY"]  # the image's first


def test_working_dir_defaults():
    assert working_dir(IMAGE, None) == "/srv" and working_dir(IMAGE, "/pod") == "/pod"
    assert working_dir(ImageConfig(), None) == "/"


def test_from_an_image_config_document():
    config = ImageConfig.from_image_config({"config": {
        "Entrypoint": None, "Cmd": "echo shell form", "Env": ["A=1", "A=2"], "User": "1000:1000"}})
    assert config.cmd == ("/bin/sh", "-c", "echo shell form") and config.entrypoint == ()
    assert config.env_map() == {"A": "2"} and config.user == "1000:1000"
    assert ImageConfig.from_image_config({}) == ImageConfig()
