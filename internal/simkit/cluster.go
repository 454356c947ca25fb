package simkit

import (
	"context"
	"fmt"
	"io"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/gopqr/gopqr/internal/pgtest"
)

// minServerConns is the smallest max_connections given to a throwaway
// cluster.
const minServerConns = 200

// StartCluster starts a throwaway PostgreSQL cluster on 127.0.0.1 (as an
// unprivileged user when the process is root; see pgtest) with room for two
// connections per worker, and says where it listens on log. With verbose,
// the cluster's setup is logged too.
func StartCluster(ctx context.Context, workers int, verbose bool, log io.Writer) (*pgtest.Cluster, error) {
	opts := pgtest.Options{MaxConnections: max(minServerConns, 2*workers+20)}
	if verbose {
		opts.Log = log
	}
	c, err := pgtest.Start(ctx, opts)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(log, "started a throwaway PostgreSQL cluster on %s:%d\n", c.Host(), c.Port())
	return c, nil
}

// NewLogger returns a zap logger writing Info and above to w if verbose,
// else nil, which gopqr takes as no logging.
func NewLogger(verbose bool, w io.Writer) *zap.Logger {
	if !verbose {
		return nil
	}
	enc := zapcore.NewConsoleEncoder(zap.NewDevelopmentEncoderConfig())
	return zap.New(zapcore.NewCore(enc, zapcore.AddSync(w), zapcore.InfoLevel))
}
