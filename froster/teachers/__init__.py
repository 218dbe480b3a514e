"""Frozen teachers: any module with ``encode_image``/``encode_text``, and open_clip models."""
from froster.teachers.module_teacher import ModuleTeacher
from froster.teachers.open_clip_teacher import OpenCLIPTeacher

__all__ = ["ModuleTeacher", "OpenCLIPTeacher"]
