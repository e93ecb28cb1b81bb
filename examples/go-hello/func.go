// IronFunctions' Go hello (format `default`): reads {"Name": "..."} from stdin and prints
// "Hello <Name>!". A static binary in an empty image: no shell, no libc.
package main

import (
	"encoding/json"
	"fmt"
	"os"
)

type Person struct {
	Name string
}

func main() {
	p := &Person{Name: "World"}
	json.NewDecoder(os.Stdin).Decode(p)
	fmt.Printf("Hello %v!\n", p.Name)
}
