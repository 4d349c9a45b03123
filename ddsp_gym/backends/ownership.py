"""Who closes a device: its owner, on a Python thread, never the garbage collector.

A PortAudio stream calls back into Python through a cffi callback that lives in the
sounddevice ``Stream`` object. If that object is collected while the stream still
runs, PortAudio's audio thread calls freed memory and the interpreter aborts (an
env dropped without ``close()``, a notebook cell run twice). Closing it from a
finalizer is no better: the cyclic garbage collector may run on an audio thread,
where closing a stream deadlocks or crashes.

So every open stream and MIDI port is *adopted* here: this module holds it alive
until it is closed. Its owner (an ``AudioEngine``, a ``MidiOutput``) closes it
explicitly; if the owner is dropped instead, a ``weakref.finalize`` only moves the
resource to an orphan queue (no blocking work, safe on any thread), and
:func:`reap` closes the orphans on the next device operation of a Python thread.
At interpreter exit :func:`close_all` silences every MIDI port (all notes off) and
closes everything, before PortAudio itself shuts down.
"""

from __future__ import annotations

import atexit
import collections
import threading
import warnings
import weakref
from typing import Protocol


class Resource(Protocol):
    """Something that must be closed on a Python thread (a stream, a MIDI port)."""

    is_midi: bool  # a MIDI port: silenced first, closed last

    def close(self) -> None: ...


_open: dict[int, Resource] = {}  # id -> adopted resource, held alive until released
_orphans: collections.deque[Resource] = collections.deque()
_audio_threads: set[int] = set()  # idents of threads that ran our audio callbacks
_reaping = threading.Lock()


def adopt(owner: object, resource: Resource) -> weakref.finalize:
    """Hold ``resource`` open until :func:`release`; if ``owner`` is collected first,
    queue the resource for :func:`reap`. Returns the finalizer (``detach()`` it on
    an explicit close)."""
    token = id(resource)
    _open[token] = resource
    finalizer = weakref.finalize(owner, _orphan, token)
    finalizer.atexit = False  # close_all() handles exit, in the right order
    return finalizer


def release(resource: Resource) -> None:
    """The owner closes ``resource`` itself: stop holding it."""
    _open.pop(id(resource), None)


def _orphan(token: int) -> None:
    """The owner is gone: queue its resource. Runs wherever the collector runs."""
    resource = _open.pop(token, None)
    if resource is not None:
        _orphans.append(resource)


def mark_audio_thread() -> None:
    """Called from an audio callback: this thread must never close a device."""
    _audio_threads.add(threading.get_ident())


def on_audio_thread() -> bool:
    return threading.get_ident() in _audio_threads


def orphans() -> int:
    """How many dropped resources wait to be closed."""
    return len(_orphans)


def reap() -> int:
    """Close the resources whose owners were dropped without ``close()`` -> how many.

    Does nothing on an audio thread (the orphans wait for a Python thread) or while
    another thread reaps.
    """
    if on_audio_thread() or not _reaping.acquire(blocking=False):
        return 0
    try:
        resources = []
        while _orphans:
            resources.append(_orphans.popleft())
        close_in_order(resources)
    finally:
        _reaping.release()
    return len(resources)


def close_in_order(resources: list[Resource]) -> None:
    """Silence the MIDI ports, close the audio streams, then close the MIDI ports.

    Silence first, so a note left on stops even if a stream hangs; streams before
    ports, because a JACK MIDI client closes in tens of milliseconds once no
    stream of this process runs, but takes half a second while one does.
    """
    midi = [r for r in resources if getattr(r, "is_midi", False)]
    for port in midi:
        _quietly(port, "panic")
    for resource in [r for r in resources if not getattr(r, "is_midi", False)] + midi:
        _quietly(resource, "close")


def _quietly(resource: Resource, method: str) -> None:
    try:
        getattr(resource, method)()
    except Exception as err:  # noqa: BLE001 - one broken device must not keep others open
        warnings.warn(f"{method} of {resource!r} failed: {err}", RuntimeWarning, stacklevel=3)


def close_all() -> None:
    """At exit: all notes off on every MIDI port, then close every stream and port."""
    if on_audio_thread():
        return
    everything = list(_orphans) + list(_open.values())
    _orphans.clear()
    _open.clear()
    close_in_order(everything)


def register_exit_handler() -> None:
    """(Re-)register :func:`close_all` so it runs before handlers registered earlier.

    atexit runs handlers last-in first-out; sounddevice registers PortAudio's
    shutdown when it is imported, so this is called after that import: our streams
    are closed while PortAudio still runs.
    """
    atexit.unregister(close_all)
    atexit.register(close_all)


register_exit_handler()
