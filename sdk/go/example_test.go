package auditlog_test

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log"
	"os"

	auditlog "github.com/audit-log/audit-log/sdk/go"
)

// Send a signed event, query it back and verify its inclusion in the signed log.
func Example() {
	ctx := context.Background()
	client, _ := auditlog.NewClient("http://127.0.0.1:3000", os.Getenv("AUDIT_LOG_API_KEY"))
	var publisherKey ed25519.PrivateKey  // registered earlier with client.RegisterSigningKey
	var trusted []auditlog.CheckpointKey // pinned out of band, e.g. auditlog.ParseVerifierKey(...)

	event, err := auditlog.SignEvent(auditlog.Event{Action: "user.login", Actor: auditlog.Actor{ID: "ada"}}, "publisher-1", publisherKey)
	if err != nil {
		log.Fatal(err)
	}
	sent, err := client.SendEvent(ctx, event)
	if err != nil {
		log.Fatal(err)
	}
	for entry, err := range client.Events(ctx, auditlog.Query{Filter: auditlog.Filter{ActorID: "ada"}}) {
		if err != nil {
			log.Fatal(err)
		}
		if entry.ID == sent.ID {
			checkpoint, err := client.VerifyEventInclusion(ctx, entry, trusted...)
			fmt.Println(checkpoint, err)
		}
	}
}

// Verify a downloaded export bundle offline.
func ExampleVerifyExportDir() {
	key, err := auditlog.ParseVerifierKey(os.Getenv("AUDIT_LOG_VERIFIER_KEY"))
	if err != nil {
		log.Fatal(err)
	}
	report, err := auditlog.VerifyExportDir("./export", key)
	var fault *auditlog.ExportFault
	if errors.As(err, &fault) {
		log.Fatalf("tampered: %s at row %d", fault.Code, fault.Row)
	}
	fmt.Println(report.Rows, "rows verified against checkpoint", report.Checkpoint.Size)
}
