package faultproxy_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/gopqr/gopqr/internal/faultproxy"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// silence is how long a test listens to prove that nothing arrives.
const silence = 150 * time.Millisecond

// echo is a line echo server on 127.0.0.1 that counts its connections.
type echo struct {
	ln net.Listener
	wg sync.WaitGroup

	mu       sync.Mutex // guards conns, accepted
	conns    map[net.Conn]struct{}
	accepted int
	changed  chan struct{} // closed and replaced on every change
}

func startEcho(t *testing.T) *echo {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e := &echo{ln: ln, conns: map[net.Conn]struct{}{}, changed: make(chan struct{})}
	e.wg.Go(e.serve)
	t.Cleanup(e.close)
	return e
}

func (e *echo) addr() string { return e.ln.Addr().String() }

func (e *echo) serve() {
	for {
		c, err := e.ln.Accept()
		if err != nil {
			return
		}
		e.change(func() { e.conns[c] = struct{}{}; e.accepted++ })
		e.wg.Go(func() {
			defer e.change(func() { delete(e.conns, c) })
			defer c.Close()
			_, _ = io.Copy(c, c)
		})
	}
}

func (e *echo) change(f func()) {
	e.mu.Lock()
	defer e.mu.Unlock()
	f()
	close(e.changed)
	e.changed = make(chan struct{})
}

// await waits until cond(open connections, accepted connections) holds.
func (e *echo) await(t *testing.T, cond func(open, accepted int) bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for {
		e.mu.Lock()
		open, accepted, changed := len(e.conns), e.accepted, e.changed
		e.mu.Unlock()
		if cond(open, accepted) {
			return
		}
		select {
		case <-changed:
		case <-ctx.Done():
			t.Fatalf("echo server: condition not reached (open %d, accepted %d)", open, accepted)
		}
	}
}

func (e *echo) close() {
	_ = e.ln.Close()
	e.mu.Lock()
	for c := range e.conns {
		_ = c.Close()
	}
	e.mu.Unlock()
	e.wg.Wait()
}

func newProxy(t *testing.T, target string) *faultproxy.Proxy {
	t.Helper()
	p, err := faultproxy.New(target)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.Close(); err != nil {
			t.Error(err)
		}
	})
	return p
}

// client is one connection through the proxy.
type client struct {
	net.Conn
	r *bufio.Reader
}

func dial(t *testing.T, p *faultproxy.Proxy) *client {
	t.Helper()
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return &client{Conn: c, r: bufio.NewReader(c)}
}

// roundTrip sends one line and reads its echo.
func (c *client) roundTrip(line string) (string, error) {
	if err := c.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
		return "", err
	}
	if _, err := io.WriteString(c, line+"\n"); err != nil {
		return "", err
	}
	got, err := c.r.ReadString('\n')
	return strings.TrimSuffix(got, "\n"), err
}

func (c *client) mustEcho(t *testing.T, line string) {
	t.Helper()
	got, err := c.roundTrip(line)
	if err != nil || got != line {
		t.Fatalf("echo of %q = %q, %v", line, got, err)
	}
}

// silent fails unless nothing arrives on c for a while.
func (c *client) silent(t *testing.T) {
	t.Helper()
	if err := c.SetReadDeadline(time.Now().Add(silence)); err != nil {
		t.Fatal(err)
	}
	n, err := c.r.Read(make([]byte, 1))
	var ne net.Error
	if n != 0 || !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("read %d bytes, %v; want nothing until the deadline", n, err)
	}
}

// ended fails unless reading c fails at once without a timeout, and
// returns the error.
func (c *client) ended(t *testing.T) error {
	t.Helper()
	if err := c.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	_, err := io.ReadAll(c.r)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("connection still open: %v", err)
	}
	return err
}

func await(t *testing.T, p *faultproxy.Proxy, cond func(faultproxy.Stats) bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := p.Wait(ctx, cond); err != nil {
		t.Fatal(err)
	}
}

func TestForwardsBothWays(t *testing.T) {
	e := startEcho(t)
	p := newProxy(t, e.addr())
	var wg sync.WaitGroup
	for i := range 3 {
		c := dial(t, p)
		wg.Go(func() {
			for j := range 20 {
				line := strings.Repeat(string(rune('a'+i)), j+1)
				if got, err := c.roundTrip(line); err != nil || got != line {
					t.Errorf("echo of %q = %q, %v", line, got, err)
					return
				}
			}
			_ = c.Close()
		})
	}
	wg.Wait()
	await(t, p, func(s faultproxy.Stats) bool { return s.Active == 0 })
	s := p.Stats()
	if s.Accepted != 3 || s.Forwarded != 3 || s.Held != 0 || s.Resets != 0 {
		t.Errorf("stats %+v, want 3 accepted and forwarded", s)
	}
	e.await(t, func(open, accepted int) bool { return open == 0 && accepted == 3 })
}

func TestLargeTransferKeepsOrder(t *testing.T) {
	e := startEcho(t)
	p := newProxy(t, e.addr())
	p.SetLatency(faultproxy.ToTarget, time.Millisecond)
	c := dial(t, p)
	var want strings.Builder
	for i := range 20000 {
		want.WriteString(string(rune('a' + i%26)))
	}
	line := want.String()
	for range 5 {
		c.mustEcho(t, line)
	}
}

func TestLatencyPerDirection(t *testing.T) {
	const d = 80 * time.Millisecond
	for _, tc := range []struct {
		name         string
		toTarget     time.Duration
		toClient     time.Duration
		min, ceiling time.Duration
	}{
		{"none", 0, 0, 0, d},
		{"to target", d, 0, d, 0},
		{"to client", 0, d, d, 0},
		{"both ways", d, d, 2 * d, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := startEcho(t)
			p := newProxy(t, e.addr())
			c := dial(t, p)
			c.mustEcho(t, "warm up") // the delay applies to open connections too
			p.SetLatency(faultproxy.ToTarget, tc.toTarget)
			p.SetLatency(faultproxy.ToClient, tc.toClient)
			start := time.Now()
			c.mustEcho(t, "ping")
			took := time.Since(start)
			if took < tc.min {
				t.Errorf("round trip took %v, want at least %v", took, tc.min)
			}
			if tc.ceiling > 0 && took >= tc.ceiling {
				t.Errorf("round trip took %v without latency", took)
			}
		})
	}
}

func TestLatencyKeepsOrderOfPipelinedWrites(t *testing.T) {
	e := startEcho(t)
	p := newProxy(t, e.addr())
	p.SetLatency(faultproxy.ToClient, 30*time.Millisecond)
	c := dial(t, p)
	const n = 50
	for i := range n {
		if _, err := io.WriteString(c, strings.Repeat("x", i+1)+"\n"); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		got, err := c.r.ReadString('\n')
		if err != nil || len(got) != i+2 {
			t.Fatalf("line %d: %q, %v", i, got, err)
		}
	}
}

func TestBlackHoleHoldsNewConnections(t *testing.T) {
	e := startEcho(t)
	p := newProxy(t, e.addr())
	before := dial(t, p)
	before.mustEcho(t, "before")
	p.SetBlackHole(true)
	held := dial(t, p)
	if _, err := io.WriteString(held, "anyone there?\n"); err != nil {
		t.Fatal(err)
	}
	held.silent(t)
	before.mustEcho(t, "forwarded connections are not affected")
	await(t, p, func(s faultproxy.Stats) bool { return s.Held == 1 })
	e.await(t, func(_, accepted int) bool { return accepted == 1 })

	p.SetBlackHole(false)
	after := dial(t, p)
	after.mustEcho(t, "after")
	held.silent(t) // still held after the black hole is off
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	held.ended(t)
	if s := p.Stats(); s.Accepted != 3 || s.Forwarded != 2 || s.Held != 1 || s.Active != 0 {
		t.Errorf("stats %+v", s)
	}
}

func TestResetEndsEveryConnection(t *testing.T) {
	e := startEcho(t)
	p := newProxy(t, e.addr())
	var conns []*client
	for range 3 {
		c := dial(t, p)
		c.mustEcho(t, "hello")
		conns = append(conns, c)
	}
	p.SetBlackHole(true)
	conns = append(conns, dial(t, p))
	await(t, p, func(s faultproxy.Stats) bool { return s.Active == 4 })
	p.SetBlackHole(false)

	if n := p.Reset(); n != 4 {
		t.Errorf("Reset ended %d connections, want 4", n)
	}
	for i, c := range conns {
		if err := c.ended(t); !errors.Is(err, syscall.ECONNRESET) {
			t.Errorf("connection %d: read error %v, want a reset", i, err)
		}
	}
	e.await(t, func(open, _ int) bool { return open == 0 }) // the target side ended too
	await(t, p, func(s faultproxy.Stats) bool { return s.Active == 0 })
	dial(t, p).mustEcho(t, "a new connection works")
	if s := p.Stats(); s.Resets != 4 {
		t.Errorf("stats %+v, want 4 resets", s)
	}
	if n := p.Reset(); n != 1 {
		t.Errorf("second Reset ended %d connections, want 1", n)
	}
}

func TestRefuseNewConnections(t *testing.T) {
	e := startEcho(t)
	p := newProxy(t, e.addr())
	open := dial(t, p)
	open.mustEcho(t, "before")
	if err := p.SetRefuse(true); err != nil {
		t.Fatal(err)
	}
	if err := p.SetRefuse(true); err != nil {
		t.Fatalf("refusing twice: %v", err)
	}
	if c, err := net.Dial("tcp", p.Addr()); !errors.Is(err, syscall.ECONNREFUSED) {
		if c != nil {
			_ = c.Close()
		}
		t.Fatalf("dial while refusing: %v, want connection refused", err)
	}
	open.mustEcho(t, "open connections keep working")
	if err := p.SetRefuse(false); err != nil {
		t.Fatal(err)
	}
	dial(t, p).mustEcho(t, "same address after refusal")
	if s := p.Stats(); s.Accepted != 2 {
		t.Errorf("stats %+v, want 2 accepted", s)
	}
}

func TestUnreachableTargetResetsClient(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	target := ln.Addr().String()
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	p := newProxy(t, target)
	// The reset may come before the client's connect returns, or after.
	c, err := net.Dial("tcp", p.Addr())
	if err == nil {
		t.Cleanup(func() { _ = c.Close() })
		err = (&client{Conn: c, r: bufio.NewReader(c)}).ended(t)
	}
	if !errors.Is(err, syscall.ECONNRESET) {
		t.Errorf("error %v, want a reset", err)
	}
	await(t, p, func(s faultproxy.Stats) bool { return s.DialErrors == 1 && s.Active == 0 })
}

func TestCloseEndsEverything(t *testing.T) {
	e := startEcho(t)
	p, err := faultproxy.New(e.addr())
	if err != nil {
		t.Fatal(err)
	}
	ignore := goleak.IgnoreCurrent()
	forwarded := dial(t, p)
	forwarded.mustEcho(t, "hello")
	p.SetLatency(faultproxy.ToTarget, time.Hour)
	if _, err := io.WriteString(forwarded, "queued for an hour\n"); err != nil {
		t.Fatal(err)
	}
	p.SetBlackHole(true)
	held := dial(t, p)
	await(t, p, func(s faultproxy.Stats) bool { return s.Held == 1 })
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	for _, c := range []*client{forwarded, held} {
		c.ended(t)
	}
	e.close() // the echo server's goroutines are not the proxy's
	goleak.VerifyNone(t, ignore)
	if err := p.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if err := p.SetRefuse(false); !errors.Is(err, faultproxy.ErrClosed) {
		t.Errorf("SetRefuse after Close = %v, want ErrClosed", err)
	}
	if c, err := net.Dial("tcp", p.Addr()); err == nil {
		_ = c.Close()
		t.Error("a closed proxy still accepts connections")
	}
}

func TestWaitEndsWithContext(t *testing.T) {
	p := newProxy(t, "127.0.0.1:9")
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	err := p.Wait(ctx, func(s faultproxy.Stats) bool { return s.Accepted > 0 })
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Wait = %v, want the context's error", err)
	}
}

func TestNewAcceptsOnlyLoopbackTargets(t *testing.T) {
	for _, tc := range []struct {
		target string
		ok     bool
	}{
		{"127.0.0.1:5432", true},
		{"127.1.2.3:5432", true},
		{"[::1]:5432", true},
		{"192.0.2.1:5432", false}, // TEST-NET-1, never dialled
		{"db.invalid:5432", false},
		{"localhost:5432", false}, // names are not resolved
		{"127.0.0.1", false},
		{"127.0.0.1:0", false},
		{"127.0.0.1:http", false},
		{"", false},
	} {
		t.Run(tc.target, func(t *testing.T) {
			p, err := faultproxy.New(tc.target)
			if p != nil {
				defer p.Close()
			}
			if (err == nil) != tc.ok {
				t.Errorf("New(%q) = %v, want ok %v", tc.target, err, tc.ok)
			}
		})
	}
}

func TestDirectionString(t *testing.T) {
	for d, want := range map[faultproxy.Direction]string{
		faultproxy.ToTarget: "to target", faultproxy.ToClient: "to client", 7: "Direction(7)",
	} {
		if got := d.String(); got != want {
			t.Errorf("%d: %q, want %q", int(d), got, want)
		}
	}
	defer func() {
		if recover() == nil {
			t.Error("SetLatency accepted an invalid direction")
		}
	}()
	newProxy(t, "127.0.0.1:9").SetLatency(7, time.Second)
}
