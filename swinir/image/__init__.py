"""Image files: reading and writing at native bit depth, with alpha, ICC and EXIF orientation.

``image`` holds the :class:`Image` dataclass and the depth conversions, ``read`` decodes,
``write`` encodes (``png`` is the small PNG writer it needs), ``listing`` expands inputs.
"""
from swinir.image.image import Image, from_float, to_float, to_uint8
from swinir.image.listing import IMAGE_EXTENSIONS, is_image_path, list_images
from swinir.image.read import decode_image, read_image
from swinir.image.write import write_image

__all__ = [
    "IMAGE_EXTENSIONS",
    "Image",
    "decode_image",
    "from_float",
    "is_image_path",
    "list_images",
    "read_image",
    "to_float",
    "to_uint8",
    "write_image",
]
