// Command validate checks manifest files locally with the appliance's exact rules and
// prints every problem with its path and hint; it exits 3 when one is invalid.
//
//	go run ./examples/validate workflow.yaml [more.yaml…]
package main

import (
	"errors"
	"fmt"
	"os"

	"maestro.conductor/sdk/manifest"
)

func main() {
	status := 0
	for _, path := range os.Args[1:] {
		text, err := os.ReadFile(path)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		m, _, err := manifest.Parse(string(text), nil)
		var invalid *manifest.InvalidError
		if errors.As(err, &invalid) {
			status = 3
			fmt.Printf("%s: invalid\n", path)
			for _, p := range invalid.Problems {
				fmt.Printf("  %-18s %s\n", p.Code, p)
				if p.Hint != "" {
					fmt.Printf("  %-18s hint: %s\n", "", p.Hint)
				}
			}
			continue
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		fmt.Printf("%s: valid (%s@%s, %d tasks in %s)\n", path, m.Name, m.Version, len(m.Tasks), m.Region)
	}
	os.Exit(status)
}
