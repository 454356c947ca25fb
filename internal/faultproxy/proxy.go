// Package faultproxy is a TCP proxy for tests. It listens on 127.0.0.1,
// forwards every connection it accepts to one loopback target, and injects
// faults on demand: added latency in either direction, a black hole that
// accepts connections and never answers, a reset of every connection under
// way, and refusal of new connections.
//
// Faults are switched while the proxy runs; each applies from the moment it
// is set. Close ends every connection and every goroutine the proxy started.
package faultproxy

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"slices"
	"strconv"
	"sync"
	"time"
)

// Direction is one way through a proxied connection.
type Direction int

const (
	// ToTarget carries what the client sends: requests.
	ToTarget Direction = iota
	// ToClient carries what the target sends back: responses.
	ToClient
)

func (d Direction) String() string {
	switch d {
	case ToTarget:
		return "to target"
	case ToClient:
		return "to client"
	}
	return "Direction(" + strconv.Itoa(int(d)) + ")"
}

// ErrClosed is returned by the methods of a closed proxy that can fail.
var ErrClosed = errors.New("faultproxy: proxy closed")

const (
	dialTimeout = 5 * time.Second
	acceptPause = 10 * time.Millisecond // after an accept error other than a close
)

// Stats counts what the proxy has done since it started.
type Stats struct {
	Accepted   int // connections accepted, black-holed ones included
	Forwarded  int // connections joined to the target
	Held       int // connections swallowed by the black hole
	DialErrors int // accepted connections the target did not take
	Resets     int // connections ended by Reset
	Active     int // connections open now, held ones included
}

// Proxy forwards TCP connections from its own address to a target address.
// Its methods are safe for concurrent use.
type Proxy struct {
	target string
	addr   string // where it listens, kept across SetRefuse
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup // every goroutine the proxy started

	mu        sync.Mutex   // guards the fields below
	ln        net.Listener // nil while refusing and after Close
	links     map[*link]struct{}
	latency   [2]time.Duration
	blackHole bool
	closed    bool
	stats     Stats
	changed   chan struct{} // closed and replaced whenever stats change
}

// New starts a proxy on 127.0.0.1 with a port of the system's choosing,
// forwarding to target, a host:port whose host is a loopback IP address:
// the proxy is meant for tests, and refuses to aim anywhere else.
func New(target string) (*Proxy, error) {
	if err := checkTarget(target); err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("faultproxy: listen: %w", err)
	}
	p := &Proxy{
		target:  target,
		addr:    ln.Addr().String(),
		ln:      ln,
		links:   map[*link]struct{}{},
		changed: make(chan struct{}),
	}
	p.ctx, p.cancel = context.WithCancel(context.Background())
	p.wg.Go(func() { p.acceptLoop(ln) })
	return p, nil
}

// checkTarget accepts host:port with a loopback IP literal as host.
func checkTarget(target string) error {
	host, port, err := net.SplitHostPort(target)
	if err != nil {
		return fmt.Errorf("faultproxy: target %q: %w", target, err)
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("faultproxy: target %q is not a loopback IP address", target)
	}
	if n, err := strconv.Atoi(port); err != nil || n <= 0 || n > 65535 {
		return fmt.Errorf("faultproxy: target %q has no valid port", target)
	}
	return nil
}

// Addr returns the address the proxy listens on, as host:port.
func (p *Proxy) Addr() string { return p.addr }

// Host returns the host the proxy listens on, always "127.0.0.1".
func (p *Proxy) Host() string {
	host, _, _ := net.SplitHostPort(p.addr)
	return host
}

// Port returns the port the proxy listens on. It stays the same across
// SetRefuse.
func (p *Proxy) Port() int {
	_, port, _ := net.SplitHostPort(p.addr)
	n, _ := strconv.Atoi(port)
	return n
}

// Target returns the address the proxy forwards to.
func (p *Proxy) Target() string { return p.target }

// SetLatency delays every chunk of data that travels in direction dir by d
// from the moment the proxy reads it, keeping the order of the stream. It
// applies to data read from now on, on connections open now and later.
// Zero or negative removes the delay.
func (p *Proxy) SetLatency(dir Direction, d time.Duration) {
	if dir != ToTarget && dir != ToClient {
		panic("faultproxy: SetLatency: invalid " + dir.String())
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.latency[dir] = max(d, 0)
}

// delay returns the latency now set for dir.
func (p *Proxy) delay(dir Direction) time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.latency[dir]
}

// SetBlackHole switches the black hole. While it is on, new connections are
// accepted and then held: what the client sends is read and dropped, the
// target is never dialled and nothing is ever answered. Held connections
// stay silent after the black hole is switched off, until the client closes
// them or the proxy resets or closes them. Connections already forwarded
// are not affected.
func (p *Proxy) SetBlackHole(on bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.blackHole = on
}

// SetRefuse switches refusal of new connections. While it is on, the proxy
// does not listen, so a client's connect fails at once with "connection
// refused", as with a server that is down; connections already open keep
// working. Switching it off listens again on the same address, which fails
// only if another socket took the port meanwhile.
func (p *Proxy) SetRefuse(on bool) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case p.closed:
		return ErrClosed
	case on && p.ln != nil:
		err := p.ln.Close()
		p.ln = nil
		return err
	case on || p.ln != nil:
		return nil
	}
	ln, err := net.Listen("tcp", p.addr)
	if err != nil {
		return fmt.Errorf("faultproxy: listen again on %s: %w", p.addr, err)
	}
	p.ln = ln
	p.wg.Go(func() { p.acceptLoop(ln) })
	return nil
}

// Reset ends every connection open now, forwarded or held, with a TCP
// reset on both sides, as a network failure in the middle of a request
// would. It returns how many connections it ended.
func (p *Proxy) Reset() int {
	p.mu.Lock()
	links := slices.Collect(maps.Keys(p.links))
	p.mu.Unlock()
	n := 0
	for _, l := range links {
		if l.close(true) {
			n++
		}
	}
	p.update(func(s *Stats) { s.Resets += n })
	return n
}

// Stats returns a snapshot of the counters.
func (p *Proxy) Stats() Stats {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stats
}

// Wait blocks until cond holds for the counters or ctx ends; cond is
// checked now and after every change of the counters.
func (p *Proxy) Wait(ctx context.Context, cond func(Stats) bool) error {
	for {
		p.mu.Lock()
		s, changed := p.stats, p.changed
		p.mu.Unlock()
		if cond(s) {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return fmt.Errorf("faultproxy: wait (last %+v): %w", s, context.Cause(ctx))
		}
	}
}

// update changes the counters and wakes every Wait.
func (p *Proxy) update(change func(*Stats)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	change(&p.stats)
	close(p.changed)
	p.changed = make(chan struct{})
}

// Close stops listening, closes every connection and waits for every
// goroutine of the proxy to end. Calling it again does nothing.
func (p *Proxy) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	ln := p.ln
	p.ln = nil
	links := slices.Collect(maps.Keys(p.links))
	p.mu.Unlock()
	p.cancel()
	var err error
	if ln != nil {
		err = ln.Close()
	}
	for _, l := range links {
		l.close(false)
	}
	p.wg.Wait()
	return err
}
