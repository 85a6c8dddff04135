"""Host tools and the guest initramfs (as ``../shared/realkernel/build_initramfs.sh``).

The initramfs holds busybox-static, the generated ``/init``, the statically linked ``hog`` and
``sampler`` (``guest/*.c``, compiled once per source version into the cache) and the kernel
modules the scenario needs, uncompressed, loaded by ``/init`` in dependency order.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import subprocess
import tempfile
from importlib import resources
from pathlib import Path

from .kernel import cache_dir

#: apt packages providing the tools (Debian/Ubuntu names).
APT_PACKAGES = ["qemu-system-x86", "busybox-static", "gcc", "libc6-dev", "cpio"]
INSTALL_CMD = "apt-get install -y " + " ".join(APT_PACKAGES)
BUSYBOX_PATHS = ("/bin/busybox", "/usr/bin/busybox")
LIBC_A_PATHS = (
    "/usr/lib/x86_64-linux-gnu/libc.a",
    "/usr/lib64/libc.a",
    "/usr/lib/libc.a",
)


class ToolError(RuntimeError):
    """A host tool is missing or failed; the message holds the fix."""


def _static_busybox() -> str | None:
    for p in BUSYBOX_PATHS:
        if Path(p).is_file():
            try:
                head = Path(p).read_bytes()[:4096]
            except OSError:
                continue
            # a dynamically linked ELF carries the interpreter path in its first page
            if b"ld-linux" not in head:
                return p
    return None


def missing_tools(need_apt: bool = True, which=shutil.which) -> list[str]:
    """Names of the tools ``vm run`` needs that this host lacks."""
    miss = []
    if which("qemu-system-x86_64") is None:
        miss.append("qemu-system-x86_64")
    if _static_busybox() is None:
        miss.append("busybox (static)")
    if which("gcc") is None:
        miss.append("gcc")
    if not any(Path(p).is_file() for p in LIBC_A_PATHS):
        miss.append("static libc (libc.a)")
    if which("cpio") is None:
        miss.append("cpio")
    if need_apt:
        for t in ("dpkg-deb", "apt-get"):
            if which(t) is None:
                miss.append(t)
    return miss


def missing_tools_message(miss: list[str]) -> str:
    return (
        f"reclaimsim vm: missing host tools: {', '.join(miss)}. Install them with\n"
        f"    {INSTALL_CMD}\n"
        "(as root; or run `reclaimsim vm setup`)"
    )


def guest_source(name: str) -> str:
    return (resources.files("reclaimsim.vm") / "guest" / name).read_text()


def compile_guest_binary(name: str) -> Path:
    """``guest/<name>.c`` -> a static binary in the cache (rebuilt when the source changes)."""
    src = guest_source(f"{name}.c")
    h = hashlib.sha256(src.encode()).hexdigest()[:12]
    out = cache_dir() / "build" / f"{name}-{h}"
    if out.is_file():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as td:
        c = Path(td) / f"{name}.c"
        c.write_text(src)
        tmp = Path(td) / name
        r = subprocess.run(
            ["gcc", "-O2", "-static", "-Wall", "-o", str(tmp), str(c)],
            capture_output=True,
            text=True,
        )
        if r.returncode != 0:
            raise ToolError(
                f"gcc -static {name}.c failed (is libc6-dev installed? {INSTALL_CMD}):\n"
                + r.stderr.strip()[-2000:]
            )
        shutil.copy2(tmp, out)
    return out


def build_initramfs(init_script: str, modules: list[tuple[str, bytes]], out: Path) -> Path:
    """Write ``out`` (a gzip'ed newc cpio) with busybox, hog, sampler, modules and ``/init``."""
    bb = _static_busybox()
    if bb is None:
        raise ToolError(missing_tools_message(["busybox (static)"]))
    hog, sampler = compile_guest_binary("hog"), compile_guest_binary("sampler")
    with tempfile.TemporaryDirectory() as td:
        r = Path(td) / "root"
        for d in ("bin", "proc", "sys", "dev", "tmp", "etc", "root", "lib/modules"):
            (r / d).mkdir(parents=True)
        shutil.copy2(bb, r / "bin" / "busybox")
        applets = subprocess.run([bb, "--list"], capture_output=True, text=True).stdout.split()
        for a in applets:
            if a != "busybox" and not (r / "bin" / a).exists():
                os.symlink("busybox", r / "bin" / a)
        os.symlink("bin", r / "sbin")
        shutil.copy2(hog, r / "bin" / "hog")
        shutil.copy2(sampler, r / "bin" / "sampler")
        for name, data in modules:
            (r / "lib" / "modules" / f"{name}.ko").write_bytes(data)
        init = r / "init"
        init.write_text(init_script)
        init.chmod(0o755)
        files = subprocess.run(
            ["find", "."], cwd=r, capture_output=True, text=True, check=True
        ).stdout
        cp = subprocess.run(
            ["cpio", "-o", "-H", "newc", "--quiet"],
            cwd=r,
            input=files.encode(),
            capture_output=True,
        )
        if cp.returncode != 0:
            raise ToolError(f"cpio failed: {cp.stderr.decode(errors='replace')[-500:]}")
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(gzip.compress(cp.stdout, compresslevel=1))
    return out
