package main

import (
	"bufio"
	"context"
	"database/sql"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/lib/pq"
)

// Monitor timing: connections are counted often, memory now and then.
const (
	pollEvery   = 100 * time.Millisecond
	memoryEvery = 20 // polls between two memory readings
	pollTimeout = 2 * time.Second
)

// monitor polls the server's connections of the fleet's logins through an
// admin connection, and the memory used by the server and this process.
type monitor struct {
	db    *sql.DB
	roles []string

	mu        sync.Mutex // guards the fields below
	samples   int
	sum       int
	peak      int
	peakPSSKB int64 // the server's processes, summed
	loadSum   float64
	loads     int
	errs      int
	lastErr   error
}

// newMonitor returns a monitor of roles' connections through admin.
func newMonitor(admin *sql.DB, roles []string) *monitor {
	return &monitor{db: admin, roles: roles}
}

// run polls until ctx ends.
func (m *monitor) run(ctx context.Context) {
	t := time.NewTicker(pollEvery)
	defer t.Stop()
	for n := 0; ; n++ {
		m.poll(ctx, n%memoryEvery == 0)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// poll takes one sample, and a memory reading if mem is set.
func (m *monitor) poll(parent context.Context, mem bool) {
	ctx, cancel := context.WithTimeout(parent, pollTimeout)
	defer cancel()
	n, err := m.count(ctx)
	var pss int64
	if err == nil && mem {
		pss, err = m.serverPSS(ctx)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if err != nil {
		if parent.Err() == nil { // not the end of the run
			m.errs, m.lastErr = m.errs+1, err
		}
		return
	}
	m.samples, m.sum, m.peak = m.samples+1, m.sum+n, max(m.peak, n)
	if mem {
		m.peakPSSKB = max(m.peakPSSKB, pss)
		m.loadSum, m.loads = m.loadSum+loadAverage(), m.loads+1
	}
}

// meanLoad returns the mean of the one-minute load averages sampled.
func (m *monitor) meanLoad() float64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.loads == 0 {
		return 0
	}
	return m.loadSum / float64(m.loads)
}

// count returns how many sessions the fleet's logins hold.
func (m *monitor) count(ctx context.Context) (int, error) {
	var n int
	err := m.db.QueryRowContext(ctx,
		"SELECT count(*) FROM pg_stat_activity WHERE usename = ANY($1)",
		pq.Array(m.roles)).Scan(&n)
	return n, err
}

// serverPSS sums the proportional set size of the server's processes
// that pg_stat_activity lists (every backend and auxiliary process), in
// KiB. Processes it cannot read count as zero.
func (m *monitor) serverPSS(ctx context.Context) (int64, error) {
	rows, err := m.db.QueryContext(ctx, "SELECT pid FROM pg_stat_activity")
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	var total int64
	for rows.Next() {
		var pid int
		if err := rows.Scan(&pid); err != nil {
			return 0, err
		}
		total += procField("/proc/"+strconv.Itoa(pid)+"/smaps_rollup", "Pss:")
	}
	return total, rows.Err()
}

// connections returns the peak and mean number of sessions sampled.
func (m *monitor) connections() (peak int, mean float64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.samples > 0 {
		mean = float64(m.sum) / float64(m.samples)
	}
	return m.peak, mean
}

// peakSoFar returns the peak sampled so far, for progress lines.
func (m *monitor) peakSoFar() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.peak
}

// failures describes failed polls, or returns "".
func (m *monitor) failures() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.errs == 0 {
		return ""
	}
	return fmt.Sprintf("%d polls failed, last: %v", m.errs, m.lastErr)
}

// procField returns the value in KiB of the line starting with key in a
// /proc file, or 0 when it cannot be read.
func procField(path, key string) int64 {
	f, err := os.Open(path)
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), key); ok {
			fields := strings.Fields(rest)
			if len(fields) > 0 {
				v, _ := strconv.ParseInt(fields[0], 10, 64)
				return v
			}
		}
	}
	return 0
}

// selfPeakRSSKB returns this process's peak resident set size in KiB.
func selfPeakRSSKB() int64 { return procField("/proc/self/status", "VmHWM:") }

// cpuSeconds returns the CPU time, user and system, used by this process
// and by its children that have been waited for (the PostgreSQL server
// once it has stopped).
func cpuSeconds() (self, children float64) {
	return rusageSeconds(syscall.RUSAGE_SELF), rusageSeconds(syscall.RUSAGE_CHILDREN)
}

// rusageSeconds returns who's user plus system time in seconds.
func rusageSeconds(who int) float64 {
	var ru syscall.Rusage
	if syscall.Getrusage(who, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}

// loadAverage returns the one-minute load average, or 0 if unknown.
func loadAverage() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0
	}
	fields := strings.Fields(string(b))
	if len(fields) == 0 {
		return 0
	}
	v, _ := strconv.ParseFloat(fields[0], 64)
	return v
}
