"""Split runs: the tests and the code under test in two processes, joined by a data-only channel.

Loaded by the sandbox worker (``_server.py``) by file path, never imported by rewardlab. In a
split run pytest runs the tests in the *test process*, which never imports or executes the
repository's code: importing a repository module from a test gives a proxy (``RemoteModule``),
and every use of it -- an attribute, a call, ``len``, iteration, ``in``, indexing -- is one
request to the *code process* (``serve``), which imports the repository and answers with

- plain data: ``None``, ``bool``, ``int``, ``float``, ``complex``, ``str``, ``bytes``,
  ``bytearray`` and ``list``/``tuple``/``dict``/``set``/``frozenset`` of them (subclasses are
  sent as their base type, named tuples as named tuples);
- a handle to an object of the code process (a module, class, function or instance), which the
  test process sees as a ``Remote`` proxy;
- or an exception: the builtin type of that name, or for other classes a local class of the same
  name derived from the nearest builtin base, with the code's traceback as a note.

The test process decodes answers strictly (JSON, a closed set of tags; nothing is unpickled or
executed), so the verdict -- pytest's, in the test process -- changes only if the answers do,
i.e. if the code behaves differently. Differences from one-process pytest:

- a handle equals only itself, except that two handles compare with the code's ``==``/``<``...:
  an object with a rigged ``__eq__`` never equals a plain expected value;
- arguments are copies: in-place changes the code makes to a ``list``/``dict``/``set``/
  ``bytearray`` argument are copied back after the call (top level only); a callable or other
  object of the test cannot be passed (``TypeError``);
- the code's printed output is replayed into the test process after each request, so ``capsys``
  sees it.
"""

from __future__ import annotations

import builtins
import collections
import importlib
import io
import json
import operator
import os
import struct
import sys
import traceback
import types

MAX_MESSAGE = 16 << 20
MAX_DEPTH = 200
MAX_TEXT = 64 << 10
_ATOMS = (type(None), bool, int, float, str)
_MUTABLE = (list, dict, set, bytearray)
_NT_CACHE: dict[tuple[str, tuple[str, ...]], type] = {}
_COMPARE = {"eq": operator.eq, "ne": operator.ne, "lt": operator.lt, "le": operator.le, "gt": operator.gt,
            "ge": operator.ge}


class ProtocolError(Exception):
    """The code process sent something that is not a valid answer (or went away)."""


# ---------------------------------------------------------------------------------------
# Framing: 4-byte big-endian length + JSON, on raw pipe fds.
# ---------------------------------------------------------------------------------------


def send(fd: int, obj: object) -> None:
    data = json.dumps(obj, allow_nan=False).encode()
    if len(data) > MAX_MESSAGE:
        raise ValueError(f"message of {len(data)} bytes exceeds the {MAX_MESSAGE}-byte limit of split runs")
    view = memoryview(struct.pack(">I", len(data)) + data)
    while view:
        view = view[os.write(fd, view):]


def _read_exact(fd: int, n: int) -> bytes | None:
    parts, got = [], 0
    while got < n:
        chunk = os.read(fd, min(n - got, 1 << 20))
        if not chunk:
            return None
        parts.append(chunk)
        got += len(chunk)
    return b"".join(parts)


def recv(fd: int) -> object | None:
    head = _read_exact(fd, 4)
    if head is None:
        return None
    (n,) = struct.unpack(">I", head)
    if n > MAX_MESSAGE:
        raise ProtocolError(f"message of {n} bytes exceeds the limit")
    body = _read_exact(fd, n)
    if body is None:
        return None
    return json.loads(body.decode())


# ---------------------------------------------------------------------------------------
# The code process: imports the repository, answers requests.
# ---------------------------------------------------------------------------------------


class _Table:
    """Handles of the code process: small integers for objects, kept alive for the run."""

    def __init__(self) -> None:
        self.objs: dict[int, object] = {}
        self.ids: dict[int, int] = {}

    def handle(self, obj: object) -> dict:
        h = self.ids.get(id(obj))
        if h is None:
            h = len(self.objs) + 1
            self.objs[h] = obj
            self.ids[id(obj)] = h
        if isinstance(obj, types.ModuleType):
            kind = "module"
        elif isinstance(obj, type):
            kind = "excclass" if issubclass(obj, BaseException) else "class"
        elif callable(obj):
            kind = "callable"
        else:
            kind = "object"
        name = getattr(obj, "__qualname__", None) if kind != "object" else type(obj).__qualname__
        out = {"$h": h, "k": kind, "n": str(name or type(obj).__qualname__)[:200]}
        if kind == "module":
            out["pkg"] = hasattr(obj, "__path__")
        if kind == "excclass":
            out["base"] = _builtin_base(obj)
            out["m"] = str(getattr(obj, "__module__", ""))[:200]
        return out

    def get(self, h: object) -> object:
        if type(h) is not int or h not in self.objs:
            raise ProtocolError(f"unknown handle {h!r}")
        return self.objs[h]


def _builtin_base(cls: type) -> str:
    for base in cls.__mro__:
        if getattr(builtins, base.__name__, None) is base and issubclass(base, BaseException):
            return base.__name__
    return "Exception"


def encode(x: object, table: _Table | None, depth: int = 0) -> object:
    """Plain data as tagged JSON; other objects as handles (``table``) or ``TypeError``."""
    if depth > MAX_DEPTH:
        raise ValueError("value nested too deeply for a split run")
    t = type(x)
    if x is None or t is bool or t is str:
        return x
    if t is int:
        return x
    if t is float:
        return x if x == x and x not in (float("inf"), float("-inf")) else {"$f": repr(x)}
    if isinstance(x, bool):
        return bool(x)
    if isinstance(x, int):
        return int.__int__(x)
    if isinstance(x, float):
        return encode(float.__float__(x), table, depth)
    if isinstance(x, str):
        return str.__str__(x)
    if isinstance(x, complex):
        return {"$c": [encode(x.real, table, depth + 1), encode(x.imag, table, depth + 1)]}
    if isinstance(x, bytes):
        return {"$b": bytes(x).decode("latin-1")}
    if isinstance(x, bytearray):
        return {"$ba": bytes(x).decode("latin-1")}
    if isinstance(x, tuple) and hasattr(type(x), "_fields") and table is not None:
        fields = [str(f) for f in type(x)._fields]
        return {"$nt": [type(x).__name__, fields, [encode(v, table, depth + 1) for v in x]]}
    if isinstance(x, list):
        return [encode(v, table, depth + 1) for v in x]
    if isinstance(x, tuple):
        return {"$t": [encode(v, table, depth + 1) for v in x]}
    if isinstance(x, dict):
        return {"$d": [[encode(k, table, depth + 1), encode(v, table, depth + 1)] for k, v in x.items()]}
    if isinstance(x, frozenset):
        return {"$fs": [encode(v, table, depth + 1) for v in x]}
    if isinstance(x, set):
        return {"$s": [encode(v, table, depth + 1) for v in x]}
    if isinstance(x, Remote):
        return {"$h": object.__getattribute__(x, "_h")}
    if table is None:
        raise TypeError(f"a split run passes only plain data and objects of the code under test to it, "
                        f"not {type(x).__name__}")
    return table.handle(x)


def decode(x: object, resolve, depth: int = 0) -> object:
    """The inverse of ``encode``; ``resolve(tag_dict)`` turns a handle into an object."""
    if depth > MAX_DEPTH:
        raise ProtocolError("value nested too deeply")
    t = type(x)
    if x is None or t in (bool, int, float, str):
        return x
    if t is list:
        return [decode(v, resolve, depth + 1) for v in x]
    if t is not dict:
        raise ProtocolError(f"unexpected JSON value of type {t.__name__}")
    if "$h" in x:
        return resolve(x)
    if len(x) != 1:
        raise ProtocolError("malformed tagged value")
    ((tag, v),) = x.items()
    d = lambda y: decode(y, resolve, depth + 1)  # noqa: E731
    if tag == "$f" and v in ("nan", "inf", "-inf"):
        return float(v)
    if tag == "$c" and type(v) is list and len(v) == 2:
        re_, im = d(v[0]), d(v[1])
        if type(re_) is not float and type(re_) is not int or type(im) is not float and type(im) is not int:
            raise ProtocolError("malformed complex")
        return complex(re_, im)
    if tag in ("$b", "$ba") and type(v) is str:
        raw = v.encode("latin-1")
        return raw if tag == "$b" else bytearray(raw)
    if type(v) is not list:
        raise ProtocolError(f"malformed {tag}")
    if tag == "$t":
        return tuple(d(i) for i in v)
    if tag == "$s":
        return {d(i) for i in v}
    if tag == "$fs":
        return frozenset(d(i) for i in v)
    if tag == "$d":
        out = {}
        for pair in v:
            if type(pair) is not list or len(pair) != 2:
                raise ProtocolError("malformed dict item")
            out[d(pair[0])] = d(pair[1])
        return out
    if tag == "$nt" and len(v) == 3 and type(v[0]) is str and type(v[1]) is list and type(v[2]) is list:
        name, fields = v[0], tuple(v[1])
        if not all(type(f) is str and f.isidentifier() for f in fields) or not name.isidentifier():
            raise ProtocolError("malformed named tuple")
        if len(fields) != len(v[2]):
            raise ProtocolError("named tuple arity mismatch")
        key = (name, fields)
        if key not in _NT_CACHE:
            _NT_CACHE[key] = collections.namedtuple(name, fields)
        return _NT_CACHE[key](*(d(i) for i in v[2]))
    raise ProtocolError(f"unknown tag {tag!r}")


def _remote_traceback(tb, root: str) -> list[str]:
    """The code's frames inside the workspace, pytest-style (``path:line: in name``)."""
    lines = []
    for fs in traceback.extract_tb(tb):
        if fs.filename.startswith(root + "/"):
            rel = fs.filename[len(root) + 1:]
            lines.append(f"{rel}:{fs.lineno}: in {fs.name}")
            if fs.line:
                lines.append(f"    {fs.line}")
    return lines[-40:]


def serve(rfd: int, wfd: int, root: str) -> None:
    """The code process's loop: one answer per request until the test process closes the pipe."""
    table = _Table()
    resolve = lambda tag: table.get(tag["$h"])  # noqa: E731
    real_out, real_err = sys.stdout, sys.stderr
    while True:
        try:
            req = recv(rfd)
        except (OSError, ValueError, ProtocolError):
            return
        if req is None:
            return
        out, err = io.StringIO(), io.StringIO()
        sys.stdout, sys.stderr = out, err
        after = []
        try:
            op = req["op"]
            if op == "import":
                value = importlib.import_module(str(req["name"]))
            elif op == "getattr":
                value = getattr(table.get(req["h"]), str(req["name"]))
            elif op == "setattr":
                setattr(table.get(req["h"]), str(req["name"]), decode(req["v"], resolve))
                value = None
            elif op == "delattr":
                delattr(table.get(req["h"]), str(req["name"]))
                value = None
            elif op == "call":
                args = [decode(a, resolve) for a in req["a"]]
                kwargs = {str(k): decode(v, resolve) for k, v in req["k"]}
                value = table.get(req["h"])(*args, **kwargs)
                after = [[i, encode(a, table)] for i, a in enumerate(args) if isinstance(a, _MUTABLE)]
                after += [[k, encode(v, table)] for k, v in kwargs.items() if isinstance(v, _MUTABLE)]
            elif op == "unary":
                obj, f = table.get(req["h"]), req["f"]
                value = {"len": len, "bool": bool, "str": str, "repr": repr, "iter": iter, "next": next,
                         "hash": hash}[f](obj)
            elif op == "item":
                obj, f, key = table.get(req["h"]), req["f"], decode(req["key"], resolve)
                if f == "get":
                    value = obj[key]
                elif f == "set":
                    obj[key] = decode(req["v"], resolve)
                    value = None
                elif f == "del":
                    del obj[key]
                    value = None
                else:
                    value = key in obj
            elif op == "cmp":
                value = _COMPARE[req["f"]](table.get(req["a"]), table.get(req["b"]))
            elif op == "isinstance":
                value = isinstance(decode(req["x"], resolve), table.get(req["c"]))
            elif op == "issubclass":
                value = issubclass(table.get(req["x"]), table.get(req["c"]))
            else:
                raise ValueError(f"unknown request {op!r}")
            res = {"ok": encode(value, table)}
            if after:
                res["after"] = after
        except BaseException as e:  # noqa: BLE001 - every exception of the code is an answer
            try:
                args = [encode(a, None) for a in e.args]
            except (TypeError, ValueError):
                args = None
            res = {"exc": {"cls": table.handle(type(e)), "args": args, "tb": _remote_traceback(e.__traceback__, root),
                           "msg": str(e)[:MAX_TEXT] if _safe_str(e) else type(e).__name__}}
        finally:
            sys.stdout, sys.stderr = real_out, real_err
        res["out"], res["err"] = out.getvalue()[-MAX_TEXT:], err.getvalue()[-MAX_TEXT:]
        try:
            send(wfd, res)
        except (TypeError, ValueError) as e:
            send(wfd, {"exc": {"cls": table.handle(TypeError), "args": None, "tb": [],
                               "msg": f"the answer could not be sent to the tests: {e}"}, "out": "", "err": ""})
        except OSError:
            return


def _safe_str(e: BaseException) -> bool:
    try:
        str(e)
        return True
    except Exception:  # noqa: BLE001
        return False


# ---------------------------------------------------------------------------------------
# The test process: proxies that forward to the code process.
# ---------------------------------------------------------------------------------------

_ALLOWED_BUILTIN_EXC = {name for name in dir(builtins)
                        if isinstance(getattr(builtins, name), type) and issubclass(getattr(builtins, name), Exception)}
_ALLOWED_BUILTIN_EXC.add("SystemExit")


class Channel:
    """The test process's end of the channel to the code process."""

    def __init__(self, rfd: int, wfd: int):
        self.rfd, self.wfd = rfd, wfd
        self.proxies: dict[int, Remote] = {}
        self.exc_classes: dict[int, type] = {}
        self.closed = False

    def resolve(self, tag: dict) -> object:
        h, kind, name = tag.get("$h"), tag.get("k"), tag.get("n")
        if type(h) is not int or kind not in ("module", "class", "excclass", "callable", "object") \
                or type(name) is not str:
            raise ProtocolError("malformed handle")
        if kind == "excclass":
            return self.exc_class(tag)
        p = self.proxies.get(h)
        if p is None:
            p = Remote(self, h, kind, name)
            self.proxies[h] = p
        return p

    def exc_class(self, tag: dict) -> type:
        h, name = tag["$h"], tag["n"]
        cls = self.exc_classes.get(h)
        if cls is None:
            base_name = tag.get("base")
            base = getattr(builtins, base_name, None) if base_name in _ALLOWED_BUILTIN_EXC else None
            mod = tag.get("m") if type(tag.get("m")) is str else ""
            if mod == "builtins" and base is not None and base.__name__ == name:
                cls = base
            else:
                short = name.rsplit(".", 1)[-1]
                short = short if short.isidentifier() else "RemoteError"
                cls = type(short, (base or Exception,), {"__module__": mod or "remote", "__qualname__": name})
            self.exc_classes[h] = cls
        return cls

    def request(self, msg: dict, args: tuple = (), kwargs: dict | None = None) -> object:
        __tracebackhide__ = True  # pytest shows the test and the code, not the proxy
        if self.closed:
            raise ProtocolError("the code under test is no longer running")
        try:
            send(self.wfd, msg)
            res = recv(self.rfd)
        except (OSError, ValueError) as e:
            self.closed = True
            raise ProtocolError(f"the code under test stopped answering ({type(e).__name__})") from None
        if res is None:
            self.closed = True
            raise ProtocolError("the code under test exited")
        if type(res) is not dict:
            raise ProtocolError("malformed answer")
        for key, stream in (("out", sys.stdout), ("err", sys.stderr)):
            text = res.get(key)
            if type(text) is str and text:
                stream.write(text)
        if "exc" in res:
            raise self._exception(res["exc"])
        if "ok" not in res:
            raise ProtocolError("malformed answer")
        value = decode(res["ok"], self.resolve)
        after = res.get("after", [])
        if type(after) is not list:
            raise ProtocolError("malformed answer")
        for item in after:
            if type(item) is not list or len(item) != 2:
                raise ProtocolError("malformed answer")
            key, new = item[0], decode(item[1], self.resolve)
            orig = args[key] if type(key) is int and 0 <= key < len(args) else (kwargs or {}).get(key) \
                if type(key) is str else None
            _copy_back(orig, new)
        return value

    def _exception(self, info: object) -> BaseException:
        if type(info) is not dict or type(info.get("cls")) is not dict:
            return ProtocolError("malformed exception")
        cls = self.exc_class(info["cls"]) if info["cls"].get("k") == "excclass" else ProtocolError
        msg = info.get("msg") if type(info.get("msg")) is str else ""
        args = None
        if type(info.get("args")) is list:
            try:
                args = [decode(a, self.resolve) for a in info["args"]]
            except ProtocolError:
                args = None
        try:
            exc = cls(*args) if args is not None else cls(msg)
        except Exception:  # noqa: BLE001 - a constructor with other arguments
            exc = cls.__new__(cls)
            exc.args = (msg,)
        tb = info.get("tb")
        if type(tb) is list and tb and all(type(line) is str for line in tb):
            exc.add_note("raised in the code under test:\n" + "\n".join(tb))
        return exc


def _copy_back(orig: object, new: object) -> None:
    if type(orig) is list and isinstance(new, list):
        orig[:] = new
    elif type(orig) is bytearray and isinstance(new, bytearray):
        orig[:] = new
    elif type(orig) in (dict, set) and type(new) is type(orig):
        orig.clear()
        orig.update(new)


def _public(name: str) -> bool:
    """Names the test process forwards: no dunders, nothing pytest probes for."""
    return not (name.startswith("__") and name.endswith("__")) and not name.startswith(("_pytest", "pytest"))


class Remote:
    """A proxy for an object of the code process (module attribute, class, function, instance)."""

    __slots__ = ("_c", "_h", "_k", "_n", "__weakref__")

    def __init__(self, channel: Channel, h: int, kind: str, name: str):
        object.__setattr__(self, "_c", channel)
        object.__setattr__(self, "_h", h)
        object.__setattr__(self, "_k", kind)
        object.__setattr__(self, "_n", name)

    def _req(self, msg: dict, args: tuple = (), kwargs: dict | None = None) -> object:
        __tracebackhide__ = True  # pytest shows the test and the code, not the proxy
        return object.__getattribute__(self, "_c").request(msg, args, kwargs)

    def __getattr__(self, name: str) -> object:
        __tracebackhide__ = True  # pytest shows the test and the code, not the proxy
        if name == "__name__" or name == "__qualname__":
            return object.__getattribute__(self, "_n").rsplit(".", 1)[-1] if name == "__name__" \
                else object.__getattribute__(self, "_n")
        if not _public(name):
            raise AttributeError(name)
        return self._req({"op": "getattr", "h": object.__getattribute__(self, "_h"), "name": name})

    def __setattr__(self, name: str, value: object) -> None:
        self._req({"op": "setattr", "h": object.__getattribute__(self, "_h"), "name": name,
                   "v": encode(value, None)})

    def __delattr__(self, name: str) -> None:
        self._req({"op": "delattr", "h": object.__getattribute__(self, "_h"), "name": name})

    def __call__(self, *args: object, **kwargs: object) -> object:
        __tracebackhide__ = True  # pytest shows the test and the code, not the proxy
        msg = {"op": "call", "h": object.__getattribute__(self, "_h"), "a": [encode(a, None) for a in args],
               "k": [[k, encode(v, None)] for k, v in kwargs.items()]}
        return self._req(msg, args, kwargs)

    def _unary(self, f: str) -> object:
        __tracebackhide__ = True  # pytest shows the test and the code, not the proxy
        return self._req({"op": "unary", "h": object.__getattribute__(self, "_h"), "f": f})

    def __len__(self) -> int:
        n = self._unary("len")
        if type(n) is not int:
            raise TypeError("len() of the code's object is not an int")
        return n

    def __bool__(self) -> bool:
        return bool(self._unary("bool") is True)

    def __str__(self) -> str:
        return str(self._unary("str"))

    def __repr__(self) -> str:
        kind, name = object.__getattribute__(self, "_k"), object.__getattribute__(self, "_n")
        if kind != "object":
            return f"<{kind} {name} of the code under test>"
        return str(self._unary("repr"))

    def __iter__(self):
        it = self._unary("iter")
        if not isinstance(it, Remote):
            raise ProtocolError("iter() did not give an iterator")
        return it

    def __next__(self) -> object:
        return self._unary("next")

    def __hash__(self) -> int:
        return object.__hash__(self)

    def _item(self, f: str, key: object, value: object = None) -> object:
        __tracebackhide__ = True  # pytest shows the test and the code, not the proxy
        msg = {"op": "item", "h": object.__getattribute__(self, "_h"), "f": f, "key": encode(key, None)}
        if f == "set":
            msg["v"] = encode(value, None)
        return self._req(msg)

    def __getitem__(self, key: object) -> object:
        return self._item("get", key)

    def __setitem__(self, key: object, value: object) -> None:
        self._item("set", key, value)

    def __delitem__(self, key: object) -> None:
        self._item("del", key)

    def __contains__(self, key: object) -> bool:
        return self._item("contains", key) is True

    def _cmp(self, f: str, other: object) -> object:
        __tracebackhide__ = True  # pytest shows the test and the code, not the proxy
        if not isinstance(other, Remote):
            return NotImplemented
        return self._req({"op": "cmp", "f": f, "a": object.__getattribute__(self, "_h"),
                          "b": object.__getattribute__(other, "_h")})

    def __eq__(self, other: object) -> object:
        return self is other if not isinstance(other, Remote) else self._cmp("eq", other)

    def __ne__(self, other: object) -> object:
        return self is not other if not isinstance(other, Remote) else self._cmp("ne", other)

    def __lt__(self, other: object) -> object:
        return self._cmp("lt", other)

    def __le__(self, other: object) -> object:
        return self._cmp("le", other)

    def __gt__(self, other: object) -> object:
        return self._cmp("gt", other)

    def __ge__(self, other: object) -> object:
        return self._cmp("ge", other)

    def __instancecheck__(self, x: object) -> bool:
        try:
            enc = encode(x, None)
        except (TypeError, ValueError):
            return False  # an object of the test is never an instance of the code's classes
        return self._req({"op": "isinstance", "x": enc, "c": object.__getattribute__(self, "_h")}) is True

    def __subclasscheck__(self, x: object) -> bool:
        if not isinstance(x, Remote):
            return False
        return self._req({"op": "issubclass", "x": object.__getattribute__(x, "_h"),
                          "c": object.__getattribute__(self, "_h")}) is True


class RemoteModule(types.ModuleType):
    """A repository module as the test process sees it: attributes come from the code process."""

    def __getattr__(self, name: str) -> object:
        handle = self.__dict__.get("_rl_remote")
        if handle is None or not _public(name) and name != "__all__":
            raise AttributeError(name)
        return getattr(handle, name) if name != "__all__" else handle._req(
            {"op": "getattr", "h": object.__getattribute__(handle, "_h"), "name": "__all__"})


class RemoteFinder:
    """``sys.meta_path`` finder of the test process: repository modules become ``RemoteModule``."""

    def __init__(self, channel: Channel, names: set[str]):
        self.channel, self.names = channel, names

    def find_spec(self, fullname: str, path=None, target=None):
        import importlib.machinery

        if fullname.split(".")[0] not in self.names:
            return None
        return importlib.machinery.ModuleSpec(fullname, self, is_package=True)

    def create_module(self, spec) -> types.ModuleType:
        return RemoteModule(spec.name)

    def exec_module(self, module: types.ModuleType) -> None:
        try:
            handle = self.channel.request({"op": "import", "name": module.__name__})
        except ProtocolError:
            raise
        except BaseException as e:  # noqa: BLE001 - the code failed to import: an ImportError of the test
            raise ImportError(f"importing {module.__name__} failed in the code under test: "
                              f"{type(e).__name__}: {e}", name=module.__name__) from None
        if not isinstance(handle, Remote):
            raise ImportError(f"{module.__name__} did not import as a module", name=module.__name__)
        module.__dict__["_rl_remote"] = handle
        module.__path__ = []  # submodules resolve through this finder too


def install(rfd: int, wfd: int, names: list[str]) -> Channel:
    """Make the repository's top-level modules ``names`` importable as proxies in this process."""
    channel = Channel(rfd, wfd)
    sys.meta_path.insert(0, RemoteFinder(channel, set(names)))
    return channel
