"""Lab only: the "VMs" keep the bytecode of the Python that Ansible sends them.

Every task ships its module and module_utils in a zip (AnsiballZ) that the
host's Python imports from a new temporary folder; zipimport compiles each
file from source every time (ansible.module_utils.basic alone: ~0.1 s of CPU
per task on the lab's 2 cores). Here the compiled code is kept per user under
/var/tmp, keyed by the file's path inside the zip, its source and the Python
version, so the same module is compiled once per host: the same modules run,
only their compilation is cached (measured on a no-op site.yml of the stack:
the hosts' Python 79 -> 56 CPU-s). Loaded by a .pth file that
molecule/shared/create.yml mounts into each container's dist-packages; no
effect on other imports, and none on a real VM.
"""

import contextlib
import hashlib
import marshal
import os
import stat
import sys
import zipimport

_compile = zipimport._compile_source
_TAG = sys.implementation.cache_tag.encode()


def _renamed(code, filename):
    """The cached code under this run's file name (tracebacks name the real zip)."""
    consts = (_renamed(const, filename) if hasattr(const, "co_code") else const for const in code.co_consts)
    return code.replace(co_filename=filename, co_consts=tuple(consts))


def _folder():
    """/var/tmp/lab-ansiballz-UID, used only when it is this user's own and private."""
    folder = f"/var/tmp/lab-ansiballz-{os.geteuid()}"
    with contextlib.suppress(FileExistsError):
        os.mkdir(folder, 0o700)
    status = os.lstat(folder)
    if not stat.S_ISDIR(status.st_mode) or status.st_uid != os.geteuid() or status.st_mode & 0o077:
        raise OSError(f"{folder} is not private to this user")
    return folder


def _compile_source(pathname, source):
    inner = pathname.find(".zip/")
    if inner < 0 or "/ansible_" not in pathname:
        return _compile(pathname, source)
    key = hashlib.sha256(_TAG + b"\0" + pathname[inner:].encode() + b"\0" + source).hexdigest()
    try:
        path = os.path.join(_folder(), key)
        with open(path, "rb") as cached:
            return _renamed(marshal.load(cached), pathname)
    except FileNotFoundError:
        pass
    except (OSError, EOFError, ValueError, TypeError):
        return _compile(pathname, source)
    code = _compile(pathname, source)
    partial = f"{path}.{os.getpid()}"
    try:
        with open(partial, "wb") as out:
            marshal.dump(code, out)
        os.replace(partial, path)
    except OSError:
        pass
    return code


zipimport._compile_source = _compile_source
