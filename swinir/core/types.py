"""Type aliases shared by every layer."""
from __future__ import annotations

import os
from typing import Union

#: a file-system path as callers pass it
PathLike = Union[str, "os.PathLike[str]"]
