// Package tlogclient checks that a tenant's log, as the service serves it at <API>/v1/log/ in the
// C2SP tlog-tiles layout, is read and verified by transparency-log client code this project did
// not write: filippo.io/torchwood's tile fetcher and client, and golang.org/x/mod's sumdb/note and
// sumdb/tlog (signed notes, inclusion and consistency proofs from tiles). The only code of ours
// in the loop is the signed-note verifier for ECDSA keys (signature type 0x02), which
// golang.org/x/mod leaves to the caller.
//
// The test runs against a local run (scripts/local): set AUDIT_LOG_URL and
// AUDIT_LOG_PLATFORM_KEY; scripts/test does.
package tlogclient
