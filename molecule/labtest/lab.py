"""A scenario's lab: its hosts (testinfra), inventory, secrets and
ansible-playbook runs, and what a run's output says."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import boto3
import testinfra
from botocore.config import Config

PROJECT = Path(__file__).resolve().parents[2]


def q(value: str) -> str:
    return shlex.quote(value)


@dataclass
class Lab:
    inventory: str
    ephemeral: Path

    @staticmethod
    def container(name: str) -> str:
        """The container of inventory host `name` (its ansible_host: shared/create.yml)."""
        return name + os.environ.get("MLFLOW_LAB_SUFFIX", "")

    def host(self, name: str):
        return testinfra.get_host(f"docker://{self.container(name)}")

    def ip(self, name: str) -> str:
        """The instance's address on the scenario network (not on a nested engine's bridge)."""
        out = subprocess.run(
            [
                "docker",
                "inspect",
                "-f",
                "{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}",
                self.container(name),
            ],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        return out.split()[0]

    def s3(self, name: str, port: int = 8333):
        """An S3 client for the SeaweedFS instance `name`, with the scenario's keys."""
        return boto3.client(
            "s3",
            endpoint_url=f"http://{self.ip(name)}:{port}",
            aws_access_key_id=self.secret("s3_access_key"),
            aws_secret_access_key=self.secret("s3_secret_key"),
            region_name="us-east-1",
            config=Config(s3={"addressing_style": "path"}),
        )

    def secret(self, name: str) -> str:
        """A test secret written by the scenario's password lookup."""
        return (self.ephemeral / name).read_text().split()[0]

    def var(self, host: str, name: str):
        """A variable of `host` as the scenario's inventory sets it (templated)."""
        out = subprocess.run(
            ["ansible", "-i", self.inventory, host, "-m", "ansible.builtin.debug", "-a", f"var={name}"],
            # JSON alone on stdout: no other callback (profile_tasks, when set
            # for a profiled run) may print there.
            env={
                **{k: v for k, v in os.environ.items() if k != "ANSIBLE_CALLBACKS_ENABLED"},
                "ANSIBLE_LOAD_CALLBACK_PLUGINS": "1",
                "ANSIBLE_STDOUT_CALLBACK": "json",
            },
            cwd=PROJECT,
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        return json.loads(out)["plays"][0]["tasks"][0]["hosts"][host][name]

    def group(self, name: str) -> list[str]:
        """The hosts of an inventory group, in inventory order."""
        out = subprocess.run(
            ["ansible", "-i", self.inventory, name, "--list-hosts"],
            cwd=PROJECT,
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        return [line.strip() for line in out.splitlines()[1:] if line.strip()]

    def playbook(
        self, playbook: str, *options: str, on_line: Callable[[str], None] | None = None, **extra_vars: object
    ) -> subprocess.CompletedProcess:
        """ansible-playbook on the scenario's inventory; options such as "--tags", "x".
        on_line sees each line of its output as it comes (to act at a task)."""
        cmd = ["ansible-playbook", "-i", self.inventory, *options, str(PROJECT / playbook)]
        for key, value in extra_vars.items():
            cmd += ["-e", f"{key}={value}" if isinstance(value, str) else json.dumps({key: value})]
        # Plain text to parse, whatever runs the tests (`molecule verify` asks for colour).
        env = {**os.environ, "ANSIBLE_FORCE_COLOR": "0", "NO_COLOR": "1"}
        if on_line is None:
            return subprocess.run(cmd, cwd=PROJECT, capture_output=True, text=True, check=False, env=env)
        lines = []
        with (
            tempfile.TemporaryFile("w+") as stderr,
            subprocess.Popen(
                cmd, cwd=PROJECT, stdout=subprocess.PIPE, stderr=stderr, text=True, env=env
            ) as process,
        ):
            for line in process.stdout:
                lines.append(line)
                on_line(line)
            process.wait()
            stderr.seek(0)
            return subprocess.CompletedProcess(cmd, process.returncode, "".join(lines), stderr.read())


def scenario() -> Lab:
    """The scenario under test (molecule's verifier sets these variables);
    test modules read their expected values from its inventory with it."""
    return Lab(
        inventory=os.environ["MOLECULE_INVENTORY_FILE"],
        ephemeral=Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]),
    )


def changed(result, must_pass: bool = True) -> list[int]:
    """The changed= count of each host in an ansible-playbook run's recap (the
    run must have passed, unless must_pass is False: a refusal's recap)."""
    if must_pass:
        assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    recap = result.stdout[result.stdout.rindex("PLAY RECAP") :]
    counts = [int(n) for n in re.findall(r"changed=(\d+)", recap)]
    assert counts, recap
    return counts


def changed_tasks(result) -> set[tuple[str, str]]:
    """(task, host) of every task or handler of an ansible-playbook run that
    reported a change, by inventory names: a drain task's "(drained ...)"
    suffix is left out, and so is the container a delegated host names when
    its ansible_host differs ("stk-ml2 -> stk-proxy(stk-proxy-ubuntu2404)")."""
    return {
        (block.split("]")[0].split(" (drained")[0], re.sub(r"\(.*\)$", "", host))
        for block in re.split(r"\n(?:TASK|RUNNING HANDLER) \[", result.stdout)[1:]
        for host in re.findall(r"^changed: \[([^\]]+)\]", block, re.M)
    }
