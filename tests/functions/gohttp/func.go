// A test `http`-format hot function. Its request body is a command:
//   echo ...        the body back, with the call's variables it was sent as headers
//   crash           exits with status 3 mid-call
//   sleep SECONDS   answers after that long
//   garbage         prints something that is not HTTP
//   nolength        answers with no Content-Length (the connection-delimited body a
//                   stdout can never end)
//   status N        answers with status N
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"
)

func respond(w *bufio.Writer, status int, body []byte) {
	fmt.Fprintf(w, "HTTP/1.1 %d %s\r\nX-Function: gohttp\r\n", status, http.StatusText(status))
	fmt.Fprintf(w, "Content-Length: %d\r\n\r\n", len(body))
	w.Write(body)
	w.Flush()
}

func main() {
	in, out := bufio.NewReader(os.Stdin), bufio.NewWriter(os.Stdout)
	for req, err := http.ReadRequest(in); err != io.EOF; req, err = http.ReadRequest(in) {
		if err != nil {
			panic(err)
		}
		raw, _ := io.ReadAll(req.Body)
		command := strings.Fields(string(raw))
		fmt.Fprintf(os.Stderr, "gohttp got %q\n", raw)
		switch {
		case len(command) > 0 && command[0] == "crash":
			os.Exit(3)
		case len(command) > 1 && command[0] == "sleep":
			seconds, _ := strconv.ParseFloat(command[1], 64)
			time.Sleep(time.Duration(seconds * float64(time.Second)))
			respond(out, 200, []byte("slept"))
		case len(command) > 0 && command[0] == "garbage":
			out.WriteString("this is not HTTP\r\n\r\n")
			out.Flush()
		case len(command) > 0 && command[0] == "nolength":
			out.WriteString("HTTP/1.1 200 OK\r\n\r\nno length")
			out.Flush()
		case len(command) > 1 && command[0] == "status":
			status, _ := strconv.Atoi(command[1])
			respond(out, status, []byte("as asked"))
		default:
			seen := map[string]string{"body": string(raw), "method": req.Method, "target": req.RequestURI}
			for name := range req.Header {
				seen[name] = req.Header.Get(name)
			}
			answer, _ := json.Marshal(seen)
			respond(out, 200, answer)
		}
	}
}
