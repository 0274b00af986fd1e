"""A Debian root in a folder driven by ansible-playbook through community.general.chroot, and what tests read back."""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tests.ansible.buildcache import REPO, copy_root, debian_root, mounts_under, remove_tree

ANSIBLE_DIR = REPO / "ansible"
BIN = Path(sys.executable).parent
RECAP = re.compile(
    r"^(?P<host>\S+)\s+:\s+ok=(?P<ok>\d+)\s+changed=(?P<changed>\d+)\s+unreachable=(?P<unreachable>\d+)\s+"
    r"failed=(?P<failed>\d+)\s+skipped=(?P<skipped>\d+)\s+rescued=(?P<rescued>\d+)\s+ignored=(?P<ignored>\d+)",
    re.M,
)


@dataclass(frozen=True)
class PlaybookRun:
    """One ansible-playbook run: exit status, output and the PLAY RECAP counts per host."""

    returncode: int
    output: str
    recap: dict[str, dict[str, int]]

    def counts(self, host: str) -> dict[str, int]:
        """The recap line of `host` (fails the test with the output when it has none)."""
        assert host in self.recap, f"no PLAY RECAP line for {host}:\n{self.output[-6000:]}"
        return self.recap[host]


def ansible_env(home: Path) -> dict[str, str]:
    """Environment for ansible-playbook and ansible-lint: this venv's tools, the repo's ansible.cfg, no colour."""
    env = dict(os.environ)
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '/usr/bin:/bin')}"
    env.update(
        {
            "ANSIBLE_CONFIG": str(ANSIBLE_DIR / "ansible.cfg"),
            "ANSIBLE_HOME": str(home),
            "ANSIBLE_LOCAL_TEMP": str(home / "tmp"),
            "ANSIBLE_NOCOLOR": "1",
            "ANSIBLE_FORCE_COLOR": "0",
            "ANSIBLE_DEPRECATION_WARNINGS": "0",
            "PY_COLORS": "0",
            "NO_COLOR": "1",
        }
    )
    return env


def run_playbook(
    playbook: str,
    inventory: Path,
    home: Path,
    extra_vars: Mapping[str, Any] | None = None,
    args: tuple[str, ...] = (),
    timeout: float = 900,
) -> PlaybookRun:
    """Run a playbook of ansible/ with an inventory; extra vars go in as JSON."""
    argv = [str(BIN / "ansible-playbook"), "-i", str(inventory), playbook, *args]
    if extra_vars:
        text = yaml.safe_dump(dict(extra_vars))
        vars_file = home / f"extra-vars-{hashlib.sha1(text.encode()).hexdigest()[:12]}.yml"
        vars_file.write_text(text)
        argv += ["-e", f"@{vars_file}"]
    done = subprocess.run(
        argv,
        cwd=ANSIBLE_DIR,
        env=ansible_env(home),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    output = done.stdout + done.stderr
    recap = {m["host"]: {k: int(v) for k, v in m.groupdict().items() if k != "host"} for m in RECAP.finditer(output)}
    return PlaybookRun(done.returncode, output, recap)


@dataclass
class Box:
    """An edge box: a private copy of the cached Debian root, its inventory and a scratch directory."""

    root: Path
    inventory: Path
    home: Path
    host: str = "edge-box-01"

    def path(self, inside: str) -> Path:
        """A path inside the box, seen from the host."""
        return self.root / inside.lstrip("/")

    def ids(self, user: str) -> tuple[int, int]:
        """uid and gid of a user of the box (from the box's /etc/passwd, not the host's)."""
        for line in self.path("/etc/passwd").read_text().splitlines():
            fields = line.split(":")
            if fields[0] == user:
                return int(fields[2]), int(fields[3])
        raise KeyError(f"no user {user} in the box")

    def owner(self, inside: str) -> tuple[str, str, int]:
        """(user, group, permission bits) of a path in the box, names resolved in the box."""
        st = self.path(inside).lstat()
        users = {
            int(f[2]): f[0] for f in (line.split(":") for line in self.path("/etc/passwd").read_text().splitlines())
        }
        groups = {
            int(f[2]): f[0] for f in (line.split(":") for line in self.path("/etc/group").read_text().splitlines())
        }
        return users.get(st.st_uid, str(st.st_uid)), groups.get(st.st_gid, str(st.st_gid)), stat.S_IMODE(st.st_mode)

    def run_as(self, user: str | None, *argv: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """Run a command inside the box with chroot, as a user of the box (None: root)."""
        cmd = ["chroot"]
        if user is not None:
            uid, gid = self.ids(user)
            cmd.append(f"--userspec={uid}:{gid}")
        env = {"PATH": "/usr/bin:/bin:/usr/sbin:/sbin", "LANG": "C.UTF-8", "HOME": "/nonexistent"}
        return subprocess.run(
            [*cmd, str(self.root), *argv], capture_output=True, text=True, timeout=timeout, check=False, env=env
        )

    def playbook(
        self, extra_vars: Mapping[str, Any] | None = None, args: tuple[str, ...] = (), playbook: str = "site.yml"
    ) -> PlaybookRun:
        """Run a playbook of ansible/ against this box."""
        return run_playbook(playbook, self.inventory, self.home, extra_vars, args)


def write_box_inventory(directory: Path, root: Path, host: str, site_vars: Mapping[str, Any]) -> Path:
    """An inventory with one site group holding the box (chroot connection) and that site's group_vars."""
    inventory = {
        "all": {
            "children": {
                "otwatch": {
                    "children": {
                        "site_test": {
                            "hosts": {
                                host: {
                                    "ansible_connection": "community.general.chroot",
                                    "ansible_host": str(root),
                                    "ansible_become": False,
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    (directory / "group_vars").mkdir(parents=True)
    (directory / "hosts.yml").write_text(yaml.safe_dump(inventory))
    (directory / "group_vars" / "site_test.yml").write_text(yaml.safe_dump(dict(site_vars), sort_keys=False))
    return directory


@contextlib.contextmanager
def debian_box(site_vars: Mapping[str, Any]) -> Iterator[Box]:
    """A fresh box for the duration of the block: the cached root copied, sysfs mounted read-only, all undone after.

    sysfs lets the role's preflight see the host's interfaces (/sys/class/net) as on a real box; nothing else is
    mounted (the role and otwatch need no /proc or /dev beyond what debootstrap made).
    """
    cached = debian_root()
    work = Path(tempfile.mkdtemp(prefix="otwatch-box-"))
    try:
        root = copy_root(cached, work / "root")
        subprocess.run(
            ["mount", "-t", "sysfs", "-o", "ro,nosuid,nodev,noexec", "sysfs", str(root / "sys")],
            check=True,
            timeout=60,
        )
        home = work / "ansible-home"
        (home / "tmp").mkdir(parents=True)
        inventory = write_box_inventory(work / "inventory", root, "edge-box-01", site_vars)
        yield Box(root=root, inventory=inventory, home=home)
    finally:
        remove_tree(work)
        assert not mounts_under(work), f"mounts left under {work}"
        shutil.rmtree(work, ignore_errors=True)
