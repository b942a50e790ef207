"""Kernels the course starts (self-check, grader, ``build --execute``): this environment's Python, and
sockets as files in the job's own folder.

Lesson: 00_welcome
"""
from __future__ import annotations

import os
from pathlib import Path

__all__ = ["socket_options", "current_env_kernel"]

_HERE_KERNEL = "course-current-env"


def socket_options(folder: str | Path) -> dict:
    """KernelManager options that put a kernel's sockets in ``folder`` as files (``ipc``), not on TCP ports.

    Jupyter picks a kernel's five TCP ports by binding free ports and releasing them for the kernel to
    bind. Two kernels started at the same moment (the grader and the tests start several) can be given
    the same port, and one of them dies at start with "Address already in use", a long-known race
    in Jupyter's protocol. Unix-domain sockets in a folder of the job's own cannot collide. Returns
    ``{}`` (keep TCP) off Unix or when the path would be too long for a socket name.
    """
    if os.name != "posix":
        return {}
    base = Path(folder).resolve() / ".kernel"   # hidden: a student globbing "*" does not see the sockets
    if len(str(base)) > 90:       # sockets are named "<base>-<port>"; Linux allows 107 bytes
        return {}
    base.parent.mkdir(parents=True, exist_ok=True)
    return {"transport": "ipc", "ip": str(base)}


def current_env_kernel(folder: str | Path | None = None):
    """A kernel manager for a Python kernel in this environment (``sys.executable``); with ``folder``,
    its sockets are files there (see :func:`socket_options`)."""
    import ipykernel.kernelspec
    from jupyter_client.kernelspec import KernelSpec, KernelSpecManager
    from jupyter_client.manager import KernelManager

    class _HereSpecs(KernelSpecManager):
        def get_kernel_spec(self, kernel_name):
            if kernel_name == _HERE_KERNEL:
                return KernelSpec(resource_dir=ipykernel.kernelspec.RESOURCES, **ipykernel.kernelspec.get_kernel_dict())
            return super().get_kernel_spec(kernel_name)

    options = socket_options(folder) if folder is not None else {}
    return KernelManager(kernel_name=_HERE_KERNEL, kernel_spec_manager=_HereSpecs(), **options)
