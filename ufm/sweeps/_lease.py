r"""The lease of a sweep store: one call writes a store at a time, and a crashed one does not lock it.

Two calls on one store would both compute every chunk not yet done, and the last writer of a chunk
would win. A sweep therefore holds a *lease*: one small JSON object (``ufm_lease.json`` at the
store's root, next to the Zarr metadata; Zarr and xarray ignore it) naming the call that writes
the store (its run id, host, process id, start time) and a heartbeat time that a thread of the
owning process renews every :data:`HEARTBEAT` seconds.

* Acquiring: create the object only if it does not exist (an exclusive create on a local
  directory; Zarr's ``set_if_not_exists`` elsewhere), then read it back: the call whose run id is
  stored owns the store. A second call finds a live lease and is refused with one line that
  names the owner (:class:`StoreBusyError`); nothing is solved or written.
* A crashed owner: its lease is *stale* when the heartbeat is older than :data:`LEASE_TTL`
  seconds, or at once when it was taken on this host by a process that no longer exists. A stale
  lease is replaced (and the replacement read back), so a killed sweep never locks its store.
* Fencing: every chunk write first checks that the lease still names its run
  (:func:`check_owner`), so the tasks of a sweep whose lease was taken over (a client killed
  while its Dask tasks still run) stop writing instead of racing the new owner.
* Releasing: the owner deletes the lease when it returns, or when it fails.

The lease protects the store's bookkeeping; it is not a distributed lock with hard guarantees
(two calls that both find the same stale lease within a few milliseconds can both replace it;
the read-back and the fencing check before every chunk keep that window to one chunk).
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import zarr

__all__ = ["LEASE_KEY", "LEASE_TTL", "HEARTBEAT", "StoreBusyError", "read_lease", "describe_owner",
           "acquire", "release", "check_owner", "holding"]

LEASE_KEY = "ufm_lease.json"
LEASE_TTL = 60.0  # seconds without a heartbeat after which a lease is stale
HEARTBEAT = 5.0  # seconds between heartbeats


class StoreBusyError(RuntimeError):
    """A sweep store is written by another call (its lease is live), or this call lost its lease.

    The message is one line: the store, the owner (run id, host, pid, seconds since its
    heartbeat) and what to do.
    """


def _sync(coro: Any) -> Any:
    from zarr.core.sync import sync

    return sync(coro)


def _key(root: zarr.Group) -> str:
    path = root.store_path.path
    return f"{path}/{LEASE_KEY}" if path else LEASE_KEY


def read_lease(root: zarr.Group) -> dict[str, Any] | None:
    """The lease of the store of group ``root`` (a dict), or None when nobody holds it."""
    from zarr.core.buffer import default_buffer_prototype

    buf = _sync(root.store.get(_key(root), prototype=default_buffer_prototype()))
    if buf is None:
        return None
    try:
        return json.loads(buf.to_bytes().decode())
    except (ValueError, UnicodeDecodeError):
        return {"run": 0, "host": "?", "pid": 0, "heartbeat": 0.0}  # torn: stale at once


def _write(root: zarr.Group, lease: dict, exclusive: bool) -> None:
    from zarr.core.buffer import cpu

    buf = cpu.Buffer.from_bytes(json.dumps(lease).encode())
    if exclusive:
        with contextlib.suppress(FileExistsError):
            _sync(root.store.set_if_not_exists(_key(root), buf))
    else:
        _sync(root.store.set(_key(root), buf))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True
    return True


def _stale(lease: dict, now: float) -> bool:
    if now - float(lease.get("heartbeat", 0.0)) > LEASE_TTL:
        return True
    same_host = lease.get("host") == socket.gethostname()
    return same_host and int(lease.get("pid", 0)) != os.getpid() and not _alive(int(lease.get("pid", 0)))


def describe_owner(lease: dict, now: float | None = None) -> str:
    """``run R (pid P on host H, started S, heartbeat T s ago)``."""
    age = (time.time() if now is None else now) - float(lease.get("heartbeat", 0.0))
    return (f"run {lease.get('run')} (pid {lease.get('pid')} on host {lease.get('host')}, started "
            f"{lease.get('started', '?')}, heartbeat {age:.0f} s ago)")


def acquire(root: zarr.Group, run_id: int, where: str) -> None:
    """Take the lease of the store of ``root`` for ``run_id``, replacing a stale one.

    Raises:
        StoreBusyError: a live lease names another run (the message names it).
    """
    now = time.time()
    mine = {"run": int(run_id), "host": socket.gethostname(), "pid": os.getpid(), "heartbeat": now,
            "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now))}
    for _ in range(3):
        old = read_lease(root)
        if old is not None and int(old.get("run", 0)) != run_id:
            if not _stale(old, time.time()):
                raise StoreBusyError(
                    f"store {where!r} is being written by sweep {describe_owner(old)}; wait for it "
                    f"to finish (a crashed sweep's lease expires {LEASE_TTL:.0f} s after its last "
                    f"heartbeat), or use another store")
            with contextlib.suppress(FileNotFoundError):
                _sync(root.store.delete(_key(root)))
        _write(root, mine, exclusive=True)
        got = read_lease(root)
        if got is not None and int(got.get("run", 0)) == run_id:
            return
    raise StoreBusyError(f"store {where!r}: another sweep took the lease at the same moment; "
                         f"run the call again")


def release(root: zarr.Group, run_id: int) -> None:
    """Delete the lease if it still names ``run_id`` (a failing store is left as it is)."""
    with contextlib.suppress(OSError):
        lease = read_lease(root)
        if lease is not None and int(lease.get("run", 0)) == run_id:
            _sync(root.store.delete(_key(root)))


def check_owner(root: zarr.Group, run_id: int, where: str) -> None:
    """Raise :class:`StoreBusyError` unless the lease of the store names ``run_id`` (fencing)."""
    lease = read_lease(root)
    if lease is None or int(lease.get("run", 0)) != run_id:
        who = "nobody" if lease is None else f"sweep {describe_owner(lease)}"
        raise StoreBusyError(f"store {where!r}: this sweep (run {run_id}) lost its lease, now held by "
                             f"{who}; nothing more was written; run the call again to resume")


def _beat(root: zarr.Group, run_id: int, stop: threading.Event) -> None:
    while not stop.wait(HEARTBEAT):
        with contextlib.suppress(Exception):  # a failing store: the write path reports it
            lease = read_lease(root)
            if lease is None or int(lease.get("run", 0)) != run_id:
                return
            lease["heartbeat"] = time.time()
            _write(root, lease, exclusive=False)


@contextlib.contextmanager
def holding(root: zarr.Group, run_id: int, where: str) -> Iterator[None]:
    """Hold the lease for ``run_id`` (with a heartbeat thread) inside the block; release it after."""
    acquire(root, run_id, where)
    stop = threading.Event()
    beat = threading.Thread(target=_beat, args=(root, run_id, stop), daemon=True,
                            name="ufm-sweep-lease")
    beat.start()
    try:
        yield
    finally:
        stop.set()
        beat.join(timeout=1.0)
        release(root, run_id)
