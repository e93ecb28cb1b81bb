"""An http-stream test function: each call's body is a command.

  (empty)       echo what the function saw, as JSON
  sleep S       answer after S seconds
  exit N        exit with status N mid-call
  status N      answer /call itself with HTTP N (breaks the protocol unless 200/502/504)
  error         answer 502 (a function error)
  big N         answer N bytes
  garbage       answer bytes that are not HTTP
  close         answer, asking to close the connection
  alloc M       allocate M MiB, then answer
  fnstatus S    answer with Fn-Http-Status S
  headers N K   answer with N headers of K KiB each
  fill          write files to /tmp/iofs until it is full; answer the bytes written
  relink T      point lsnr.sock at T (a symlink), answer and close the connection
  yes S         print to stdout without pause for S seconds, in the background

START_FAIL (config) makes it exit before it is ready; START_DELAY delays its socket.
"""

import json
import os
import sys
import threading
import time

import fnserve

INSTANCE = os.urandom(4).hex()

if os.environ.get("START_FAIL"):
    print("cannot start: START_FAIL is set", file=sys.stderr, flush=True)
    sys.exit(3)
time.sleep(float(os.environ.get("START_DELAY") or 0))


class Commands(fnserve._Call):
    def do_POST(self):
        body = self.body()
        word, _, arg = body.decode(errors="replace").partition(" ")
        if word in ("status", "error"):
            self.send_response(502 if word == "error" else int(arg))
            self.send_header("Content-Length", "4")
            self.end_headers()
            self.wfile.write(b"boom")
        elif word == "garbage":
            self.wfile.write(b"NOT HTTP AT ALL\r\n\r\n")
        elif word == "exit":
            print("exiting mid-call", flush=True)
            os._exit(int(arg))
        elif word == "alloc":
            hoard = bytearray(int(arg) * 1024 * 1024)
            self.respond(200, {}, str(len(hoard)).encode())
        elif word == "fnstatus":
            self.respond(int(arg), {}, b"odd")
        elif word == "headers":
            count, size = (int(n) for n in arg.split())
            value = b"v" * (size * 1024)
            self.wfile.write(b"HTTP/1.1 200 OK\r\n")  # written as it goes, not held
            for i in range(count):
                self.wfile.write(b"Fn-Http-H-X-Big-%d: %s\r\n" % (i, value))
            self.wfile.write(b"Content-Length: 2\r\n\r\nok")
        elif word == "fill":
            self.respond(200, {}, str(fill("/tmp/iofs")).encode())
        elif word == "relink":
            link = "/tmp/iofs/lsnr.sock"
            os.unlink(link)
            os.symlink(arg, link)
            self.close_connection = True  # the next call connects anew, through the link
            self.respond(200, {}, b"relinked")
        elif word == "yes":
            threading.Thread(target=flood, args=(float(arg),), daemon=True).start()
            self.respond(200, {}, b"flooding")
        elif word == "big":
            self.respond(200, {"Content-Type": "application/octet-stream"}, b"x" * int(arg))
        else:
            if word == "sleep":
                time.sleep(float(arg))
            self.close_connection = word == "close"
            self.respond(200, {"Content-Type": "application/json"}, self.seen(body))

    def seen(self, body):
        return json.dumps(
            {
                "instance": INSTANCE,
                "body": body.decode(errors="replace"),
                "headers": dict(self.headers.items()),
                "env": {k: v for k, v in os.environ.items() if k.isupper()},
                "uid": os.getuid(),
            }
        ).encode()


def fill(directory):
    """Bytes written into `directory` until the file system refuses more (or 300 MiB)."""
    written = 0
    chunk = b"x" * (1024 * 1024)
    try:
        for i in range(300):
            with open(os.path.join(directory, f"fill-{i}"), "wb") as f:
                f.write(chunk)
                written += len(chunk)
    except OSError:
        pass
    return written


def flood(seconds):
    end = time.monotonic() + seconds
    line = b"y\n" * 4096
    while time.monotonic() < end:
        os.write(1, line)


if __name__ == "__main__":
    fnserve.serve(None, Commands)
