package pgtest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/lib/pq"
)

const (
	readyTimeout  = 30 * time.Second
	stopTimeout   = 30 * time.Second
	pollInterval  = 50 * time.Millisecond
	tailBytes     = 4096
	portAttempts  = 5
	probeDeadline = 2 * time.Second
)

// errPortInUse marks a startup that failed because the port was taken.
var errPortInUse = errors.New("pgtest: port already in use")

// server is one run of the postgres child process.
type server struct {
	cmd     *exec.Cmd
	done    chan struct{} // closed when the process has exited
	waitErr error         // cmd.Wait's result, set before done is closed
}

// exited reports whether the process has exited.
func (s *server) exited() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

// stop sends SIGINT (fast shutdown) and waits up to timeout for the exit,
// then kills the process.
func (s *server) stop(timeout time.Duration) error {
	if s.exited() {
		return nil
	}
	if err := s.cmd.Process.Signal(syscall.SIGINT); err != nil && !s.exited() {
		return errors.Join(fmt.Errorf("pgtest: signal postgres: %w", err), s.kill())
	}
	select {
	case <-s.done:
		return nil
	case <-time.After(timeout):
		return errors.Join(errors.New("pgtest: postgres ignored fast shutdown"), s.kill())
	}
}

// kill sends SIGKILL and waits for the exit.
func (s *server) kill() error {
	err := s.cmd.Process.Kill()
	<-s.done
	if err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("pgtest: kill postgres: %w", err)
	}
	return nil
}

// startFresh launches the server on a free port, trying a new port when the
// chosen one was taken in the meantime.
func (c *Cluster) startFresh(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	var err error
	for range portAttempts {
		var port int
		if port, err = freePort(); err != nil {
			return err
		}
		err = c.launchLocked(ctx, port)
		if err == nil {
			c.port = port // set once, before the cluster is shared
			return nil
		}
		if !errors.Is(err, errPortInUse) {
			return err
		}
		c.logf("port %d was taken, trying another", port)
	}
	return err
}

// freePort returns a port that was free on 127.0.0.1 a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("pgtest: find a free port: %w", err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	if err := l.Close(); err != nil {
		return 0, fmt.Errorf("pgtest: find a free port: %w", err)
	}
	return port, nil
}

// launchLocked starts postgres on port and waits until it accepts the
// superuser. Callers hold c.mu.
func (c *Cluster) launchLocked(ctx context.Context, port int) error {
	logFile, err := os.OpenFile(c.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("pgtest: open server log: %w", err)
	}
	defer logFile.Close() // the child keeps its own descriptor
	offset, err := logFile.Seek(0, io.SeekEnd)
	if err != nil {
		return fmt.Errorf("pgtest: seek server log: %w", err)
	}
	cmd := c.command(context.Background(), "postgres", c.serverArgs(port)...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("pgtest: start postgres: %w", err)
	}
	s := &server{cmd: cmd, done: make(chan struct{})}
	go func() {
		s.waitErr = cmd.Wait()
		close(s.done)
	}()
	if err := c.waitReady(ctx, s, port); err != nil {
		return errors.Join(c.startupError(err, s, port, offset), s.kill())
	}
	c.proc = s
	c.logf("postgres %d listening on %s:%d", cmd.Process.Pid, c.host, port)
	return nil
}

// serverArgs returns postgres's command line.
func (c *Cluster) serverArgs(port int) []string {
	settings := []string{
		"listen_addresses=" + c.host,
		"port=" + strconv.Itoa(port),
		"unix_socket_directories=" + c.dir,
		"fsync=off",
		"synchronous_commit=off",
		"full_page_writes=off",
		"max_connections=" + strconv.Itoa(c.maxConns),
		"password_encryption=scram-sha-256",
		"log_line_prefix=%m [%p] %e ",
		"logging_collector=off",
	}
	args := []string{"-D", c.dataDir}
	for _, s := range settings {
		args = append(args, "-c", s)
	}
	return args
}

// errExited reports that postgres exited before accepting connections.
var errExited = errors.New("pgtest: postgres exited during startup")

// waitReady waits until postmaster.pid says the server is ready, then
// until a superuser connection succeeds. It gives up when the process
// exits or the startup deadline passes. Checking the pid file first keeps
// the probe from reaching another server that took the port.
func (c *Cluster) waitReady(ctx context.Context, s *server, port int) error {
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	connector, err := pq.NewConnector(c.userDSN(port, c.adminUser, c.adminPass))
	if err != nil {
		return fmt.Errorf("pgtest: admin connector: %w", err)
	}
	pid := s.cmd.Process.Pid
	for {
		err := errors.New("pgtest: postmaster.pid does not say ready yet")
		if c.pidFileReady(pid) {
			err = probe(ctx, connector)
		}
		if err == nil {
			return nil
		}
		var pqErr *pq.Error
		if errors.As(err, &pqErr) && strings.HasPrefix(string(pqErr.Code), "28") {
			return fmt.Errorf("pgtest: superuser login rejected: %w", err)
		}
		select {
		case <-s.done:
			return fmt.Errorf("%w (%v)", errExited, s.waitErr)
		case <-ctx.Done():
			return fmt.Errorf("pgtest: postgres not ready: %w (last: %w)", ctx.Err(), err)
		case <-time.After(pollInterval):
		}
	}
}

// pidFileReady reports whether the data directory's postmaster.pid belongs
// to pid and says the server accepts connections: its status line (PG 10
// and later) reads "ready", or, without one, its listen address line is
// filled in.
func (c *Cluster) pidFileReady(pid int) bool {
	b, err := os.ReadFile(filepath.Join(c.dataDir, "postmaster.pid"))
	if err != nil {
		return false
	}
	lines := strings.Split(string(b), "\n")
	if len(lines) < 6 || strings.TrimSpace(lines[0]) != strconv.Itoa(pid) {
		return false
	}
	if len(lines) > 7 && strings.TrimSpace(lines[7]) != "" {
		return strings.TrimSpace(lines[7]) == "ready"
	}
	return strings.TrimSpace(lines[5]) != ""
}

// probe opens and closes one connection.
func probe(ctx context.Context, connector *pq.Connector) error {
	ctx, cancel := context.WithTimeout(ctx, probeDeadline)
	defer cancel()
	conn, err := connector.Connect(ctx)
	if err != nil {
		return err
	}
	return conn.Close()
}

// startupError adds the server log written since offset to err, and marks
// it with errPortInUse when the log says the port was taken.
func (c *Cluster) startupError(err error, s *server, port int, offset int64) error {
	logTail := c.logSince(offset)
	if s.exited() && strings.Contains(logTail, "already in use") {
		err = fmt.Errorf("%w: %w", errPortInUse, err)
	}
	return fmt.Errorf("%w\nport %d, server log:\n%s", err, port, logTail)
}

// logSince returns the tail of the server log from offset on.
func (c *Cluster) logSince(offset int64) string {
	f, err := os.Open(c.logPath)
	if err != nil {
		return "(" + err.Error() + ")"
	}
	defer f.Close()
	b, err := io.ReadAll(io.NewSectionReader(f, offset, 1<<40))
	if err != nil {
		return "(" + err.Error() + ")"
	}
	return tail(b, tailBytes)
}
