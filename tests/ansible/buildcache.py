"""Cached build products for the Ansible role test: wheelhouses of otwatch and a debootstrap Debian root.

Everything lives under ~/.cache/otwatch/ansible-test (OTWATCH_TEST_CACHE overrides it), keyed by a content hash,
so the first run builds it all from nothing and later runs reuse it:
- dependency wheels, keyed by the `dependencies` of pyproject.toml and the controller's Python;
- otwatch wheels, keyed by the package sources and the version they are stamped with;
- a minbase bookworm root (python3, python3-venv, systemd), rebuilt when missing or broken.
A file lock serialises builders, so two test sessions never build the same thing at once.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PACKAGES = ("appliance", "protocols", "simulators")
SOURCE_FILES = ("pyproject.toml", "README.md")
SUITE = "bookworm"
ROOT_PACKAGES = ("python3", "python3-venv", "systemd")
MIRROR = os.environ.get("OTWATCH_DEBIAN_MIRROR", "http://deb.debian.org/debian")


def cache_dir() -> Path:
    """The cache root (created)."""
    base = Path(os.environ.get("OTWATCH_TEST_CACHE", Path.home() / ".cache" / "otwatch" / "ansible-test"))
    base.mkdir(parents=True, exist_ok=True)
    return base


@contextlib.contextmanager
def locked(name: str) -> Iterator[None]:
    """Hold an exclusive lock named `name` in the cache directory."""
    with open(cache_dir() / f".{name}.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _run(argv: list[str], timeout: float, cwd: Path | None = None) -> None:
    """Run a build step; raise with its output when it fails."""
    done = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False)
    if done.returncode != 0:
        raise RuntimeError(
            f"{' '.join(argv)} failed ({done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        )


def project() -> dict:
    """The [project] table of pyproject.toml."""
    return tomllib.loads((REPO / "pyproject.toml").read_text())["project"]


def _source_paths() -> list[Path]:
    paths = [REPO / name for name in SOURCE_FILES]
    for package in PACKAGES:
        for path in sorted((REPO / package).rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts and path.suffix not in (".pyc", ".pyo"):
                paths.append(path)
    return paths


def source_digest() -> str:
    """A hash of everything that goes into the otwatch wheel."""
    digest = hashlib.sha256()
    for path in _source_paths():
        digest.update(str(path.relative_to(REPO)).encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()[:16]


def _python_tag() -> str:
    return f"cp{sys.version_info.major}{sys.version_info.minor}-{os.uname().machine}"


def _prune(pattern: str, keep: int) -> None:
    """Remove all but the `keep` newest cache entries matching `pattern` (old source or dependency versions)."""
    entries = sorted(cache_dir().glob(pattern), key=lambda p: p.stat().st_mtime, reverse=True)
    for stale in entries[keep:]:
        shutil.rmtree(stale, ignore_errors=True)


def dependency_wheels() -> Path:
    """A directory of wheels for every dependency of otwatch (built with `pip wheel`, cached)."""
    requirements = sorted(project()["dependencies"])
    key = hashlib.sha256(("\n".join(requirements) + _python_tag()).encode()).hexdigest()[:16]
    target = cache_dir() / f"deps-{key}"
    with locked("deps"):
        if (target / ".complete").exists():
            return target
        partial = target.with_name(target.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir()
        _run([sys.executable, "-m", "pip", "wheel", "--quiet", "--wheel-dir", str(partial), *requirements], 1800)
        (partial / ".complete").write_text("\n".join(requirements) + "\n")
        shutil.rmtree(target, ignore_errors=True)
        partial.rename(target)
        _prune("deps-*", keep=2)
    return target


def otwatch_wheel(version: str | None = None, digest: str | None = None) -> Path:
    """The otwatch wheel built from this checkout, stamped with `version` (default: pyproject's), cached.

    `digest` (source_digest(), computed once by the caller) keeps several wheels of one session on the same key.
    """
    stamped = version or project()["version"]
    target = cache_dir() / f"otwatch-{digest or source_digest()}-{stamped}"
    with locked("otwatch"):
        wheels = sorted(target.glob("otwatch-*.whl"))
        if (target / ".complete").exists() and len(wheels) == 1:
            return wheels[0]
        shutil.rmtree(target, ignore_errors=True)
        build = target.with_name(target.name + ".src")
        shutil.rmtree(build, ignore_errors=True)
        build.mkdir()
        for name in SOURCE_FILES:
            shutil.copy2(REPO / name, build / name)
        for package in PACKAGES:
            shutil.copytree(REPO / package, build / package, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        pyproject = (build / "pyproject.toml").read_text()
        pyproject, n = re.subn(r'(?m)^version = "[^"]*"$', f'version = "{stamped}"', pyproject, count=1)
        assert n == 1, "pyproject.toml has no version line"
        (build / "pyproject.toml").write_text(pyproject)
        target.mkdir()
        _run(
            [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir", str(target), str(build)], 900
        )
        shutil.rmtree(build, ignore_errors=True)
        wheels = sorted(target.glob("otwatch-*.whl"))
        assert len(wheels) == 1, f"expected one otwatch wheel in {target}, got {wheels}"
        (target / ".complete").write_text(stamped + "\n")
        _prune("otwatch-*", keep=6)
    return wheels[0]


def _place(source: Path, dest: Path) -> None:
    """Hard-link a cached file into place (copy across file systems); nothing writes through the link."""
    try:
        os.link(source, dest)
    except OSError:
        shutil.copy2(source, dest)


def assemble_wheelhouse(dest: Path, otwatch: Path) -> Path:
    """A wheelhouse in `dest`: the dependency wheels and one otwatch wheel."""
    dest.mkdir(parents=True)
    for wheel in sorted(dependency_wheels().glob("*.whl")):
        _place(wheel, dest / wheel.name)
    _place(otwatch, dest / otwatch.name)
    return dest


def _root_ok(root: Path) -> bool:
    """True when a cached root is complete and its Python can make a virtualenv."""
    if not (root.parent / ".complete").exists():
        return False
    if not (root / "usr/bin/systemctl").exists() or not (root / "usr/bin/python3").exists():
        return False
    probe = subprocess.run(
        ["chroot", str(root), "python3", "-c", "import ensurepip, venv"],
        capture_output=True,
        timeout=60,
        check=False,
    )
    return probe.returncode == 0


def debian_root() -> Path:
    """A cached minbase bookworm root with python3, python3-venv and systemd (debootstrap; rebuilt when broken)."""
    key = hashlib.sha256(f"{SUITE} minbase {' '.join(ROOT_PACKAGES)} {MIRROR}".encode()).hexdigest()[:12]
    target = cache_dir() / f"root-{SUITE}-{key}"
    root = target / "root"
    with locked("root"):
        if _root_ok(root):
            return root
        shutil.rmtree(target, ignore_errors=True)
        partial = target.with_name(target.name + ".partial")
        remove_tree(partial)
        partial.mkdir()
        _run(
            [
                "debootstrap",
                "--variant=minbase",
                f"--include={','.join(ROOT_PACKAGES)}",
                SUITE,
                str(partial / "root"),
                MIRROR,
            ],
            1200,
        )
        (partial / ".complete").write_text(f"{SUITE} {' '.join(ROOT_PACKAGES)} {MIRROR}\n")
        partial.rename(target)
    if not _root_ok(root):
        raise RuntimeError(f"debootstrap made {root} but its python3 cannot make a virtualenv")
    return root


def mounts_under(path: Path) -> list[Path]:
    """Mount points at or below `path`, deepest first."""
    prefix = str(path.resolve())
    found = []
    for line in Path("/proc/self/mounts").read_text().splitlines():
        point = line.split()[1].encode().decode("unicode_escape")
        if point == prefix or point.startswith(prefix + "/"):
            found.append(Path(point))
    return sorted(found, key=lambda p: len(p.parts), reverse=True)


def remove_tree(path: Path) -> None:
    """Unmount whatever is mounted below `path`, then delete it without crossing into another file system."""
    if not path.exists():
        return
    for point in mounts_under(path):
        subprocess.run(["umount", "--lazy", str(point)], check=False, timeout=60)
    left = mounts_under(path)
    if left:
        raise RuntimeError(f"cannot remove {path}: still mounted {left}")
    subprocess.run(["rm", "-rf", "--one-file-system", str(path)], check=True, timeout=600)


def copy_root(source: Path, dest: Path) -> Path:
    """A private copy of a cached root for one test run."""
    subprocess.run(["cp", "-a", "--reflink=auto", str(source), str(dest)], check=True, timeout=600)
    return dest
