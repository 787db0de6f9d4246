// Command verify checks a receipt file offline with trusted public keys and prints every
// check; it exits 0 when all pass and 4 otherwise (like `maestro verify-receipt`).
//
//	go run ./examples/verify [-origin ORIGIN] receipt.json appliance.pem [more.pem…]
package main

import (
	"flag"
	"fmt"
	"os"

	"maestro.conductor/sdk/receipt"
)

func main() {
	origin := flag.String("origin", "", "pin the log origin")
	flag.Parse()
	if flag.NArg() < 2 {
		fmt.Fprintln(os.Stderr, "usage: verify [-origin O] RECEIPT KEY.pem…")
		os.Exit(2)
	}
	trust := receipt.Trust{Origin: *origin}
	for _, path := range flag.Args()[1:] {
		pem, err := os.ReadFile(path)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		k, err := receipt.ParsePublicKeyPEM(string(pem))
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		trust.Keys = append(trust.Keys, k)
	}
	report, err := receipt.VerifyFile(flag.Arg(0), trust)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	for _, c := range report.Checks {
		fmt.Printf("%-8s %-11s %s\n", c.Outcome, c.Name, c.Detail)
	}
	if !report.Valid {
		fmt.Println("NOT valid")
		os.Exit(4)
	}
	fmt.Println("valid")
}
