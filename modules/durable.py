"""Writes that survive a crash: a file's bytes on disk before the rename that publishes it, and
the rename on disk before the writer goes on. A crash at any moment then leaves the old state or
the new one, never a half-written file under the final name."""

import os


def sync_folder(folder: str) -> None:
    """The folder's entries (a file created or renamed in it) on disk."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def sync_tree(root: str) -> None:
    """Every file and folder under root on disk."""
    for folder, _, files in os.walk(root):
        for name in files:
            with open(os.path.join(folder, name), "rb") as f:
                os.fsync(f.fileno())
        sync_folder(folder)


def replace_file(path: str, data) -> None:
    """Writes data (str or bytes) to path in one rename, its bytes and the rename on disk: a reader
    (a polling server) sees the old file or the new one, never half of it."""
    folder = os.path.dirname(os.path.abspath(path))
    tmp = os.path.join(folder, f".{os.path.basename(path)}.tmp-{os.getpid()}")
    with open(tmp, "wb" if isinstance(data, bytes) else "w") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    sync_folder(folder)


def publish_tree(staging: str, target: str) -> None:
    """Renames a fully written staging folder to target (refused if target is a non-empty folder),
    everything in it on disk first and the rename after."""
    sync_tree(staging)
    os.rename(staging, target)  # the commit point: from here on the new state is the state
    try:
        sync_folder(os.path.dirname(os.path.abspath(target)))
    except OSError:  # a file system that cannot fsync a folder: the rename stands all the same
        pass
