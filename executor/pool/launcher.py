"""The launcher of pre-started `default` containers (images/launcher/launch.c): where the
executor finds it, and its copy in the executor's own iofs folder, which the engine
bind-mounts into each pre-started container (that folder's host path is known even when
the executor runs in a container: `iofs_host_dir`).
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

log = logging.getLogger(__name__)

# Built by images/build.sh (gcc -static, from Debian's packages) next to this module.
PACKAGED = Path(__file__).with_name("launch")
NAME = "launch"
MISSING = "the launcher of pre-started containers is missing: build it with images/build.sh"


def install(root: Path) -> Path | None:
    """Copies the launcher into `root`, readable and executable by any user; None (and a
    warning) when it was not built: pre-starts then fail and calls start cold."""
    if not PACKAGED.is_file():
        log.warning("%s (%s)", MISSING, PACKAGED)
        return None
    target = root / NAME
    shutil.copyfile(PACKAGED, target)
    os.chmod(target, 0o555)
    return target
