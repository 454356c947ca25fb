package main

import (
	"fmt"
	"io"
	"strconv"
	"sync"
)

// errorLog prints the first few distinct errors as they happen and keeps
// them, with how often each occurred, for the report. Passwords are
// blanked out of every message.
type errorLog struct {
	label string
	out   io.Writer
	limit int

	mu     sync.Mutex // guards the fields below
	counts map[string]int
	order  []string
	others int // errors not kept once limit distinct ones were
}

func newErrorLog(label string, out io.Writer, limit int) *errorLog {
	return &errorLog{label: label, out: out, limit: limit, counts: map[string]int{}}
}

// add records err, printing it if it is one of the first distinct ones.
func (l *errorLog) add(err error) {
	msg := secrets.Redact(err.Error())
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, ok := l.counts[msg]; ok {
		l.counts[msg]++
		return
	}
	if len(l.order) >= l.limit {
		l.others++
		return
	}
	l.counts[msg] = 1
	l.order = append(l.order, msg)
	fmt.Fprintf(l.out, "%s: %s\n", l.label, msg)
}

// lines returns the kept errors with their counts, in order of appearance.
func (l *errorLog) lines() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]string, 0, len(l.order)+1)
	for _, msg := range l.order {
		out = append(out, strconv.Itoa(l.counts[msg])+" x "+msg)
	}
	if l.others > 0 {
		out = append(out, strconv.Itoa(l.others)+" x other errors")
	}
	return out
}
