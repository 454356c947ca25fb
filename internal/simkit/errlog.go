package simkit

import (
	"fmt"
	"io"
	"strconv"
	"sync"
)

// ErrorLog prints the first few distinct errors as they happen and keeps
// them, with how often each occurred, for a report. The passwords its
// Secrets remember are blanked out of every message.
type ErrorLog struct {
	label   string
	out     io.Writer
	limit   int
	secrets *Secrets

	mu     sync.Mutex // guards the fields below
	counts map[string]int
	order  []string
	others int // errors not kept once limit distinct ones were
}

// NewErrorLog returns a log that prints "label: message" to out for the
// first limit distinct errors, redacted with secrets.
func NewErrorLog(label string, out io.Writer, limit int, secrets *Secrets) *ErrorLog {
	return &ErrorLog{label: label, out: out, limit: limit, secrets: secrets, counts: map[string]int{}}
}

// Add records err, printing it if it is one of the first distinct ones.
func (l *ErrorLog) Add(err error) {
	msg := l.secrets.Redact(err.Error())
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

// Lines returns the kept errors with their counts, in order of appearance.
func (l *ErrorLog) Lines() []string {
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
