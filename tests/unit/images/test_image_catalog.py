"""The image catalog: which argv a pod's image, command and args turn into."""

from __future__ import annotations

import subprocess
import sys

import pytest

from netlab.images import (
    BUILTIN_IMAGES,
    UNKNOWN_IMAGE_REASON,
    UnknownImageError,
    builtin_image,
    resolve,
)

PY = sys.executable
ECHO = [PY, "-m", "netlab.images", "echo"]
STRESS = [PY, "-m", "netlab.images", "stress"]
AGNHOST = [PY, "-m", "netlab.images", "agnhost"]


@pytest.mark.parametrize(("image", "expected"), [
    ("netlab/echo", ECHO),
    ("netlab/echo:latest", ECHO),
    ("docker.io/netlab/echo:1.0", ECHO),
    ("localhost:5000/netlab/echo@sha256:" + "a" * 64, ECHO),
    ("netlab/echo:v2@sha256:" + "b" * 64, ECHO),
    ("NetLab/Echo", ECHO),
    ("netlab/stress", STRESS),
    ("netlab/stress:0.1", STRESS),
    ("registry.k8s.io/e2e-test-images/agnhost:2.47", [*AGNHOST, "pause"]),
    ("registry.k8s.io/e2e-test-images/agnhost", [*AGNHOST, "pause"]),
    ("k8s.gcr.io/e2e-test-images/agnhost:2.39", [*AGNHOST, "pause"]),
    ("gcr.io/kubernetes-e2e-test-images/agnhost:2.8", [*AGNHOST, "pause"]),
    ("agnhost", [*AGNHOST, "pause"]),
    ("agnhost:2.47", [*AGNHOST, "pause"]),
    ("netlab/agnhost", [*AGNHOST, "pause"]),
    ("registry.k8s.io/pause:3.9", [*AGNHOST, "pause"]),
    ("gcr.io/google_containers/pause-amd64:3.1", [*AGNHOST, "pause"]),
    ("pause", [*AGNHOST, "pause"]),
])
def test_every_naming_form_of_a_builtin_resolves_to_its_program(image, expected):
    assert resolve(image, None, None) == expected


@pytest.mark.parametrize(("image", "canonical"), [
    ("netlab/echo:latest", "netlab/echo"),
    ("agnhost:2.47", "registry.k8s.io/e2e-test-images/agnhost"),
    ("k8s.gcr.io/pause:3.2", "registry.k8s.io/pause"),
    ("nginx:1.25", None),
    ("someone/echo", None),  # only netlab's echo is netlab/echo
    ("netlab/echo-server", None),
])
def test_builtin_image_names_the_canonical_image(image, canonical):
    assert builtin_image(image) == canonical


def test_args_replace_the_default_arguments():
    argv = ["netexec", "--http-port=8080", "--udp-port=8081"]
    assert resolve("registry.k8s.io/e2e-test-images/agnhost:2.47", None, argv) == [
        *AGNHOST, *argv]
    assert resolve("netlab/echo", None, ["--port", "9000"]) == [*ECHO, "--port", "9000"]


def test_empty_lists_count_as_unset():
    assert resolve("agnhost", [], []) == [*AGNHOST, "pause"]


def test_command_naming_the_agnhost_entrypoint_runs_the_builtin():
    assert resolve("agnhost:2.47", ["/agnhost", "serve-hostname"], None) == [
        *AGNHOST, "serve-hostname"]
    assert resolve("agnhost:2.47", ["/agnhost"], ["netexec", "--http-port=80"]) == [
        *AGNHOST, "netexec", "--http-port=80"]
    # With command given the image's default arguments ("pause") are dropped.
    assert resolve("agnhost", ["/agnhost"], None) == AGNHOST


def test_command_naming_the_pause_entrypoint_runs_the_builtin():
    assert resolve("registry.k8s.io/pause:3.9", ["/pause"], None) == [*AGNHOST, "pause"]


@pytest.mark.parametrize("image", ["netlab/echo", "agnhost", "busybox", "nginx:1.25", ""])
def test_any_other_command_runs_that_host_program(image):
    assert resolve(image, ["sleep"], ["30"]) == ["sleep", "30"]
    assert resolve(image, ["/bin/sh", "-c", "echo hi"], None) == ["/bin/sh", "-c", "echo hi"]


def test_agnhost_entrypoint_is_not_special_for_other_images():
    assert resolve("busybox", ["/agnhost", "pause"], None) == ["/agnhost", "pause"]


@pytest.mark.parametrize("image", ["nginx", "busybox:1.36", "someone/echo", ""])
def test_unknown_image_without_command_says_why_and_lists_the_builtins(image):
    with pytest.raises(UnknownImageError) as caught:
        resolve(image, None, ["--port", "80"])
    error = caught.value
    assert error.reason == UNKNOWN_IMAGE_REASON == "ErrImageNeverPull"
    assert error.image == image
    assert f'image "{image}"' in error.message
    assert "command" in error.message
    for name in BUILTIN_IMAGES:
        assert name in error.message
    assert str(error) == error.message


def test_catalog_lists_the_four_builtins_with_descriptions():
    assert set(BUILTIN_IMAGES) == {"netlab/echo", "netlab/stress",
                                   "registry.k8s.io/e2e-test-images/agnhost",
                                   "registry.k8s.io/pause"}
    assert all(text and "\n" not in text for text in BUILTIN_IMAGES.values())


@pytest.mark.parametrize("image", sorted(BUILTIN_IMAGES))
def test_every_builtin_argv_starts_a_real_program(image):
    # --help reaches each program's own parser: the module exists and starts.
    result = subprocess.run(resolve(image, None, ["--help"]), capture_output=True,
                            text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip()
