"""brig's module for code running in the sandbox: rich outputs, like Jupyter's display().

    import brig
    brig.show(png_bytes)                   # an image (PNG, JPEG, GIF: found by their bytes)
    brig.show("<b>hi</b>", mime="text/html")
    brig.show({"a": 1})                    # JSON (a dict or a list)
    brig.show(fig)                         # anything with _repr_png_, _repr_html_, ... (Jupyter's protocol)

Each show() adds one output (a bundle: MIME type -> data, like Jupyter's display data) to the
execution's result, in order. The host checks everything it gets from here (it is untrusted
input): MIME types outside its allowlist, bad encodings, and outputs past its limits are
dropped with a note in the result. The same limits apply here so that over-limit output is
never built.
"""
import base64 as _base64
import json as _json

__all__ = ["show", "MAX_OUTPUTS", "MAX_TOTAL_BYTES"]

# The host's limits (src/sandbox/display.h): outputs per execution, bytes of data in all.
MAX_OUTPUTS = 32
MAX_TOTAL_BYTES = 16 << 20

_BINARY = ("image/png", "image/jpeg", "image/gif")
_TEXT = ("text/plain", "text/html", "text/markdown", "text/latex", "image/svg+xml", "application/json")
# Jupyter's _repr_*_ methods, best first.
_REPRS = (("_repr_png_", "image/png"), ("_repr_jpeg_", "image/jpeg"), ("_repr_svg_", "image/svg+xml"),
          ("_repr_html_", "text/html"), ("_repr_markdown_", "text/markdown"),
          ("_repr_latex_", "text/latex"), ("_repr_json_", "application/json"))

# The execution's outputs so far: the runner (_brig_runner) takes and clears them.
_pending = []
_dropped = 0
_total = 0


def _sniff(data):
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "image/png"
    if data[:3] == b"\xff\xd8\xff":
        return "image/jpeg"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if data.lstrip()[:4] == b"<svg" or (data.lstrip()[:5] == b"<?xml" and b"<svg" in data[:1024]):
        return "image/svg+xml"
    return None


def _encode(mime, value):
    """The bundle's string for `value` under `mime`, or raise TypeError/ValueError."""
    if mime in _BINARY:
        if isinstance(value, str):  # Jupyter's _repr_png_ may return base64 text
            value = _base64.b64decode(value, validate=True)
        if not isinstance(value, (bytes, bytearray, memoryview)):
            raise TypeError("%s data must be bytes, not %s" % (mime, type(value).__name__))
        return _base64.b64encode(bytes(value)).decode("ascii"), len(value)
    if mime == "application/json":
        text = value if isinstance(value, str) else _json.dumps(value)
        _json.loads(text)
    elif isinstance(value, (bytes, bytearray, memoryview)):
        text = bytes(value).decode("utf-8")
    elif isinstance(value, str):
        text = value
    else:
        raise TypeError("%s data must be str, not %s" % (mime, type(value).__name__))
    return text, len(text.encode("utf-8", "surrogatepass"))


def _bundle(obj, mime):
    if mime is not None:
        if mime not in _BINARY and mime not in _TEXT:
            raise ValueError("brig.show: unsupported MIME type %r (supported: %s)" % (mime, ", ".join(_BINARY + _TEXT)))
        return {mime: obj}
    if isinstance(obj, (bytes, bytearray, memoryview)):
        found = _sniff(bytes(obj[:1024]) if not isinstance(obj, memoryview) else obj[:1024].tobytes())
        if found is None:
            raise ValueError("brig.show: bytes that are not PNG, JPEG, GIF or SVG; pass mime=")
        return {found: obj}
    if isinstance(obj, (dict, list)):
        return {"application/json": obj, "text/plain": repr(obj)}
    bundle = {}
    for method, kind in _REPRS:
        fn = getattr(type(obj), method, None)
        if fn is None:
            continue
        value = fn(obj)
        if isinstance(value, tuple):  # (data, metadata), as Jupyter allows
            value = value[0]
        if value is not None:
            bundle[kind] = value
    if isinstance(obj, str) and not bundle:
        return {"text/plain": obj}
    if not bundle and hasattr(obj, "savefig"):  # a matplotlib figure without IPython
        import io
        buf = io.BytesIO()
        obj.savefig(buf, format="png")
        bundle["image/png"] = buf.getvalue()
    bundle.setdefault("text/plain", repr(obj))
    return bundle


def show(obj, mime=None):
    """Attaches `obj` to this execution's result as a rich output (see the module's doc).

    mime: the MIME type of `obj` (str or bytes), when it cannot be told: "text/html",
    "image/svg+xml", "text/markdown", "application/json", ... Raises ValueError or TypeError
    for data that cannot be shown. Past the limits (MAX_OUTPUTS, MAX_TOTAL_BYTES) the output
    is dropped and the result says so."""
    global _dropped, _total
    bundle = {}
    size = 0
    for kind, value in _bundle(obj, mime).items():
        text, n = _encode(kind, value)
        bundle[kind] = text
        size += n
    if len(_pending) >= MAX_OUTPUTS or _total + size > MAX_TOTAL_BYTES:
        _dropped += 1
        return
    _total += size
    _pending.append(bundle)


display = show  # IPython's name
