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
        for i, line in enumerate(lines):
            if self._is_frame(line):
                self._framed[stream] = line[len(self._marker) :].strip().decode("ascii", "replace")
                continue
            # An FDK frames its marker with blank lines: they belong to no call.
            if not line.strip() and (
                (i > 0 and self._is_frame(lines[i - 1]))
                or (i + 1 < len(lines) and self._is_frame(lines[i + 1]))
            ):
                continue
            owner = self._framed.get(stream, current)
            if owner is None:
                continue  # output before any call: the container's own (start-up)
            if out and out[-1][0] == owner:
                out[-1] = (owner, out[-1][1] + line + b"\n")
            else:
                out.append((owner, line + b"\n"))
        return out

    def _is_frame(self, line: bytes) -> bool:
        return line.startswith(self._marker) and len(line.strip()) > len(self._marker)
