"""The runtimes `executor init` and `executor build` know (no IO): each one's Dockerfile,
its hello function per format, and the file that names it in a folder (IronFunctions'
`fn init` guesses the runtime from `func.go`, `func.py`, `func.js`, `func.sh`).

Every base is an `ARG` (images/build.sh builds the local ones from Debian's packages):
with a registry, `--build-arg BASE=python:3.11-slim` and so on. A folder's own
Dockerfile wins over its runtime's.
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass

# The hello of every runtime reads {"name": ...} (IronFunctions' Go hello reads "Name";
# both are taken) and answers "Hello <name>!", "World" without one.


@dataclass(frozen=True)
class Runtime:
    name: str
    source: str  # the file that names it
    base: str  # the image it runs on (the ARG BASE default)
    entrypoint: list[str]
    hellos: dict[str, str]  # format -> the source file's hello

    def dockerfile(self, entrypoint: str | None = None, cmd: str | None = None) -> str:
        """The Dockerfile `executor build` uses when the folder has none; func.yaml's
        `entrypoint` and `cmd` replace the runtime's."""
        program = shlex.split(entrypoint) if entrypoint else self.entrypoint
        lines = [f"# Written by `executor build` for the {self.name} runtime (a folder's own",
                 "# Dockerfile is used instead when it has one)."]  # fmt: skip
        if self.name == "go":
            lines += [
                "ARG BUILD=executor/go-build:latest",
                f"ARG BASE={self.base}",
                "FROM ${BUILD} AS build",
                "COPY . /src",
                # No network in the build: modules must be vendored (go mod vendor).
                "RUN [ -f go.mod ] || go mod init function >/dev/null 2>&1; "
                "go build -ldflags='-s -w' -o /func .",
                "FROM ${BASE}",
                "COPY --from=build /func /func",
            ]
        else:
            lines += [f"ARG BASE={self.base}", "FROM ${BASE}", "COPY . /function",
                      "WORKDIR /function"]  # fmt: skip
            if self.name == "python":
                # requirements.txt, installed by `executor build` on the host (pip
                # install --target) into .python/: the image needs neither pip nor network.
                lines.append("ENV PYTHONPATH=/function/.python")
        lines.append(f"ENTRYPOINT {json.dumps(program)}")
        if cmd:
            lines.append(f"CMD {json.dumps(shlex.split(cmd))}")
        return "\n".join(lines) + "\n"


GO_DEFAULT = """\
// A function: the call's body on stdin, the answer on stdout (format default).
package main

import (
	"encoding/json"
	"fmt"
	"os"
)

type Person struct {
	Name string `json:"name"`
}

func main() {
	p := &Person{Name: "World"}
	json.NewDecoder(os.Stdin).Decode(p)
	fmt.Printf("Hello %s!\\n", p.Name)
}
"""

GO_HTTP_STREAM = """\
// A hot function (format http-stream, the Fn Project's): an HTTP server on the unix
// socket FN_LISTENER names; each call is a POST, the container stays up between calls.
package main

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
)

type Person struct {
	Name string `json:"name"`
}

func call(w http.ResponseWriter, r *http.Request) {
	p := &Person{Name: "World"}
	json.NewDecoder(r.Body).Decode(p)
	w.Header().Set("Fn-Http-Status", "200")
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	fmt.Fprintf(w, "Hello %s!\\n", p.Name)
}

func main() {
	path := strings.TrimPrefix(os.Getenv("FN_LISTENER"), "unix:")
	dir, name := filepath.Split(path)
	// As Fn's FDKs: listen on a phony name, then link the real one to it.
	phony := filepath.Join(dir, "phony"+name)
	listener, err := net.Listen("unix", phony)
	if err != nil {
		panic(err)
	}
	os.Chmod(phony, 0666)
	if err := os.Symlink("phony"+name, path); err != nil {
		panic(err)
	}
	panic(http.Serve(listener, http.HandlerFunc(call)))
}
"""

GO_HTTP = """\
// A hot function (format http, IronFunctions'): HTTP requests on stdin, one after the
// other; each answered on stdout with a Content-Length. The container stays up.
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
)

type Person struct {
	Name string `json:"name"`
}

func main() {
	in, out := bufio.NewReader(os.Stdin), bufio.NewWriter(os.Stdout)
	for {
		req, err := http.ReadRequest(in)
		if err == io.EOF {
			return
		} else if err != nil {
			panic(err)
		}
		p := &Person{Name: "World"}
		json.NewDecoder(req.Body).Decode(p)
		io.Copy(io.Discard, req.Body)
		body := fmt.Sprintf("Hello %s!\\n", p.Name)
		fmt.Fprintf(out, "HTTP/1.1 200 OK\\r\\nContent-Type: text/plain\\r\\n")
		fmt.Fprintf(out, "Content-Length: %d\\r\\n\\r\\n%s", len(body), body)
		out.Flush()
	}
}
"""

PYTHON_DEFAULT = """\
\"\"\"A function: the call's body on stdin, the answer on stdout (format default).\"\"\"

import json
import sys

try:
    person = json.loads(sys.stdin.read() or "{}")
except ValueError:
    person = {}
name = person.get("name") or person.get("Name") or "World"
print(f"Hello {name}!")
"""

PYTHON_HTTP_STREAM = """\
\"\"\"A hot function (format http-stream, the Fn Project's): an HTTP server on the unix
socket FN_LISTENER names (Python's standard library); each call is a POST, and the
container stays up between calls.\"\"\"

import json
import os
import socketserver
from http.server import BaseHTTPRequestHandler


def hello(body: bytes) -> bytes:
    try:
        person = json.loads(body or b"{}")
    except ValueError:
        person = {}
    name = person.get("name") or person.get("Name") or "World"
    return f"Hello {name}!\\n".encode()


class Call(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # one connection serves every call

    def do_POST(self):
        answer = hello(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
        self.send_response(200)
        self.send_header("Fn-Http-Status", "200")
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, format, *args):
        pass


path = os.environ["FN_LISTENER"].removeprefix("unix:")
directory, name = os.path.split(path)
phony = os.path.join(directory, "phony" + name)  # as Fn's FDKs: listen, then link
server = socketserver.UnixStreamServer(phony, Call)
os.chmod(phony, 0o666)
os.symlink("phony" + name, path)
server.serve_forever()
"""

NODE_DEFAULT = """\
// A function: the call's body on stdin, the answer on stdout (format default).
let input = "";
process.stdin.on("data", (chunk) => (input += chunk));
process.stdin.on("end", () => {
  let person = {};
  try {
    person = JSON.parse(input || "{}");
  } catch (e) {}
  console.log(`Hello ${person.name || person.Name || "World"}!`);
});
"""

NODE_HTTP_STREAM = """\
// A hot function (format http-stream, the Fn Project's): an HTTP server on the unix
// socket FN_LISTENER names; each call is a POST, the container stays up between calls.
const fs = require("fs");
const http = require("http");
const path = require("path");

const listener = process.env.FN_LISTENER.replace(/^unix:/, "");
const phony = path.join(path.dirname(listener), "phony" + path.basename(listener));
http
  .createServer((req, res) => {
    let body = "";
    req.on("data", (chunk) => (body += chunk));
    req.on("end", () => {
      let person = {};
      try {
        person = JSON.parse(body || "{}");
      } catch (e) {}
      const answer = `Hello ${person.name || person.Name || "World"}!\\n`;
      res.writeHead(200, {"Fn-Http-Status": "200", "Content-Type": "text/plain; charset=utf-8",
                          "Content-Length": Buffer.byteLength(answer)});
      res.end(answer);
    });
  })
  .listen(phony, () => {
    // As Fn's FDKs: listen on a phony name, then link the real one to it.
    fs.chmodSync(phony, 0o666);
    fs.symlinkSync(path.basename(phony), listener);
  });
"""

SHELL_DEFAULT = """\
#!/bin/sh
# A function: the call's body on stdin, the answer on stdout (format default).
name=$(sed -n 's/.*"[Nn]ame" *: *"\\([^"]*\\)".*/\\1/p' | head -n 1)
echo "Hello ${name:-World}!"
"""

RUNTIMES = {
    "go": Runtime("go", "func.go", "scratch", ["/func"],
                  {"default": GO_DEFAULT, "http-stream": GO_HTTP_STREAM, "http": GO_HTTP}),
    "python": Runtime("python", "func.py", "executor/python3:latest", ["python3", "func.py"],
                      {"default": PYTHON_DEFAULT, "http-stream": PYTHON_HTTP_STREAM}),
    "node": Runtime("node", "func.js", "executor/node:latest", ["node", "func.js"],
                    {"default": NODE_DEFAULT, "http-stream": NODE_HTTP_STREAM}),
    "shell": Runtime("shell", "func.sh", "executor/busybox:latest", ["/bin/sh", "func.sh"],
                     {"default": SHELL_DEFAULT}),
}  # fmt: skip
# IronFunctions' names for the same runtimes.
ALIASES = {"golang": "go", "python3": "python", "nodejs": "node", "sh": "shell", "bash": "shell"}


def runtime(name: str) -> Runtime:
    found = RUNTIMES.get(ALIASES.get(name, name))
    if found is None:
        known = ", ".join(RUNTIMES)
        raise ValueError(f"unknown runtime {name!r} (known: {known}; or write a Dockerfile)")
    return found


def guess(files: set[str]) -> Runtime | None:
    """The runtime a folder's files name (its func.go, func.py, func.js or func.sh)."""
    for candidate in RUNTIMES.values():
        if candidate.source in files:
            return candidate
    return None
