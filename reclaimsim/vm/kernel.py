"""Guest kernels: a Debian linux-image package (apt-get download + dpkg-deb -x, never installed)
or a user-built bzImage, plus the kernel modules the guest needs (dax/kmem, virtio_blk).

As ``../shared/realkernel/setup.sh``: ``--suite`` (e.g. ``trixie-backports``) uses a throw-away
apt configuration under the cache (its own sources.list, lists and cache, on the mirror the
host's apt sources already use; ``/etc/apt`` is not touched). Debian's 7.x kernels are split:
``linux-image-<ver>`` is empty and depends on ``linux-binary-<ver>`` (vmlinuz),
``linux-modules-<ver>`` and ``linux-base-<ver>`` (config), all under ``/usr/lib/modules/<ver>/``;
those are fetched too.

The cache is ``$RECLAIMSIM_CACHE`` or ``~/.cache/reclaimsim``, with ``vm/debs``,
``vm/kernels/<package>``, ``vm/apt/<suite>`` and ``vm/build``.
"""

from __future__ import annotations

import lzma
import os
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_KERNEL = "6.12"


class KernelError(RuntimeError):
    """The kernel cannot be fetched or used; the message says why and what to do."""


@dataclass
class GuestKernel:
    """A bootable kernel and where its modules are."""

    image: Path
    release: str  # uname -r as far as known from the files ("" if unknown)
    package: str | None = None
    modules_dir: Path | None = None  # .../lib/modules/<release>
    config: Path | None = None
    notes: list[str] = field(default_factory=list)


def cache_dir() -> Path:
    base = os.environ.get("RECLAIMSIM_CACHE")
    root = Path(base) if base else Path.home() / ".cache" / "reclaimsim"
    return root / "vm"


def _run(argv: list[str], env: dict[str, str] | None = None, cwd: Path | None = None) -> str:
    try:
        r = subprocess.run(
            argv, env=env, cwd=cwd, capture_output=True, text=True, check=False, timeout=1800
        )
    except FileNotFoundError as e:
        raise KernelError(f"{argv[0]} not found: {e}") from None
    if r.returncode != 0:
        tail = (r.stderr or r.stdout).strip().splitlines()[-3:]
        raise KernelError(f"{' '.join(argv[:3])} failed ({r.returncode}): " + " | ".join(tail))
    return r.stdout


def host_mirror() -> str | None:
    """The Debian mirror the host's apt sources use (not the -security one)."""
    uris: list[str] = []
    d = Path("/etc/apt/sources.list.d")
    for f in sorted(d.glob("*.sources")) if d.is_dir() else []:
        for line in f.read_text(errors="replace").splitlines():
            if line.startswith("URIs:"):
                uris += line.split()[1:]
    lists = [Path("/etc/apt/sources.list")] + (sorted(d.glob("*.list")) if d.is_dir() else [])
    for f in lists:
        if not f.is_file():
            continue
        for line in f.read_text(errors="replace").splitlines():
            if line.startswith("deb "):
                uris += [w for w in line.split() if w.startswith(("http:", "https:"))][:1]
    for u in uris:
        if "-security" not in u:
            return u.rstrip("/")
    return None


def apt_env(suite: str | None, mirror: str | None = None) -> dict[str, str]:
    """Environment for apt-get/apt-cache: the host's config, or a throw-away one for ``suite``."""
    env = dict(os.environ)
    if not suite:
        return env
    mirror = mirror or os.environ.get("KMIRROR") or host_mirror()
    if not mirror:
        raise KernelError("no Debian mirror found in the host's apt sources; set KMIRROR=URL")
    if suite.endswith("-security"):
        mirror = re.sub(r"/debian$", "", mirror) + "/debian-security"
    a = cache_dir() / "apt" / suite
    (a / "lists" / "partial").mkdir(parents=True, exist_ok=True)
    (a / "cache" / "archives" / "partial").mkdir(parents=True, exist_ok=True)
    (a / "sources.list").write_text(
        f"deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] {mirror} {suite} main\n"
    )
    (a / "apt.conf").write_text(
        f'Dir::Etc::sourcelist "{a}/sources.list";\n'
        'Dir::Etc::sourceparts "-";\n'
        f'Dir::State::Lists "{a}/lists";\n'
        f'Dir::Cache "{a}/cache";\n'
        'Acquire::Languages "none";\n'
        'APT::Architectures { "amd64"; };\n'
    )
    env["APT_CONFIG"] = str(a / "apt.conf")
    if not any((a / "lists").glob("*Packages*")):
        _run(["apt-get", "update"], env=env)
    return env


def _available(pkg: str, env: dict[str, str]) -> bool:
    r = subprocess.run(
        ["apt-cache", "show", "--no-all-versions", pkg], env=env, capture_output=True, text=True
    )
    return r.returncode == 0 and "Package:" in r.stdout


def resolve_package(name: str, env: dict[str, str]) -> str:
    """``6.12`` -> the newest ``linux-image-6.12.N+debNN-amd64``; a full name is checked."""
    if re.fullmatch(r"\d+\.\d+", name):
        pat = rf"^linux-image-{re.escape(name)}\.[0-9]+(\+deb[0-9]+)?-amd64$"
        out = _run(["apt-cache", "search", "--names-only", pat], env=env)
        cands = [line.split()[0] for line in out.splitlines() if line.strip()]
        if not cands:
            raise KernelError(
                f"no linux-image-{name}.*-amd64 in the apt archive (try `apt-get update`, or "
                "--suite trixie-backports for newer kernels)"
            )
        return max(cands, key=lambda p: [int(x) for x in re.findall(r"\d+", p)])
    if not _available(name, env):
        _run(["apt-get", "update"], env=env)
    if not _available(name, env):
        raise KernelError(
            f"{name}: not in the apt archive"
            + (" of that suite" if "APT_CONFIG" in env else "")
            + "; `apt-cache search --names-only '^linux-image-6'` lists what there is "
            "(--suite trixie-backports for 6.18/7.x)"
        )
    return name


def _split_parts(pkg: str, env: dict[str, str]) -> list[str]:
    """linux-binary/modules/base-<ver> of a split 7.x package (empty for <= 6.18)."""
    out = _run(["apt-cache", "show", "--no-all-versions", pkg], env=env)
    deps = " ".join(line[9:] for line in out.splitlines() if line.startswith("Depends: "))
    return sorted(set(re.findall(r"linux-(?:binary|modules|base)-[0-9][^\s,()|]*", deps)))


def fetch_debian_kernel(name: str, suite: str | None = None, log=print) -> GuestKernel:
    """Download (once) and unpack a Debian kernel package; return the image and modules."""
    env = apt_env(suite)
    pkg = resolve_package(name, env)
    cd = cache_dir()
    debs = cd / "debs"
    kdir = cd / "kernels" / pkg
    debs.mkdir(parents=True, exist_ok=True)
    if not (kdir / ".done").exists():
        if kdir.exists():
            shutil.rmtree(kdir)
        kdir.mkdir(parents=True)
        for p in [pkg] + _split_parts(pkg, env):
            have = sorted(debs.glob(f"{p}_*.deb"))
            if not have:
                if p != pkg and not _available(p, env):
                    log(f"vm: {p} is not in the archive, skipped")
                    continue
                log(f"vm: apt-get download {p}")
                _run(["apt-get", "download", p], env=env, cwd=debs)
                have = sorted(debs.glob(f"{p}_*.deb"))
            if not have:
                raise KernelError(f"apt-get download {p} left no .deb in {debs}")
            _run(["dpkg-deb", "-x", str(have[-1]), str(kdir)])
        (kdir / ".done").write_text(pkg + "\n")
    return kernel_from_tree(kdir, package=pkg)


def kernel_from_tree(kdir: Path, package: str | None = None) -> GuestKernel:
    """An unpacked kernel package: boot/vmlinuz-* or usr/lib/modules/<ver>/vmlinuz."""
    imgs = sorted(kdir.glob("boot/vmlinuz-*")) + sorted(kdir.glob("usr/lib/modules/*/vmlinuz"))
    if not imgs:
        raise KernelError(f"{kdir}: no boot/vmlinuz-* or usr/lib/modules/*/vmlinuz in the package")
    img = imgs[0]
    rel = img.name.removeprefix("vmlinuz-") if img.name != "vmlinuz" else img.parent.name
    mdir = None
    for base in ("lib/modules", "usr/lib/modules"):
        if (kdir / base / rel).is_dir():
            mdir = kdir / base / rel
    cfg = None
    for c in (kdir / "boot" / f"config-{rel}", kdir / "usr/lib/modules" / rel / "config"):
        if c.is_file():
            cfg = c
    return GuestKernel(image=img, release=rel, package=package, modules_dir=mdir, config=cfg)


def user_kernel(image: Path, modules: Path | None = None) -> GuestKernel:
    """A user-built bzImage (+ optional modules dir: .../lib/modules/<release> or a tree)."""
    if not image.is_file():
        raise KernelError(f"{image}: no such kernel image")
    with image.open("rb") as f:
        head = f.read(0x240)
    if len(head) < 0x210 or head[0x202:0x206] != b"HdrS":
        raise KernelError(f"{image}: not an x86 bzImage (no 'HdrS' boot header)")
    rel = ""
    with image.open("rb") as f:
        f.seek(0x20E)
        off = int.from_bytes(f.read(2), "little")
        if off:
            f.seek(off + 0x200)
            rel = f.read(128).split(b"\0")[0].decode(errors="replace").split(" ")[0]
    mdir = None
    if modules is not None:
        if not modules.is_dir():
            raise KernelError(f"{modules}: no such modules directory")
        cands = [modules] + [modules / "lib/modules" / rel, modules / rel]
        mdir = next((c for c in cands if (c / "kernel").is_dir()), modules)
    return GuestKernel(image=image, release=rel, modules_dir=mdir)


# ------------------------------------------------------------------------- modules


def _read_ko(path: Path) -> bytes:
    data = path.read_bytes()
    if path.name.endswith(".xz"):
        return lzma.decompress(data)
    if path.name.endswith(".zst"):
        r = subprocess.run(["zstd", "-qdc", str(path)], capture_output=True, check=False)
        if r.returncode != 0:
            raise KernelError(f"{path}: cannot decompress (is zstd installed?)")
        return r.stdout
    if path.name.endswith(".gz"):
        import gzip

        return gzip.decompress(data)
    return data


def _mod_name(path: Path) -> str:
    return re.sub(r"\.ko(\.(xz|zst|gz))?$", "", path.name).replace("-", "_")


def module_closure(mdir: Path, wanted: list[str]) -> tuple[list[tuple[str, bytes]], list[str]]:
    """Modules ``wanted`` and their dependencies (``depends=`` of .modinfo), load order first.

    Returns ([(name, uncompressed .ko)], [wanted names that are built in]). Raises KernelError
    for a module that is neither a file nor built in.
    """
    index = {_mod_name(p): p for p in (mdir / "kernel").rglob("*.ko*")}
    builtin: set[str] = set()
    bfile = mdir / "modules.builtin"
    if bfile.is_file():
        builtin = {_mod_name(Path(line.strip())) for line in bfile.read_text().splitlines()}
    order: list[tuple[str, bytes]] = []
    seen: set[str] = set()
    built: list[str] = []

    def visit(name: str, top: bool) -> None:
        name = name.replace("-", "_")
        if name in seen:
            return
        seen.add(name)
        if name not in index:
            if name in builtin:
                if top:
                    built.append(name)
                return
            raise KernelError(f"kernel module {name} is neither in {mdir} nor built in")
        data = _read_ko(index[name])
        m = re.search(rb"(?:^|\0)depends=([^\0]*)\0", data)
        for dep in m.group(1).decode().split(",") if m and m.group(1) else []:
            visit(dep, False)
        order.append((name, data))

    for w in wanted:
        visit(w, True)
    return order, built


def config_value(k: GuestKernel, option: str) -> str | None:
    """``y``/``m``/value of CONFIG_<option> in the kernel's config (None if unknown/unset)."""
    if k.config is None:
        return None
    m = re.search(rf"^CONFIG_{option}=(.*)$", k.config.read_text(errors="replace"), re.M)
    return m.group(1) if m else None
