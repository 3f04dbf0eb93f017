// Command dsctl is the command-line client and developer tool: run every
// service in one process (up), the embedded broker alone (broker), generate
// sample data (gen), submit and watch a job (process), read status and
// statistics, verify an audit trail, rebuild the projections, and run the
// whole demo.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv); err != nil {
		fmt.Fprintln(os.Stderr, "dsctl:", err)
		os.Exit(1)
	}
}

const usage = `usage: dsctl <command> [flags]

commands:
  up                      run api, ingest, processor and projector in one process on an embedded broker
  broker                  run the embedded Kafka broker (kfake) alone, on DSPIPE_BROKER_PORT
  gen                     generate a synthetic dataset with a ground-truth sidecar
  process                 submit a request, show live progress, print statistics
  status <execution_id>   print an execution's status
  stats <execution_id>    print an execution's statistics
  audit verify <id>       verify an execution's trail (hash chain, signed seals, read model) from the API, Postgres or Kafka
  audit export <id>       write the trail as published, with the public key, for verification without dsctl
  audit access            list the access audit (who read or changed what, denials included)
  audit keygen -o F       make an Ed25519 audit signing key
  projector rebuild       replay the event log from offset zero into a fresh schema
  read [-type T] -c k=v   read one source without the services (dry run): records, MB/s, peak memory
  reviews [ack ID N -note] list the review queue of quarantined records, or acknowledge one with a note
  delete <execution_id>   the right to deletion: remove an execution's outputs and destroy its data key
  erase -record ID | -source NAME=ID ...  erase data subjects from later executions and finished outputs (admin)
  keys init|list|rotate|remove N  the local keyring that wraps data keys (DSPIPE_KEYRING)
  analyze pii|crisis|content|quality|bias  run an analyzer over JSON Lines (stdin to stdout, fields in ../shared/eval/README.md)
  migrate                 apply the database migrations
  demo                    generate data, run everything embedded, process it, print statistics
`

func run(ctx context.Context, args []string, getenv func(string) string) error {
	if len(args) == 0 {
		fmt.Fprint(os.Stderr, usage)
		return fmt.Errorf("no command given")
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "up":
		return cmdUp(ctx, rest, getenv)
	case "broker":
		return cmdBroker(ctx, rest, getenv)
	case "gen":
		return cmdGen(rest)
	case "process":
		return cmdProcess(ctx, rest, getenv)
	case "status", "stats":
		return cmdShow(ctx, cmd, rest, getenv)
	case "audit":
		return cmdAudit(ctx, rest, getenv)
	case "projector":
		return cmdProjector(ctx, rest, getenv)
	case "migrate":
		return cmdMigrate(ctx, getenv)
	case "reviews":
		return cmdReviews(ctx, rest, getenv)
	case "keys":
		return cmdKeys(rest, getenv)
	case "erase":
		return cmdErase(ctx, rest, getenv)
	case "delete":
		if len(rest) != 1 {
			return errors.New("usage: dsctl delete <execution_id>   (deletes its outputs and destroys its data key; cannot be undone)")
		}
		var out map[string]any
		if err := apiClient(getenv).Do(ctx, "DELETE", "/"+rest[0]+"/data", map[string]string{"confirm": rest[0]}, &out); err != nil {
			return err
		}
		fmt.Printf("deleting the data of %s: its outputs are removed and its data key destroyed; the trail records it\n", rest[0])
		return nil
	case "analyze":
		return cmdAnalyze(ctx, rest, getenv)
	case "read":
		return cmdRead(ctx, rest, getenv)
	case "demo":
		return cmdDemo(ctx, rest, getenv)
	case "help", "-h", "--help":
		fmt.Print(usage)
		return nil
	}
	fmt.Fprint(os.Stderr, usage)
	return fmt.Errorf("unknown command %q", cmd)
}
