package pgtest

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// hbaConf replaces the pg_hba.conf that initdb writes: passwords everywhere,
// TCP from loopback only.
const hbaConf = `# Written by gopqr's internal/pgtest.
# TYPE  DATABASE  USER  ADDRESS       METHOD
local   all       all                 scram-sha-256
host    all       all   127.0.0.1/32  scram-sha-256
host    all       all   ::1/128       scram-sha-256
`

// initdb creates the data directory as the server user.
func (c *Cluster) initdb(ctx context.Context) error {
	pwfile := filepath.Join(c.dir, "pwfile")
	if err := os.WriteFile(pwfile, []byte(c.adminPass+"\n"), 0o600); err != nil {
		return fmt.Errorf("pgtest: write password file: %w", err)
	}
	defer os.Remove(pwfile)
	if err := c.chownAll(); err != nil {
		return err
	}
	args, err := c.initdbArgs(ctx, pwfile)
	if err != nil {
		return err
	}
	c.logf("initdb %s (binaries in %s)", c.dataDir, c.binDir)
	out, err := c.command(ctx, "initdb", args...).CombinedOutput()
	if c.log != nil {
		_, _ = c.log.Write(out)
	}
	if err != nil {
		return fmt.Errorf("pgtest: initdb: %w\n%s", err, tail(out, tailBytes))
	}
	return c.writeHBA()
}

// initdbArgs returns initdb's arguments, adding --no-sync when supported.
func (c *Cluster) initdbArgs(ctx context.Context, pwfile string) ([]string, error) {
	args := []string{
		"-D", c.dataDir,
		"-U", c.adminUser,
		"--pwfile=" + pwfile,
		"--auth-host=scram-sha-256",
		"--auth-local=scram-sha-256",
		"-E", "UTF8",
		"--locale=C",
	}
	help, err := c.command(ctx, "initdb", "--help").Output()
	if err != nil {
		return nil, fmt.Errorf("pgtest: initdb --help: %w", err)
	}
	if bytes.Contains(help, []byte("--no-sync")) {
		args = append(args, "--no-sync")
	}
	return args, nil
}

// writeHBA installs hbaConf in the data directory.
func (c *Cluster) writeHBA() error {
	p := filepath.Join(c.dataDir, "pg_hba.conf")
	if err := os.WriteFile(p, []byte(hbaConf), 0o600); err != nil {
		return fmt.Errorf("pgtest: write pg_hba.conf: %w", err)
	}
	return c.chown(p)
}

// command returns a command running the named binary from c.binDir as the
// server user, in c.dir.
func (c *Cluster) command(ctx context.Context, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, filepath.Join(c.binDir, name), args...)
	cmd.Dir = c.dir
	cmd.SysProcAttr = procAttr(c.cred)
	return cmd
}

// chownAll gives c.dir and everything in it to the server user.
func (c *Cluster) chownAll() error {
	return filepath.WalkDir(c.dir, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("pgtest: walk %s: %w", p, err)
		}
		return c.chown(p)
	})
}

// chown gives p to the server user when it differs from the current one.
func (c *Cluster) chown(p string) error {
	if c.cred == nil {
		return nil
	}
	if err := os.Lchown(p, int(c.cred.Uid), int(c.cred.Gid)); err != nil {
		return fmt.Errorf("pgtest: chown %s: %w", p, err)
	}
	return nil
}

// tail returns roughly the last n bytes of b, starting at a line boundary.
func tail(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			b = b[i+1:]
		}
	}
	return strings.TrimRight(string(b), "\n")
}
