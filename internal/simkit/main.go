package simkit

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sync"
	"syscall"
)

// ParseFlags parses args with fs, whose usage and errors go to errOut, and
// refuses arguments that are not flags.
func ParseFlags(fs *flag.FlagSet, args []string, errOut io.Writer) error {
	fs.SetOutput(errOut)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	return nil
}

// Main is the main function of the demo name: parse reads the command line
// (-h exits 0; an error is printed and exits 2), then run runs under a
// context that the first SIGINT or SIGTERM ends, so that it can clean up
// (a second one kills), and its result is the exit status.
func Main[C any](name string, parse func(args []string, errOut io.Writer) (C, error),
	run func(ctx context.Context, cfg C, stdout, stderr io.Writer) int,
) {
	cfg, err := parse(os.Args[1:], os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, name+":", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	context.AfterFunc(ctx, stop)
	code := run(ctx, cfg, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// LockedWriter serialises the writes of several goroutines to W.
type LockedWriter struct {
	mu sync.Mutex
	W  io.Writer
}

// Write writes p to W, one call at a time.
func (l *LockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.W.Write(p)
}
