"""Portable snapshot of a user's namespace: brig's fallback session format.

brig's primary session snapshot is raw guest memory, which only the identical guest build can
restore. This module is the fallback for any other build of CPython 3.11: it serialises the
names of a namespace (the ``__main__`` dict of a session) so that a fresh interpreter can get
them back, saving what the user defined *by value* (the idea of cloudpickle, written here).

API
    dumps(namespace) -> (data, skipped)   skipped: {name: reason} for names not saved
    loads(data, namespace) -> failed      failed:  {name: reason} for names not restored;
                                          ValueError if data is not a readable snapshot

Format (all integers big-endian)
    header  magic b"BRIGNS\\r\\n" (8) | format version u16 | Python major u8, minor u8
            | body length u64 | CRC-32 of the body u32
    body    component count u32, then per component:
                name count u32, each name as u32 length + UTF-8,
                blob length u64, blob
    A blob is a pickle (protocol 5) of a dict {name: value} holding the names of one
    component. Names whose values share a mutable object (a list, an instance, a class or a
    function saved by value, ...) are in the same component, so the sharing survives; names that
    share nothing are in separate components, so one that fails to load (say, its module is
    gone) does not take the others with it (the names of a failed component all get its
    reason). Two persistent ids appear in blobs: "namespace" (the dict being loaded into)
    and ("module", name) (that module's __dict__).
    Blobs refer by name to the helpers of this module (_make_function, _make_class, ...), so
    those names are part of the format: change them only with the version.

How values are saved
    * plain data, and objects of importable classes: ordinary pickling (shared references
      and cycles are kept by pickle's memo);
    * functions whose globals are the namespace, and functions / classes that cannot be found
      again by module + qualified name (defined in __main__, inside a function, ...): by value.
      A function is its code (marshal, stable within one Python minor version), name,
      closure cells, defaults, kwdefaults, annotations, doc, qualname, module and __dict__.
      Its globals are a reference to "the namespace being loaded into", so after a restore
      it sees the restored names. A class is its metaclass, name, bases and a skeleton
      (qualname, module, __slots__), then the rest of its __dict__ set on it afterwards (so a
      class attribute may refer to the class or its instances). Enums are rebuilt through
      their metaclass with their members and methods;
    * modules: by name, re-imported on load (the name they are bound to is just the key, so
      ``import numpy as np`` stays ``np``); the dict of an importable module likewise;
    * functions, classes and other globals of importable modules: by reference, as pickle does.
    Names Python itself puts in a namespace (__builtins__, __name__, __doc__, __loader__,
    __spec__, __package__, __file__, __cached__, __warningregistry__, an empty
    __annotations__) are not saved; loads leaves the target's own.

What is skipped, with a reason: generators, coroutines, async generators, frames,
tracebacks, open files (other than in-memory StringIO/BytesIO; sys.stdout and friends are
saved by reference), sockets, and anything whose pickling raises (locks, ...). A name is
skipped whole if anything it refers to cannot be saved.

Known limits: caches of functools.lru_cache functions start empty; class creation hooks are
not replayed faithfully (a metaclass runs again on a skeleton; __init_subclass__ runs again
without the class keywords, or not at all if it needs them); ABC virtual subclass
registrations are lost; functools.singledispatch functions and weak references cannot be
saved; objects reached through an importable module but stored by value
(``a = some_module.some_list``) come back as copies; source lines of by-value code are not
saved (tracebacks show no source); very deep structures exceed pickle's recursion limit and
are skipped. Loading costs about what pickle.loads of the same objects costs; saving pickles
each name once to find what is shared (plus once more per multi-name component).
"""
import binascii
import importlib
import io
import marshal
import pickle
import struct
import sys
import types

__all__ = ["dumps", "loads", "MAGIC", "VERSION"]

MAGIC = b"BRIGNS\r\n"  # \r\n catches text-mode mangling, as PNG's signature does
VERSION = 1
_HEADER = struct.Struct(">8sHBBQI")
_U32 = struct.Struct(">I")
_U64 = struct.Struct(">Q")

# Names the interpreter puts into a module namespace; the target namespace has its own.
_PYTHON_OWNED = frozenset({
    "__builtins__", "__name__", "__doc__", "__loader__", "__spec__", "__package__",
    "__file__", "__cached__", "__warningregistry__",
})

_UNPORTABLE = {
    types.GeneratorType: "generator objects cannot be saved portably",
    types.CoroutineType: "coroutine objects cannot be saved portably",
    types.AsyncGeneratorType: "async generator objects cannot be saved portably",
    types.FrameType: "frame objects cannot be saved portably",
    types.TracebackType: "traceback objects cannot be saved portably",
}
_FILE_REASON = "open file objects cannot be saved portably"
_SOCKET_REASON = "sockets cannot be saved portably"

# Objects whose identity carries no meaning (immutable values, built-in functions): sharing one
# between two names does not tie the names into one component.
_VALUE_TYPES = frozenset({
    str, bytes, tuple, int, float, complex, bool, frozenset, range, slice, type(None),
    type(Ellipsis), type(NotImplemented), types.BuiltinFunctionType, types.MethodDescriptorType,
    types.WrapperDescriptorType, types.MethodWrapperType, types.ClassMethodDescriptorType,
    types.GetSetDescriptorType, types.MemberDescriptorType,
})

# Module-level sentinels that code compares by identity (dataclasses checks `is MISSING`,
# `is _FIELD`, ...): they must come back as the module's own objects, not as copies.
_SINGLETON_NAMES = {
    "dataclasses": ("MISSING", "KW_ONLY", "_FIELD", "_FIELD_CLASSVAR", "_FIELD_INITVAR",
                    "_HAS_DEFAULT_FACTORY", "_EMPTY_METADATA"),
    "os": ("environ", "environb"),
}

_HEAPTYPE = 1 << 9  # Py_TPFLAGS_HEAPTYPE: the class was made at run time, not in C


class _Unportable(pickle.PicklingError):
    """A value that cannot be saved portably; the message is the reason shown to the user."""


# --- helpers that blobs call when they are loaded (their names are part of the format) ---

def _make_cell():
    return types.CellType()


def _set_cell(cell, value):
    cell.cell_contents = value


def _make_function(code, globals_, name, closure):
    return types.FunctionType(code, globals_, name, None, closure)


def _set_function_state(func, state):
    attrs = state.pop("__dict__", None)
    for key, value in state.items():
        setattr(func, key, value)
    if attrs:
        func.__dict__.update(attrs)


def _make_class(metaclass, name, bases, skeleton):
    def create():
        return types.new_class(name, bases, {"metaclass": metaclass},
                               lambda ns: ns.update(skeleton))
    try:
        return create()
    except TypeError:
        # Most likely a base's __init_subclass__ wanting the class keywords
        # (class A(Base, flag=1)), which Python does not keep. What it did is in the saved
        # __dict__ anyway, so create the class once more without calling it.
        owner = next((c for base in bases if isinstance(base, type) for c in base.__mro__
                      if "__init_subclass__" in c.__dict__), None)
        if owner is None or owner is object:
            raise
        original = owner.__dict__["__init_subclass__"]
        type.__setattr__(owner, "__init_subclass__", classmethod(lambda cls, **kwds: None))
        try:
            return create()
        finally:
            type.__setattr__(owner, "__init_subclass__", original)


def _set_class_state(cls, state):
    for key, value in state.items():
        setattr(cls, key, value)


def _make_enum(metaclass, name, bases, body, members, boundary):
    classdict = metaclass.__prepare__(name, bases)
    for key, value in body.items():  # methods first: enum wants them before the members
        classdict[key] = value
    for key, value in members.items():
        classdict[key] = value
    kwds = {} if boundary is None else {"boundary": boundary}
    return metaclass(name, bases, classdict, **kwds)


def _make_mappingproxy(mapping):
    return types.MappingProxyType(mapping)


def _make_lru_cache(func, maxsize, typed):
    import functools
    return functools.lru_cache(maxsize=maxsize, typed=typed)(func)


def _make_cached_property(func, attrname, doc):
    import functools
    prop = functools.cached_property(func)
    prop.attrname = attrname
    prop.__doc__ = doc
    return prop


def _make_typevar(name, constraints, bound, covariant, contravariant, module):
    import typing
    tv = typing.TypeVar(name, *constraints, bound=bound, covariant=covariant,
                        contravariant=contravariant)
    tv.__module__ = module
    return tv


# --- saving ---

class _Context:
    """What one dumps() call learns once and shares between its picklers."""

    def __init__(self, namespace):
        self.namespace = namespace
        self.ns_name = namespace.get("__name__")
        self.handlers = {}  # type -> handler (or None for "pickle as usual")
        self.singletons = {}  # id(obj) -> (module, attribute name)
        for module_name, names in _SINGLETON_NAMES.items():
            module = sys.modules.get(module_name)
            for name in names if module is not None else ():
                if hasattr(module, name):
                    self.singletons[id(getattr(module, name))] = (module, name)
        self.singleton_types = {type(m.__dict__[n]) for m, n in self.singletons.values()}


class _Pickler(pickle.Pickler):
    def __init__(self, file, context):
        super().__init__(file, protocol=5)
        self._ctx = context
        # Objects saved by value whose identity matters (containers, instances, cells, user
        # functions and classes): two names reaching the same one go in one component. Kept
        # alive here so that their ids stay unique until components are worked out.
        self.kept = []
        self._keep = self.kept.append

    def persistent_id(self, obj, type=type, dict=dict, list=list, set=set, str=str):
        # Called for every object, so it stays small. (reducer_override never sees plain
        # dicts, lists and sets, so the namespace is recognised, and containers noted, here.)
        t = type(obj)
        if t is dict:
            if obj is self._ctx.namespace:
                return "namespace"  # globals of the user's functions: the namespace loaded into
            if "__name__" in obj:
                name = obj["__name__"]
                if type(name) is str:
                    module = sys.modules.get(name)
                    if module is not None and getattr(module, "__dict__", None) is obj:
                        return ("module", name)  # globals of a library function: its module's
            self._keep(obj)
        elif t is list or t is set or t is bytearray:
            self._keep(obj)
        return None

    def reducer_override(self, obj):
        handlers = self._ctx.handlers
        t = type(obj)
        try:
            handler = handlers[t]
        except KeyError:
            handler = handlers[t] = self._classify(t)
        if handler is None:
            if t not in _VALUE_TYPES:
                self._keep(obj)
            return NotImplemented
        return handler(self, obj)

    def _classify(self, t):
        """The handler for objects of type t, decided once per type."""
        if t in self._ctx.singleton_types:
            return _Pickler._singleton
        return self._classify_by_type(t)

    def _classify_by_type(self, t):
        if issubclass(t, type):
            return _Pickler._class
        if t in _Pickler._BY_TYPE:
            return _Pickler._BY_TYPE[t]
        if issubclass(t, types.ModuleType):
            return _Pickler._module
        functools = sys.modules.get("functools")
        if functools is not None:
            if t is getattr(functools, "_lru_cache_wrapper", None):
                return _Pickler._lru_cache
            if t is functools.cached_property:
                return _Pickler._cached_property
        typing = sys.modules.get("typing")
        if typing is not None and t is typing.TypeVar:
            return _Pickler._typevar
        if t in _UNPORTABLE:
            reason = _UNPORTABLE[t]

            def refuse(self, obj):
                raise _Unportable(reason)
            return refuse
        if issubclass(t, io.IOBase) and not issubclass(t, (io.StringIO, io.BytesIO)):
            return _Pickler._file
        socket = sys.modules.get("socket")
        if socket is not None and issubclass(t, socket.socket):
            def refuse_socket(self, obj):
                raise _Unportable(_SOCKET_REASON)
            return refuse_socket
        return None

    # A function or class can be saved by reference when importing its module and following
    # its qualified name gives back the very same object. __main__ (and the namespace's own
    # name) never counts: that module is the thing being saved.
    def _by_reference(self, obj, qualname=None):
        try:
            module_name = obj.__module__
            if module_name in (None, "__main__", self._ctx.ns_name):
                return False
            target = sys.modules.get(module_name)
            for part in (qualname or obj.__qualname__).split("."):
                if target is None:
                    return False
                target = getattr(target, part, None)
        except Exception:
            return False
        return target is obj

    def _singleton(self, obj):
        ref = self._ctx.singletons.get(id(obj))
        if ref is not None:
            return getattr, ref
        handler = self._classify_by_type(type(obj))
        return NotImplemented if handler is None else handler(self, obj)

    def _module(self, module):
        name = getattr(module, "__name__", None)
        if not (isinstance(name, str) and sys.modules.get(name) is module):
            name = next((k for k, m in list(sys.modules.items()) if m is module), None)
        if name is None:
            raise _Unportable("module %r was not imported, so it cannot be imported again"
                              % getattr(module, "__name__", "?"))
        return importlib.import_module, (name,)

    def _code(self, code):
        return marshal.loads, (marshal.dumps(code),)

    def _cell(self, cell):
        # The cell is created empty and filled afterwards, so a closure that refers to its own
        # function (recursion) or two functions sharing a cell come back as they were.
        try:
            contents = cell.cell_contents
        except ValueError:  # a variable not assigned yet
            self._keep(cell)
            return _make_cell, ()
        self._keep(cell)
        return _make_cell, (), contents, None, None, _set_cell

    def _function(self, func):
        if func.__globals__ is not self._ctx.namespace and self._by_reference(func):
            return NotImplemented
        self._keep(func)
        state = {"__qualname__": func.__qualname__, "__module__": func.__module__}
        if func.__defaults__ is not None:
            state["__defaults__"] = func.__defaults__
        if func.__kwdefaults__ is not None:
            state["__kwdefaults__"] = func.__kwdefaults__
        if func.__annotations__:
            state["__annotations__"] = func.__annotations__
        if func.__doc__ is not None:
            state["__doc__"] = func.__doc__
        if func.__dict__:
            state["__dict__"] = func.__dict__
        args = (func.__code__, func.__globals__, func.__name__, func.__closure__)
        return _make_function, args, state, None, None, _set_function_state

    def _method(self, method):
        # random.randint and the like: bound methods stored in a module, saved as that
        # module attribute so they stay bound to the module's own instance.
        try:
            module_name, name = method.__module__, method.__name__
            if module_name not in ("__main__", self._ctx.ns_name):
                module = sys.modules.get(module_name)
                if module is not None and getattr(module, name, None) is method:
                    return getattr, (module, name)
        except Exception:
            pass
        return NotImplemented  # pickle's own: getattr(instance, name)

    def _class(self, cls):
        if self._by_reference(cls) or not cls.__flags__ & _HEAPTYPE:
            return NotImplemented  # importable, or built into C (pickle handles or explains)
        self._keep(cls)
        enum = sys.modules.get("enum")
        if enum is not None and isinstance(cls, enum.EnumMeta) and "_member_map_" in cls.__dict__:
            return self._enum(cls)
        skeleton = {"__module__": cls.__module__, "__qualname__": cls.__qualname__}
        own = cls.__dict__
        for key in ("__slots__", "__class__", "__name__"):
            # Slots exist only if given at creation; setattr on a class would take the other
            # two as the class's own class and name, not as attributes for its instances.
            if key in own:
                skeleton[key] = own[key]
        state = {}
        for key, value in own.items():
            if key in skeleton or key in ("__dict__", "__weakref__", "_abc_impl"):
                continue  # given at creation, or made by type() (or ABCMeta) for the new class
            if type(value) is types.MemberDescriptorType and value.__objclass__ is cls:
                continue  # a slot's descriptor: made again from __slots__
            state[key] = value
        bases = cls.__bases__
        typing = sys.modules.get("typing")
        if "__orig_bases__" in own and typing is not None and typing.Generic in cls.__mro__:
            # typing.Generic wants the bases as written (Generic[T]); new_class resolves them.
            bases = own["__orig_bases__"]
        return (_make_class, (type(cls), cls.__name__, bases, skeleton),
                state, None, None, _set_class_state)

    _ENUM_SUNDERS = frozenset({"_generate_next_value_", "_numeric_repr_", "_missing_",
                               "_iter_member_", "_iter_member_by_value_",
                               "_iter_member_by_def_"})

    def _enum(self, cls):
        member_map = cls.__dict__["_member_map_"]
        members = {name: member._value_ for name, member in member_map.items()}
        body = {"__qualname__": cls.__qualname__}
        later = {}
        for key, value in cls.__dict__.items():
            if key in member_map or key in ("__dict__", "__weakref__", "__new__", "_abc_impl"):
                continue
            if key == "__new_member__":  # the user's own __new__, kept aside by enum
                body["__new__"] = value
            elif key.startswith("__") and key.endswith("__"):
                body[key] = value
            elif key.startswith("_") and key.endswith("_"):
                if key in self._ENUM_SUNDERS and getattr(value, "__self__", None) is not cls:
                    body[key] = value  # otherwise enum's own bookkeeping, made again
            elif hasattr(type(value), "__get__"):
                body[key] = value  # methods, properties, ...
            else:
                later[key] = value  # a plain value in the body would become a member
        args = (type(cls), cls.__name__, cls.__bases__, body, members,
                cls.__dict__.get("_boundary_"))
        return _make_enum, args, later or None, None, None, _set_class_state

    def _mappingproxy(self, proxy):
        return _make_mappingproxy, (dict(proxy),)

    def _property(self, prop):
        return property, (prop.fget, prop.fset, prop.fdel, prop.__doc__)

    def _staticmethod(self, sm):
        return staticmethod, (sm.__func__,)

    def _classmethod(self, cm):
        return classmethod, (cm.__func__,)

    def _lru_cache(self, wrapper):
        if self._by_reference(wrapper):
            return NotImplemented
        self._keep(wrapper)
        params = wrapper.cache_parameters()
        # The cache itself is not saved: it refills on use.
        return _make_lru_cache, (wrapper.__wrapped__, params["maxsize"], params["typed"])

    def _cached_property(self, prop):
        # Its lock cannot be pickled; a new one is made.
        self._keep(prop)
        return _make_cached_property, (prop.func, prop.attrname, prop.__doc__)

    def _typevar(self, tv):
        if self._by_reference(tv, tv.__name__):
            return NotImplemented
        self._keep(tv)
        return _make_typevar, (tv.__name__, tv.__constraints__, tv.__bound__,
                               tv.__covariant__, tv.__contravariant__, tv.__module__)

    def _file(self, f):
        for name in ("stdout", "stderr", "stdin", "__stdout__", "__stderr__", "__stdin__"):
            if getattr(sys, name, None) is f:
                return getattr, (sys, name)
        raise _Unportable(_FILE_REASON)

    _BY_TYPE = {
        types.FunctionType: _function,
        types.ModuleType: _module,
        types.CodeType: _code,
        types.CellType: _cell,
        types.MethodType: _method,
        types.MappingProxyType: _mappingproxy,
        property: _property,
        staticmethod: _staticmethod,
        classmethod: _classmethod,
    }


def _reason(exc):
    if isinstance(exc, _Unportable):
        return str(exc)
    text = "%s: %s" % (type(exc).__name__, exc)
    return text if len(text) <= 200 else text[:197] + "..."


def _pickle_names(context, values):
    """Pickles {name: value}; returns the blob, the ids of the objects that tie names together
    and the list that keeps those objects alive."""
    buffer = io.BytesIO()
    pickler = _Pickler(buffer, context)
    pickler.dump(values)
    kept = pickler.kept
    return buffer.getvalue(), {id(obj) for obj in kept}, kept


def dumps(namespace):
    """Serialise the user's names. Returns (data, skipped) where skipped maps each name that
    could not be saved portably to a short human-readable reason. Never raises for a bad
    value: it skips that name."""
    context = _Context(namespace)
    skipped = {}
    saved = []  # (name, value, blob, shared ids, objects kept alive)
    for name, value in list(namespace.items()):
        if not isinstance(name, str):
            try:
                skipped[repr(name)] = "names that are not strings are not saved"
            except Exception:
                pass
            continue
        if name in _PYTHON_OWNED or (name == "__annotations__" and value == {}):
            continue
        try:
            blob, shared, kept = _pickle_names(context, {name: value})
        except Exception as exc:  # includes RecursionError, MemoryError, user __reduce__ bugs
            skipped[name] = _reason(exc)
            continue
        saved.append((name, value, blob, shared, kept))

    # Union-find over names: two names that reach the same mutable object share a component.
    parent = list(range(len(saved)))

    def find(i):
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    owner = {}
    for index, entry in enumerate(saved):
        for oid in entry[3]:
            other = owner.setdefault(oid, index)
            if other != index:
                parent[find(index)] = find(other)
    groups = {}
    for index in range(len(saved)):
        groups.setdefault(find(index), []).append(index)

    components = []
    for indices in groups.values():
        if len(indices) == 1:
            entry = saved[indices[0]]
            components.append(((entry[0],), entry[2]))
            continue
        try:
            blob = _pickle_names(context, {saved[i][0]: saved[i][1] for i in indices})[0]
            components.append((tuple(saved[i][0] for i in indices), blob))
        except Exception:
            # Each pickled alone a moment ago; keep them, without their shared identity.
            components.extend(((saved[i][0],), saved[i][2]) for i in indices)
    del saved, owner  # releases the kept objects

    body = bytearray(_U32.pack(len(components)))
    for names, blob in components:
        body += _U32.pack(len(names))
        for name in names:
            encoded = name.encode("utf-8", "surrogatepass")
            body += _U32.pack(len(encoded)) + encoded
        body += _U64.pack(len(blob)) + blob
    header = _HEADER.pack(MAGIC, VERSION, sys.version_info[0], sys.version_info[1],
                          len(body), binascii.crc32(body))
    return header + bytes(body), skipped


# --- loading ---

class _Unpickler(pickle.Unpickler):
    def __init__(self, file, namespace):
        super().__init__(file)
        self._namespace = namespace

    def persistent_load(self, pid):
        if pid == "namespace":
            return self._namespace
        if type(pid) is tuple and len(pid) == 2 and pid[0] == "module":
            return vars(importlib.import_module(pid[1]))
        raise pickle.UnpicklingError("unknown reference %r" % (pid,))


def _parse(data):
    """Checks the header and splits the body into [(names, blob)]; ValueError if anything is
    off."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise ValueError("a brig snapshot is bytes, not %s" % type(data).__name__)
    try:
        view = memoryview(data).cast("B")
    except TypeError as exc:
        raise ValueError("not a brig namespace snapshot (%s)" % exc) from None
    if len(view) < _HEADER.size or bytes(view[:len(MAGIC)]) != MAGIC:
        raise ValueError("not a brig namespace snapshot (bad magic)")
    _, version, major, minor, length, crc = _HEADER.unpack_from(view)
    if version != VERSION:
        raise ValueError("unsupported brig snapshot version %d (this build reads %d)"
                         % (version, VERSION))
    if (major, minor) != sys.version_info[:2]:
        raise ValueError("snapshot was made by Python %d.%d, this is %d.%d"
                         % (major, minor, *sys.version_info[:2]))
    body = view[_HEADER.size:]
    if len(body) != length:
        raise ValueError("corrupt brig snapshot (length %d, header says %d)" % (len(body), length))
    if binascii.crc32(body) != crc:
        raise ValueError("corrupt brig snapshot (checksum mismatch)")

    pos = 0

    def take(size):
        nonlocal pos
        if pos + size > len(body):
            raise ValueError("corrupt brig snapshot (truncated body)")
        chunk = body[pos:pos + size]
        pos += size
        return chunk

    components = []
    for _ in range(_U32.unpack(take(4))[0]):
        names = []
        for _ in range(_U32.unpack(take(4))[0]):
            raw = bytes(take(_U32.unpack(take(4))[0]))
            try:
                names.append(raw.decode("utf-8", "surrogatepass"))
            except UnicodeDecodeError:
                raise ValueError("corrupt brig snapshot (bad name)") from None
        blob = take(_U64.unpack(take(8))[0])
        components.append((names, blob))
    if pos != len(body):
        raise ValueError("corrupt brig snapshot (trailing bytes)")
    return components


def loads(data, namespace):
    """Restore names into namespace. Returns {name: reason} for names that could not be
    restored (e.g. a module that no longer imports). Raises ValueError for data that is not a
    snapshot (bad magic/version/corrupt)."""
    failed = {}
    for names, blob in _parse(data):
        try:
            values = _Unpickler(io.BytesIO(blob), namespace).load()
            if not isinstance(values, dict) or sorted(values) != sorted(names):
                raise ValueError("component does not hold the names it lists")
        except Exception as exc:
            reason = _reason(exc)
            for name in names:
                failed[name] = reason
            continue
        namespace.update(values)
    return failed
