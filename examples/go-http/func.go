// An IronFunctions `http`-format hot function: the container stays up and reads one HTTP
// request after another on stdin, answering each on stdout with a Content-Length. Its
// stderr is the call's log. Route it with `format: http`.
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
)

type greeting struct {
	Message string `json:"message"`
	Route   string `json:"route"`
	Calls   int    `json:"calls"`
}

func main() {
	stdin := bufio.NewReader(os.Stdin)
	stdout := bufio.NewWriter(os.Stdout)
	calls := 0
	for {
		req, err := http.ReadRequest(stdin)
		if err == io.EOF {
			return // the executor closed our stdin: the container is being removed
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "cannot read a request:", err)
			os.Exit(1)
		}
		// The body is exactly Content-Length bytes: the next request follows it.
		body, _ := io.ReadAll(req.Body)
		calls++
		var in struct{ Name string }
		name := "world"
		if json.Unmarshal(body, &in) == nil && in.Name != "" {
			name = in.Name
		}
		fmt.Fprintf(os.Stderr, "call %d (%s) for %s\n", calls, req.Header.Get("Task-ID"), name)
		out, _ := json.Marshal(greeting{"Hello " + name + "!", req.Header.Get("ROUTE"), calls})
		fmt.Fprintf(stdout, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n")
		fmt.Fprintf(stdout, "Content-Length: %s\r\n\r\n", strconv.Itoa(len(out)))
		stdout.Write(out)
		stdout.Flush()
	}
}
