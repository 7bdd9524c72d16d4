"""The adbd simulation itself: raw ADB packets, RSA token signatures, the sync service, the sandbox.

These check that the peer the ADB agent is tested against refuses what a real adbd refuses,
so the agent tests cannot pass against a peer that accepts anything.
"""

from __future__ import annotations

import io
import socket
import struct
import sys
from pathlib import Path

import pytest
from adb_shell.adb_device import AdbDeviceTcp
from adb_shell.auth.keygen import keygen
from adb_shell.auth.sign_pythonrsa import PythonRSASigner

sys.path.insert(0, str(Path(__file__).parent))
from adb_simulation import SANDBOX_ROOT, ADBDaemonSimulation  # noqa: E402

HEADER = struct.Struct("<6I")


class RawClient:
    """A minimal ADB client speaking packets directly."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=3)

    def send(self, command: bytes, arg0: int, arg1: int, data: bytes = b"", checksum: int | None = None) -> None:
        wire = struct.unpack("<I", command)[0]
        total = sum(data) & 0xFFFFFFFF if checksum is None else checksum
        self.sock.sendall(HEADER.pack(wire, arg0, arg1, len(data), total, wire ^ 0xFFFFFFFF) + data)

    def recv(self) -> tuple[bytes, int, int, bytes]:
        header = self._exact(HEADER.size)
        wire, arg0, arg1, length, _, _ = HEADER.unpack(header)
        return struct.pack("<I", wire), arg0, arg1, self._exact(length) if length else b""

    def _exact(self, size: int) -> bytes:
        data = b""
        while len(data) < size:
            chunk = self.sock.recv(size - len(data))
            if not chunk:
                raise ConnectionResetError("closed")
            data += chunk
        return data

    def handshake(self, signer: PythonRSASigner) -> bytes:
        self.send(b"CNXN", 0x01000000, 4096, b"host::test\0")
        command, kind, _, token = self.recv()
        assert (command, kind, len(token)) == (b"AUTH", 1, 20)
        self.send(b"AUTH", 2, 0, signer.Sign(token))
        command, _, _, banner = self.recv()
        assert command == b"CNXN"
        return banner


@pytest.fixture(scope="module")
def key(tmp_path_factory: pytest.TempPathFactory) -> tuple[PythonRSASigner, str]:
    folder = tmp_path_factory.mktemp("key")
    keygen(str(folder / "adbkey"))
    return PythonRSASigner.FromRSAKeyPath(str(folder / "adbkey")), (folder / "adbkey.pub").read_text()


@pytest.fixture()
def adbd(tmp_path: Path, fixtures_dir: Path, key: tuple[PythonRSASigner, str]):  # noqa: ANN201
    with ADBDaemonSimulation(tmp_path / "sandbox", fixtures_dir, authorized_keys=[key[1]]) as daemon:
        yield daemon


def test_signature_is_verified_and_a_bad_one_gets_a_new_token(adbd: ADBDaemonSimulation, key) -> None:
    client = RawClient(adbd.port)
    client.send(b"CNXN", 0x01000000, 4096, b"host::test\0")
    _, _, _, token = client.recv()
    client.send(b"AUTH", 2, 0, b"\x01" * 256)  # not a signature of the token
    command, kind, _, second = client.recv()
    assert (command, kind) == (b"AUTH", 1) and second != token
    client.send(b"AUTH", 2, 0, key[0].Sign(token))  # a signature of the *old* token does not count either
    command, kind, _, third = client.recv()
    assert (command, kind) == (b"AUTH", 1)
    client.send(b"AUTH", 2, 0, key[0].Sign(third))
    command, _, _, banner = client.recv()
    assert command == b"CNXN" and b"ro.product.model=Pixel 8" in banner


def test_traffic_before_auth_and_bad_checksums_close_the_connection(adbd: ADBDaemonSimulation, key) -> None:
    early = RawClient(adbd.port)
    early.send(b"OPEN", 1, 0, b"shell:echo hi\0")
    with pytest.raises(ConnectionResetError):
        early.recv()
    corrupt = RawClient(adbd.port)
    corrupt.handshake(key[0])
    corrupt.send(b"OPEN", 1, 0, b"shell:echo hi\0", checksum=12345)
    with pytest.raises(ConnectionResetError):
        corrupt.recv()
    assert adbd.commands == []


def test_sync_stat_push_quit_and_unknown_services(adbd: ADBDaemonSimulation, key) -> None:
    client = RawClient(adbd.port)
    client.handshake(key[0])
    client.send(b"OPEN", 7, 0, b"sync:\0")
    command, remote, local, _ = client.recv()
    assert (command, local) == (b"OKAY", 7)
    path = f"{SANDBOX_ROOT}/a/b.bin".encode()
    request = (b"SEND" + struct.pack("<I", len(path) + 6) + path + b",33188" + b"DATA" + struct.pack("<I", 3) + b"abc"
               + b"DONE" + struct.pack("<I", 1700000000) + b"STAT" + struct.pack("<I", len(path)) + path)
    client.send(b"WRTE", 7, remote, request)
    assert client.recv()[0] == b"OKAY"
    replies = client.recv()[3] + client.recv()[3]
    assert replies[:8] == b"OKAY\0\0\0\0"
    stat_id, mode, size, _ = struct.unpack("<4sIII", replies[8:24])
    assert (stat_id, size, mode & 0o777) == (b"STAT", 3, 0o644)
    assert (adbd.sandbox / "a" / "b.bin").read_bytes() == b"abc"
    client.send(b"WRTE", 7, remote, b"QUIT" + struct.pack("<I", 0))
    assert client.recv()[0] == b"OKAY" and client.recv()[0] == b"CLSE"
    client.send(b"OPEN", 8, 0, b"reboot:\0")
    assert client.recv()[:3] == (b"CLSE", 0, 8)


def test_push_outside_the_sandbox_fails_and_pull_works(adbd: ADBDaemonSimulation, key) -> None:
    device = AdbDeviceTcp("127.0.0.1", adbd.port, default_transport_timeout_s=3)
    device.connect(rsa_keys=[key[0]], auth_timeout_s=1)
    with pytest.raises(Exception, match="Permission denied"):
        device.push(io.BytesIO(b"x"), "/system/bin/sh")
    device.push(io.BytesIO(b"model bytes"), f"{SANDBOX_ROOT}/m.ptl")
    pulled = io.BytesIO()
    device.pull(f"{SANDBOX_ROOT}/m.ptl", pulled)
    assert pulled.getvalue() == b"model bytes"
    device.close()


def test_the_shell_runs_only_the_allowlist_inside_the_sandbox(adbd: ADBDaemonSimulation, key) -> None:
    device = AdbDeviceTcp("127.0.0.1", adbd.port, default_transport_timeout_s=3)
    device.connect(rsa_keys=[key[0]], auth_timeout_s=1)
    assert "inaccessible or not found" in device.shell("python3 -c 'print(1)'; echo rc=$?")
    assert device.shell("python3 -c 'print(1)'; echo rc=$?").endswith("rc=127\n")
    assert "Permission denied" in device.shell("mkdir -p /sdcard/x")
    assert "Permission denied" in device.shell(f"rm -rf {SANDBOX_ROOT}/../../..")
    (adbd.sandbox / "tool").write_bytes(b"#!/bin/sh\necho pwned\n")
    (adbd.sandbox / "tool").chmod(0o755)
    assert "Exec format error" in device.shell(f"{SANDBOX_ROOT}/tool")  # host programs never run
    assert device.shell("echo 'a;b' && false || echo c") == "a;b\nc\n"
    assert device.shell("getprop ro.product.model") == "Pixel 8\n"
    device.close()
