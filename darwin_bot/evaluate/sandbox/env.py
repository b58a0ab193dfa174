"""The environment agent code runs with: an allowlist of the host's, never a credential."""

from __future__ import annotations

import os
import re
import site
import sys
from collections.abc import Mapping
from pathlib import Path

# The environment starts empty; only these names (and the prefixes below) pass,
# and then only if they do not look like a credential.
ENV_ALLOW: frozenset[str] = frozenset(
    {
        "LANG",
        "LC_ALL",
        "LC_CTYPE",
        "TZ",
        "TERM",
        "CUDA_VISIBLE_DEVICES",
        "NVIDIA_VISIBLE_DEVICES",
        "CUDA_DEVICE_ORDER",
        "OMP_NUM_THREADS",
        "MKL_NUM_THREADS",
        "OPENBLAS_NUM_THREADS",
        "PYTHONHASHSEED",
        "PYTHONIOENCODING",
        "PYTHONWARNINGS",
    }
)
ENV_ALLOW_PREFIXES: tuple[str, ...] = ("DARWIN_",)
SECRET_NAME = re.compile(r"TOKEN|SECRET|KEY|PASSW|CREDENTIAL|AUTH|COOKIE|SESSION", re.IGNORECASE)


def scrub_env(extra: Mapping[str, str] | None = None, *, home: str = "/tmp") -> dict[str, str]:
    """The environment for agent code: an allowlist of the host's, never a credential.

    ``extra`` (the ``DARWIN_*`` contract variables) is added last and is
    filtered the same way, so a caller cannot pass a secret by mistake.
    """
    env: dict[str, str] = {}
    for name, value in os.environ.items():
        if name in ENV_ALLOW or name.startswith(ENV_ALLOW_PREFIXES):
            env[name] = value
    env.update(extra or {})
    env = {k: v for k, v in env.items() if not SECRET_NAME.search(k)}
    python_bin = str(Path(sys.executable).parent)
    env.update(
        {
            "PATH": f"{python_bin}:/usr/local/bin:/usr/bin:/bin",
            "HOME": home,
            "USER": "darwin",
            "LOGNAME": "darwin",
            "TMPDIR": "/tmp" if home == "/tmp" else home,
            "XDG_CACHE_HOME": f"{home}/.cache",
            "MPLCONFIGDIR": f"{home}/.matplotlib",
            "PYTHONDONTWRITEBYTECODE": "1",  # the tree is read-only
            "PYTHONUNBUFFERED": "1",  # so the log tail is current when it is killed
        }
    )
    if user_site() is not None:  # HOME differs inside; point Python at the real user site
        env["PYTHONUSERBASE"] = site.getuserbase()
    else:
        env["PYTHONNOUSERSITE"] = "1"
    return env


def user_site() -> Path | None:
    """The user's site-packages (``pip install --user``) when Python would use it."""
    path = Path(site.getusersitepackages())
    return path if site.ENABLE_USER_SITE and path.is_dir() else None
