"""Buffered writes on the event loop's thread, where they cannot wait for the disk for long:
what ``LocalFilesystem.write`` does before it hands a Twrite to a worker thread.

A thread's hand-off cost a 64 KiB Twrite more than the write itself (the server's CPU per MB
written was twice diod's, and its rate half). A buffered ``pwrite`` to a local file system
copies into the page cache and returns, except in three cases, each handled here:

* the file was opened with ``O_SYNC`` or ``O_DSYNC``: every write waits for the disk. Such
  files always get a thread.
* the write covers part of a page that holds file data not in the page cache: the kernel reads
  that page from the disk first. The pages at either end of the write are asked about with
  ``cachestat`` (Linux 6.5; before it, and wherever it is refused, such a write gets a thread);
  whole pages, and pages past the end of the file, are never read.
* the kernel throttles a writer while too much of memory is dirty (in pauses of at most 200 ms,
  its ``MAX_PAUSE``), and ext4 may wait for its journal. Neither can be asked about beforehand,
  so each write is timed, in pieces of at most ``PIECE`` bytes: one that took longer than
  ``SLOW`` seconds and slept in the kernel (a voluntary context switch of the thread; a
  thread merely preempted on a busy machine is not a write waiting for the disk, and does not
  count) sends the rest of that Twrite, and every write for a while after, to
  threads. The while doubles each time it happens again soon (from 1 s up to 64 s), so a disk
  that cannot keep up holds the loop for at most one piece's pause per minute or so.

That is the bound: the loop waits for no disk read, and for throttling or the journal only in
one piece per back-off period.
"""

from __future__ import annotations

import ctypes
import fcntl
import os
import resource
import time
from collections.abc import Callable

from .syscalls import syscall

__all__ = ["LoopWrites", "PIECE", "SLOW"]

PIECE = 64 * 1024  # bytes written per timed pwrite
SLOW = 0.005  # seconds: a page-cache write of PIECE bytes takes tens of microseconds
_FIRST_BACKOFF = 1.0
_MAX_BACKOFF = 64.0
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
_SYS_CACHESTAT = 451  # one number on every Linux architecture but alpha
_SYNC_FLAGS = getattr(os, "O_SYNC", 0) | getattr(os, "O_DSYNC", 0)
_RUSAGE_THREAD = getattr(resource, "RUSAGE_THREAD", resource.RUSAGE_SELF)


def voluntary_switches() -> int:
    """How many times this thread has slept (given up the CPU itself) so far."""
    return resource.getrusage(_RUSAGE_THREAD).ru_nvcsw


class _Range(ctypes.Structure):
    _fields_ = [("off", ctypes.c_uint64), ("len", ctypes.c_uint64)]


class _CacheStat(ctypes.Structure):
    _fields_ = [("nr_cache", ctypes.c_uint64), ("nr_dirty", ctypes.c_uint64), ("nr_writeback", ctypes.c_uint64),
                ("nr_evicted", ctypes.c_uint64), ("nr_recently_evicted", ctypes.c_uint64)]


def page_cached(fd: int, page_start: int) -> bool:
    """Whether the page of ``fd`` at ``page_start`` is in the page cache (False when that
    cannot be told)."""
    if syscall is None:
        return False
    span, stats = _Range(page_start, _PAGE), _CacheStat()
    if syscall(_SYS_CACHESTAT, fd, ctypes.byref(span), ctypes.byref(stats), 0) != 0:
        return False  # ENOSYS before 6.5, EPERM for a file this process may not write
    return bool(stats.nr_cache)


class LoopWrites:
    """The state of one handler's writes on the loop's thread: the back-off after a slow one.
    ``clock`` and ``sleeps`` (``voluntary_switches``) are a test's own to make a write look slow."""

    def __init__(self, clock: Callable[[], float] = time.monotonic,
                 sleeps: Callable[[], int] = voluntary_switches) -> None:
        self.clock = clock
        self.sleeps = sleeps
        self.threads_until = 0.0  # before this, every write goes to a thread
        self.backoff = _FIRST_BACKOFF
        self.last_slow = float("-inf")

    def write(self, fd: int, data: bytes | bytearray | memoryview, offset: int,
              open_flags: int | None = None) -> tuple[int, bool]:
        """Writes what may be written here of ``data`` at ``offset``: (bytes written, whether
        that is the answer). Not the answer (False): the caller writes the rest, from
        ``offset`` plus the count, in a thread. An error before any byte is written raises.
        ``open_flags``: those ``fd`` was opened with, when the caller keeps them (else asked)."""
        clock = self.clock
        if clock() < self.threads_until or not self._no_disk_read(fd, offset, len(data), open_flags):
            return 0, False
        view = memoryview(data).cast("B") if not isinstance(data, bytes) else data
        total = len(view)
        written = 0
        while written < total:
            # pieces end on page boundaries of the file, so that none covers a page in part
            # that the write as a whole covers
            stop = total if total - written <= PIECE else (offset + written + PIECE) // _PAGE * _PAGE - offset
            piece = view[written:stop] if written or stop < total else view
            started, slept = clock(), self.sleeps()
            try:
                count = os.pwrite(fd, piece, offset + written)
            except OSError:
                if written:
                    return written, True  # as one pwrite would have: the bytes that made it
                raise
            took = clock() - started
            written += count
            if count < len(piece):
                return written, True  # the kernel's short write (a full disk, a size limit)
            if took > SLOW and self.sleeps() != slept:
                self._slow(clock())
                return written, written == total
        return written, True

    def _no_disk_read(self, fd: int, offset: int, length: int, open_flags: int | None) -> bool:
        """Whether writing ``length`` bytes at ``offset`` makes the kernel read no page from
        the disk: the file is not synchronous, and the pages the write covers only in part
        hold no file data, or are in the page cache. The file's size is asked only when that
        depends on it (an append, a write that starts or ends inside a page)."""
        status = fcntl.fcntl(fd, fcntl.F_GETFL) if open_flags is None else open_flags
        if status & _SYNC_FLAGS:
            return False
        size = -1  # not asked yet
        if status & os.O_APPEND:
            offset = size = os.fstat(fd).st_size  # Linux appends whatever the offset
        end = offset + length
        head = offset - offset % _PAGE
        if head < offset:
            size = os.fstat(fd).st_size if size < 0 else size
            if head < size and not page_cached(fd, head):
                return False
        tail = end - end % _PAGE
        if tail < end and tail >= offset:
            size = os.fstat(fd).st_size if size < 0 else size
            if end < size and not page_cached(fd, tail):
                return False
        return True

    def _slow(self, now: float) -> None:
        # a slow write soon after the last back-off ended doubles the next one
        if now - self.last_slow > 4 * self.backoff:
            self.backoff = _FIRST_BACKOFF
        else:
            self.backoff = min(2 * self.backoff, _MAX_BACKOFF)
        self.last_slow = now
        self.threads_until = now + self.backoff
