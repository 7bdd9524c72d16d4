"""Files on an SSH board: the private workdir, the atomic upload and the hash-checked runner start.

A shared board is hostile ground: anyone may create ``/tmp/latfarm`` first, plant a file of
the right size, or a ``.part`` symlink. So the workdir is checked on the device by
:data:`PRIVATE_WORKDIR_CHECK` (owned by the login user, not a symlink, mode 0700-like) before
anything is uploaded; :func:`upload_atomically` writes a fresh exclusive ``.part`` file and
renames it (nothing is ever reused by its size); and :data:`RUNNER_BOOT` starts the runner only
if its bytes hash to the expected sha256, running exactly the bytes it hashed.

Example:
    >>> import hashlib, subprocess, sys, tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> script = folder / "runner.py"; _ = script.write_text("import sys; print('ran', sys.argv[1:])")
    >>> digest = hashlib.sha256(script.read_bytes()).hexdigest()
    >>> boot = [sys.executable, "-c", RUNNER_BOOT, str(script)]
    >>> subprocess.run(boot + [digest, "--serve"], capture_output=True, text=True).stdout
    "ran ['--serve']\\n"
    >>> subprocess.run(boot + ["0" * 64], capture_output=True, text=True).stderr.endswith("refusing to run it\\n")
    True
"""

from __future__ import annotations

import os
import secrets
import shutil

import paramiko

from agents.base import DeviceUnavailable
from agents.hashing import file_sha256
from agents.runner_result import DeviceSetupError
from agents.ssh_connection import is_active

__all__ = ["PRIVATE_WORKDIR_CHECK", "RUNNER_BOOT", "file_sha256", "upload_atomically"]

#: Run by the device's python before anything is uploaded: the workdir must be a private folder of the login user
#: (not a symlink, owned by them, not group/other-writable), else anyone on a shared board could plant files in it.
PRIVATE_WORKDIR_CHECK = """\
import os, stat, sys
workdir, campaign = sys.argv[1], sys.argv[2]
os.umask(0o077)
os.makedirs(workdir, mode=0o700, exist_ok=True)
info = os.lstat(workdir)
fix = "; remove it or set ssh.workdir to a private folder of the login user (mode 0700)"
if stat.S_ISLNK(info.st_mode) or not stat.S_ISDIR(info.st_mode):
    sys.exit("workdir " + workdir + " is a symlink or not a directory" + fix)
if info.st_uid != os.getuid():
    sys.exit("workdir " + workdir + " is owned by uid " + str(info.st_uid) + ", not the login user" + fix)
if info.st_mode & 0o022:
    sys.exit("workdir " + workdir + " is group- or other-writable (mode " + oct(info.st_mode & 0o777) + ")" + fix)
os.makedirs(os.path.join(workdir, campaign, "artifacts"), mode=0o700, exist_ok=True)
"""

#: Starts the runner only if its bytes hash to the expected sha256, and runs exactly the bytes it hashed.
RUNNER_BOOT = """\
import hashlib, sys
path, expected = sys.argv[1], sys.argv[2]
with open(path, "rb") as handle:
    source = handle.read()
if hashlib.sha256(source).hexdigest() != expected:
    sys.exit("latfarm: " + path + " does not match its sha256; refusing to run it")
sys.argv = [path] + sys.argv[3:]
namespace = sys.modules["__main__"].__dict__
namespace["__file__"] = path
exec(compile(source, path, "exec"), namespace)
"""


def upload_atomically(client: paramiko.SSHClient, local: str | os.PathLike[str], remote: str, *, label: str) -> None:
    """Upload ``local`` to ``remote`` by SFTP: a fresh ``.part`` file created exclusively (never a planted
    path or symlink), checked for its size, then renamed over ``remote``.

    ``label`` names the device in messages (``device 'pi4'``). A path the device refuses is
    :class:`DeviceSetupError` (permanent); a dropped connection :class:`DeviceUnavailable`.
    """
    try:
        with client.open_sftp() as sftp:
            partial = f"{remote}.{secrets.token_hex(8)}.part"
            with open(local, "rb") as source, sftp.open(partial, "wxb") as target:
                target.chmod(0o600)
                target.set_pipelined(True)
                shutil.copyfileobj(source, target, 1 << 15)
            if sftp.stat(partial).st_size != os.path.getsize(local):
                raise OSError(f"{partial} is short after upload")
            sftp.posix_rename(partial, remote)
    except (paramiko.SSHException, EOFError, OSError) as error:
        if isinstance(error, (FileNotFoundError, PermissionError)) and is_active(client):
            raise DeviceSetupError(f"{label}: cannot write {remote} ({error}); check ssh.workdir and its permissions") from error
        raise DeviceUnavailable(f"{label}: upload failed ({type(error).__name__}: {error})") from error
