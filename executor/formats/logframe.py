"""Which call a hot container's output lines belong to (no IO).

The Fn Project's log frame: the executor sets `FN_LOGFRAME_NAME=FN_CALL_ID` and
`FN_LOGFRAME_HDR=Fn-Call-Id`, and an FDK prints `FN_CALL_ID=<id>` on its own line, on
stdout and on stderr, when a call starts: each stream's lines after it are that call's.
A function that prints no frame (a server of its own) gets its lines given to the call
its container is serving, or served last (output trails the answer).
"""

from __future__ import annotations

# A line longer than this is cut into pieces rather than held whole.
MAX_LINE = 16 * 1024


class LogFrames:
    def __init__(self, frame_name: str) -> None:
        self._marker = frame_name.encode() + b"="
        self._partial: dict[int, bytes] = {}
        self._framed: dict[int, str] = {}  # stream -> the call its last frame named
        self._held: dict[int, tuple[str | None, int]] = {}  # blank lines not given yet
        self._after_frame: set[int] = set()

    def feed(self, stream: int, data: bytes, current: str | None) -> list[tuple[str, bytes]]:
        """The complete lines in `data` (of stream 1 or 2), each with its call's id.
        `current` is the call the container serves or served last (None: none yet)."""
        data = self._partial.pop(stream, b"") + data
        *lines, rest = data.split(b"\n")
        if len(rest) > MAX_LINE:
            lines.append(rest)
            rest = b""
        if rest:
            self._partial[stream] = rest
        out: list[tuple[str, bytes]] = []
        for line in lines:
            if self._is_frame(line):
                self._framed[stream] = line[len(self._marker) :].strip().decode("ascii", "replace")
                # An FDK frames its marker with blank lines: the one before it and the
                # one after it belong to no call.
                owner, held = self._held.pop(stream, (None, 0))
                if held > 1:
                    _append(out, owner, b"\n" * (held - 1))
                self._after_frame.add(stream)
                continue
            if not line.strip() and stream in self._after_frame:
                self._after_frame.discard(stream)
                continue
            self._after_frame.discard(stream)
            owner = self._framed.get(stream, current)
            if not line.strip():
                # Held until the next line shows whether a frame follows.
                held_owner, held = self._held.get(stream, (owner, 0))
                self._held[stream] = (held_owner, held + 1)
                continue
            held_owner, held = self._held.pop(stream, (None, 0))
            if held:
                _append(out, held_owner, b"\n" * held)
            _append(out, owner, line + b"\n")
        return out

    def _is_frame(self, line: bytes) -> bool:
        return line.startswith(self._marker) and len(line.strip()) > len(self._marker)


def _append(out: list[tuple[str, bytes]], owner: str | None, data: bytes) -> None:
    if owner is None:
        return  # output before any call: the container's own (start-up)
    if out and out[-1][0] == owner:
        out[-1] = (owner, out[-1][1] + data)
    else:
        out.append((owner, data))
