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

START_FAIL (config) makes it exit before it is ready; START_DELAY delays its socket.
"""

import json
import os
import sys
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


if __name__ == "__main__":
    fnserve.serve(None, Commands)
