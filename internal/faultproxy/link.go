package faultproxy

import (
	"errors"
	"io"
	"net"
	"sync"
	"time"
)

const (
	chunkSize = 32 << 10
	queueLen  = 64 // chunks read but not yet delivered, per direction
)

// link is one accepted connection and, once dialled, its target side.
type link struct {
	client net.Conn
	done   chan struct{} // closed by close

	mu     sync.Mutex // guards server and closed
	server net.Conn
	closed bool
}

func newLink(client net.Conn) *link {
	return &link{client: client, done: make(chan struct{})}
}

// attach records the target side; it fails if the link was closed
// meanwhile, and the caller then closes server itself.
func (l *link) attach(server net.Conn) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return false
	}
	l.server = server
	return true
}

// close closes both sides, with a TCP reset if abort is set. It reports
// whether this call closed the link.
func (l *link) close(abort bool) bool {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return false
	}
	l.closed = true
	close(l.done)
	conns := []net.Conn{l.client, l.server}
	l.mu.Unlock()
	for _, c := range conns {
		if c == nil {
			continue
		}
		if tc, ok := c.(*net.TCPConn); ok && abort {
			_ = tc.SetLinger(0) // Close then sends RST instead of FIN
		}
		_ = c.Close()
	}
	return true
}

// waitUntil waits for t and reports whether the link is still open.
func (l *link) waitUntil(t time.Time) bool {
	d := time.Until(t)
	if d <= 0 {
		select {
		case <-l.done:
			return false
		default:
			return true
		}
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return true
	case <-l.done:
		return false
	}
}

// acceptLoop admits connections from ln until ln is closed.
func (p *Proxy) acceptLoop(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err == nil {
			p.admit(c)
			continue
		}
		if errors.Is(err, net.ErrClosed) || !p.pause(acceptPause) {
			return
		}
	}
}

// pause waits for d and reports whether the proxy is still open.
func (p *Proxy) pause(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-p.ctx.Done():
		return false
	}
}

// admit registers an accepted connection and starts serving it: held in
// the black hole if it is on, forwarded otherwise.
func (p *Proxy) admit(c net.Conn) {
	l := newLink(c)
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		_ = c.Close()
		return
	}
	p.links[l] = struct{}{}
	hole := p.blackHole
	p.mu.Unlock()
	p.update(func(s *Stats) {
		s.Accepted++
		s.Active++
		if hole {
			s.Held++
		}
	})
	if hole {
		p.wg.Go(func() { p.swallow(l) })
		return
	}
	p.wg.Go(func() { p.forward(l) })
}

// drop forgets a link once it is closed.
func (p *Proxy) drop(l *link) {
	l.close(false)
	p.mu.Lock()
	delete(p.links, l)
	p.mu.Unlock()
	p.update(func(s *Stats) { s.Active-- })
}

// swallow reads and drops what a held client sends, until it goes away.
func (p *Proxy) swallow(l *link) {
	defer p.drop(l)
	_, _ = io.Copy(io.Discard, l.client)
}

// forward dials the target and copies both ways until either side ends.
// A client whose target cannot be reached is reset.
func (p *Proxy) forward(l *link) {
	defer p.drop(l)
	d := net.Dialer{Timeout: dialTimeout}
	server, err := d.DialContext(p.ctx, "tcp", p.target)
	if err != nil {
		p.update(func(s *Stats) { s.DialErrors++ })
		l.close(true)
		return
	}
	if !l.attach(server) {
		_ = server.Close()
		return
	}
	p.update(func(s *Stats) { s.Forwarded++ })
	var wg sync.WaitGroup
	wg.Go(func() { p.pump(l, server, l.client, ToTarget) })
	wg.Go(func() { p.pump(l, l.client, server, ToClient) })
	wg.Wait()
}

// chunk is data read from one side, to be written to the other at due.
type chunk struct {
	data []byte
	due  time.Time
}

// pump copies src to dst in direction dir, each chunk delayed by the
// latency set when it was read. When src ends, it delivers what it read
// and then closes the link.
func (p *Proxy) pump(l *link, dst, src net.Conn, dir Direction) {
	q := make(chan chunk, queueLen)
	var wg sync.WaitGroup
	wg.Go(func() { deliver(l, dst, q) })
	p.read(l, src, q, dir)
	wg.Wait()
}

// read queues what src sends until src fails or the link closes.
func (p *Proxy) read(l *link, src net.Conn, q chan<- chunk, dir Direction) {
	defer close(q)
	for {
		buf := make([]byte, chunkSize)
		n, err := src.Read(buf)
		if n > 0 {
			c := chunk{data: buf[:n], due: time.Now().Add(p.delay(dir))}
			select {
			case q <- c:
			case <-l.done:
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// deliver writes each queued chunk when it is due, then closes the link.
func deliver(l *link, dst net.Conn, q <-chan chunk) {
	defer l.close(false)
	for c := range q {
		if !l.waitUntil(c.due) {
			return
		}
		if _, err := dst.Write(c.data); err != nil {
			return
		}
	}
}
