// Command processor runs the processor service of the dataset pipeline; see the README
// for its configuration.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/dspipe/dspipe/internal/app"
	"github.com/dspipe/dspipe/internal/config"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Getenv); err != nil {
		fmt.Fprintln(os.Stderr, "processor:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, getenv func(string) string) error {
	app.SetMemoryLimit(getenv)
	cfg, err := config.Load(getenv)
	if err != nil {
		return err
	}
	return app.Run(ctx, cfg, app.Logger(cfg), app.ServiceProcessor)
}
