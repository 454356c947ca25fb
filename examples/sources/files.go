package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/gopqr/gopqr"
	"github.com/gopqr/gopqr/filesecret"
	"github.com/gopqr/gopqr/internal/simkit"
)

// dataLink is the link of a Kubernetes secret volume that points to the
// current generation of its files.
const dataLink = "..data"

// files mounts one login as a Kubernetes secret volume (files username and
// password) in a temporary directory. A rotation changes the password in
// PostgreSQL, then publishes it with the kubelet's atomic swap; the
// source's watcher sees the swap and refreshes the pool.
func files(ctx context.Context, e *env) (*store, error) {
	login, err := e.newLogin(ctx, "files")
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "gopqr-secret-")
	if err != nil {
		return nil, err
	}
	vol := &volume{dir: dir}
	if err := vol.publish(login); err != nil {
		return nil, errors.Join(err, os.RemoveAll(dir))
	}
	src, err := filesecret.New(dir, filesecret.WithErrorHandler(func(err error) {
		fmt.Fprintln(e.log, "filesecret:", secrets.Redact(err.Error()))
	}))
	if err != nil {
		return nil, errors.Join(err, os.RemoveAll(dir))
	}
	var pool atomic.Pointer[gopqr.Connector]
	return &store{
		src: src,
		watch: func(ctx context.Context, conn *gopqr.Connector) (io.Closer, error) {
			pool.Store(conn)
			return src.WatchConnector(ctx, conn)
		},
		// The source is called by the connector only: its refresher calls.
		calls: func() map[string]int {
			s := pool.Load().Stats()
			return map[string]int{"Refresh (reads files, no network)": int(s.Refreshes + s.RefreshErrors)}
		},
		rotate: func(ctx context.Context, _ int) error {
			if err := simkit.Sleep(ctx, e.cfg.every); err != nil {
				return err
			}
			p, err := e.changePassword(ctx, login)
			if err != nil {
				return err
			}
			login = p
			return vol.publish(p)
		},
		close: func() { _ = os.RemoveAll(dir) },
	}, nil
}

// volume is a directory laid out and updated the way the kubelet's atomic
// writer does it for a secret volume: each generation of the files lives
// in a timestamped directory, ..data links to the current one, and each
// visible file is a link through ..data.
type volume struct {
	dir string
	gen int
	cur string // the generation ..data points to
}

// publish writes p as a new generation, swaps ..data to it (a link
// ..data_tmp renamed over ..data: one atomic step) and removes the old one.
func (v *volume) publish(p gopqr.Pair) error {
	v.gen++
	gen := fmt.Sprintf("..%s.%d", time.Now().UTC().Format("2006_01_02_15_04_05"), v.gen)
	if err := os.Mkdir(filepath.Join(v.dir, gen), 0o700); err != nil {
		return err
	}
	values := map[string]string{"username": p.Username, "password": p.Password}
	for name, value := range values {
		if err := os.WriteFile(filepath.Join(v.dir, gen, name), []byte(value+"\n"), 0o600); err != nil {
			return err
		}
	}
	tmp := filepath.Join(v.dir, dataLink+"_tmp")
	if err := os.Symlink(gen, tmp); err != nil {
		return err
	}
	if err := os.Rename(tmp, filepath.Join(v.dir, dataLink)); err != nil {
		return err
	}
	for name := range values {
		link := filepath.Join(v.dir, name)
		if _, err := os.Lstat(link); errors.Is(err, os.ErrNotExist) {
			if err := os.Symlink(filepath.Join(dataLink, name), link); err != nil {
				return err
			}
		}
	}
	old := v.cur
	v.cur = gen
	if old == "" {
		return nil
	}
	return os.RemoveAll(filepath.Join(v.dir, old))
}
