"""Pushes a model version so that TF Serving sees it complete or not at all.

TFX's own Pusher copies file by file straight into <base>/<version>/, so a server polling the
directory can find, and try to load, half a model. Here the copy goes to a hidden staging
directory in the same folder (TF Serving only considers integer names) and becomes
<base>/<version> with one rename, which is atomic on a local or mounted POSIX file system; the
copy's files and folders are on disk (fsync) before that rename, and the rename before the push
returns, so a crash at any moment leaves the old versions or the new one complete. A staging copy
left by a push that died is removed by a later push; one still being copied never is.
"""

import json
import os
import re
import shutil
import socket
import time
from typing import Callable, Dict, Optional, Tuple

from modules import durable
from modules.push_layout import RELEASE_FILE, STAGING_PREFIX, version_dirs, version_of


def next_version(base_dir: str, now: Optional[float] = None) -> int:
    """Seconds since the epoch (TFX's convention), but always above every existing version and
    never the name of something already there."""
    names = os.listdir(base_dir) if os.path.isdir(base_dir) else []
    existing = [v for v in map(version_of, names) if v is not None]
    version = max([int(now if now is not None else time.time())] + [v + 1 for v in existing])
    while str(version) in names:
        version += 1
    return version


def already_pushed(base_dir: str, model_uri: str) -> Optional[Tuple[int, str]]:
    """(version, directory) already holding this Model artifact (a re-run that blessed the same
    model again), or None: re-pushing it would only make TF Serving reload identical weights."""
    for version, path in sorted(version_dirs(base_dir).items(), reverse=True):
        release = os.path.join(path, RELEASE_FILE)
        if os.path.isfile(release):
            with open(release) as f:
                if json.load(f).get("lineage", {}).get("model") == model_uri:
                    return version, path
    return None


STALE_STAGING_SECONDS = 3600  # another host's staging copy untouched this long belongs to a dead push
_HOST = re.sub(r"[^A-Za-z0-9.]", "_", socket.gethostname())[:64] or "host"


def _staging_name(version: int) -> str:
    return f"{STAGING_PREFIX}{version}-{_HOST}-{os.getpid()}"


def _running(name: str, path: str, now: float) -> bool:
    """Whether the push that made this staging directory may still be copying: on this host, while
    its process lives; on another host (pods sharing a volume), until it is STALE_STAGING_SECONDS old."""
    parts = name[len(STAGING_PREFIX) :].rsplit("-", 2)
    if len(parts) == 3 and parts[2].isdigit():
        host, pid = parts[1], int(parts[2])
        if host == _HOST:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return False
            except PermissionError:
                return True
            return True
    try:
        return now - os.path.getmtime(path) < STALE_STAGING_SECONDS
    except OSError:
        return False


def remove_stale_staging(base_dir: str) -> list:
    """Deletes staging directories left by pushes that died (never one still copying); returns
    their names."""
    names = [n for n in os.listdir(base_dir) if n.startswith(STAGING_PREFIX)] if os.path.isdir(base_dir) else []
    now, stale = time.time(), []
    for name in names:
        path = os.path.join(base_dir, name)
        if not _running(name, path, now):
            shutil.rmtree(path, ignore_errors=True)
            stale.append(name)
    return stale


def push(
    model_dir: str,
    base_dir: str,
    extra_files: Dict[str, str],
    copytree: Callable = shutil.copytree,
    version: Optional[int] = None,
) -> str:
    """Copies model_dir plus extra_files {name in the version dir: source path} to base_dir/<version>.

    Returns the version directory. On any failure the staging copy is removed and nothing is
    visible under an integer name. `copytree` is shutil.copytree, replaceable to test failures."""
    if "://" in base_dir:
        raise ValueError(
            f"push directory {base_dir}: object stores have no atomic rename, so a serving "
            "model server could load half a version; push to a mounted file system (a "
            "PersistentVolumeClaim, NFS, local disk) that the server reads"
        )
    os.makedirs(base_dir, exist_ok=True)
    remove_stale_staging(base_dir)
    version = version or next_version(base_dir)
    final = os.path.join(base_dir, str(version))
    if os.path.exists(final):
        raise FileExistsError(f"version {version} already exists in {base_dir}")
    staging = os.path.join(base_dir, _staging_name(version))
    try:
        copytree(model_dir, staging)
        for name, source in extra_files.items():
            shutil.copyfile(source, os.path.join(staging, name))
        durable.publish_tree(staging, final)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return final
