// Command quickstart (the README's example) runs the embedded "hello" workflow and verifies
// its receipt offline. It needs MAESTRO_URL and MAESTRO_TOKEN (an operator token).
package main

import (
	"context"
	"fmt"

	"maestro.conductor/sdk/client"
)

func main() {
	c, ctx := client.New("", ""), context.Background() // MAESTRO_URL, MAESTRO_TOKEN
	e := client.Must(c.SubmitWorkflow(ctx, "hello", client.SubmitOptions{Wait: "30s"}))
	trust := client.Must(c.Trust(ctx)) // the published keys; pin your own in production
	report := client.Must(c.Verify(ctx, e.ID, trust))
	fmt.Println(e.Status, report.Valid)
}
