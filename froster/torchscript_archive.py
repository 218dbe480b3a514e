"""Read the weights of a TorchScript archive without running anything in it.

OpenAI published CLIP as TorchScript archives (``ViT-B-16.pt``). ``torch.jit.load`` compiles the
archive's code and calls the ``__setstate__`` method of every object that declares one, so
opening a stranger's archive with it runs the stranger's code (for example one that writes a
file through ``torch.from_file(..., shared=True)``). The weights need none of that: the archive is
a zip of pickles plus raw storages,

::

    <root>/data.pkl            the module tree: objects of `__torch__.*` classes whose state is a
                               dict of attributes (parameters, buffers, submodules, flags)
    <root>/data/<key>          the raw bytes of each storage data.pkl refers to
    <root>/constants.pkl       constants of the compiled code (not part of the state dict)
    <root>/code/__torch__/...  the compiled code: per class, `__parameters__` and `__buffers__`
    <root>/version, byteorder, ...

and :func:`read_torchscript_state_dict` reads it with a restricted unpickler: every
``__torch__`` object stays inert data (no method of it is called), the only callables are a
tensor rebuild written here, ``OrderedDict`` and a few type-tag helpers that return their
argument (storage types resolve to their dtype, ``torch.device`` to ``str``), and any other
global is refused. The compiled code is only read as text, for the names of parameters and
buffers. The result is what ``torch.jit.load(path).state_dict()`` gives, names and tensors alike.

Objects that restore themselves with their own code (a ``__setstate__`` in the archive, or a
state that is not a dict of attributes) cannot be named without running that code; such archives
are refused, and ``trust_code=True`` (see the trust model in ``docs/api.md``) opens them with
``torch.jit.load`` instead.
"""
from __future__ import annotations

import os
import pickle
import re
import sys
import zipfile
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Optional, Union

import torch

PathLike = Union[str, os.PathLike]
TORCHSCRIPT_MODULE = "__torch__"

__all__ = [
    "TorchScriptArchiveError",
    "TorchScriptObject",
    "archive_root",
    "is_torchscript_archive",
    "read_torchscript_state_dict",
]

_STORAGE_DTYPES = {
    "FloatStorage": torch.float32,
    "DoubleStorage": torch.float64,
    "HalfStorage": torch.float16,
    "BFloat16Storage": torch.bfloat16,
    "ComplexFloatStorage": torch.complex64,
    "ComplexDoubleStorage": torch.complex128,
    "LongStorage": torch.int64,
    "IntStorage": torch.int32,
    "ShortStorage": torch.int16,
    "CharStorage": torch.int8,
    "ByteStorage": torch.uint8,
    "BoolStorage": torch.bool,
}


def _same(value: Any) -> Any:
    return value


def _without_type_tag(value: Any, type_str: Any) -> Any:
    return value


# The type-tag helpers of TorchScript pickles (torch/jit/_pickle.py): each returns its argument.
_JIT_PICKLE_HELPERS = {
    "build_intlist": _same,
    "build_tensorlist": _same,
    "build_doublelist": _same,
    "build_boollist": _same,
    "restore_type_tag": _without_type_tag,
}
_CLASS_HEADER = re.compile(r"^class\s+(\w+)\s*\(\s*([\w.]*)\s*\)\s*:", re.M)
_MEMBER_LIST = re.compile(r"^\s+__(parameters|buffers)__\s*=\s*\[([^\]]*)\]", re.M)
_SETSTATE = re.compile(r"^\s+def\s+__setstate__\s*\(", re.M)


class TorchScriptArchiveError(ValueError):
    """A TorchScript archive whose weights cannot be read without running its code, or a broken one."""


class TorchScriptObject:
    """An object of a TorchScript class, kept as inert data: its class name and its pickled state.

    Subclassed once per class name (the unpickler's ``NEWOBJ`` needs a type); nothing of the
    archive's class ever runs.
    """

    qualified_name = TORCHSCRIPT_MODULE
    state: Any = None  # an object the pickle never BUILDs has no state

    def __init__(self, *args: Any) -> None:  # REDUCE instead of NEWOBJ: the arguments are data too
        self.state: Any = args

    def __setstate__(self, state: Any) -> None:  # BUILD: keep the state as it is
        self.state = state

    def __repr__(self) -> str:
        return f"<TorchScript object {self.qualified_name}>"


@dataclass(frozen=True)
class _ClassDeclaration:
    """What the archive's code says about one class."""

    is_module: bool
    parameters: Optional[tuple[str, ...]]  # None: not declared (then every tensor attribute counts)
    buffers: Optional[tuple[str, ...]]
    has_setstate: bool


def archive_root(archive: zipfile.ZipFile) -> Optional[str]:
    """The folder every member of a torch zip lives in (``torch`` requires one), or ``None``."""
    names = archive.namelist()
    if not names or "/" not in names[0]:
        return None
    root = names[0].split("/", 1)[0]
    return root if all(name.startswith(root + "/") for name in names) else None


def is_torchscript_archive(path: PathLike) -> bool:
    """Whether ``path`` is laid out as a TorchScript archive.

    That is a torch zip (every member in one root folder) with ``<root>/data.pkl`` and
    ``<root>/constants.pkl``: exactly the files that make ``torch.load`` hand a zip to
    ``torch.jit.load``, so no such file ever reaches ``torch.load``. A ``constants.pkl`` deeper in
    the tree (``<root>/foo/constants.pkl``) does not count.
    """
    if not os.path.isfile(path) or not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        root = archive_root(archive)
        names = set(archive.namelist())
    return root is not None and f"{root}/data.pkl" in names and f"{root}/constants.pkl" in names


def read_torchscript_state_dict(path: PathLike, *, trust_code: bool = False) -> dict[str, Any]:
    """The state dict of a TorchScript archive, as ``torch.jit.load(path).state_dict()`` names it.

    Args:
        path: A TorchScript archive (:func:`is_torchscript_archive`).
        trust_code: Open the archive with ``torch.jit.load``, which runs the code it carries.
            Only for files you trust (see ``docs/api.md``); the default runs nothing.

    Returns:
        ``{name: tensor}`` on the CPU, parameters and buffers of every module, e.g.
        ``visual.conv1.weight`` and ``input_resolution`` for OpenAI's archives.

    Raises:
        TorchScriptArchiveError: An object restores itself with its own code, the pickle names a
            global other than the tensor rebuild and TorchScript's type tags, or a storage is
            missing or too short.
    """
    source = os.fspath(path)
    if trust_code:
        return dict(torch.jit.load(source, map_location="cpu").state_dict())
    if not is_torchscript_archive(source):
        raise TorchScriptArchiveError(f"{source!r} is not a TorchScript archive (no <root>/data.pkl and <root>/constants.pkl)")
    with zipfile.ZipFile(source) as archive:
        reader = _ArchiveReader(archive, source)
        root_object = reader.load("data")
        if not isinstance(root_object, TorchScriptObject) or not reader.declaration(root_object).is_module:
            raise TorchScriptArchiveError(f"{source!r}: data.pkl holds {type(root_object).__name__}, not a TorchScript module")
        state: dict[str, Any] = {}
        reader.collect(root_object, "", state, on_path=())
    return state


class _ArchiveReader:
    """Unpickles one archive's pickles and walks the module tree; nothing of the archive runs."""

    def __init__(self, archive: zipfile.ZipFile, source: str):
        self.archive = archive
        self.source = source
        self.root = archive_root(archive)
        self.names = set(archive.namelist())
        self.classes: dict[str, type] = {}
        self.declarations: dict[str, _ClassDeclaration] = {}
        byteorder = self._read_text("byteorder") or "little"
        if byteorder != sys.byteorder:
            raise TorchScriptArchiveError(f"{source!r} stores {byteorder}-endian tensors; this machine is {sys.byteorder}-endian")

    def _read_text(self, name: str) -> Optional[str]:
        member = f"{self.root}/{name}"
        return self.archive.read(member).decode("utf-8", errors="replace").strip() if member in self.names else None

    def load(self, pickle_name: str) -> Any:
        """Unpickle ``<root>/<pickle_name>.pkl`` with storages from ``<root>/<pickle_name>/``."""
        data = self.archive.read(f"{self.root}/{pickle_name}.pkl")
        try:
            return _RestrictedUnpickler(data, self, f"{self.root}/{pickle_name}/").load()
        except TorchScriptArchiveError:
            raise
        except Exception as error:  # a malformed pickle: REDUCE on a dtype, truncated data, ...
            raise TorchScriptArchiveError(f"{self.source!r}: {pickle_name}.pkl is not a readable TorchScript pickle ({error})") from error

    def inert_class(self, qualified_name: str) -> type:
        if qualified_name not in self.classes:
            self.classes[qualified_name] = type(qualified_name.rsplit(".", 1)[-1], (TorchScriptObject,), {"qualified_name": qualified_name})
        return self.classes[qualified_name]

    def declaration(self, obj: TorchScriptObject) -> _ClassDeclaration:
        """What ``code/`` declares about the class of ``obj`` (read as text, never compiled)."""
        name = obj.qualified_name
        if name not in self.declarations:
            module, _, class_name = name.rpartition(".")
            code = self._read_text("code/" + module.replace(".", "/") + ".py") or ""
            self.declarations[name] = _parse_declaration(code, class_name)
        return self.declarations[name]

    def collect(self, obj: TorchScriptObject, prefix: str, state: dict[str, Any], on_path: tuple[int, ...]) -> None:
        """Add the parameters and buffers of module ``obj`` and its submodules, as ``nn.Module.state_dict`` orders them."""
        where = prefix.rstrip(".") or "<root>"
        declaration = self.declaration(obj)
        if declaration.has_setstate or not isinstance(obj.state, dict):
            raise TorchScriptArchiveError(
                f"{self.source!r}: the module at {where} ({obj.qualified_name}) restores itself with its own "
                f"{'__setstate__ code' if declaration.has_setstate else 'code from a ' + type(obj.state).__name__ + ' state'}; "
                "its weights cannot be read without running that code. Only if you trust the file, pass trust_code=True"
            )
        if id(obj) in on_path:
            raise TorchScriptArchiveError(f"{self.source!r}: the module at {where} contains itself")
        tensors = {k: v for k, v in obj.state.items() if isinstance(v, torch.Tensor)}
        if declaration.parameters is None:  # no code for the class: every tensor attribute counts
            groups: tuple[tuple[str, ...], ...] = (tuple(tensors),)
        else:  # parameters, then buffers, each in attribute order (as nn.Module.state_dict)
            groups = (declaration.parameters, declaration.buffers or ())
        for members in groups:
            state.update((prefix + k, v) for k, v in tensors.items() if k in members)
        for key, value in obj.state.items():
            if isinstance(value, TorchScriptObject) and self.declaration(value).is_module:
                self.collect(value, f"{prefix}{key}.", state, on_path + (id(obj),))


def _parse_declaration(code: str, class_name: str) -> _ClassDeclaration:
    headers = list(_CLASS_HEADER.finditer(code))
    for index, header in enumerate(headers):
        if header.group(1) != class_name:
            continue
        body = code[header.end(): headers[index + 1].start() if index + 1 < len(headers) else len(code)]
        members = {kind: tuple(re.findall(r'"([^"]*)"', names)) for kind, names in _MEMBER_LIST.findall(body)}
        return _ClassDeclaration(
            is_module=header.group(2) == "Module",
            parameters=members.get("parameters"),
            buffers=members.get("buffers", ()),
            has_setstate=_SETSTATE.search(body) is not None,
        )
    # No code for the class: read it as a module whose tensor attributes are all weights.
    return _ClassDeclaration(is_module=True, parameters=None, buffers=None, has_setstate=False)


class _RestrictedUnpickler(pickle.Unpickler):
    """A pickle reader that resolves only TorchScript classes (inert) and the tensor rebuild."""

    def __init__(self, data: bytes, reader: _ArchiveReader, storage_folder: str):
        import io

        super().__init__(io.BytesIO(data))
        self.reader = reader
        self.storage_folder = storage_folder
        self.storages: dict[str, torch.Tensor] = {}

    def find_class(self, module: str, name: str) -> Any:
        if module == TORCHSCRIPT_MODULE or module.startswith(TORCHSCRIPT_MODULE + "."):
            return self.reader.inert_class(f"{module}.{name}")
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return _rebuild_tensor
        if (module, name) == ("collections", "OrderedDict"):
            return OrderedDict
        if module == "torch" and name in _STORAGE_DTYPES:
            return _STORAGE_DTYPES[name]
        if module == "torch.jit._pickle" and name in _JIT_PICKLE_HELPERS:
            return _JIT_PICKLE_HELPERS[name]
        if (module, name) == ("torch", "device"):
            return str  # a device attribute stays its name
        raise TorchScriptArchiveError(
            f"{self.reader.source!r} refers to {module}.{name}, which a TorchScript weights file does not need; "
            "refused without running it. Only if you trust the file, pass trust_code=True"
        )

    def persistent_load(self, pid: Any) -> torch.Tensor:
        """``('storage', dtype, key, location, numel)`` -> the flat storage as a 1-D tensor."""
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage" and isinstance(pid[1], torch.dtype)):
            raise TorchScriptArchiveError(f"{self.reader.source!r}: unexpected persistent id {pid!r:.80}")
        _, dtype, key, _location, numel = pid
        if not isinstance(key, str) or not isinstance(numel, int) or numel < 0:
            raise TorchScriptArchiveError(f"{self.reader.source!r}: malformed storage reference {pid!r:.80}")
        if key not in self.storages:
            member = self.storage_folder + key
            if member not in self.reader.names:
                raise TorchScriptArchiveError(f"{self.reader.source!r}: storage {member} is missing")
            raw = self.reader.archive.read(member)
            itemsize = torch.empty((), dtype=dtype).element_size()
            if len(raw) < numel * itemsize:
                raise TorchScriptArchiveError(
                    f"{self.reader.source!r}: storage {member} holds {len(raw)} bytes, {numel} x {dtype} need {numel * itemsize}"
                )
            flat = torch.frombuffer(bytearray(raw[: numel * itemsize]), dtype=dtype) if numel else torch.empty(0, dtype=dtype)
            self.storages[key] = flat
        return self.storages[key]


def _rebuild_tensor(storage: Any, storage_offset: Any, size: Any, stride: Any, *_: Any) -> torch.Tensor:
    """``torch._utils._rebuild_tensor_v2`` on a flat storage; ``as_strided`` checks the bounds."""
    if not isinstance(storage, torch.Tensor) or not isinstance(storage_offset, int):
        raise TorchScriptArchiveError(f"malformed tensor record (storage {type(storage).__name__}, offset {storage_offset!r:.40})")
    if not all(isinstance(n, int) for n in (*size, *stride)):
        raise TorchScriptArchiveError(f"malformed tensor record (size {size!r:.80}, stride {stride!r:.80})")
    try:
        return storage.as_strided(tuple(size), tuple(stride), storage_offset)
    except RuntimeError as error:
        raise TorchScriptArchiveError(f"tensor record outside its storage: {error}") from error
