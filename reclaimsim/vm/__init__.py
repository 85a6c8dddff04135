"""``reclaimsim vm``: the scenario on a real kernel in a QEMU VM, for checking the simulator.

``vm_main(["run", SCENARIO, "--kernel", KERNEL, "--out", DIR])`` derives the VM from the
scenario's machine (:mod:`.plan`), generates the guest's ``/init`` from its script
(:mod:`.guest`), fetches a Debian kernel or takes a bzImage (:mod:`.kernel`), builds the
initramfs (:mod:`.build`), boots QEMU and writes the shared real-kernel harness's CSVs
(:mod:`.parse`) and ``summary.json`` (:mod:`.summary`). See docs/vm.md.
"""

from __future__ import annotations

__all__ = ["vm_main"]


def vm_main(argv: list[str]) -> int:
    """``reclaimsim vm ...`` (see :mod:`reclaimsim.vm.cli`)."""
    from .cli import vm_main as _main

    return _main(argv)
