"""Built-in students. Installed as ``froster.adapters``; importing it registers every student."""
from . import vclip  # noqa: F401
from . import vificlip  # noqa: F401
from . import lora  # noqa: F401
from . import xclip  # noqa: F401
from . import timm_vit  # noqa: F401
