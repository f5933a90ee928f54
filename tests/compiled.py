"""Where the optional C extensions must have been built: a machine with a C compiler."""

import shutil
import sysconfig


def has_c_compiler() -> bool:
    """The compiler setuptools would build the extensions with (``CC``, or ``cc``) is on PATH."""
    cc = sysconfig.get_config_var("CC")
    return shutil.which(cc.split()[0] if cc else "cc") is not None
