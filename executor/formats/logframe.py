"""Which call a hot container's output lines belong to (no IO).

The Fn Project's log frame: the executor sets `FN_LOGFRAME_NAME=FN_CALL_ID` and
`FN_LOGFRAME_HDR=Fn-Call-Id`, and an FDK prints `FN_CALL_ID=<id>` on its own line, on
stdout and on stderr, when a call starts: each stream's lines after it are that call's.
A function that prints no frame (a server of its own) gets its lines given to the call
its container is serving, or served last (output trails the answer).

Output is handled in runs of lines, not line by line: finding frames and splitting at
them are `bytes` searches, so reading costs O(bytes) with a small constant whatever the
lines are (a function printing `yes` makes half a million lines a second).
"""

from __future__ import annotations

# A line longer than this is cut into pieces rather than held whole.
MAX_LINE = 16 * 1024


class LogFrames:
    def __init__(self, frame_name: str) -> None:
        self._marker = frame_name.encode() + b"="
        self._partial: dict[int, bytearray] = {}
        self._framed: dict[int, str] = {}  # stream -> the call its last frame named
        self._held: dict[int, tuple[str | None, int]] = {}  # blank lines not given yet
        self._after_frame: set[int] = set()

    def feed(self, stream: int, data: bytes, current: str | None) -> list[tuple[str, bytes]]:
        """The complete lines in `data` (of stream 1 or 2), each run with its call's id.
        `current` is the call the container serves or served last (None: none yet)."""
        partial = self._partial.get(stream)
        cut = data.rfind(b"\n") + 1
        if not cut:  # no line ends here: held, up to MAX_LINE
            if partial is None:
                partial = self._partial[stream] = bytearray()
            partial += data
            if len(partial) <= MAX_LINE:
                return []
            complete, rest = bytes(partial) + b"\n", b""
        else:
            complete = bytes(partial) + data[:cut] if partial else data[:cut]
            rest = data[cut:]
            if len(rest) > MAX_LINE:
                complete, rest = complete + rest + b"\n", b""
        if rest:
            self._partial[stream] = bytearray(rest)
        else:
            self._partial.pop(stream, None)
        out: list[tuple[str, bytes]] = []
        pos = 0
        while pos < len(complete):
            frame = self._next_frame(complete, pos)
            end = len(complete) if frame is None else frame[0]
            if end > pos:
                self._text(out, stream, complete[pos:end], current)
            if frame is None:
                break
            start, stop = frame
            # An FDK frames its marker with blank lines: the one before it (dropped in
            # _text) and the one after it belong to no call.
            owner, held = self._held.pop(stream, (None, 0))
            if held > 1:
                _append(out, owner, b"\n" * (held - 1))
            name = complete[start + len(self._marker) : stop].strip()
            self._framed[stream] = name.decode("ascii", "replace")
            self._after_frame.add(stream)
            pos = stop + 1
        return out

    def _next_frame(self, data: bytes, pos: int) -> tuple[int, int] | None:
        """(start, end of line) of the first frame line at or after `pos`, a line start."""
        marker = self._marker
        at = pos if data.startswith(marker, pos) else _line_after(data.find(b"\n" + marker, pos))
        while at >= 0:
            stop = data.index(b"\n", at)
            if len(data[at:stop].strip()) > len(marker):  # a bare name is an ordinary line
                return at, stop
            at = _line_after(data.find(b"\n" + marker, stop))
        return None

    def _text(
        self,
        out: list[tuple[str, bytes]],
        stream: int,
        text: bytes,
        current: str | None,
    ) -> None:
        """A run of complete lines with no frame among them. Blank lines at its end are
        held: if a frame follows, one of them is the frame's own."""
        if stream in self._after_frame:
            self._after_frame.discard(stream)
            if text.startswith(b"\n"):
                text = text[1:]
        owner = self._framed.get(stream, current)
        body = text.rstrip(b"\n")
        trailing = len(text) - len(body) - (1 if body else 0)  # blank lines at its end
        if body:
            held_owner, held = self._held.pop(stream, (None, 0))
            if held:
                _append(out, held_owner, b"\n" * held)
            _append(out, owner, body + b"\n")
        if trailing:
            held_owner, held = self._held.get(stream, (owner, 0))
            self._held[stream] = (held_owner, held + trailing)


def _line_after(newline: int) -> int:
    """The start of the line after the newline at `newline` (-1: none found)."""
    return newline + 1 if newline >= 0 else -1


def _append(out: list[tuple[str, bytes]], owner: str | None, data: bytes) -> None:
    if owner is None:
        return  # output before any call: the container's own (start-up)
    if out and out[-1][0] == owner:
        out[-1] = (owner, out[-1][1] + data)
    else:
        out.append((owner, data))
